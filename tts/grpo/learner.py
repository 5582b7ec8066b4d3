"""The GRPO learner: N DeepSpeed ranks (one Ray actor each) holding the policy and a frozen reference model.

Each rank gets an equal share of a step's sequences, runs them in micro-batches (DeepSpeed gradient
accumulation) and the ranks average gradients (ZeRO-2 shards the optimizer state). The loss of every
micro-batch is divided by the whole step's token count (token_mean), so the update is exactly the step-level
mean however the batch is split. A non-finite loss on any rank stops every rank before `backward`: the weights
are never touched by a NaN, and the last checkpoint stays the run's last good state.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
import torch.distributed as dist

from tts.base import checkpoint
from tts.base.cluster import bind_collectives_to_node_ip, gpu_uuid
from tts.base.distributed import (
    all_sum,
    deepspeed_config,
    deepspeed_engine,
    frozen_engine,
    gather_weights,
    optimizer,
)
from tts.base.weights import FlatWeights
from tts.grpo.config import LearnerConfig
from tts.grpo.math import grpo_loss, token_entropy, token_logprobs
from tts.lora import add_lora, merged_parameters, save_merged
from tts.speechlm import load_speechlm


class NonFiniteError(FloatingPointError):
    pass


@dataclass
class Trajectory:
    prompt: list[int]
    completion: list[int]
    old_logprobs: list[float]  # rollout-time, one per completion token
    advantage: float | list[float]  # the sequence's, or one per completion token (per-word credit)
    forced: list[bool] | None = None  # per completion token: written by the engine (word-synchronous), not learnt


def micro_batches(n: int, micro: int) -> int:
    """Gradient-accumulation steps for `n` sequences per rank in micro-batches of at most `micro`."""
    return -(-n // micro)


def collate(seqs: list[Trajectory], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input ids and, aligned with the next-token targets (length L-1), the completion mask,
    the rollout log-probs and the advantages."""
    full = [s.prompt + s.completion for s in seqs]
    width = max(len(f) for f in full)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros((len(seqs), width - 1))
    old = torch.zeros((len(seqs), width - 1))
    for k, (s, f) in enumerate(zip(seqs, full)):
        ids[k, : len(f)] = torch.tensor(f)
        attn[k, : len(f)] = 1
        start = len(s.prompt) - 1  # logits at position t predict token t + 1
        mask[k, start : start + len(s.completion)] = 1
        if s.forced is not None:
            mask[k, start : start + len(s.completion)] -= torch.tensor(s.forced, dtype=mask.dtype)
        old[k, start : start + len(s.completion)] = torch.tensor(s.old_logprobs)
    if all(isinstance(s.advantage, (int, float)) for s in seqs):
        adv = torch.tensor([float(s.advantage) for s in seqs])
    else:  # per token, aligned with the targets like the mask
        adv = torch.zeros((len(seqs), width - 1))
        for k, s in enumerate(seqs):
            start = len(s.prompt) - 1
            adv[k, start : start + len(s.completion)] = torch.as_tensor(s.advantage, dtype=adv.dtype)
    return {"input_ids": ids, "attention_mask": attn, "mask": mask, "old_logprobs": old, "advantages": adv}


