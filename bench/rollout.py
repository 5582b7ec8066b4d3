"""Rollout engine throughput: one call per group (the GRPO driver's old pattern: an engine had only group_size
sequences in flight) against one streaming call for a worker's whole share (every group in the engine at
once), on the same vLLM engine, in one run. Prints generated tokens per second and their ratio, writes JSON.

    python bench/rollout.py [--prompts 8] [--group-size 8] [--max-new-tokens 200] [--out runs/bench/rollout.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tts.codec import load_codec
from tts.grpo.config import DataConfig
from tts.grpo.dataset import PromptSet
from tts.rollout import RolloutConfig, RolloutWorker
from tts.speechlm import EMBEDDED_SPEECHLM, open_speechlm


def timed(fn) -> tuple[float, int]:
    start = time.perf_counter()
    groups = fn()
    return time.perf_counter() - start, sum(len(c.token_ids) for g in groups for c in g)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", default=EMBEDDED_SPEECHLM)
    p.add_argument("--manifest", default="data/corpus/manifest.jsonl")
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--out", default="runs/bench/rollout.json")
    args = p.parse_args()

    model = open_speechlm(args.policy)
    data = PromptSet(DataConfig(manifest=args.manifest), "train", model.tokenizer, model.layout)
    codec = load_codec(model.codec.directory)
    refs = sorted(set(data.references()))
    data.attach({i: codec.encode_file(path) for i, path in refs})
    prompts = data.for_step(0, args.prompts, seed=0)
    ids, seeds = [q.input_ids for q in prompts], list(range(len(prompts)))
    cfg = RolloutConfig(group_size=args.group_size, max_new_tokens=args.max_new_tokens, temperature=0.9)
    worker = RolloutWorker(str(model.directory), cfg, seed=0)
    worker.generate(ids[:1], seeds[:1])  # warm-up
    rows = {}
    # interleaved twice, so both patterns see the same machine state
    for _ in range(2):
        for name, fn in (
            ("per group", lambda: [worker.generate([i], [s])[0] for i, s in zip(ids, seeds)]),
            ("one stream", lambda: [g for _, g in sorted(worker.generate_stream(ids, seeds))]),
        ):
            wall, tokens = timed(fn)
            rows.setdefault(name, []).append({"wall_s": wall, "tokens": tokens, "tokens_per_s": tokens / wall})
    best = {name: max(r["tokens_per_s"] for r in rs) for name, rs in rows.items()}
    print(f"{args.prompts} prompts x {args.group_size} completions, up to {args.max_new_tokens} tokens, vLLM CPU")
    for name, rs in rows.items():
        print(
            f"{name:>11s}: {best[name]:8.1f} tokens/s (best of {len(rs)}; walls {[round(r['wall_s'], 1) for r in rs]})"
        )
    print(f"one stream / per group: x{best['one stream'] / best['per group']:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows, "tokens_per_s": best}))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
