"""GRPO alignment of a SpeechLM on Ray (Inworld TTS-1 section 3.5): rollouts, codec decoding, WER/SIM/DNSMOS
rewards and a DeepSpeed learner, orchestrated by this driver.

    python rayjobs/grpo.py [--config rayjobs/configs/grpo_embedded.yaml] [key=value ...] [--resume]
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python rayjobs/grpo.py

Standalone it starts a local Ray; under `ray job submit` it joins the job's cluster. Outputs go to
runs/<name>/ (metrics.jsonl, checkpoints/, report.json, compare.md, reward_curve.png, eval_curves.png, wandb/).
`data.eval_sets` adds benchmark sets (seed-tts-eval meta.lst, e.g. `rayjobs/eval.py make-sets` output) to every
evaluation, each with its own figures. `--resume` continues from the run's latest checkpoint exactly as an
uninterrupted run would have.
"""

import argparse
import json
import logging

DEFAULT_CONFIG = "rayjobs/configs/grpo_embedded.yaml"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"YAML with GRPOConfig fields (default {DEFAULT_CONFIG})"
    )
    parser.add_argument("--resume", action="store_true", help="continue runs/<name> from its latest checkpoint")
    parser.add_argument(
        "--eval-only", action="store_true", help="score the policy on the held-out prompts, no training"
    )
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. steps=5 rollout.group_size=4 learner.lr=1e-5")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from evals.meta import load_items
    from tts.base.config import load_config
    from tts.grpo.config import GRPOConfig
    from tts.grpo.driver import GRPOJob

    cfg = load_config(GRPOConfig, args.config, args.overrides)
    eval_sets = {name: load_items([path], limit=cfg.data.eval_set_items) for name, path in cfg.data.eval_sets.items()}
    job = GRPOJob(cfg, resume=args.resume, eval_only=args.eval_only, eval_sets=eval_sets)
    try:
        report = job.evaluate_only() if args.eval_only else job.run()
    finally:
        job.shutdown()
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