class LearnerRank:
    def __init__(
        self,
        policy_dir: str,
        cfg: LearnerConfig,
        rank: int,
        world: int,
        master: tuple[str, int],
        grad_accum: int,
        seed: int,
        restore: str | None = None,
        codec: dict | None = None,
    ):
        self.cfg, self.rank, self.world, self.grad_accum = cfg, rank, world, grad_accum
        os.environ.update(MASTER_ADDR=master[0], MASTER_PORT=str(master[1]), RANK=str(rank), WORLD_SIZE=str(world))
        os.environ.setdefault("LOCAL_RANK", "0")
        if world > 1:
            bind_collectives_to_node_ip()
        cuda = torch.cuda.is_available()
        if not cuda:
            torch.set_num_threads(cfg.threads)
        if not dist.is_initialized():  # in-process (tests) a group may exist already: DeepSpeed keeps using it
            dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
        elif (dist.get_rank(), dist.get_world_size()) != (rank, world):
            raise RuntimeError(f"this process already has a process group of another shape; need rank {rank}/{world}")
        torch.manual_seed(seed + rank)
        source = restore or policy_dir
        model, self.tokenizer, self.layout = load_speechlm(source)
        if codec is not None:
            self.layout = replace(self.layout, codec=codec)  # checkpoints record the codec the policy speaks
        self.bf16 = cuda if cfg.bf16 is None else cfg.bf16
        self.ref = None
        if cfg.loss.beta > 0:  # the reference is the starting policy, also after a resume
            ref_source = policy_dir
            self.ref = copy.deepcopy(model) if ref_source == source else load_speechlm(ref_source)[0]
            self.ref.eval().requires_grad_(False)
            if self.bf16:
                self.ref.to(torch.bfloat16)
            if cuda:
                self.ref.cuda()
        if cfg.lora is not None:  # after the reference copy: the reference is the plain starting policy
            model = add_lora(model, cfg.lora)
        if self.ref is not None and cfg.zero_stage == 3:  # sharded like the policy, not a full copy per rank
            self.ref = frozen_engine(self.ref, deepspeed_config(cfg.micro_batch_size, 1, 0.0, 3, self.bf16))
        config = deepspeed_config(cfg.micro_batch_size, grad_accum, cfg.grad_clip, cfg.zero_stage, self.bf16)
        opt = optimizer(model, cfg)
        warmup = None
        if cfg.warmup_steps:  # linear from lr / warmup_steps to lr over the first updates, then constant
            warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1) / cfg.warmup_steps))
        self.engine = deepspeed_engine(model, config, opt, warmup)
        self.pad_id = self.layout.speech_end_id
        if restore is not None:
            checkpoint.load(Path(restore), self.engine, rank)  # the driver reads the step from train_state.json

    def ping(self) -> int:
        return self.rank

    def _logprobs(self, model: Any, batch: dict[str, torch.Tensor], entropy: bool = False):
        """Token log-probs [B, L-1]; with `entropy`, also the policy's entropy at each position (no gradient)."""
        ids = batch["input_ids"].to(self.engine.device)
        logits = model(input_ids=ids, attention_mask=batch["attention_mask"].to(ids.device), use_cache=False).logits
        logp = token_logprobs(logits[:, :-1], ids[:, 1:])
        if not entropy:
            return logp
        with torch.no_grad():
            return logp, token_entropy(logits[:, :-1])

    def _check_finite(self, loss: torch.Tensor) -> None:
        """Collective: every rank learns whether any rank's micro-batch loss is non-finite, and all stop before
        `backward` (a rank that went on would wait forever in the gradient reduction)."""
        bad = all_sum([0.0 if torch.isfinite(loss).item() else 1.0], self.engine.device)[0]
        if bad:
            raise NonFiniteError(
                f"non-finite GRPO loss on {int(bad)} rank(s) (rank {self.rank}: {loss.item()}): stopping before "
                "the update; the last checkpoint is intact. Check the rewards and the learning rate."
            )

    def _idle_micro_batch(self) -> None:
        """A micro-batch without sequences (a rank whose share ran out, with filtered groups): a zero loss through
        the whole model, so every rank still makes the same backward/step calls and collectives."""
        ids = torch.tensor([[self.pad_id, self.pad_id]])
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        loss = self._logprobs(self.engine, batch).sum() * 0.0
        if self.ref is not None and self.cfg.zero_stage == 3:  # its forward gathers parameters from every rank
            with torch.no_grad():
                self._logprobs(self.ref, batch)
        self._check_finite(loss)
        self.engine.backward(loss)
        self.engine.step()

    def train_step(self, seqs: list[Trajectory], denominator: float) -> dict[str, float]:
        """One optimizer step on this rank's share; `denominator` = the step's completion tokens (all ranks)
        for token_mean, its sequences for seq_mean. Returns step metrics reduced over ranks.

        The share goes into exactly `grad_accum` micro-batches (DeepSpeed's boundary), of at most
        `micro_batch_size` sequences; a share made smaller by group filtering leaves some of them idle."""
        mb = self.cfg.micro_batch_size
        if len(seqs) > self.grad_accum * mb:
            raise ValueError(
                f"rank {self.rank}: {len(seqs)} sequences need more than the {self.grad_accum} micro-batches of {mb} "
                "this engine accumulates"
            )
        scale = denominator / (self.world * self.grad_accum)  # DeepSpeed divides by gas and averages over ranks
        keys = ("loss", "policy_loss", "kl", "clipped", "dual_clipped", "ratio", "entropy", "tokens")
        sums = dict.fromkeys(keys, 0.0)
        for start in range(0, self.grad_accum * mb, mb):
            part = seqs[start : start + mb]
            if not part:
                self._idle_micro_batch()
                continue
            batch = collate(part, self.pad_id)
            mask = batch["mask"].to(self.engine.device)
            logp, entropy = self._logprobs(self.engine, batch, entropy=True)
            ref = None
            if self.ref is not None:
                with torch.no_grad():
                    ref = self._logprobs(self.ref, batch)
            loss, m = grpo_loss(
                logp,
                batch["old_logprobs"].to(logp.device),
                batch["advantages"].to(logp.device),
                mask,
                self.cfg.loss,
                ref,
                denominator=scale,
            )
            self._check_finite(loss)
            self.engine.backward(loss)
            self.engine.step()
            n = mask.sum().item()
            sums["loss"] += m["loss"]
            sums["policy_loss"] += m["policy_loss"]
            sums["kl"] += m.get("kl", 0.0)
            sums["clipped"] += m["clip_fraction"] * n
            sums["dual_clipped"] += m["dual_clip_fraction"] * n
            sums["ratio"] += m["ratio_mean"] * n
            sums["entropy"] += (entropy * mask).sum().item()
            sums["tokens"] += n
        total = dict(zip(keys, all_sum([sums[k] for k in keys], self.engine.device)))
        parts = self.world * self.grad_accum  # the loss of each micro-batch was scaled up by this
        tokens = max(total["tokens"], 1.0)
        return {
            "loss": total["loss"] / parts,
            "policy_loss": total["policy_loss"] / parts,
            "kl": total["kl"] / parts,
            "clip_fraction": total["clipped"] / tokens,
            "dual_clip_fraction": total["dual_clipped"] / tokens,
            "ratio_mean": total["ratio"] / tokens,
            "entropy": total["entropy"] / tokens,
            "grad_norm": float(self.engine.get_global_grad_norm() or 0.0),
            "learner_tokens": total["tokens"],
            "lr": self.engine.get_lr()[0],
        }

    def weights(self, dtype: str = "float32") -> FlatWeights | None:
        """Every parameter in one CPU buffer on rank 0 (None on the others). Call it on every rank: under ZeRO-3
        each parameter is gathered from all of them, one at a time."""
        if self.cfg.lora is not None:  # the merged model, as the engines load it (ZeRO-3 is refused with LoRA)
            params = list(merged_parameters(self.engine.module))
            return FlatWeights.pack({n: tuple(t.shape) for n, t in params}, params, getattr(torch, dtype))
        return gather_weights(self.engine, self.rank, getattr(torch, dtype))

    def gpu(self) -> str:
        return gpu_uuid()

    def open_weight_transfer(self, choice: str, engines: list[Any], dtype: str) -> None:
        """Join the GPU weight sync with the rollout engines, `nccl` or `ipc` (tts.grpo.weight_transfer; rank 0
        drives it; call on every rank)."""
        from tts.grpo.weight_transfer import ParameterSource, open_sender

        self.close_weight_transfer()
        source = ParameterSource(self.engine, getattr(torch, dtype), self.engine.device)
        self.sender = open_sender(choice, source, self.rank, engines)

    def send_weights(self) -> None:
        """Every parameter to every engine (call on every rank: under ZeRO-3 each one is gathered from all)."""
        self.sender.send_weights()

    def close_weight_transfer(self) -> None:
        if getattr(self, "sender", None) is not None:
            self.sender.shutdown()
        self.sender = None

    @torch.no_grad()
    def sequence_logprobs(self, ids: list[int]) -> list[float]:
        batch = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
        self.engine.eval()
        out = self._logprobs(self.engine.module, batch)[0].float().tolist()
        self.engine.train()
        return out

    def save(self, directory: str, state: dict) -> None:
        """Collective: every rank writes its part (weights in HF format on rank 0, its ZeRO shard, its RNG)."""
        export = save_merged if self.cfg.lora is not None else None  # merged model, plus the adapter
        checkpoint.save(
            Path(directory), self.engine, self.tokenizer, self.layout, state, self.rank, with_state=False, export=export
        )


