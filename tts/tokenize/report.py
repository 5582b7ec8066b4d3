"""Totals of a tokenisation run, read back from the shards on disk, and the tables printed at its end.

Totals come from the shards' meta.jsonl and _DONE files, so a resumed run that skipped every shard reports
the same numbers as the run that wrote them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from tts.tokenize.shards import META, ShardPlan, read_done, shard_dir
from tts.tokenize.sources import BAD_ROW
from tts.tokenize.stages import DNSMOS_FAILED, ENCODE_FAILED, MISSING_FILE, UNREADABLE_AUDIO, UNSUPPORTED_SAMPLE_RATE

PAPER_48K_MB_PER_HOUR = 365.0  # raw 48 kHz audio, as the paper quotes it
PAPER_CODES_MB_PER_HOUR = 0.19  # its codes at 50 codes/s


def shard_totals(root: Path, plans: list[ShardPlan]) -> dict:
    """kept, codes, audio seconds / bytes (16-bit PCM at each file's rate) and encode failures of `plans`."""
    totals = {"kept": 0, "codes": 0, "seconds": 0.0, "bytes_audio": 0, "bad": []}
    for plan in plans:
        directory = shard_dir(root, plan.number)
        with open(directory / META, encoding="utf-8") as f:
            for line in f:
                meta = json.loads(line)
                totals["kept"] += 1
                totals["codes"] += meta["n_codes"]
                totals["seconds"] += meta["num_samples"] / meta["sample_rate"]
                totals["bytes_audio"] += meta["num_samples"] * 2
        totals["bad"] += read_done(directory)["bad"]
    return totals


def _mb(x: float) -> str:
    return f"{x / 1e6:10.2f} MB"


def size_table(summary: dict) -> str:
    """Raw audio vs codes per hour: the paper's figures, their arithmetic, and this run."""
    rate, hours, book = summary["codec"]["frame_rate"], summary["hours_kept"], summary["codec"]["codebook_size"]
    bits = max(1, math.ceil(math.log2(book)))
    rows = [
        ("paper: 48 kHz audio vs 50 codes/s (as quoted)", PAPER_48K_MB_PER_HOUR * 1e6, PAPER_CODES_MB_PER_HOUR * 1e6),
        ("arithmetic: 48 kHz 16-bit vs 50 codes/s uint16", 48000 * 3600 * 2, 50 * 3600 * 2),
    ]
    notes = [
        f"uint16 stores 16 bits per code whatever the codebook size (fixed width, so a shard slices by offset): "
        f"{rate} codes/s x 3600 s x 2 B = {rate * 3600 * 2 / 1e6:.2f} MB/h.",
        f"The paper's 0.19 MB/h is {PAPER_CODES_MB_PER_HOUR * 8e6 / (50 * 3600):.1f} bits per code at 50 codes/s, "
        "i.e. packed or entropy-coded codes; 48 kHz 16-bit mono is 345.6 MB/h by arithmetic, not the quoted 365.",
    ]
    if hours > 0:
        raw, codes = summary["bytes_audio"] / hours, summary["bytes_codes"] / hours
        rows.append((f"this run: uint16 codes.bin ({rate} codes/s)", raw, codes))
        if bits < 16:
            rows.append((f"this run, bit-packed ({bits} bits/code)", raw, codes * bits / 16))
        khz = raw / 3600 / 2 / 1000
        notes.append(
            f"This run's raw side is its files' own rate ({khz:.1f} kHz on average), so its ratio is "
            f"{khz / 48:.2f} of the 48 kHz one."
        )
    lines = [f"{'per hour of audio':50s} {'raw 16-bit PCM':>13s} {'codes':>13s} {'ratio':>8s}"]
    lines += [f"{name:50s} {_mb(raw)} {_mb(codes)} {raw / codes:7.0f}x" for name, raw, codes in rows]
    return "\n".join(lines + notes)


def stage_table(summary: dict) -> str:
    """Rows surviving each stage, with what each stage removed."""
    s, bad = summary["stages"], summary["bad_reasons"]

    def lost(*reasons: str) -> str:
        parts = [f"{r} {bad[r]}" for r in reasons if bad.get(r)]
        return ", ".join(parts)

    dropped = ", ".join(f"{r} {n}" for r, n in summary["dropped"].items() if n)
    rows = [
        ("input rows", summary["rows_in"], ""),
        ("manifest rows parsed", s["parsed"], lost(BAD_ROW)),
        ("audio read", s["read"], lost(MISSING_FILE, UNREADABLE_AUDIO, UNSUPPORTED_SAMPLE_RATE)),
        (
            "annotated by DNSMOS" if summary.get("config", {}).get("dnsmos", True) else "annotated (no DNSMOS)",
            s["annotated"],
            lost(DNSMOS_FAILED),
        ),
        ("kept by filters", s["filtered"], dropped),
        ("encoded into shards", summary["kept"], lost(ENCODE_FAILED)),
    ]
    lines = [f"{'stage':24s} {'rows':>8s}  removed"]
    lines += [f"{name:24s} {n:8d}  {note}" for name, n, note in rows]
    lines.append(
        f"read + DNSMOS results of {s['annotations_cached']} of {s['parsed']} rows came from annotations.jsonl; "
        f"shards: {summary['shards']} ({summary['shards_written']} written, {summary['shards_skipped']} skipped "
        f"as done); {summary['hours_kept']:.4f} h kept; bad files listed in bad_files.jsonl"
    )
    return "\n".join(lines)
