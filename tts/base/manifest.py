"""JSONL speech manifests: one row per utterance, wav paths relative to the manifest file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

SPLITS = ("train", "val", "test")


class ManifestError(ValueError):
    """A manifest row that cannot be used; the message names the file and line."""


@dataclass
class Utterance:
    id: str
    text: str
    language: str
    speaker: str
    wav: str
    duration: float
    sample_rate: int
    split: str = "train"
    tags: list[str] = field(default_factory=list)
    # [[IPA, start s], ...] of every phoneme spoken (synthetic corpora: tts.corpus.timing), which word-synchronous
    # training cuts the audio by; None: unknown
    phonemes: list[list] | None = None

    def wav_path(self, root: Path) -> Path:
        return (root / self.wav).resolve()


def write_manifest(path: str | Path, rows: list[Utterance]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            d = asdict(row)
            if d["phonemes"] is None:  # most corpora have none: no key on every row
                del d["phonemes"]
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    return path


def json_object(line: str, where: str, error: type[ValueError] = ManifestError) -> dict:
    """One JSONL line as a dict; anything else raises `error` naming `where` (file:line)."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not valid JSON ({exc.msg})") from exc
    if not isinstance(raw, dict):
        raise error(f"{where}: expected a JSON object")
    return raw


def _parse(path: Path, lineno: int, line: str) -> Utterance:
    where = f"{path}:{lineno}"
    raw = json_object(line, where)
    missing = [k for k in ("id", "text", "language", "speaker", "wav") if k not in raw]
    if missing:
        raise ManifestError(f"{where}: missing field(s) {missing}")
    if not str(raw["text"]).strip():
        raise ManifestError(f"{where}: empty transcript for {raw['id']!r}")
    if raw.get("split", "train") not in SPLITS:
        raise ManifestError(f"{where}: split must be one of {SPLITS}, got {raw['split']!r}")
    known = {k: raw[k] for k in Utterance.__dataclass_fields__ if k in raw}
    known.setdefault("duration", 0.0)
    known.setdefault("sample_rate", 0)
    return Utterance(**known)


def iter_manifest(
    path: str | Path, split: str | None = None, check_files: bool = True, errors: list[str] | None = None
) -> Iterator[Utterance]:
    """Yield rows of `path` (optionally one split).

    With `errors=None` a bad row raises ManifestError naming the row; with a list, the message is appended
    and the row skipped, which is what batch tools want.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    root = path.parent
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = _parse(path, lineno, line)
                if check_files and not row.wav_path(root).is_file():
                    raise ManifestError(f"{path}:{lineno}: {row.id}: audio file {row.wav} does not exist")
            except ManifestError as exc:
                if errors is None:
                    raise
                errors.append(str(exc))
                continue
            if split is None or row.split == split:
                yield row


def read_manifest(path: str | Path, split: str | None = None, **kw) -> list[Utterance]:
    return list(iter_manifest(path, split, **kw))


def select(
    manifest: str | Path,
    out: str | Path,
    languages: list[str] | None = None,
    splits: list[str] | None = None,
    speakers: list[str] | None = None,
    exclude_texts: set[str] | None = None,
) -> int:
    """Write the rows of `manifest` in `languages`, `splits` and `speakers` (None: all) whose text is not in
    `exclude_texts` to `out`, wav paths re-rooted at out's directory; returns the number of rows. Tokenising a
    subset (e.g. English train+val for the embedded SpeechLM) then costs nothing for the rest, and the test split
    stays unseen by training; one speaker's rows less those an evaluation set reads train a LoRA voice that is
    then measured on recordings it never heard."""
    src, out = Path(manifest), Path(out)
    rows = [
        r
        for r in iter_manifest(src, check_files=False)
        if (languages is None or r.language in languages)
        and (splits is None or r.split in splits)
        and (speakers is None or r.speaker in speakers)
        and r.text not in (exclude_texts or set())
    ]
    if not rows:
        raise ManifestError(
            f"{src}: no rows in languages {languages}, splits {splits} and speakers {speakers} "
            f"({len(exclude_texts or ())} texts excluded)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    for r in rows:
        r.wav = os.path.relpath(r.wav_path(src.parent), out.parent.resolve())
    write_manifest(out, rows)
    return len(rows)
