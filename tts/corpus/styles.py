"""Speaking styles and non-verbal sounds for the markup corpus (paper section 3.6), rendered with espeak-ng.

A style is a deterministic change of a speaker's espeak-ng settings: base pitch (-p), rate (-s), amplitude (-a),
pitch range (SSML `<prosody range>`) and, for whispering, the whisper variant of the speaker's gender. The base
voice (language and accent) is kept, so a style changes how a speaker talks, not who talks, and every setting moves
a quantity that `tts.corpus.style_metrics.prosody` measures. Non-verbal sounds are short per-speaker renders:
syllables from espeak-ng phoneme input (`[[...]]`) or shaped noise seeded from the speaker id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from xml.sax.saxutils import escape

import librosa
import numpy as np
from scipy.signal import butter, sosfilt

from tts.base.audio import resample
from tts.base.layout import NONVERBAL_TAGS, STYLE_TAGS
from tts.corpus.generate import SynthesisError, speak
from tts.corpus.timing import espeak_render
from tts.corpus.voices import Speaker

MIN_SPEED, MAX_SPEED = 80, 450  # espeak-ng's usable -s range (words per minute)
TRIM_DB = 40.0  # quieter than this below the peak counts as silence at the edges


@dataclass(frozen=True)
class Style:
    """A speaking style as changes to a speaker's espeak-ng settings, plus an optional post-processing step."""

    pitch: int = 0  # added to the speaker's -p (0-99, clamped)
    speed: float = 1.0  # multiplies the speaker's -s
    amplitude: int = 100  # espeak-ng -a (0-200; 100 is what neutral renders use)
    pitch_range: int = 100  # SSML <prosody range>, percent of the voice's own intonation range
    whisper: bool = False  # replace the variant by +whisper / +whisperf: no voicing
    tremolo_hz: float = 0.0  # amplitude modulation after rendering: the pulsed envelope of laughter or sobbing
    tremolo_depth: float = 0.0  # 0-1, fraction of the level removed at each trough


STYLES: dict[str, Style] = {
    "[angry]": Style(pitch=5, speed=1.15, amplitude=180, pitch_range=160),
    "[disgusted]": Style(pitch=-10, speed=0.8, amplitude=100, pitch_range=70),
    "[fearful]": Style(pitch=20, speed=1.25, amplitude=90, pitch_range=130, tremolo_hz=8.0, tremolo_depth=0.3),
    "[happy]": Style(pitch=15, speed=1.05, amplitude=130, pitch_range=180),
    "[laughing]": Style(pitch=20, speed=1.1, amplitude=120, pitch_range=200, tremolo_hz=5.0, tremolo_depth=0.6),
    "[sad]": Style(pitch=-15, speed=0.75, amplitude=70, pitch_range=40),
    "[surprised]": Style(pitch=10, speed=1.0, amplitude=130, pitch_range=200),
    "[whispering]": Style(speed=0.9, amplitude=35, whisper=True),
}
assert tuple(STYLES) == STYLE_TAGS


@dataclass(frozen=True)
class StyledSpeaker(Speaker):
    """A speaker with the two settings `Speaker` lacks; its text is SSML (`-m`), see `ssml`."""

    amplitude: int = 100
    pitch_range: int = 100

    def espeak_args(self) -> list[str]:
        return [*super().espeak_args(), "-a", str(self.amplitude), "-m"]


# espeak-ng 1.51 silently drops a "+variant" after these language names; their voice files render the same.
VOICE_FILES = {"en-gb": "en", "fr-fr": "fr"}


def whisper_voice(voice: str) -> str:
    """Same language/accent, whisper variant of the same gender ('en-us+f2' -> 'en-us+whisperf')."""
    base, _, variant = voice.partition("+")
    base = VOICE_FILES.get(base.lower(), base)
    return f"{base}+whisperf" if variant.startswith("f") else f"{base}+whisper"


def styled_speaker(speaker: Speaker, style: Style) -> StyledSpeaker:
    return StyledSpeaker(
        id=speaker.id,
        language=speaker.language,
        voice=whisper_voice(speaker.voice) if style.whisper else speaker.voice,
        pitch=min(99, max(0, speaker.pitch + style.pitch)),
        speed=min(MAX_SPEED, max(MIN_SPEED, round(speaker.speed * style.speed))),
        held_out=speaker.held_out,
        amplitude=style.amplitude,
        pitch_range=style.pitch_range,
    )


def ssml(text: str, pitch_range: int) -> str:
    # The space before </prosody> matters: espeak-ng 1.51 reads a tag right after `]]` (phoneme input) as words.
    return f'<speak><prosody range="{pitch_range}%">{escape(text)} </prosody></speak>'


def tremolo(wave: np.ndarray, sr: int, hz: float, depth: float) -> np.ndarray:
    if hz <= 0 or depth <= 0:
        return wave
    t = np.arange(len(wave)) / sr
    return (wave * (1 - depth * 0.5 * (1 - np.cos(2 * np.pi * hz * t)))).astype(np.float32)


def _styled(speaker: Speaker, style: Style | str) -> tuple[Style, StyledSpeaker]:
    """The style (a `Style`, a tag such as '[sad]', or '' for neutral) and `speaker` with its settings."""
    if isinstance(style, str):
        if style and style not in STYLES:
            raise KeyError(f"unknown style {style!r}; expected one of {STYLE_TAGS}")
        style = STYLES[style] if style else Style()
    return style, styled_speaker(speaker, style)


