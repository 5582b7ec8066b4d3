"""DeepSpeed on a process group that already exists: the one config builder, AdamW, the warm-up + cosine
schedule, the engine and a float all-reduce, shared by SFT/pre-training, the GRPO learner and the codec trainer.

Under Ray Train torch.distributed is already initialised (gloo on CPU, nccl on GPU) with RANK/LOCAL_RANK/
WORLD_SIZE set, and the GRPO learner initialises its own group, so `deepspeed.initialize` wraps that group
instead of starting one. On CPU it picks its CPU accelerator. The optimizer is torch's AdamW handed to DeepSpeed,
so no fused-Adam kernel is compiled, and the CPU accelerator's shared-memory all-reduce kernel (used by DeepSpeed
inference only, and active only when LOCAL_SIZE is set) is marked unavailable: building it costs about a minute
of C++ compilation on every fresh machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist

from tts.base.weights import FlatWeights


def deepspeed_config(micro_batch_size: int, grad_accum: int, grad_clip: float, zero_stage: int, bf16: bool) -> dict:
    """The one DeepSpeed config builder (SFT/pre-training workers, GRPO learner ranks, codec trainer). Under bf16
    gradients accumulate over micro-batches in fp32: bf16 sums of many small gradients lose their low bits."""
    config = {
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": grad_accum,
        "gradient_clipping": grad_clip,
        "zero_optimization": {"stage": zero_stage},
        "bf16": {"enabled": bf16},
        "steps_per_print": 2**62,  # we log
        "wall_clock_breakdown": False,
    }
    if bf16:
        config["data_types"] = {"grad_accum_dtype": "fp32"}
    return config


def optimizer(model: torch.nn.Module, cfg: Any) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (incl. embeddings) only; `cfg` has lr, weight_decay, betas, eps."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def scheduler(opt: torch.optim.Optimizer, cfg: Any) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup_fraction` of the steps from 0 to `lr`, then cosine down to lr * min_lr_ratio."""
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    warmup = round(cfg.warmup_fraction * cfg.max_steps)
    return get_cosine_with_min_lr_schedule_with_warmup(opt, warmup, cfg.max_steps, min_lr_rate=cfg.min_lr_ratio)


def deepspeed_engine(model: torch.nn.Module, config: dict, opt: torch.optim.Optimizer, lr_scheduler: Any = None) -> Any:
    """`deepspeed.initialize` on the process group already set up (Ray Train's, or the GRPO learner's)."""
    import deepspeed
    from deepspeed.accelerator import get_accelerator

    if get_accelerator().device_name() == "cpu":
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False  # see the module docstring
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=opt, lr_scheduler=lr_scheduler, config=config)
    return engine


def full_parameters(engine: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, whole tensor) of every parameter, tied ones once. Under ZeRO-3 each rank holds a shard, and each
    parameter is gathered on its own while it is yielded (collective: every rank must iterate to the end), so
    no rank ever holds the whole model at once; under ZeRO-1/2 the parameters are whole already. Copy a yielded
    tensor before the next one: under ZeRO-3 its storage is released."""
    import deepspeed

    stage3 = engine.zero_optimization_stage() == 3
    for name, p in engine.module.named_parameters():
        with deepspeed.zero.GatheredParameters([p], modifier_rank=None, enabled=stage3):
            yield name, p.detach()


def parameter_shapes(engine: Any) -> dict[str, tuple[int, ...]]:
    """Full shape of every parameter (`ds_shape` under ZeRO-3, where `shape` is the local shard's)."""
    return {n: tuple(getattr(p, "ds_shape", p.shape)) for n, p in engine.module.named_parameters()}


def gather_weights(engine: Any, rank: int, dtype: torch.dtype) -> FlatWeights | None:
    """Every parameter in one CPU buffer of `dtype` on rank 0 (None on the others, which under ZeRO-3 only
    take part in each parameter's gather: call it on every rank)."""
    params = full_parameters(engine)
    if rank != 0:
        for _ in params:
            pass
        return None
    return FlatWeights.pack(parameter_shapes(engine), params, dtype)


def frozen_engine(model: torch.nn.Module, config: dict) -> Any:
    """A model that is only run forward (the GRPO reference) under `config`'s ZeRO stage, without an optimizer;
    under ZeRO-3 its parameters are partitioned first, so each rank holds a shard, not a full copy."""
    import deepspeed

    if config["zero_optimization"]["stage"] == 3:
        deepspeed.zero.Init(module=model, config_dict_or_path=config)
    return deepspeed_engine(model, config, None)


def all_sum(values: list[float], device: torch.device) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()
