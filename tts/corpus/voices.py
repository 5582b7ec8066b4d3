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


# English: 10 speakers across 5 accents, 2 held out for the test split.
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
_OTHER_VARIANTS = [("m1", 45, 160), ("f2", 58, 160), ("m3", 40, 155)]  # last one held out


def speakers_for(language: str, espeak_voice: str) -> list[Speaker]:
    if language == "en":
        return [Speaker(f"en_{i:02d}", "en", v, p, s, held_out=i >= len(_EN) - 2) for i, (v, p, s) in enumerate(_EN)]
    return [
        Speaker(f"{language}_{i:02d}", language, f"{espeak_voice}+{v}", p, s, held_out=i == len(_OTHER_VARIANTS) - 1)
        for i, (v, p, s) in enumerate(_OTHER_VARIANTS)
    ]
