"""Code shards on disk: planning, writing (resumable) and reading back.

A shard directory holds `codes.bin` (every utterance's codes, little-endian uint16, concatenated),
`offsets.npy` (int64 [n + 1] into codes.bin), `meta.jsonl` (one row per utterance) and `_DONE`, written
last. `_DONE` records a fingerprint of what the shard should hold (codec checksum and rows), so a re-run
skips a shard only if the same codec would write the same rows into it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CODES, OFFSETS, META, DONE = "codes.bin", "offsets.npy", "meta.jsonl", "_DONE"
CODE_DTYPE = np.dtype("<u2")
MAX_CODEBOOK = 1 << 16


def check_codebook(codebook_size: int) -> None:
    if codebook_size > MAX_CODEBOOK:
        raise ValueError(
            f"codebook_size {codebook_size} does not fit the uint16 codes.bin shards (at most {MAX_CODEBOOK})"
        )


def shard_dir(root: str | Path, number: int) -> Path:
    return Path(root) / "shards" / f"shard-{number:05d}"


@dataclass
class ShardPlan:
    number: int
    positions: list[int]  # input positions of the rows it holds, ascending
    fingerprint: str


def plan_shards(rows: list[dict], shard_size: int, codec_sha256: str) -> list[ShardPlan]:
    """Shard k holds the given rows with input position in [k * shard_size, (k + 1) * shard_size).

    Shards follow input positions, not kept-row ranks, so a changed filter decision alters one shard rather
    than shifting every later one. Shards with no rows are not planned.
    """
    groups: dict[int, list[dict]] = {}
    for row in sorted(rows, key=lambda r: r["position"]):
        groups.setdefault(row["position"] // shard_size, []).append(row)
    plans = []
    for number, members in sorted(groups.items()):
        # a row's phoneme timing changes its shard (a corpus timed after it was tokenised is encoded again)
        keys = ("id", "text", "language", "speaker", "wav")
        identity = [codec_sha256] + [[r[k] for k in keys] + (["timed"] if r.get("timed") else []) for r in members]
        digest = hashlib.sha256(json.dumps(identity, ensure_ascii=False).encode()).hexdigest()
        plans.append(ShardPlan(number, [r["position"] for r in members], digest))
    return plans


def read_done(directory: Path) -> dict | None:
    try:
        return json.loads((directory / DONE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_done(directory: Path, plan: ShardPlan) -> bool:
    done = read_done(directory)
    return done is not None and done.get("fingerprint") == plan.fingerprint


def write_shard(directory: Path, fingerprint: str, items: list[tuple[dict, np.ndarray]], bad: list[dict]) -> None:
    """Write one shard; `bad` (rows that failed to encode) is kept in `_DONE` for later runs' reports."""
    (directory / DONE).unlink(missing_ok=True)  # a crash while rewriting must not leave the old marker
    directory.mkdir(parents=True, exist_ok=True)
    codes = np.concatenate([np.asarray(c, np.int64) for _, c in items] or [np.zeros(0, np.int64)])
    if codes.size and (codes.min() < 0 or codes.max() >= MAX_CODEBOOK):
        raise ValueError(f"{directory}: codes outside [0, {MAX_CODEBOOK}) cannot be stored as uint16")
    offsets = np.concatenate([[0], np.cumsum([len(c) for _, c in items])]).astype(np.int64)
    codes.astype(CODE_DTYPE).tofile(directory / CODES)
    np.save(directory / OFFSETS, offsets)
    with open(directory / META, "w", encoding="utf-8") as f:
        for meta, _ in items:
            f.write(json.dumps(meta, ensure_ascii=False) + "\n")
    done = {"fingerprint": fingerprint, "rows": len(items), "codes": int(offsets[-1]), "bad": bad}
    (directory / DONE).write_text(json.dumps(done, ensure_ascii=False) + "\n")


def read_index(directory: str | Path) -> tuple[list[dict], np.ndarray]:
    """(meta rows, offsets) of a finished shard, checked against each other and codes.bin."""
    directory = Path(directory)
    if read_done(directory) is None:
        raise ValueError(f"{directory}: incomplete shard (no {DONE}); re-run the tokenize job to finish it")
    with open(directory / META, encoding="utf-8") as f:
        meta = [json.loads(line) for line in f if line.strip()]
    offsets = np.load(directory / OFFSETS)
    size = (directory / CODES).stat().st_size
    if (
        len(offsets) != len(meta) + 1
        or offsets[0] != 0
        or list(np.diff(offsets)) != [m["n_codes"] for m in meta]
        or offsets[-1] * CODE_DTYPE.itemsize != size
    ):
        raise ValueError(f"{directory}: {OFFSETS}, {META} and {CODES} ({size} bytes) disagree")
    return meta, offsets


def read_shard(directory: str | Path) -> Iterator[tuple[dict, np.ndarray]]:
    """(meta, codes as int64) for each utterance of one shard, in input order."""
    meta, offsets = read_index(directory)
    codes = np.fromfile(Path(directory) / CODES, dtype=CODE_DTYPE)
    for i, m in enumerate(meta):
        yield m, codes[offsets[i] : offsets[i + 1]].astype(np.int64)


class ShardDataset:
    """Random access to (meta, codes) over one shard directory or every shard of a tokenize output directory.

    Only the small index (meta + offsets) is held in memory; codes are read from disk per item.
    """

    def __init__(self, path: str | Path):
        path = Path(path)
        dirs = (
            sorted(p for p in (path / "shards").glob("shard-*") if p.is_dir()) if (path / "shards").is_dir() else [path]
        )
        self.shards = [(d, *read_index(d)) for d in dirs]
        self._starts = np.cumsum([0] + [len(meta) for _, meta, _ in self.shards])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, i: int) -> tuple[dict, np.ndarray]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} utterances")
        i %= len(self)
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        directory, meta, offsets = self.shards[k]
        j = i - self._starts[k]
        start, count = int(offsets[j]), int(offsets[j + 1] - offsets[j])
        codes = np.fromfile(directory / CODES, dtype=CODE_DTYPE, count=count, offset=start * CODE_DTYPE.itemsize)
        return meta[j], codes.astype(np.int64)

    def __iter__(self) -> Iterator[tuple[dict, np.ndarray]]:
        for directory, _, _ in self.shards:
            yield from read_shard(directory)


class ShardWriter:
    """Buffers encoded rows, which stream in in any order, and writes each shard once all its rows are in."""

    def __init__(self, root: str | Path, plans: list[ShardPlan], meta: dict[int, dict]):
        self.root, self.meta = Path(root), meta  # meta: input position -> meta row without n_codes
        self.pending = {p.number: p for p in plans}
        self.received: dict[int, dict[int, np.ndarray | dict]] = {p.number: {} for p in plans}
        self.written: list[int] = []

    def add(self, shard: int, position: int, result: np.ndarray | dict) -> None:
        """`result`: the row's codes, or its bad-file record if encoding failed."""
        self.received[shard][position] = result
        plan = self.pending[shard]
        if len(self.received[shard]) == len(plan.positions):
            received = self.received.pop(shard)
            got = [received[i] for i in plan.positions]
            items = [
                (self.meta[i] | {"n_codes": len(r)}, r)
                for i, r in zip(plan.positions, got)
                if isinstance(r, np.ndarray)
            ]
            bad = [r for r in got if isinstance(r, dict)]
            write_shard(shard_dir(self.root, shard), plan.fingerprint, items, bad)
            del self.pending[shard]
            self.written.append(shard)
