"""Training checkpoints: an HF SpeechLM directory plus what an exact resume needs.

    checkpoint_000500/
        config.json, model.safetensors, tokenizer*, layout.json   the model (load_speechlm, SFT's init_from)
        train_state.json                                          step, lr, data position, job, world size
        deepspeed/                                                engine.save_checkpoint: weights, optimizer
                                                                  (one ZeRO shard per rank), lr scheduler
        rng/rank_<r>.pt                                           python, numpy and torch RNG states

Every rank writes its own parts into a directory of its own; Ray Train merges them into one checkpoint.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tts.base.distributed import gather_weights
from tts.base.layout import TokenLayout

STATE = "train_state.json"
METRICS = "metrics.jsonl"  # in the run directory: a row per report, trimmed back to the step a resume starts from
DEEPSPEED = "deepspeed"
PREFIX = "checkpoint_"


def dir_name(step: int) -> str:
    return f"{PREFIX}{step:06d}"


def read_state(directory: str | Path) -> dict:
    path = Path(directory) / STATE
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: not a training checkpoint (no {STATE})")
    return json.loads(path.read_text())


def latest(path: str | Path) -> Path | None:
    """`path` itself if it is a checkpoint, else its checkpoint with the highest step (None if it has none)."""
    path = Path(path)
    if (path / STATE).is_file():
        return path
    found = [(read_state(d)["step"], d) for d in path.glob(f"{PREFIX}*") if is_final(d)]
    return max(found)[1] if found else None


def is_final(directory: Path) -> bool:
    """A finished checkpoint: named checkpoint_NNNNNN (not a `.tmp` one being written) and holding its state."""
    name = directory.name
    return name.startswith(PREFIX) and name[len(PREFIX) :].isdigit() and (directory / STATE).is_file()


def write_state(directory: Path, state: dict) -> None:
    """train_state.json: written last, when every rank's part is on disk (it marks the checkpoint complete)."""
    (directory / STATE).write_text(json.dumps(state, indent=2) + "\n")


def find(path: str | Path, what: str) -> Path:
    """The checkpoint `path` names (itself or a run directory's latest), as an absolute path (Ray Train's workers
    run in a directory of their own), or a clear error."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    found = latest(path)
    if found is None:
        raise FileNotFoundError(f"{what} {path} is neither a training checkpoint nor a run directory with one")
    return found


def final_lr(path: str | Path) -> float:
    """The learning rate a finished run ended at (its latest checkpoint's schedule position)."""
    ckpt = find(path, "start_lr_from")
    state = read_state(ckpt)
    if state["step"] < state["max_steps"]:
        raise ValueError(
            f"start_lr_from {path}: run stopped at step {state['step']} of {state['max_steps']}; "
            "its final learning rate is not reached yet"
        )
    return float(state["lr"])


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save(
    directory: Path,
    engine: Any,
    tokenizer: Any,
    layout: TokenLayout,
    state: dict,
    rank: int,
    with_state: bool = True,
    export: Callable[[Any, Path, dict | None], None] | None = None,
) -> None:
    """Write this rank's part of a checkpoint (collective: every rank must call it). `with_state` False: the
    caller writes train_state.json once every rank has returned (`write_state`). `export(module, directory,
    state_dict)` writes the model instead of `save_pretrained` (a LoRA run: merged model plus adapter)."""
    engine.save_checkpoint(str(directory / DEEPSPEED), tag=dir_name(state["step"]))
    (directory / "rng").mkdir(parents=True, exist_ok=True)
    torch.save(rng_state(), directory / "rng" / f"rank_{rank}.pt")
    weights = None
    if engine.zero_optimization_stage() == 3:  # the module holds shards: gather them, one parameter at a time
        weights = gather_weights(engine, rank, next(engine.module.parameters()).dtype)
    if rank == 0:
        (export or _save_pretrained)(engine.module, directory, weights.state_dict() if weights else None)
        tokenizer.save_pretrained(directory)
        layout.save(directory)
        if with_state:
            write_state(directory, state)


def _save_pretrained(module: Any, directory: Path, state_dict: dict | None) -> None:
    module.save_pretrained(directory, state_dict=state_dict)


def load(directory: Path, engine: Any, rank: int) -> dict:
    """Restore weights, optimizer, scheduler and this rank's RNG from a checkpoint; returns its train state."""
    state = read_state(directory)
    path, _ = engine.load_checkpoint(str(directory / DEEPSPEED), tag=dir_name(state["step"]))
    if path is None:
        raise FileNotFoundError(f"{directory}: DeepSpeed state for step {state['step']} not found")
    rng = directory / "rng" / f"rank_{rank}.pt"
    if not rng.is_file():
        raise FileNotFoundError(f"{rng} missing: the checkpoint was written by fewer workers")
    set_rng_state(torch.load(rng, weights_only=False))
    return state


def keep_until(path: Path, step: int) -> None:
    """Drop the rows a run logged after the checkpoint it resumes from (they are logged again)."""
    if path.is_file():
        rows = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
        path.write_text("".join(row + "\n" for row in rows))


@dataclass(frozen=True)
class Cadence:
    """When a training loop reports metrics, evaluates and checkpoints: every `log`, `evaluate` and `save` steps,
    and all three at its `last` step, so that a run always ends evaluated and resumable."""

    log: int
    evaluate: int
    save: int
    last: int

    @classmethod
    def of(cls, cfg: Any) -> Cadence:
        """From a training config's intervals; `halt_at_step` stops early on the `max_steps` schedule."""
        last = min(cfg.max_steps, cfg.halt_at_step or cfg.max_steps)
        return cls(cfg.log_interval, cfg.eval_interval, cfg.checkpoint_interval, last)

    def due(self, step: int) -> tuple[bool, bool] | None:
        """(evaluate, save) after optimizer step `step`, or None where not even a report is due."""
        final = step == self.last
        evaluate = step % self.evaluate == 0 or final
        save = step % self.save == 0 or final
        return (evaluate, save) if step % self.log == 0 or evaluate or save else None


def publish(session: Any, run_dir: Path, rank: int, metrics: dict, save: Callable[[Path], None] | None = None) -> None:
    """Log `metrics` (rank 0, to run_dir/METRICS) and report them to the run's session, with this rank's
    part of the checkpoint where `save(directory)` is given: each rank writes into a temporary directory named
    for the step, which the session collects before it is removed."""
    if rank == 0:
        with open(run_dir / METRICS, "a", encoding="utf-8") as f:
            f.write(json.dumps(metrics) + "\n")
    if save is None:
        session.report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix=f"rank{rank}-") as tmp:
        directory = Path(tmp) / dir_name(metrics["step"])
        save(directory)
        session.report(metrics, directory)
