"""Open-vocabulary English sentences for the synthetic corpus: what a grammar of a few hundred words never says.

The source is the Debian `fortunes` collection (installed by scripts/install.sh; `/usr/share/games/fortunes`):
thousands of quotations and jokes in plain English, on a machine with no network. Entries are cut into sentences
and kept when Whisper and espeak-ng can both read them as written: 5-20 words, letters and ordinary punctuation
only (no digits, abbreviations, shouting, dialogue markers or verse), a capital first and a full stop last.
The selection is deterministic for (source files, n, seed).

The fortunes give about 3,000 such sentences, too few words for a small model to learn to read new ones. Word
sequences (`word_sequences`) add vocabulary: real English words in random order, drawn from the whole-word
tokens of GPT-2's vocabulary that ships with openai-whisper (installed with the ASR reward; no network). They
teach pronunciation, not grammar, so they train but never evaluate.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import random
import re
from functools import cache
from pathlib import Path

FORTUNES = "/usr/share/games/fortunes"
WORDS_MIN, WORDS_MAX = 4, 12  # words in one word sequence
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
    return _rng("open", language, seed).sample(pool, n)


def _rng(kind: str, language: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"tts-corpus-{kind}:{language}:{seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


@cache
def vocabulary() -> tuple[str, ...]:
    """Lower-case English words of 3+ letters that GPT-2's byte-level BPE keeps whole after a space, in both
    lower and capitalised form (which drops many word pieces; some, such as "rabb", stay and read as
    made-up words), in merge order (frequent first)."""
    spec = importlib.util.find_spec("whisper")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("openai-whisper is not installed (run scripts/install.sh): it holds the word list")
    path = Path(spec.origin).parent / "assets" / "gpt2.tiktoken"
    tokens: list[tuple[int, str]] = []
    for line in path.read_text().splitlines():
        token, rank = line.split()
        try:
            tokens.append((int(rank), base64.b64decode(token).decode("ascii")))
        except UnicodeDecodeError:
            continue
    known = {t for _, t in tokens}
    words = (t[1:] for _, t in sorted(tokens) if t.startswith(" ") and len(t) > 3)
    return tuple(w for w in words if w.isalpha() and w.islower() and " " + w.capitalize() in known)


def word_sequences(language: str, n: int, seed: int = 0) -> list[str]:
    """`n` distinct sequences of 4-12 random English words (capitalised, full stop), deterministic for (n, seed);
    words are drawn uniformly, so rare ones are as frequent as common ones."""
    if language != "en":
        raise ValueError(f"no word list for {language!r}; only English has one")
    words, rng = vocabulary(), _rng("words", language, seed)
    out: dict[str, None] = {}
    while len(out) < n:
        picked = rng.sample(words, rng.randint(WORDS_MIN, WORDS_MAX))
        out[" ".join(picked).capitalize() + "."] = None
    return list(out)
