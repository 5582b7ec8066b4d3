"""The per-worker training loop shared by pre-training and SFT: gradient accumulation, held-out loss, samples,
checkpoints and metrics on the DeepSpeed engine of `tts.base.distributed` (AdamW, warm-up + cosine schedule)."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tts.base import checkpoint
from tts.base.checkpoint import keep_until
from tts.base.distributed import all_sum, deepspeed_config, deepspeed_engine, optimizer, scheduler
from tts.base.layout import MARKUP_TAGS, TokenLayout, special_name
from tts.train.config import TrainConfig
from tts.train.data import Batch, Corpus, Position, split_rows, streams
from tts.train.model import load as load_model


def train_worker(config: dict) -> None:
    """Ray Train entry point: `config` = {"cfg": TrainConfig, "resume": checkpoint dir or None}."""
    from tts.train.session import RaySession

    run(config["cfg"], RaySession(), config.get("resume"))


def engine_for(model: torch.nn.Module, cfg: TrainConfig) -> Any:
    config = deepspeed_config(cfg.batch_size, cfg.grad_accum, cfg.grad_clip, cfg.zero_stage, cfg.use_bf16)
    return deepspeed_engine(model, config, optimizer(model, cfg), lambda opt: scheduler(opt, cfg))


def forward_loss(engine: Any, batch: Batch, autocast: bool) -> torch.Tensor:
    """The micro-batch's loss; under `autocast` (CPU) its matmuls run in bf16 while weights stay fp32."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        return engine(**{k: v.to(engine.device) for k, v in batch.inputs.items()}, use_cache=False).loss.float()


@torch.no_grad()
def held_out_loss(engine: Any, batches: list, autocast: bool = False) -> float:
    """Token-weighted mean loss over every rank's held-out micro-batches."""
    engine.eval()
    total = count = 0.0
    for b in batches:
        loss = forward_loss(engine, b, autocast)
        total, count = total + loss.item() * b.targets, count + b.targets
    engine.train()
    total, count = all_sum([total, count], engine.device)
    return total / count if count else math.nan


def train_step(
    engine: Any, batches: Iterator[tuple[Position, Batch]], grad_accum: int, autocast: bool = False
) -> tuple[Position, float, int]:
    """One optimizer step over `grad_accum` micro-batches: (data position after it, mean loss, tokens)."""
    loss_sum, tokens = 0.0, 0
    for _ in range(grad_accum):
        position, batch = next(batches)
        loss = forward_loss(engine, batch, autocast)
        engine.backward(loss)
        engine.step()  # DeepSpeed steps the optimizer and scheduler at the accumulation boundary only
        loss_sum, tokens = loss_sum + loss.item(), tokens + batch.tokens
    return position, loss_sum / grad_accum, tokens


def taught_tags(corpus: Corpus, layout: TokenLayout, rows: np.ndarray) -> list[str] | None:
    """Markup tags in the transcripts of the training `rows`, added to those the start model already learned;
    None when the vocabulary has no tag tokens."""
    ids = {t: layout.tag_id(t) for t in MARKUP_TAGS if special_name(t) in layout.special_ids}
    if not ids:
        return None
    seen = set(np.concatenate([corpus.text_ids[int(k)] for k in rows])) if len(rows) else set()
    return [t for t in MARKUP_TAGS if ids.get(t) in seen or t in (layout.learned_tags or [])]


