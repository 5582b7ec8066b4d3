"""The embedded corpus' speakers: espeak-ng voices made distinct by accent, variant, pitch and rate."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Speaker:
    id: str
    language: str
    voice: str  # espeak-ng voice[+variant]
    pitch: int = 50  # espeak-ng -p, 0-99
    speed: int = 165  # espeak-ng -s, words per minute
    held_out: bool = False  # speaks only in the test split

    def espeak_args(self) -> list[str]:
        return ["-v", self.voice, "-p", str(self.pitch), "-s", str(self.speed)]


# English: 10 speakers across 5 accents, 2 held out for the test split (more: _EN_MORE).
_EN = [
    ("en-us+m1", 45, 165),
    ("en-us+f2", 55, 160),
    ("en+m3", 40, 160),  # British; "en-gb+m3" silently drops the variant in espeak-ng 1.51
    ("en-us+f4", 60, 170),
    ("en-gb-x-rp+m7", 35, 155),
    ("en-029+f1", 50, 165),
    ("en-gb-scotland+m2", 50, 160),
    ("en-us+f5", 65, 160),
    ("en-us+m4", 55, 155),
    ("en-us+f3", 60, 155),  # held out: clear US voices (Whisper tiny.en WER ~0.06-0.09)
]
_EN_HELD_OUT = 2  # the last two of _EN
# More training voices (`en_speakers` up to 24): other variants, accents, pitches and rates; appended so the
# first ten keep their ids and voices
_EN_MORE = [
    ("en-us+m2", 42, 170),
    ("en-us+m5", 50, 150),
    ("en-us+m6", 38, 165),
    ("en-us+f1", 58, 165),
    ("en+f4", 62, 160),
    ("en+m7", 44, 150),
    ("en-gb-x-gbclan+m1", 48, 160),
    ("en-gb-x-gbcwmd+f2", 56, 165),
    ("en-029+m3", 42, 170),
    ("en-gb-scotland+f5", 63, 155),
    ("en-us+Andy", 50, 165),
    ("en-us+annie", 55, 160),
    ("en-us+david", 45, 160),
    ("en-gb-x-rp+linda", 58, 160),
]
MAX_EN_SPEAKERS = len(_EN) + len(_EN_MORE)
_OTHER_VARIANTS = [("m1", 45, 160), ("f2", 58, 160), ("m3", 40, 155)]  # last one held out


def speakers_for(language: str, espeak_voice: str, en_speakers: int = len(_EN)) -> list[Speaker]:
    """A language's speakers; English has `en_speakers` of them (10 to 24), two of which are held out."""
    if language == "en":
        if not len(_EN) <= en_speakers <= MAX_EN_SPEAKERS:
            raise ValueError(f"en_speakers must be in [{len(_EN)}, {MAX_EN_SPEAKERS}], got {en_speakers}")
        voices = (_EN + _EN_MORE)[:en_speakers]
        held = range(len(_EN) - _EN_HELD_OUT, len(_EN))
        return [Speaker(f"en_{i:02d}", "en", v, p, s, held_out=i in held) for i, (v, p, s) in enumerate(voices)]
    return [
        Speaker(f"{language}_{i:02d}", language, f"{espeak_voice}+{v}", p, s, held_out=i == len(_OTHER_VARIANTS) - 1)
        for i, (v, p, s) in enumerate(_OTHER_VARIANTS)
    ]


def find_speaker(language: str, speaker_id: str) -> Speaker | None:
    """The corpus speaker `speaker_id` of `language` (any of the up to 24 English voices), or None."""
    from tts.base.languages import LANGUAGES

    if language not in LANGUAGES:
        return None
    voices = speakers_for(language, LANGUAGES[language].espeak_voice, MAX_EN_SPEAKERS)
    return next((s for s in voices if s.id == speaker_id), None)
