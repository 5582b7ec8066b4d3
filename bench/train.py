"""Training throughput: tokens/s and per-worker peak memory of SFT steps: a bare torch loop (the same model and
micro-batches, AdamW, no DeepSpeed, no Ray: the reference the training path is held to), the training loop in one
process (DeepSpeed, no Ray) in fp32 and with `cpu_autocast` (bf16 matmuls), and Ray Train with 1 and 2 workers,
measured side by side in one run on the same synthetic shards (random codes of the embedded codec, real
transcripts). The paper's reference: 18,000 tokens/s/GPU (1B SpeechLM, SFT, H100).

    python bench/train.py [--steps 12] [--hidden 256 --layers 6] [--max-len 1024] [--out runs/bench/train.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from tts.codec import EMBEDDED_CODEC
from tts.speechlm import TinySpeechLMConfig
from tts.tokenize.synthetic import write_random_shards
from tts.train.config import SFTConfig
from tts.train.trainer import fit, prepare, run_local


def plain_torch(cfg: SFTConfig) -> None:
    """`cfg`'s model and micro-batches in a bare torch loop (AdamW, clipping, no DeepSpeed, no Ray); writes
    metrics.jsonl rows like the training loop's (tokens_per_s, max_rss_mb) every log_interval steps."""
    import resource

    import torch

    from tts.codec import load_codec
    from tts.train.data import Corpus, Position, streams
    from tts.train.model import load as load_model

    cfg, _ = prepare(cfg)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.cpus_per_worker)
    codec = load_codec(cfg.codec_dir)
    model, tokenizer, layout = load_model(Path(cfg.init_from), codec.codebook_size, cfg.seed, cfg.attn_implementation)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else layout.speech_end_id
    corpus = Corpus(cfg.shards, tokenizer, layout, codec.frame_rate)
    train, _ = streams(cfg, corpus, layout, codec.frame_rate, pad, 0, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    batches, run_dir = train(Position()), Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tokens, start = 0, time.perf_counter()
    with open(run_dir / "metrics.jsonl", "w") as log:
        for step in range(1, cfg.max_steps + 1):
            for _ in range(cfg.grad_accum):
                _, batch = next(batches)
                (model(**batch.inputs, use_cache=False).loss / cfg.grad_accum).backward()
                tokens += batch.tokens
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if step % cfg.log_interval == 0:
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                log.write(
                    json.dumps(
                        {"step": step, "tokens_per_s": tokens / (time.perf_counter() - start), "max_rss_mb": rss}
                    )
                    + "\n"
                )
                tokens, start = 0, time.perf_counter()


# --settings id -> (table label, runner, Ray Train workers, config changes); the first one run is the reference
SETTINGS = {
    "plain": ("bare torch loop", plain_torch, 1, {}),
    "local": ("1 process (no Ray)", run_local, 1, {}),
    "autocast": ("1 process, cpu_autocast", run_local, 1, {"cpu_autocast": True}),
    "ray1": ("Ray Train, 1 worker", fit, 1, {}),
    "ray2": ("Ray Train, 2 workers", fit, 2, {}),
}


def measure(runner, workers: int, base: dict, run_dir: Path) -> dict:
    cfg = SFTConfig(**base | {"run_dir": str(run_dir), "num_workers": workers, "cpus_per_worker": 2 // workers})
    start = time.perf_counter()
    runner(cfg)
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steady = rows[1:] or rows  # the first window includes start-up and the first (slow) steps
    return {
        "tokens_per_s": statistics.median(r["tokens_per_s"] for r in steady),
        "max_rss_mb": max(r["max_rss_mb"] for r in rows),
        "wall_s": wall,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--max-len", type=int, default=1024)
    p.add_argument("--codec", default=str(EMBEDDED_CODEC))
    p.add_argument("--out", default="runs/bench/train.json")
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS), help="which to run")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    shards = write_random_shards(work / "tokens", Path(args.codec), rows=64, speakers=4, n_codes=(100, 250))
    tiny = TinySpeechLMConfig(hidden_size=args.hidden, num_layers=args.layers, intermediate_size=3 * args.hidden)
    base = {
        "tiny": tiny,
        "codec_dir": args.codec,
        "shards": [str(shards)],
        "max_len": args.max_len,
        "max_steps": args.steps,
        "log_interval": max(1, args.steps // 4),
        "eval_interval": 10**6,
        "checkpoint_interval": 10**6,
        "eval_samples": 0,
        "val_fraction": 0.05,
        "lr": 1e-4,
    }
    results = {}
    for name, runner, workers, changes in (SETTINGS[k] for k in args.settings):
        results[name] = measure(runner, workers, base | changes, work / name.replace(" ", "_").replace(",", ""))
        print(
            f"{name:22s} {results[name]['tokens_per_s']:9.0f} tokens/s  peak RSS {results[name]['max_rss_mb']:7.0f} MB"
            f"  ({results[name]['wall_s']:.0f} s)",
            flush=True,
        )
    ref_name = next(iter(results))
    ref = results[ref_name]["tokens_per_s"]
    print(f"\n{'setting':22s} {'tokens/s':>9s} {'vs ' + ref_name:>13s} {'peak RSS MB':>12s}")
    for name, r in results.items():
        print(f"{name:22s} {r['tokens_per_s']:9.0f} {r['tokens_per_s'] / ref:12.2f}x {r['max_rss_mb']:12.0f}")
    print("paper reference: 18,000 tokens/s/GPU (1B, SFT, H100)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "args": vars(args), "model": asdict(tiny)}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