def run(cfg: TrainConfig, session: Any, resume: str | None = None) -> dict:
    """Train from scratch or resume; returns the last metrics. Every rank runs this."""
    from tqdm import tqdm

    from tts.codec import codec_ref, load_codec
    from tts.speechlm import with_codec
    from tts.train.samples import FILE as SAMPLES
    from tts.train.samples import sample_prompts, synthesize

    rank, world = session.rank, session.world_size
    run_dir = Path(cfg.run_dir)
    restore = session.restored() or (Path(resume) if resume else None)
    torch.manual_seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    codec = load_codec(cfg.codec_dir)
    lora = getattr(cfg, "lora", None)
    # a LoRA run's base is always init_from (frozen); its checkpoints' adapters come back with the DeepSpeed state
    source = Path(cfg.init_from) if lora else (restore or Path(cfg.init_from))
    model, tokenizer, layout = load_model(source, codec.codebook_size, cfg.seed, cfg.attn_implementation)
    layout = with_codec(layout, codec_ref(cfg.codec_dir))  # every checkpoint records the codec it speaks
    corpus = Corpus(cfg.shards, tokenizer, layout, codec.frame_rate)
    train_rows, val_rows = split_rows(cfg, corpus)
    if cfg.job == "sft":  # the checkpoint records which markup tags it was taught (Serve refuses the others)
        layout = replace(layout, learned_tags=taught_tags(corpus, layout, train_rows))
    export = None
    if lora:
        from tts.lora import add_lora, save_merged

        model = add_lora(model, lora, layout if lora.train_embeddings else None)
        export = save_merged
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else layout.speech_end_id
    train, val = streams(cfg, corpus, layout, codec.frame_rate, pad_id, rank, world)
    engine = engine_for(model, cfg)
    position, step = Position(), 0
    if restore is not None:
        state = checkpoint.load(restore, engine, rank)
        position, step = Position(**state["position"]), state["step"]
        if rank == 0:
            keep_until(run_dir / checkpoint.METRICS, step)
            keep_until(run_dir / "samples" / SAMPLES, step)
    eval_batches = val.held_out(cfg.eval_batches)
    eval_loss = cfg.eval_batches > 0 and len(val.packs(0)) > 0  # the same on every rank: all_reduce inside
    samples = []
    if rank == 0 and cfg.eval_samples:
        clone = cfg.job == "sft" and cfg.clone_fraction > 0
        samples = sample_prompts(corpus, layout, val_rows, cfg.job, cfg.eval_samples, clone, codec.frame_rate)

    autocast = cfg.cpu_autocast and not cfg.use_bf16 and engine.device.type == "cpu"
    cadence = checkpoint.Cadence.of(cfg)
    bar = tqdm(total=cfg.max_steps, initial=step, desc=cfg.job, disable=rank != 0, dynamic_ncols=True)
    batches = train(position)
    window = {"loss": 0.0, "steps": 0, "tokens": 0, "start": time.perf_counter()}
    metrics: dict = {}
    while step < cadence.last:
        lr = engine.get_lr()[0]
        position, loss, tokens = train_step(engine, batches, cfg.grad_accum, autocast)
        step += 1
        window["loss"] += loss
        window["steps"] += 1
        window["tokens"] += tokens
        bar.update(1)
        if (due := cadence.due(step)) is None:
            continue
        evaluate, save = due
        loss_sum, tokens = all_sum([window["loss"], window["tokens"]], engine.device)
        metrics = {
            "step": step,
            "epoch": position.epoch,
            "loss": loss_sum / (world * window["steps"]),  # mean over the steps since the last report
            "lr": lr,
            "grad_norm": float(engine.get_global_grad_norm() or 0.0),
            "tokens_per_s": tokens / (time.perf_counter() - window["start"]),
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # this worker's peak
        }
        if torch.cuda.is_available():
            metrics["max_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        if evaluate and eval_loss:
            metrics["eval_loss"] = held_out_loss(engine, eval_batches, autocast)
        if evaluate and samples:
            max_new = int(cfg.sample_max_seconds * codec.frame_rate) + 1
            out = run_dir / "samples"
            synthesize(
                engine.module, layout, codec, corpus, samples, out, step, max_new, cfg.sample_temperature, cfg.seed
            )
        bar.set_postfix({k: f"{metrics[k]:.4g}" for k in ("loss", "lr", "tokens_per_s")})
        writer = None
        if save:
            state = {
                "job": cfg.job,
                "step": step,
                "max_steps": cfg.max_steps,
                "lr": engine.get_lr()[0],  # where the schedule stands for the next step
                "position": {"epoch": position.epoch, "batch": position.batch},
                "world_size": world,
                "metrics": metrics,
            }
            writer = partial(
                checkpoint.save,
                engine=engine,
                tokenizer=tokenizer,
                layout=layout,
                state=state,
                rank=rank,
                export=export,
            )
        checkpoint.publish(session, run_dir, rank, metrics, writer)
        window = {"loss": 0.0, "steps": 0, "tokens": 0, "start": time.perf_counter()}
    bar.close()
    return metrics
