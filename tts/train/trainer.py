"""Launch a training job: checks on the driver, then Ray Train's TorchTrainer (or one local process).

`prepare` fails fast on bad input (missing or mismatched checkpoints, shards of another codec, no data left
after the split) before any worker starts, resolves what the workers need (absolute paths, the tiny init
model, SFT's peak lr from the pre-training run, max_steps from epochs) and writes RUN_DIR/config.yaml.

RUN_DIR is Ray's storage_path/name: re-running a job with the same run_dir resumes from its latest
checkpoint (Ray restores it; `run_local` does the same); `--resume DIR` starts a run from another run's
checkpoint (once the run has checkpoints of its own, those win). On a multi-node cluster RUN_DIR must be on
storage every node mounts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import yaml

from tts.base import checkpoint
from tts.base.cluster import free_port, init_ray
from tts.base.config import load_config
from tts.base.layout import TokenLayout
from tts.speechlm import model_dir, speech_layout
from tts.train.config import TrainConfig


def _abs(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def check_shard_codec(path: Path, codebook_size: int, sha256: str, codec_dir: str) -> None:
    """Shards record the codec that encoded them (summary.json): codes of another codec are noise to this one."""
    summary = path / "summary.json"
    if not summary.is_file():
        return  # a bare shard directory: codes are range-checked as they are read
    used = json.loads(summary.read_text()).get("codec", {})
    if used.get("codebook_size") != codebook_size or used.get("sha256") != sha256:
        raise ValueError(
            f"shards {path} were encoded with codec {used.get('dir')} ({used.get('codebook_size')} codes, sha256 "
            f"{str(used.get('sha256'))[:12]}) but training uses {codec_dir} ({codebook_size} codes, sha256 "
            f"{sha256[:12]}): re-tokenize, or set codec_dir to the codec of the shards"
        )


def check_job(path: Path, cfg: Any, what: str) -> dict:
    """A checkpoint to continue from must come from the same job and world size (each rank saved its own
    optimizer shard, data position and RNG state); returns its train state."""
    state = checkpoint.read_state(path)
    if state["job"] != cfg.job:
        raise ValueError(f"{what} {path} is a {state['job']} checkpoint, not {cfg.job}")
    if state["world_size"] != cfg.num_workers:
        raise ValueError(
            f"{what} {path} was written by {state['world_size']} workers (one optimizer shard, data shard and "
            f"RNG state each); resume it with num_workers={state['world_size']}, not {cfg.num_workers}"
        )
    return state


def check_checkpoint(path: Path, cfg: TrainConfig, codebook_size: int, what: str) -> None:
    """A checkpoint to continue from must come from the same job, world size and codec."""
    check_job(path, cfg, what)
    speech_layout(path, codebook_size)


def plan_data(cfg: TrainConfig, init: Path, shards: list[str], codec: Any) -> dict:
    """Plan epoch 0 as the workers will; a summary of it, or an error when too little data is left."""
    from transformers import AutoTokenizer

    from tts.train.data import Corpus, split_rows, streams

    tokenizer = AutoTokenizer.from_pretrained(init)
    # A plain LM gets exactly the planned layout when the workers expand it.
    layout = speech_layout(init, codec.codebook_size) or TokenLayout.plan(len(tokenizer), codec.codebook_size)
    corpus = Corpus(shards, tokenizer, layout, codec.frame_rate)
    train_rows, val_rows = split_rows(cfg, corpus)
    train, val = streams(cfg, corpus, layout, codec.frame_rate, 0, 0, cfg.num_workers)
    packs = train.packs(0)
    summary = {
        "rows": len(corpus),
        "usable": int(corpus.usable().sum()),
        "train_rows": len(train_rows),
        "held_out_rows": len(val_rows),
        "examples_epoch0": sum(len(p) for p in packs),
        "sequences_epoch0": len(packs),
        "fill": round(sum(e.length for p in packs for e in p) / max(1, len(packs) * cfg.max_len), 3),
        "micro_batches_per_worker_epoch0": train.batches_in(0),
    }
    if not summary["micro_batches_per_worker_epoch0"]:
        raise ValueError(
            f"not enough training data after filtering and the held-out split: {summary}; need at least "
            f"num_workers * batch_size = {cfg.num_workers * cfg.batch_size} packed sequences per epoch"
        )
    if (cfg.eval_batches or cfg.eval_samples) and not val.packs(0):
        raise ValueError(
            "no held-out rows for evaluation: set val_fraction / val_speakers / val_ids, or eval_batches=0 and "
            "eval_samples=0"
        )
    return summary


def prepare(cfg: TrainConfig, resume: str | None = None) -> tuple[TrainConfig, str | None]:
    """Check the inputs and resolve the config the workers run; returns (config, resume checkpoint)."""
    from tts.codec import EMBEDDED_CODEC, load_codec
    from tts.codec.base import read_codec_manifest
    from tts.speechlm import create_tiny_speechlm
    from tts.train.data import open_shards

    run_dir = Path(_abs(cfg.run_dir))
    codec_dir = Path(_abs(cfg.codec_dir) or EMBEDDED_CODEC)
    codec = load_codec(codec_dir)
    sha256 = read_codec_manifest(codec_dir)[0]["sha256"]
    if resume is not None:
        resume = str(checkpoint.find(resume, "--resume"))
        check_checkpoint(Path(resume), cfg, codec.codebook_size, "--resume")
    if run_dir.is_dir() and (own := checkpoint.latest(run_dir)) is not None:
        check_checkpoint(own, cfg, codec.codebook_size, f"run_dir {run_dir} has checkpoint")

    init = run_dir / "init" if cfg.init_from is None else model_dir(_abs(cfg.init_from)).resolve()
    if cfg.init_from is not None:
        speech_layout(init, codec.codebook_size)
    shards = [_abs(p) for p in cfg.shards]
    for path in shards:
        open_shards(path)
        check_shard_codec(Path(path), codec.codebook_size, sha256, str(codec_dir))
    if cfg.init_from is None and not (init / "config.json").is_file():
        create_tiny_speechlm(init, cfg.tiny, codec_dir=codec_dir)

    changes = {"run_dir": str(run_dir), "codec_dir": str(codec_dir), "shards": shards, "init_from": str(init)}
    if getattr(cfg, "start_lr_from", None) is not None:
        changes |= {"start_lr_from": _abs(cfg.start_lr_from), "lr": checkpoint.final_lr(cfg.start_lr_from)}

    summary = plan_data(cfg, init, shards, codec)
    if cfg.epochs is not None:
        per_epoch = summary["micro_batches_per_worker_epoch0"]
        changes |= {"max_steps": math.ceil(cfg.epochs * per_epoch / cfg.grad_accum), "epochs": None}
    cfg = dataclasses.replace(cfg, **changes)
    summary |= {"max_steps": cfg.max_steps, "lr": cfg.lr, "init_from": cfg.init_from}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"job": cfg.job, **dataclasses.asdict(cfg)}, sort_keys=False))
    print(f"{cfg.job}: {json.dumps(summary)}", flush=True)
    return cfg, resume


def _result(run_dir: Path, metrics: dict | None) -> dict:
    found = checkpoint.latest(run_dir)
    return {"run_dir": str(run_dir), "checkpoint": str(found) if found else None, "metrics": metrics or {}}


def _fit(cfg: TrainConfig, resume: str | None) -> dict:
    from tts.train.loop import train_worker

    return fit_with(train_worker, cfg, resume)


def fit_with(worker: Any, cfg: Any, resume: str | None) -> dict:
    """Run `worker({"cfg": cfg, "resume": resume})` on Ray Train's TorchTrainer (any job whose config has
    run_dir, num_workers, use_gpu, cpus_per_worker and keep_checkpoints: also rayjobs/codec.py)."""
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    # With its dashboard: Ray Train's placement-group cleaner polls the State API, which the dashboard serves
    # (without it, a warning a second filled the job log).
    init_ray()
    run_dir = Path(cfg.run_dir)
    trainer = TorchTrainer(
        worker,
        train_loop_config={"cfg": cfg, "resume": resume},
        scaling_config=ScalingConfig(
            num_workers=cfg.num_workers, use_gpu=cfg.use_gpu, resources_per_worker={"CPU": cfg.cpus_per_worker}
        ),
        run_config=RunConfig(
            name=run_dir.name,
            storage_path=str(run_dir.parent),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
        ),
    )
    return _result(run_dir, trainer.fit().metrics)


def _run_local(cfg: TrainConfig, resume: str | None) -> dict:
    import torch.distributed as dist

    from tts.train.loop import run
    from tts.train.session import LocalSession

    if cfg.num_workers != 1:
        raise ValueError(f"run_local runs one worker, not num_workers={cfg.num_workers}")
    os.environ.setdefault("LOCAL_RANK", "0")  # DeepSpeed reads it
    if not dist.is_initialized():  # kept for later runs in this process: DeepSpeed holds on to the group
        init = f"tcp://127.0.0.1:{free_port()}"
        dist.init_process_group("gloo", init_method=init, rank=0, world_size=1)
    run_dir = Path(cfg.run_dir)
    return _result(run_dir, run(cfg, LocalSession(run_dir, cfg.keep_checkpoints), resume))


def fit(cfg: TrainConfig, resume: str | None = None) -> dict:
    """Train under Ray Train; returns {run_dir, checkpoint (latest), metrics (last reported)}."""
    return _fit(*prepare(cfg, resume))


def run_local(cfg: TrainConfig, resume: str | None = None) -> dict:
    """The same loop in this process without Ray (one worker): tests and debugging."""
    return _run_local(*prepare(cfg, resume))


def main(cls: type[TrainConfig], description: str) -> None:
    """Command line of rayjobs/pretrain.py and rayjobs/sft.py."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", default=None, help=f"YAML with {cls.__name__} fields")
    p.add_argument("--resume", default=None, help="checkpoint (or run directory) to continue from")
    p.add_argument("--local", action="store_true", help="run in this process without Ray (one worker)")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. max_steps=100 lr=3e-4 tiny.num_layers=2")
    args = p.parse_args()
    try:
        cfg, resume = prepare(load_config(cls, args.config, args.overrides), args.resume)
    except (FileNotFoundError, ValueError) as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    result = (_run_local if args.local else _fit)(cfg, resume)
    print(json.dumps(result, indent=2), flush=True)