def render(speaker: Speaker, text: str, style: Style | str, sample_rate: int) -> np.ndarray:
    """`text` spoken by `speaker` in `style` (a `Style` or a tag such as '[sad]')."""
    style, styled = _styled(speaker, style)
    wave = speak(styled, ssml(text, styled.pitch_range), sample_rate)
    return tremolo(wave, sample_rate, style.tremolo_hz, style.tremolo_depth)


def render_timed(
    speaker: Speaker, text: str, style: Style | str, sample_rate: int
) -> tuple[np.ndarray, list[tuple[str, float]]]:
    """`text` as `render` says it (neutral for style ''), rendered by libespeak-ng in this process so that the
    start of every phoneme in the returned audio is known: (audio, [(IPA, start s), ...])."""
    style, styled = _styled(speaker, style)
    said = espeak_render(
        styled.voice, styled.pitch, styled.speed, ssml(text, styled.pitch_range), styled.amplitude, True
    )
    if len(said.wave) < said.sample_rate // 10:
        raise SynthesisError(f"{speaker.id}: libespeak-ng produced no usable audio for {text[:40]!r}")
    wave = tremolo(
        resample(said.wave, said.sample_rate, sample_rate), sample_rate, style.tremolo_hz, style.tremolo_depth
    )
    return wave, said.events


# -- non-verbal vocalisations -----------------------------------------------------------------------------

# Vocal sounds: espeak-ng phoneme mnemonics (see `espeak-ng -x`) and the style they are spoken in.
VOCAL_SOUNDS: dict[str, tuple[str, Style]] = {
    "[laugh]": ("h'a h'a h'a h'a", Style(pitch=30, speed=1.4, pitch_range=200)),
    "[sigh]": ("h'a:", Style(speed=0.5, amplitude=80, whisper=True)),
    "[clear_throat]": ("h@m h'@m", Style(pitch=-30, speed=1.2, amplitude=90, pitch_range=50)),
    "[cry]": ("@h h'@ @h h'@", Style(pitch=35, speed=0.7, pitch_range=200, tremolo_hz=7.0, tremolo_depth=0.5)),
    "[yawn]": ("h'a:", Style(pitch=-10, speed=0.4, pitch_range=200)),
}
NOISE_SOUNDS = ("[breathe]", "[cough]")
assert set(VOCAL_SOUNDS) | set(NOISE_SOUNDS) == set(NONVERBAL_TAGS)


def _rng(speaker: Speaker, tag: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(f"{speaker.id}|{tag}".encode()).digest()[:8], "big"))


def _band_noise(rng: np.random.Generator, n: int, sr: int, lo: float, hi: float) -> np.ndarray:
    sos = butter(4, [lo, min(hi, 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
    noise = sosfilt(sos, rng.standard_normal(n))
    return noise / (np.abs(noise).max() + 1e-9)


def _noise_sound(speaker: Speaker, tag: str, sr: int) -> np.ndarray:
    """Breath: a soft hann-shaped noise swell; cough: one or two sharp-attack, fast-decay bursts.
    The noise band rises with the speaker's pitch setting so speakers differ."""
    rng = _rng(speaker, tag)
    shift = 0.75 + speaker.pitch / 100
    if tag == "[breathe]":
        n = int(sr * rng.uniform(0.45, 0.7))
        return (0.08 * _band_noise(rng, n, sr, 500 * shift, 2500 * shift) * np.hanning(n)).astype(np.float32)
    parts = []
    for _ in range(rng.integers(1, 3)):
        n = int(sr * rng.uniform(0.18, 0.28))
        t = np.arange(n) / sr
        envelope = np.minimum(t / 0.008, 1.0) * np.exp(-t / rng.uniform(0.04, 0.07))
        parts += [0.5 * _band_noise(rng, n, sr, 250 * shift, 3000 * shift) * envelope, np.zeros(int(0.08 * sr))]
    return np.concatenate(parts[:-1]).astype(np.float32)


def nonverbal(speaker: Speaker, tag: str, sample_rate: int) -> np.ndarray:
    """The sound `tag` (e.g. '[laugh]') as `speaker` makes it; deterministic."""
    if tag in NOISE_SOUNDS:
        return _noise_sound(speaker, tag, sample_rate)
    if tag not in VOCAL_SOUNDS:
        raise KeyError(f"unknown non-verbal tag {tag!r}; expected one of {NONVERBAL_TAGS}")
    phonemes, style = VOCAL_SOUNDS[tag]
    wave = trim(render(speaker, f"[[{phonemes}]]", style, sample_rate))
    if tag in ("[sigh]", "[yawn]"):  # breath running out: fade to silence
        wave = wave * np.linspace(1.0, 0.0, len(wave), dtype=np.float32) ** 0.5
    return wave


def trim_bounds(wave: np.ndarray) -> tuple[int, int]:
    """[first, last) sample of `wave` without espeak-ng's leading and trailing silence."""
    first, last = librosa.effects.trim(wave, top_db=TRIM_DB)[1]
    return int(first), int(last)


def trim(wave: np.ndarray) -> np.ndarray:
    """Cut espeak-ng's leading and trailing silence, so the gaps a builder inserts are the only pauses."""
    first, last = trim_bounds(wave)
    return wave[first:last]
