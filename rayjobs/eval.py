"""Evaluation job (paper sections 3.3, 4, 5.1): seed-tts-eval-compatible benchmarks scored with the reward pools
on Ray (WER/CER, SIM, DNSMOS, durations, RTF), run comparisons and arena ratings.

    python rayjobs/eval.py --meta META [META ...] --wav-dir DIR --out OUT      # score existing <utt>.wav files
    python rayjobs/eval.py --meta META --checkpoint CKPT --out OUT             # synthesize, then score
    python rayjobs/eval.py --meta META [META ...] --ground-truth --out OUT     # the sets' own audio (reference)
    python rayjobs/eval.py --compare RUN_A RUN_B --out OUT                     # two runs side by side, deltas
    python rayjobs/eval.py --rescore RUN --protocol seed-tts-eval --out OUT    # same transcripts, other protocol
    python rayjobs/eval.py --arena VOTES --out OUT                             # win rates + Bradley-Terry
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python rayjobs/eval.py ...

META: seed-tts-eval meta.lst files or JSONL manifests (`tts-align eval make-sets` builds the embedded ones).
Outputs in OUT: report.json, report.md, per_language.png, length_buckets.png, dnsmos.png, utterances.jsonl (per
utterance, appended as scored: a re-run with the same OUT resumes), and with --checkpoint wavs/,
wavs_no_prompt/ and synthesis.jsonl.
"""

import argparse
import json
import logging

DEFAULT_CONFIG = "rayjobs/configs/eval_embedded.yaml"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"YAML with EvalConfig fields (default {DEFAULT_CONFIG})"
    )
    parser.add_argument(
        "--meta", nargs="+", help="meta.lst files and/or JSONL manifests (key=value overrides go after another option)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wav-dir", help="score DIR/<utt>.wav (e.g. a set's wavs/ = its ground truth)")
    source.add_argument("--checkpoint", help="SpeechLM directory (or run directory) to synthesize with")
    source.add_argument("--ground-truth", action="store_true", help="score the sets' own gt_wav audio (reference row)")
    parser.add_argument("--out", help="output directory (default: the config's out)")
    parser.add_argument("--language", help="language of meta.lst rows (default: the meta file's directory name)")
    parser.add_argument("--limit", type=int, help="utterances per input file, spread evenly (default: all)")
    parser.add_argument("--protocol", help="scoring protocol: ours (default) or seed-tts-eval (evals/protocols.py)")
    task = parser.add_mutually_exclusive_group()
    task.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"), help="compare two evaluation outputs")
    task.add_argument("--arena", metavar="VOTES", help="vote records (JSONL or the arena's SQLite file)")
    task.add_argument("--rescore", metavar="RUN", help="re-score RUN's transcripts under --protocol (no ASR)")
    parser.add_argument(
        "overrides", nargs="*", help="key=value, e.g. synthesis.rollout.backend=vllm arena.bootstrap=200"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from evals.config import EvalConfig
    from tts.base.config import load_config

    cfg = load_config(EvalConfig, args.config, args.overrides)
    for key in ("meta", "wav_dir", "checkpoint", "ground_truth", "out", "language", "limit", "protocol"):
        if getattr(args, key) not in (None, False):
            setattr(cfg, key, getattr(args, key))
    cfg.__post_init__()  # the command line's values checked like the config's (e.g. an unknown --protocol)
    if args.compare:
        from evals.compare import write_compare

        result = write_compare(*args.compare, cfg.out)
        summary = result["summary"]["delta"]
    elif args.rescore:
        from evals.runner import rescore

        result = rescore(args.rescore, cfg)
        summary = result["summary"]
    elif args.arena:
        from evals.arena import write_arena

        result = write_arena(args.arena, cfg.out, cfg.arena)
        summary = {m: round(r["rating"]) for m, r in result["ratings"].items()}
    else:
        from evals.runner import run_eval

        result = run_eval(cfg)
        summary = result["summary"]
    print(json.dumps({"out": cfg.out, "summary": summary}, indent=2))
    return result


if __name__ == "__main__":
    main()
