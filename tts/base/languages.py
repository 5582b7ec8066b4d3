"""The one table of language codes: name, espeak-ng voice of the synthetic corpus, and CER scoring.

Every language the project knows is listed once in ``TABLE``; the rest is derived from it:

- ``LANGUAGES``: the corpus languages, those with an espeak-ng voice (``LANGUAGES[code].espeak_voice``);
  ``tts.corpus.text`` has a sentence grammar for each of them.
- ``CER_LANGUAGES``: the codes scored by character error rate instead of word error rate (scripts
  written without spaces between words); some of them (``th``, ``yue``) have no corpus voice.

Notes on espeak-ng (1.51) voices:
- Mandarin uses the ``cmn-latn-pinyin`` voice: the plain ``cmn`` voice converts characters to
  tone-numbered pinyin and then reads that pinyin as *English* ("hai two zi five ..."), a known
  espeak-ng bug; ``cmn-latn-pinyin`` reads the same characters as Mandarin.
- French uses ``fr``: ``fr-fr`` drops ``+variant`` suffixes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CER_LANGUAGES", "LANGUAGES", "TABLE", "Language"]


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    espeak_voice: str | None  # None: no voice in the synthetic corpus
    cer: bool  # scored by character error rate (no word boundaries) instead of word error rate


TABLE: tuple[Language, ...] = (
    Language("en", "English", "en-us", cer=False),
    Language("de", "German", "de", cer=False),
    Language("fr", "French", "fr", cer=False),
    Language("es", "Spanish", "es", cer=False),
    Language("it", "Italian", "it", cer=False),
    Language("pt", "Portuguese", "pt", cer=False),
    Language("nl", "Dutch", "nl", cer=False),
    Language("pl", "Polish", "pl", cer=False),
    Language("zh", "Mandarin Chinese", "cmn-latn-pinyin", cer=True),
    Language("ja", "Japanese", "ja", cer=True),
    Language("ko", "Korean", "ko", cer=True),
    Language("th", "Thai", None, cer=True),
    Language("yue", "Cantonese", None, cer=True),
)

LANGUAGES: dict[str, Language] = {lang.code: lang for lang in TABLE if lang.espeak_voice is not None}
CER_LANGUAGES: frozenset[str] = frozenset(lang.code for lang in TABLE if lang.cer)
