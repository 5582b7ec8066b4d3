"""Word-synchronous decoding inside vLLM: a logits processor (`LLM(logits_processors=[WordSyncLogits])`) that
runs `tts.speech_sampling.WordSync` for every request whose `SamplingParams.extra_args` holds "words". A module
of its own so that importing the sampling helpers never imports vLLM."""

from __future__ import annotations

from typing import Any

import torch
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

from tts.base.layout import TokenLayout
from tts.speech_sampling import WordSync

WORDS = "words"  # the SamplingParams.extra_args key: the text tokens of each word, the first one in the prompt


class WordSyncLogits(AdapterLogitsProcessor):
    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool):
        super().__init__(vllm_config, device, is_pin_memory)
        self.layout = TokenLayout.load(vllm_config.model_config.model)
        self.vocab_size = vllm_config.model_config.get_vocab_size()
        self.device = device

    @classmethod
    def validate_params(cls, params: Any) -> None:
        words = (params.extra_args or {}).get(WORDS)
        if words is not None and not (isinstance(words, list) and words and all(words)):
            raise ValueError(f"extra_args[{WORDS!r}] must be a non-empty list of non-empty token lists")

    def is_argmax_invariant(self) -> bool:
        return False  # it forces tokens

    def new_req_logits_processor(self, params: Any) -> WordSync | None:
        args = params.extra_args or {}
        if args.get(WORDS) is None:
            return None
        most, sound = int(args.get("max_codes_per_word", 0)), args.get("max_codes_per_sound")  # None: the word's
        return WordSync(self.layout, args[WORDS], self.vocab_size, self.device, most, sound)
