"""Codec round-trip benchmark on the corpus test split.

Whisper tiny.en WER (English rows) and DNSMOS OVRL (all rows) of original vs codec round trip, and
encode/decode real-time factors, measured side by side in one run. Prints a table, writes JSON.

    python bench/codec.py --manifest data/corpus/manifest.jsonl [--codec DIR] [--limit N] [--out runs/bench/codec.json]
Goal (issue 2): round-trip WER <= 2x the original's, OVRL drop <= 0.4.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/<name>.py shares names with packages (bench/rewards.py vs rewards/): import from the repo root.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import platform
import time

from evals.codec_roundtrip import roundtrip
from rewards.asr import FasterWhisperASR
from tts.codec import EMBEDDED_CODEC, load_codec
from tts.corpus.manifest import read_manifest


def first_per_language(rows: list, limit: int) -> list:
    seen: dict[str, int] = {}
    kept = []
    for row in rows:
        seen[row.language] = seen.get(row.language, 0) + 1
        if seen[row.language] <= limit:
            kept.append(row)
    return kept


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/corpus/manifest.jsonl")
    p.add_argument("--codec", default=str(EMBEDDED_CODEC))
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=0, help="at most N rows per language (0: all)")
    p.add_argument("--out", default="runs/bench/codec.json")
    args = p.parse_args()

    manifest = Path(args.manifest)
    rows = read_manifest(manifest, split=args.split)
    if args.limit:
        rows = first_per_language(rows, args.limit)
    codec = load_codec(args.codec)
    start = time.time()
    res = roundtrip(codec, rows, manifest.parent, asr=FasterWhisperASR())
    s = res.summary()
    table = [
        ("metric", "original", "round trip", "ratio / delta"),
        (
            "WER (en, Whisper tiny.en)",
            f"{s['wer_original']:.3f}",
            f"{s['wer_roundtrip']:.3f}",
            f"x{s['wer_ratio']:.2f}",
        ),
        ("DNSMOS OVRL", f"{s['ovrl_original']:.3f}", f"{s['ovrl_roundtrip']:.3f}", f"{-s['ovrl_drop']:+.3f}"),
        ("encode RTF", "", f"{s['encode_rtf']:.4f}", ""),
        ("decode RTF", "", f"{s['decode_rtf']:.4f}", ""),
    ]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    print(f"{s['n']} utterances, {s['audio_seconds']:.0f} s of audio, {s['failures']} failures")
    goal = {"wer_ratio<=2": s["wer_ratio"] <= 2.0, "ovrl_drop<=0.4": s["ovrl_drop"] <= 0.4}
    print("goals:", goal)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "summary": s,
                "goals": goal,
                "codec": args.codec,
                "manifest": str(manifest),
                "split": args.split,
                "wall_s": round(time.time() - start, 1),
                "machine": platform.processor() or platform.machine(),
                "failures": res.failures,
                "utterances": res.utterances,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
