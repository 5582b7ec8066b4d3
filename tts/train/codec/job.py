"""The codec training job's driver side: input checks, path resolution and the one-process runner; the Ray Train
launch is `tts.train.trainer.fit_with` (rayjobs/codec.py is the entry point)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import yaml

from tts.base import checkpoint
from tts.codec.base import MANIFEST, codec_manifest
from tts.codec.xcodec2.codec import KIND
from tts.train.codec.config import CodecTrainConfig
from tts.train.codec.data import clips, plan_stages, stage_clips
from tts.train.trainer import check_job


def check_checkpoint(path: Path, cfg: CodecTrainConfig, what: str) -> None:
    """A checkpoint to continue from must be a codec run of the same world size and codec architecture."""
    check_job(path, cfg, what)
    saved = json.loads((path / "codec" / MANIFEST).read_text())["config"]
    if saved != json.loads(json.dumps(cfg.codec_config().to_dict())):
        raise ValueError(f"{what} {path} holds a codec of another architecture than base_config + model")


def check_init(init_from: Path) -> None:
    from tts.train.codec.loop import PUBLIC_SUFFIXES

    if not init_from.exists():
        raise FileNotFoundError(f"init_from {init_from} does not exist")
    if init_from.is_dir():
        kind = codec_manifest(init_from)["type"]
        if kind != KIND:
            raise ValueError(f"init_from {init_from} is a {kind} codec, not {KIND}")
    elif init_from.suffix not in PUBLIC_SUFFIXES:
        raise ValueError(f"init_from {init_from}: expected a codec directory or a {PUBLIC_SUFFIXES} checkpoint file")


def prepare(cfg: CodecTrainConfig, resume: str | None = None) -> tuple[CodecTrainConfig, str | None]:
    """Check inputs before any worker starts; resolve paths; write RUN_DIR/config.yaml."""
    run_dir = Path(cfg.run_dir).expanduser().resolve()
    manifest = Path(cfg.manifest).expanduser().resolve()
    changes = {"run_dir": str(run_dir), "manifest": str(manifest)}
    if cfg.init_from is not None:
        init = Path(cfg.init_from).expanduser().resolve()
        check_init(init)
        changes["init_from"] = str(init)
    cfg = dataclasses.replace(cfg, **changes)
    if resume is not None:
        resume = str(checkpoint.find(resume, "--resume"))
        check_checkpoint(Path(resume), cfg, "--resume")
    if run_dir.is_dir() and (own := checkpoint.latest(run_dir)) is not None:
        check_checkpoint(own, cfg, f"run_dir {run_dir} has checkpoint")
    plan = plan_stages(cfg, clips(cfg, cfg.train_split))
    held = stage_clips(clips(cfg, cfg.eval_split), cfg.stages[-1].min_sample_rate) if cfg.eval_utterances else []
    if cfg.eval_utterances and not held:
        raise ValueError(
            f"no {cfg.eval_split} rows of {manifest} at >= {cfg.stages[-1].min_sample_rate} Hz for the held-out "
            "loss: set eval_split, or eval_utterances=0"
        )
    codec = cfg.codec_config()
    summary = {"stages": plan, "max_steps": cfg.max_steps, "held_out": min(len(held), cfg.eval_utterances)}
    summary |= {"sample_rate": codec.sample_rate, "init_from": cfg.init_from, "freeze_encoder": cfg.freeze_encoder}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"job": cfg.job, **dataclasses.asdict(cfg)}, sort_keys=False))
    print(f"{cfg.job}: {json.dumps(summary)}", flush=True)
    return cfg, resume


def run_local(cfg: CodecTrainConfig, resume: str | None = None) -> dict:
    """The training loop in this process without Ray (one worker): tests and debugging."""
    from tts.train.codec.loop import run
    from tts.train.session import LocalSession

    if cfg.num_workers != 1:
        raise ValueError(f"--local runs one worker, not num_workers={cfg.num_workers}")
    run_dir = Path(cfg.run_dir)
    metrics = run(cfg, LocalSession(run_dir, cfg.keep_checkpoints), resume)
    found = checkpoint.latest(run_dir)
    return {"run_dir": str(run_dir), "checkpoint": str(found) if found else None, "metrics": metrics}