def distributed_step(learners: list, trajs: list[Trajectory], aggregation: str) -> dict[str, float]:
    """One optimizer step over all ranks (Ray actors): rank i takes trajs[i::world], and every rank divides by the
    whole step's token (token_mean) or sequence count, so the update does not depend on the number of ranks.
    A non-finite loss on a rank surfaces as NonFiniteError itself. Returns rank 0's metrics."""
    world = len(learners)
    denominator = sum(len(t.completion) for t in trajs) if aggregation == "token_mean" else len(trajs)
    try:
        out = ray.get([r.train_step.remote(trajs[i::world], float(denominator)) for i, r in enumerate(learners)])
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, NonFiniteError):
            raise exc.cause from None
        raise
    return out[0]


def grpo_update(learners: list, trajs: list[Trajectory], aggregation: str, mini_batches: int = 1) -> dict[str, float]:
    """The step's update: `mini_batches` optimizer steps, each on the next contiguous slice of `trajs` (groups stay
    together when they split evenly), as verl's ppo_mini_batch_size. From the second slice on, the policy has moved
    since the rollout, so its ratio leaves 1 and the clip bounds the update. Metrics: token-weighted means over
    the slices, tokens summed, grad norm and lr of the last."""
    parts = np.array_split(np.arange(len(trajs)), min(mini_batches, len(trajs)))  # never empty
    steps = [distributed_step(learners, [trajs[i] for i in part], aggregation) for part in parts]
    weights = np.array([max(m["learner_tokens"], 1.0) for m in steps])
    out = {k: float(np.average([m[k] for m in steps], weights=weights)) for k in steps[0]}
    return (
        out
        | {"learner_tokens": float(sum(m["learner_tokens"] for m in steps))}
        | {k: steps[-1][k] for k in ("grad_norm", "lr")}
    )
