"""Read + DNSMOS results per audio file, kept in `DIR/annotations.jsonl` between runs.

On CPU, DNSMOS costs ~20x the embedded codec's encoding, and the OVRL quantile needs every row scored; a
resumed job that re-scored the whole corpus would save little by skipping finished shards. An entry is reused
only while the file's size and mtime and the settings that shaped it are unchanged (failures too: the same
bytes fail the same way). Rows are appended as batches finish, so an interrupted run keeps what it scored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

FILE = "annotations.jsonl"
VERSION = 1  # of the entries' layout; part of the header, so a change starts the cache afresh
FIELDS = ("sample_rate", "num_samples", "ovrl", "sig", "bak", "p808", "reason", "message")


def file_key(wav: str) -> list[int] | None:
    try:
        st = os.stat(wav)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _parse(line: str) -> dict | None:
    try:
        return json.loads(line)
    except json.JSONDecodeError:  # the torn last line of an interrupted run
        return None


class AnnotationCache:
    def __init__(self, path: Path, settings: dict):
        self.path, self.header = path, {"version": VERSION, "settings": settings}
        self.entries: dict[str, dict] = {}
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                lines = [_parse(line) for line in f]
            if lines and lines[0] == self.header:
                self.entries = {e["wav"]: e for e in lines[1:] if e is not None}

    def lookup(self, wav: str) -> dict | None:
        """The cached fields of `wav`, if its file is unchanged."""
        entry = self.entries.get(wav)
        if entry is None or entry["key"] != file_key(wav):
            return None
        return {k: entry[k] for k in FIELDS}

    def rewrite(self, wavs: list[str]) -> None:
        """Start the file afresh with the header and the still-valid entries of `wavs` (drops stale ones)."""
        keep = {w: self.entries[w] for w in wavs if self.lookup(w) is not None}
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for item in [self.header, *keep.values()]:
                f.write(json.dumps(item) + "\n")
        os.replace(tmp, self.path)
        self.entries = keep

    def append(self, batch: pd.DataFrame) -> None:
        """Add the rows of an annotated batch."""
        with open(self.path, "a", encoding="utf-8") as f:
            for row in batch.to_dict("records"):
                entry = {"wav": row["wav"], "key": file_key(row["wav"])}
                entry |= {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items() if k in FIELDS}
                self.entries[row["wav"]] = entry
                f.write(json.dumps(entry) + "\n")
