"""Append-only JSONL result files: what a resumed evaluation reads back to skip finished work."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

RESULTS = "utterances.jsonl"  # one scored row per (utterance, decode)
SYNTHESIS = "synthesis.jsonl"  # one row per synthesized utterance


def read_rows(path: Path) -> list[dict]:
    """Rows of a result file ([] when absent). A last line cut off by a killed run is ignored (its utterance is
    done again); a broken line elsewhere means the file is not ours and raises."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if lineno == len(lines):
                log.warning("%s: ignoring a cut-off last line (an interrupted run); it is done again", path)
                continue
            raise ValueError(
                f"{path}:{lineno}: not a result row ({exc.msg}); is this an evaluation directory?"
            ) from exc
    return rows


def append_rows(path: Path, rows: list[dict]) -> None:
    """One write per batch, flushed: a crash loses at most the batch in flight (and a line it cut off, which
    is dropped here before anything is appended after it)."""
    if not rows:
        return
    if path.is_file():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        f.flush()
