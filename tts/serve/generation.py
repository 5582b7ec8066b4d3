"""SpeechLM generation deployment: prompt ids in, a stream of codec codes out.

Two engines behind one async-generator method, as the GRPO rollout workers have: vLLM's `AsyncLLM` (continuous
batching across requests, LoRA voices as `LoRARequest`s) and transformers `generate` with a streamer where vLLM
is absent. The transformers engine runs one request at a time per replica (its sampling RNG is process-global,
so concurrent requests could not honour seeds); scale it with replicas. Sampling is restricted to audio tokens
and <|speech_end|>, so every streamed id is a code.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tts.serve.config import GenerationSettings, ServeConfig
from tts.speechlm import load_layout


@dataclass
class Sampling:
    """Per-request sampling values (config defaults unless the request gave them)."""

    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None = None


def lora_voices(cfg: ServeConfig) -> dict[str, str]:
    """Voice name -> adapter directory of the configured LoRA voices."""
    return {v.name: v.lora for v in cfg.voices if v.lora}


class SpeechLMGeneration:
    """The Serve deployment class (bound in `tts.serve.app.build_app`)."""

    def __init__(self, cfg: ServeConfig, model_dir: str):
        self.gen: GenerationSettings = cfg.generation
        self.layout = load_layout(model_dir)
        self.allowed = self.layout.speech_ids()
        self.adapters = lora_voices(cfg)
        if not torch.cuda.is_available():
            torch.set_num_threads(self.gen.threads)
        if self.gen.backend == "vllm":
            self._init_vllm(model_dir)
        else:
            self._init_hf(model_dir)

    # -- engines ---------------------------------------------------------------------------------------------
    def _init_vllm(self, model_dir: str) -> None:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, round(self.gen.kv_cache_gib))))
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")  # Ray places the replica; do not re-pin
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        kwargs: dict[str, Any] = {}
        if torch.cuda.is_available():
            kwargs["gpu_memory_utilization"] = self.gen.gpu_memory_utilization
        if self.adapters:
            kwargs.update(enable_lora=True, max_loras=self.gen.max_loras, max_lora_rank=self.gen.max_lora_rank)
        args = AsyncEngineArgs(
            model=model_dir, dtype=self.gen.dtype, max_model_len=self.gen.max_model_len, enforce_eager=True, **kwargs
        )
        self.engine = AsyncLLM.from_engine_args(args)
        self.lora_ids = {name: k + 1 for k, name in enumerate(sorted(self.adapters))}

    def _init_hf(self, model_dir: str) -> None:
        from transformers import AutoModelForCausalLM

        from tts.lora import load_adapter

        device = "cuda" if torch.cuda.is_available() else "cpu"

        def load():
            return AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, self.gen.dtype)).to(device)

        # one merged copy per LoRA voice: requests never switch adapters on a shared model
        self.models = {None: load().eval()}
        for name, adapter in self.adapters.items():
            self.models[name] = load_adapter(load(), adapter).merge_and_unload().eval()
        mask = torch.full((self.models[None].config.vocab_size,), float("-inf"), device=device)
        mask[self.allowed] = 0.0
        self.mask = mask
        self.lock = threading.Lock()

    # -- API -------------------------------------------------------------------------------------------------
    def info(self) -> dict:
        return {"backend": self.gen.backend, "voices": sorted(self.adapters)}

    async def generate(self, prompt: list[int], sampling: Sampling, voice: str | None = None) -> AsyncIterator:
        """Codes as they are sampled (a list per engine step), until <|speech_end|> or max_new_tokens."""
        if voice is not None and voice not in self.adapters:
            raise ValueError(f"no LoRA voice {voice!r} on this deployment")
        engine = self._vllm if self.gen.backend == "vllm" else self._hf
        stream = engine(prompt, sampling, voice)
        async for ids in stream:
            ids = [i for i in ids if i != self.layout.speech_end_id]
            if ids:
                yield self.layout.ids_to_codes(ids)

    async def _vllm(self, prompt: list[int], sampling: Sampling, voice: str | None) -> AsyncIterator[list[int]]:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=self.gen.top_k,
            repetition_penalty=self.gen.repetition_penalty,
            max_tokens=sampling.max_tokens,
            stop_token_ids=[self.layout.speech_end_id],
            allowed_token_ids=self.allowed,
            seed=sampling.seed,
            output_kind=RequestOutputKind.DELTA,
        )
        lora = LoRARequest(voice, self.lora_ids[voice], self.adapters[voice]) if voice else None
        request_id = uuid.uuid4().hex
        async for out in self.engine.generate({"prompt_token_ids": prompt}, params, request_id, lora_request=lora):
            yield list(out.outputs[0].token_ids)

    async def _hf(self, prompt: list[int], sampling: Sampling, voice: str | None) -> AsyncIterator[list[int]]:
        from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        loop, queue, cancelled = asyncio.get_running_loop(), asyncio.Queue(), threading.Event()
        done = object()
        mask = self.mask

        class Streamer(BaseStreamer):
            first = True

            def put(self, value: torch.Tensor) -> None:
                if self.first:  # the prompt
                    self.first = False
                    return
                loop.call_soon_threadsafe(queue.put_nowait, value.flatten().tolist())

            def end(self) -> None:
                loop.call_soon_threadsafe(queue.put_nowait, done)

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool)

        model = self.models[voice]
        ids = torch.tensor([prompt], device=mask.device)

        def run() -> None:
            with self.lock, torch.no_grad():
                if sampling.seed is not None:
                    torch.manual_seed(sampling.seed)
                try:
                    model.generate(
                        input_ids=ids,
                        attention_mask=torch.ones_like(ids),
                        do_sample=True,
                        temperature=sampling.temperature,
                        top_p=sampling.top_p,
                        top_k=self.gen.top_k or None,
                        repetition_penalty=self.gen.repetition_penalty,
                        max_new_tokens=sampling.max_tokens,
                        eos_token_id=self.layout.speech_end_id,
                        pad_token_id=self.layout.speech_end_id,
                        logits_processor=LogitsProcessorList([lambda _, scores: scores + mask]),
                        stopping_criteria=StoppingCriteriaList([Cancelled()]),
                        streamer=Streamer(),
                    )
                except BaseException as exc:  # surfaced in the request, not lost in the thread
                    loop.call_soon_threadsafe(queue.put_nowait, exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            while (item := await queue.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()  # the client went away (or we finished): stop generating


def resolve_model(path: str) -> str:
    """The SpeechLM directory a config names: itself, or a run/checkpoint directory's latest HF policy."""
    from tts.train.model import model_dir

    return str(model_dir(Path(path)))
