"""Text front end of a SpeechLM: what its tokenizer reads. Production checkpoints (Llasa, LLaMA-3 tokenizers) read
raw text; the embedded SpeechLM can read IPA phonemes from espeak-ng (through `phonemizer`), the engine that
renders the embedded corpus, so a 7 M model need not learn English spelling from a few thousand sentences.

The choice is recorded in the checkpoint (`layout.json`, `front_end`) and applied by `prompts.encode_text`, the
one door through which SFT, GRPO, evaluation and Serve turn text into ids. A checkpoint without the record reads
raw text (what every checkpoint did before the front end existed). Markup tags ("[whispering]") pass through
unchanged: they are tokens of their own.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import asdict, dataclass
from typing import Any

from tts.base.layout import MARKUP_TAGS

KINDS = ("text", "phonemes")
TAG = re.compile("(" + "|".join(re.escape(t) for t in MARKUP_TAGS) + ")")


@dataclass(frozen=True)
class FrontEnd:
    kind: str = "text"  # "text": raw text; "phonemes": espeak-ng IPA
    language: str = "en-us"  # espeak-ng voice of the phonemes

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"front end kind must be one of {KINDS}, got {self.kind!r}")

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> FrontEnd:
        """The front end a checkpoint records; none recorded: raw text."""
        return cls(**record) if record else cls()

    def record(self) -> dict[str, Any] | None:
        return None if self.kind == "text" else asdict(self)

    def apply(self, text: str) -> str:
        return self.apply_batch([text])[0]

    def apply_batch(self, texts: list[str]) -> list[str]:
        """What the tokenizer reads for each text. Phonemes: markup tags kept as they are, the text between them
        phonemised in one espeak-ng batch; a text that yields no phonemes is an error naming it."""
        if self.kind == "text":
            return list(texts)
        pieces = [TAG.split(t) for t in texts]
        spoken = [p for parts in pieces for p in parts[0::2] if p.strip()]
        phones = iter(_backend(self.language).phonemize(spoken, strip=True) if spoken else [])
        out = []
        for text, parts in zip(texts, pieces):
            said = [next(phones) if part.strip() else "" for part in parts[0::2]]
            if not any(s.strip() for s in said):
                raise ValueError(f"the {self.language} phoneme front end found nothing to say in {text!r}")
            parts[0::2] = said
            out.append(" ".join(p.strip() for p in parts if p.strip()))
        return out


@functools.cache
def _backend(language: str) -> Any:
    """One espeak-ng backend per language and process (its start-up is the slow part)."""
    try:
        from phonemizer.backend import EspeakBackend
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise RuntimeError("the phoneme front end needs `phonemizer` (pip install phonemizer)") from e
    if not EspeakBackend.is_available():
        raise RuntimeError("the phoneme front end needs espeak-ng (apt-get install espeak-ng)")
    if language not in EspeakBackend.supported_languages():
        raise ValueError(f"espeak-ng has no voice {language!r} for the phoneme front end (e.g. en-us, de, fr-fr)")
    # punctuation makes espeak-ng count words differently from the text; the phonemes are the same, and
    # phonemizer's warning about it (once per call, even with words_mismatch="ignore") only fills the logs
    quiet = logging.getLogger("tts.front_end.phonemizer")
    quiet.setLevel(logging.ERROR)
    return EspeakBackend(
        language,
        preserve_punctuation=False,
        with_stress=False,
        language_switch="remove-flags",
        words_mismatch="ignore",
        logger=quiet,
    )
