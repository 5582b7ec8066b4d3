"""Benchmark inputs: seed-tts-eval `meta.lst` files and JSONL manifests, read into one item type.

`meta.lst` rows are `utt|prompt_text|prompt_wav|target_text[|gt_wav]` with paths relative to the file, exactly as
seed-tts-eval ships them; the language is the file's directory name (`en/meta.lst`, `zh/meta.lst`) unless given.
A JSONL file holds either eval rows `{id, language, prompt_text, prompt_wav, target_text[, gt_wav]}` or a corpus
manifest (`tts/base/manifest.py` rows), whose utterances become voice-cloning items (`evals.sets`).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tts.base.languages import CER_LANGUAGES, LANGUAGES
from tts.base.manifest import Utterance, json_object, read_manifest


class MetaError(ValueError):
    """A benchmark row that cannot be used; the message names the file and line."""


@dataclass
class EvalItem:
    id: str
    prompt_text: str
    prompt_wav: str  # absolute path
    target_text: str
    language: str
    gt_wav: str | None = None  # absolute path of the ground-truth audio, when the set has it


def _resolve(root: Path, relative: str) -> str:
    """A path of the file relative to `root`, normalised (../ resolved) so equal files compare equal."""
    return os.path.normpath(root / relative.strip())


def infer_language(path: Path) -> str:
    name = path.resolve().parent.name
    if name in LANGUAGES or name in CER_LANGUAGES:
        return name
    raise MetaError(f"{path}: cannot tell the language from its directory {name!r}; pass --language")


def _check(item: EvalItem, where: str, check_files: bool) -> EvalItem:
    for key in ("id", "prompt_text", "target_text"):
        if not str(getattr(item, key)).strip():
            raise MetaError(f"{where}: empty {key}")
    if check_files:
        for key in ("prompt_wav", "gt_wav"):
            path = getattr(item, key)
            if path is not None and not Path(path).is_file():
                raise MetaError(f"{where}: {item.id}: {key} {path} does not exist")
    return item


def read_meta_lst(path: str | Path, language: str | None = None, check_files: bool = True) -> list[EvalItem]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such meta.lst")
    language = language or infer_language(path)
    root = path.resolve().parent
    items = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("|")
        if len(fields) not in (4, 5):
            raise MetaError(
                f"{path}:{lineno}: expected utt|prompt_text|prompt_wav|target_text[|gt_wav], got {len(fields)} fields"
            )
        gt = _resolve(root, fields[4]) if len(fields) == 5 and fields[4].strip() else None
        item = EvalItem(
            fields[0].strip(), fields[1].strip(), _resolve(root, fields[2]), fields[3].strip(), language, gt
        )
        items.append(_check(item, f"{path}:{lineno}", check_files))
    return items


def write_meta_lst(path: str | Path, items: list[EvalItem]) -> Path:
    """seed-tts-eval layout: paths relative to the file; `|` cannot appear inside a field."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = path.resolve().parent
    lines = []
    for it in items:
        fields = [it.id, it.prompt_text, os.path.relpath(it.prompt_wav, root), it.target_text]
        if it.gt_wav:
            fields.append(os.path.relpath(it.gt_wav, root))
        bad = [f for f in fields if "|" in f or "\n" in f]
        if bad:
            raise MetaError(f"{it.id}: field {bad[0]!r} contains '|' or a newline")
        lines.append("|".join(fields))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def json_objects(path: Path, error: type[ValueError] = ValueError) -> list[tuple[int, dict]]:
    """(line number, object) of every non-empty line of a JSONL file; a bad line raises `error` naming it."""
    lines = enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
    return [(lineno, json_object(line, f"{path}:{lineno}", error)) for lineno, line in lines if line.strip()]


def by_speaker(rows: list[Utterance]) -> dict[str, list[Utterance]]:
    out: dict[str, list[Utterance]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r.id):
        out[r.speaker].append(r)
    return out


def pick_prompt(rows: list[Utterance], after: str, exclude: set[str], max_seconds: float) -> Utterance | None:
    """The first utterance after id `after` (cyclically, by id) of a speaker's sorted `rows` that is not excluded
    and at most `max_seconds` long; None when there is none."""
    ids = [r.id for r in rows]
    start = next((k for k, i in enumerate(ids) if i > after), 0)
    for k in range(len(rows)):
        r = rows[(start + k) % len(rows)]
        if r.id not in exclude and r.id != after and r.duration <= max_seconds:
            return r
    return None


def cloning_items(rows: list[Utterance], root: Path, max_prompt_seconds: float = 6.0) -> list[EvalItem]:
    """Every row as a target, prompted by another utterance of its speaker (rows of speakers with a single
    utterance are left out: they have no prompt)."""
    items = []
    for speaker_rows in by_speaker(rows).values():
        for r in speaker_rows:
            p = pick_prompt(speaker_rows, r.id, {r.id}, max_prompt_seconds)
            if p is not None:
                items.append(EvalItem(r.id, p.text, str(p.wav_path(root)), r.text, r.language, str(r.wav_path(root))))
    return sorted(items, key=lambda it: it.id)


def read_jsonl(path: str | Path, check_files: bool = True) -> list[EvalItem]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such JSONL file")
    rows = json_objects(path, MetaError)
    if rows and "target_text" not in rows[0][1] and "wav" in rows[0][1]:
        return cloning_items(read_manifest(path, split="test", check_files=check_files), path.parent)
    root = path.resolve().parent
    items = []
    for lineno, row in rows:
        missing = [k for k in ("id", "language", "prompt_text", "prompt_wav", "target_text") if k not in row]
        if missing:
            raise MetaError(f"{path}:{lineno}: missing field(s) {missing}")
        gt = _resolve(root, str(row["gt_wav"])) if row.get("gt_wav") else None
        item = EvalItem(
            str(row["id"]),
            str(row["prompt_text"]),
            _resolve(root, str(row["prompt_wav"])),
            str(row["target_text"]),
            str(row["language"]),
            gt,
        )
        items.append(_check(item, f"{path}:{lineno}", check_files))
    return items


def spread(n: int, limit: int) -> list[int]:
    """`limit` indices spread evenly over range(n) (all of them for limit 0 or >= n)."""
    if limit <= 0 or limit >= n:
        return list(range(n))
    return np.linspace(0, n - 1, num=limit).round().astype(int).tolist()


def load_items(paths: list[str], language: str | None = None, limit: int = 0) -> list[EvalItem]:
    """Items of every input file (up to `limit` from each, spread evenly); ids must be unique across files."""
    if not paths:
        raise ValueError("no benchmark input: give --meta META.lst or a JSONL manifest")
    items: list[EvalItem] = []
    for p in paths:
        got = read_jsonl(p) if str(p).endswith(".jsonl") else read_meta_lst(p, language)
        if not got:
            raise MetaError(f"{p}: no benchmark rows")
        items += [got[i] for i in spread(len(got), limit)]
    seen: set[str] = set()
    dupes = [it.id for it in items if it.id in seen or seen.add(it.id)]
    if dupes:
        raise MetaError(f"utterance id(s) {sorted(set(dupes))[:5]} appear more than once across {paths}")
    return items
