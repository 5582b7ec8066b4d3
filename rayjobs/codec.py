"""Train the X-codec2 decoder (48 kHz super-resolution) with Ray Train (paper section 3.2).

    python rayjobs/codec.py --config rayjobs/configs/codec_production.yaml [key=value ...]
    python rayjobs/codec.py --config rayjobs/configs/codec_embedded.yaml --local   # one process, no Ray
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python rayjobs/codec.py --config ...

Mel (x15), RMS loudness (eq. 3-4), adversarial and feature-matching losses against a multi-period and a
multi-scale STFT discriminator; progressive stages select training rows by the manifest's sample_rate.
Re-running with the same run_dir resumes from its latest checkpoint; --resume DIR continues from another
run's checkpoint. A checkpoint's codec/ directory is a codec `load_codec` opens.
"""

import os
import sys

# `python rayjobs/<job>.py` puts rayjobs/ first on sys.path, where rayjobs/tokenize.py would shadow the stdlib
# `tokenize` (imported by dataclasses -> inspect); put the repository root there instead.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import dataclasses
import json
from pathlib import Path

import yaml

from tts.codec.base import MANIFEST, codec_type
from tts.codec.xcodec2.codec import KIND
from tts.codec.xcodec2.train_config import CodecTrainConfig
from tts.codec.xcodec2.train_data import clips, plan_stages, stage_clips
from tts.config import load_config
from tts.train import checkpoint
from tts.train.trainer import check_job


def check_checkpoint(path: Path, cfg: CodecTrainConfig, what: str) -> None:
    """A checkpoint to continue from must be a codec run of the same world size and codec architecture."""
    check_job(path, cfg, what)
    saved = json.loads((path / "codec" / MANIFEST).read_text())["config"]
    if saved != json.loads(json.dumps(cfg.codec_config().to_dict())):
        raise ValueError(f"{what} {path} holds a codec of another architecture than base_config + model")


def check_init(init_from: Path) -> None:
    from tts.codec.xcodec2.train_loop import PUBLIC_SUFFIXES

    if not init_from.exists():
        raise FileNotFoundError(f"init_from {init_from} does not exist")
    if init_from.is_dir():
        if codec_type(init_from) != KIND:
            raise ValueError(f"init_from {init_from} is a {codec_type(init_from)} codec, not {KIND}")
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
    from tts.codec.xcodec2.train_loop import run
    from tts.train.session import LocalSession

    if cfg.num_workers != 1:
        raise ValueError(f"--local runs one worker, not num_workers={cfg.num_workers}")
    run_dir = Path(cfg.run_dir)
    metrics = run(cfg, LocalSession(run_dir, cfg.keep_checkpoints), resume)
    found = checkpoint.latest(run_dir)
    return {"run_dir": str(run_dir), "checkpoint": str(found) if found else None, "metrics": metrics}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=None, help="YAML with CodecTrainConfig fields")
    p.add_argument("--resume", default=None, help="checkpoint (or run directory) to continue from")
    p.add_argument("--local", action="store_true", help="run in this process without Ray (one worker)")
    p.add_argument(
        "overrides",
        nargs="*",
        help='key=value, e.g. batch_size=8 model.hidden=256 "stages=[{min_sample_rate: 16000, steps: 100}]"',
    )
    args = p.parse_args()
    try:
        cfg, resume = prepare(load_config(CodecTrainConfig, args.config, args.overrides), args.resume)
    except (FileNotFoundError, ValueError) as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    if args.local:
        result = run_local(cfg, resume)
    else:
        from tts.codec.xcodec2.train_loop import train_worker
        from tts.train.trainer import fit_with

        result = fit_with(train_worker, cfg, resume)
    print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    main()
