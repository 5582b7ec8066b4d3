"""GRPO step anatomy: each stage's seconds, the step wall, and how much of the stage sum the wall is, on-policy
and off-policy side by side in one run (same config, same machine state).

Stages (metrics.jsonl): rollout (launch to last group generated), reward tail (scoring after the last group),
learner, weight sync. On-policy they run one after another, so the wall is their sum; off-policy, step k+1 is
generated and scored while the learner trains on step k, and the ratio shows how much of that overlaps.

    python bench/grpo.py [--config rayjobs/configs/grpo_embedded.yaml] [--steps 3] [key=value ...]
The first step of each run is left out of the medians (off-policy it has nothing to overlap with yet).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

from tts.base.cluster import init_ray
from tts.base.config import load_config
from tts.grpo.config import GRPOConfig
from tts.grpo.driver import GRPOJob

STAGES = ("rollout_s", "reward_tail_s", "learner_s", "sync_s")
MODES = {"on-policy": "off_policy=false", "off-policy": "off_policy=true"}


def run_mode(config: str, runs_dir: Path, mode: str, steps: int, overrides: list[str]) -> list[dict]:
    name = mode.replace("-", "_")
    shutil.rmtree(runs_dir / name, ignore_errors=True)
    extra = [f"name={name}", f"runs_dir={runs_dir}", f"steps={steps}", f"checkpoint_interval={steps}"]
    extra += ["eval_before=false", "eval_after=false", "wandb_mode=disabled", MODES[mode], *overrides]
    job = GRPOJob(load_config(GRPOConfig, config, extra))
    try:
        job.run()
    finally:
        job.shutdown()
    return [json.loads(line) for line in (runs_dir / name / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="rayjobs/configs/grpo_embedded.yaml")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--runs-dir", default="runs/bench/grpo")
    p.add_argument("--out", default="runs/bench/grpo.json")
    p.add_argument("overrides", nargs="*", help="GRPOConfig key=value for both runs")
    args = p.parse_args()
    if args.steps < 2:
        p.error("--steps must be >= 2 (the first step is left out)")

    init_ray()
    table = {}
    for mode in MODES:
        rows = run_mode(args.config, Path(args.runs_dir), mode, args.steps, args.overrides)[1:]
        med = {k: statistics.median(r[k] for r in rows) for k in (*STAGES, "step_s")}
        med["stage_sum_s"] = sum(med[k] for k in STAGES)
        med["wall_over_sum"] = med["step_s"] / med["stage_sum_s"]
        table[mode] = med
    cols = (*STAGES, "stage_sum_s", "step_s", "wall_over_sum")
    print(f"median over steps 2-{args.steps}")
    print(f"{'mode':>10s} " + " ".join(f"{c.removesuffix('_s'):>13s}" for c in cols))
    for mode, med in table.items():
        print(f"{mode:>10s} " + " ".join(f"{med[c]:13.2f}" for c in cols))
    on, off = table["on-policy"], table["off-policy"]
    print(f"off-policy step wall x{on['step_s'] / off['step_s']:.2f} faster than on-policy")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": args.config, "steps": args.steps, "overrides": args.overrides} | table))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
