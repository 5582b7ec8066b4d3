"""Open-vocabulary English sentences for the synthetic corpus: what a grammar of a few hundred words never says.

The source is the Debian `fortunes` collection (installed by scripts/install.sh; `/usr/share/games/fortunes`):
thousands of quotations and jokes in plain English, on a machine with no network. Entries are cut into sentences
and kept when Whisper and espeak-ng can both read them as written: 5-20 words, letters and ordinary punctuation
only (no digits, abbreviations, shouting, dialogue markers or verse), a capital first and a full stop last.
The selection is deterministic for (source files, n, seed).
"""

from __future__ import annotations

import hashlib
import random
import re
from functools import cache
from pathlib import Path

FORTUNES = "/usr/share/games/fortunes"
# files whose entries are pictures, definitions, code, verse or dialogue rather than sentences
SKIP = {
    "art",
    "ascii-art",
    "definitions",
    "linux",
    "computers",
    "debian",
    "perl",
    "songs-poems",
    "limerick",
    "riddles",
    "startrek",
    "platitudes",
    "zippy",
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PLAIN = re.compile(r"[A-Z][A-Za-z ,;'-]*[a-z][.!?]")
_SHOUT = re.compile(r"\b[A-Z]{2,}\b")


def _plain(sentence: str) -> bool:
    return 5 <= len(sentence.split()) <= 20 and bool(_PLAIN.fullmatch(sentence)) and not _SHOUT.search(sentence)


@cache
def _pool(source: str) -> tuple[str, ...]:
    root = Path(source)
    files = sorted(f for f in root.glob("*") if f.is_file() and not f.suffix and f.name not in SKIP)
    if not files:
        raise FileNotFoundError(
            f"{root}: no fortune files for open-vocabulary sentences (apt-get install fortunes fortunes-min)"
        )
    found: set[str] = set()
    for f in files:
        for entry in f.read_text(encoding="utf-8", errors="ignore").split("\n%\n"):
            text = " ".join(entry.split())
            if "--" in text or ":" in text or '"' in text:  # attributions, dialogue, quotes within quotes
                continue
            found.update(s for s in _SENTENCE_END.split(text) if _plain(s))
    return tuple(sorted(found))


def open_sentences(language: str, n: int, seed: int = 0, source: str = FORTUNES) -> list[str]:
    """`n` distinct open-vocabulary sentences in `language` (English only), deterministic for (n, seed)."""
    if language != "en":
        raise ValueError(f"no open-vocabulary text source for {language!r}; only English has one")
    pool = _pool(source)
    if n > len(pool):
        raise ValueError(f"asked for {n} open sentences but {source} has {len(pool)} usable ones")
    digest = hashlib.sha256(f"tts-corpus-open:{language}:{seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big")).sample(pool, n)
