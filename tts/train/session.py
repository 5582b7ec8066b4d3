"""What the training loop needs from its runner: rank, world size, reporting and the checkpoint to restore.

`RaySession` is Ray Train (`ray.train.report` / `get_checkpoint`); `LocalSession` runs the same loop in one
process without Ray (tests, debugging) and keeps checkpoints in the same `RUN_DIR/checkpoint_NNNNNN` layout,
so either runner resumes the other's run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tts.base import checkpoint


class RaySession:
    def __init__(self) -> None:
        import ray.train

        self._train = ray.train
        context = ray.train.get_context()
        self.rank, self.world_size = context.get_world_rank(), context.get_world_size()

    def restored(self) -> Path | None:
        """The checkpoint Ray restores this run from (a re-run of the same run_dir, or after a failure)."""
        ckpt = self._train.get_checkpoint()
        return None if ckpt is None else Path(ckpt.path)

    def report(self, metrics: dict, directory: Path | None = None) -> None:
        """Every rank must call this equally often; each rank's `directory` is merged into one checkpoint."""
        if directory is None:
            self._train.report(metrics)
        else:
            ckpt = self._train.Checkpoint.from_directory(str(directory))
            self._train.report(metrics, checkpoint=ckpt, checkpoint_dir_name=directory.name)


class LocalSession:
    def __init__(self, run_dir: Path, keep: int):
        self.rank, self.world_size = 0, 1
        self.run_dir, self.keep = run_dir, keep
        self.last: dict = {}

    def restored(self) -> Path | None:
        return checkpoint.latest(self.run_dir)

    def report(self, metrics: dict, directory: Path | None = None) -> None:
        self.last = metrics
        if directory is None:
            return
        target = self.run_dir / directory.name
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(directory, tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        kept = sorted(self.run_dir.glob(f"{checkpoint.PREFIX}*"))
        for old in kept[: -self.keep]:
            shutil.rmtree(old)
