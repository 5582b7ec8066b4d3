"""Codec round-trip benchmark on the corpus test split, several codecs side by side on the same rows.

Per codec: Whisper tiny.en WER (English rows) and DNSMOS OVRL (all rows) of the round trip, encode/decode
real-time factors, and the loudness steadiness of streamed decoding (0.5 s chunks after 1 s of left context, as
the server decodes): mean |dB error| per 200 ms chunk against the original and its std over chunks. The
original audio is scored once. Prints a table (one column per codec), writes JSON.

    python bench/codec.py --manifest data/corpus/manifest.jsonl [--codec DIR ...] [--limit N] \
        [--out runs/bench/codec.json]

`--codec` may repeat (default: the embedded codec); a codec training checkpoint directory works too. The JSON's
top-level "summary" and "goals" are the first codec's; "codecs" holds every codec's.
Goal (issue 2): round-trip WER <= 2x the original's, OVRL drop <= 0.4.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from evals.codec_roundtrip import roundtrip
from rewards.asr import FasterWhisperASR
from rewards.dnsmos import DnsmosModel
from tts.base.manifest import read_manifest
from tts.codec import EMBEDDED_CODEC, load_codec


def first_per_language(rows: list, limit: int) -> list:
    seen: dict[str, int] = {}
    kept = []
    for row in rows:
        seen[row.language] = seen.get(row.language, 0) + 1
        if seen[row.language] <= limit:
            kept.append(row)
    return kept


def labels(codecs: list[str]) -> list[str]:
    """Column names: each directory's name, or the paths as given where two names are the same."""
    names = [Path(c).name for c in codecs]
    return names if len(set(names)) == len(names) else codecs


def table(summaries: list[dict], names: list[str]) -> list[tuple[str, ...]]:
    """One row per metric, the original then one column per codec."""
    first = summaries[0]
    rows = [
        ("WER (en, Whisper tiny.en)", f"{first['wer_original']:.3f}", "{wer_roundtrip:.3f}"),
        ("WER ratio (goal <= 2)", "", "x{wer_ratio:.2f}"),
        ("DNSMOS OVRL", f"{first['ovrl_original']:.3f}", "{ovrl_roundtrip:.3f}"),
        ("OVRL drop (goal <= 0.4)", "", "{ovrl_drop:+.3f}"),
        ("chunk loudness error, dB (streamed)", "", "{chunk_db_error:.3f}"),
        ("chunk loudness error std, dB", "", "{chunk_db_error_std:.3f}"),
        ("encode RTF", "", "{encode_rtf:.4f}"),
        ("decode RTF", "", "{decode_rtf:.4f}"),
    ]
    return [("metric", "original", *names)] + [
        (metric, original, *(fmt.format(**s) for s in summaries)) for metric, original, fmt in rows
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/corpus/manifest.jsonl")
    p.add_argument("--codec", action="append", help=f"codec directory, repeatable (default: {EMBEDDED_CODEC})")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=0, help="at most N rows per language (0: all)")
    p.add_argument("--out", default="runs/bench/codec.json")
    args = p.parse_args()

    codecs = args.codec or [str(EMBEDDED_CODEC)]
    if len(set(codecs)) < len(codecs):
        p.error(f"--codec: a codec given twice in {codecs}")
    loaded = [load_codec(c) for c in codecs]  # every checkpoint checked before the long scoring starts
    manifest = Path(args.manifest)
    rows = read_manifest(manifest, split=args.split)
    if args.limit:
        rows = first_per_language(rows, args.limit)
    start, asr, dnsmos, originals = time.time(), FasterWhisperASR(), DnsmosModel(), {}
    results = {}
    for path, codec in zip(codecs, loaded):
        res = roundtrip(codec, rows, manifest.parent, asr, dnsmos, streaming=True, originals=originals)
        s = res.summary()
        goal = {"wer_ratio<=2": s["wer_ratio"] <= 2.0, "ovrl_drop<=0.4": s["ovrl_drop"] <= 0.4}
        results[path] = {"summary": s, "goals": goal, "failures": res.failures, "utterances": res.utterances}

    names = labels(codecs)
    lines = table([r["summary"] for r in results.values()], names)
    widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)))
    first = results[codecs[0]]
    s = first["summary"]
    print(f"{s['n']} utterances, {s['audio_seconds']:.0f} s of audio, {s['failures']} failures")
    for name, r in zip(names, results.values()):
        print(f"goals {name}:", r["goals"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"summary": s, "goals": first["goals"], "codec": codecs[0], "codecs": results}
    report |= {"manifest": str(manifest), "split": args.split, "wall_s": round(time.time() - start, 1)}
    report |= {"machine": platform.processor() or platform.machine()}
    report |= {"failures": first["failures"], "utterances": first["utterances"]}
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
