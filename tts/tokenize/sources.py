"""Input rows for tokenisation from our JSONL manifests or seed-tts-eval `meta.lst` files.

Every row becomes a flat dict (position, id, text, language, speaker, wav) with an absolute wav path, so the Ray
Dataset built from it needs no knowledge of either format. Unusable rows are returned, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tts.base.manifest import iter_manifest

BAD_ROW = "bad_manifest_row"


@dataclass
class Source:
    rows: list[dict] = field(default_factory=list)
    bad: list[dict] = field(default_factory=list)  # {"id", "path", "reason", "message"}
    phonemes: dict[int, list] = field(default_factory=dict)  # position -> the row's phoneme timing, where it has one

    @property
    def rows_in(self) -> int:
        return len(self.rows) + len(self.bad)


def _row(position: int, id: str, text: str, language: str, speaker: str, wav: Path) -> dict:
    return {"position": position, "id": id, "text": text, "language": language, "speaker": speaker, "wav": str(wav)}


def read_jsonl(path: Path) -> Source:
    """Rows of a JSONL manifest; existence of the audio is checked later, where it is counted per file."""
    errors: list[str] = []
    src = Source()
    for u in iter_manifest(path, check_files=False, errors=errors):
        if u.phonemes:
            src.phonemes[len(src.rows)] = u.phonemes
        src.rows.append(_row(len(src.rows), u.id, u.text, u.language, u.speaker, u.wav_path(path.parent)))
    src.bad = [{"id": None, "path": str(path), "reason": BAD_ROW, "message": e} for e in errors]
    return src


def read_meta_lst(path: Path, language: str) -> Source:
    """Rows of `utt|prompt_text|prompt_wav|target_text[|gt_wav]`: the ground-truth target when there is one
    (it is the reference recording of target_text), else the prompt with its transcript."""
    src = Source()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split("|")
            if len(parts) not in (4, 5) or not parts[0].strip():
                src.bad.append(
                    {
                        "id": parts[0].strip() or None,
                        "path": str(path),
                        "reason": BAD_ROW,
                        "message": f"{path}:{lineno}: expected utt|prompt_text|prompt_wav|target_text[|gt_wav], "
                        f"got {len(parts)} field(s)",
                    }
                )
                continue
            utt, prompt_text, prompt_wav, target_text = (p.strip() for p in parts[:4])
            gt_wav = parts[4].strip() if len(parts) == 5 else ""
            text, wav = (target_text, gt_wav) if gt_wav else (prompt_text, prompt_wav)
            src.rows.append(_row(len(src.rows), utt, text, language, "", (path.parent / wav).resolve()))
    return src


def read_source(path: str | Path, language: str = "en") -> Source:
    """`*.lst` files are seed-tts-eval lists, anything else our JSONL manifest."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    return read_meta_lst(path, language) if path.suffix == ".lst" else read_jsonl(path)
