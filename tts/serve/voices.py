"""Voices: the model's own voice, instant-cloning voices (reference transcript + cached codec codes) and LoRA
voices (professional cloning, an adapter the generation deployment holds).

Preset voices come from the config and live in every API replica (`VoiceStore`). Uploaded voices live in one
place, the `VoiceRegistry` deployment, so that a voice made through one API replica is usable and deletable through
every other, and is owned by the API key that made it (listed, used and deleted by that key only; at most
`limits.max_voices_per_key` each). They get a server-made id (`voice_<hex>`): no request value ever becomes a file
name. With `voices_dir` set they persist as `<id>.npz` across restarts. The registry also spends arena vote tokens,
once across replicas.
"""

from __future__ import annotations

import io
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from tts.base.audio import AudioError, check_wave


@dataclass
class Voice:
    id: str
    name: str
    kind: str  # "default" | "clone" | "lora"
    text: str | None = None  # transcript of the reference audio
    codes: np.ndarray | None = field(default=None, repr=False)  # its codec codes, the prompt's audio
    lora: bool = False  # generate with the LoRA adapter named `id`
    created: int = field(default_factory=lambda: int(time.time()))
    owner: str | None = None  # uploaded voices: the owner id of the API key that made it (tts.serve.guard.owner_of)

    def public(self) -> dict:
        """The JSON description of GET /v1/voices (no codes)."""
        out = {"id": self.id, "name": self.name, "kind": self.kind, "created": self.created, "object": "voice"}
        if self.codes is not None:
            out["reference_text"] = self.text
        return out


def corpus_speaker(speaker_id: str):
    """The embedded corpus' espeak-ng speaker `speaker_id` (e.g. "en_08"); ValueError naming the known ones."""
    from tts.corpus.voices import find_speaker

    speaker = find_speaker(speaker_id.split("_")[0], speaker_id)
    if speaker is None:
        raise ValueError(f"unknown corpus speaker {speaker_id!r}; e.g. en_00 .. en_23, de_00 .. de_02")
    return speaker


def render_reference(speaker_id: str, text: str, sample_rate: int) -> np.ndarray:
    """`text` spoken by an embedded corpus speaker: a preset voice's reference audio without shipping audio."""
    from tts.corpus.generate import speak

    return speak(corpus_speaker(speaker_id), text, sample_rate)


MAX_CHANNELS = 8
UNKNOWN_FRAMES = 2**62  # libsndfile's frame count of a stream that does not say its length (INT64_MAX)


def read_reference(data: bytes, min_s: float, max_s: float) -> tuple[np.ndarray, int]:
    """Decode uploaded audio bytes (any libsndfile format) to float32 mono; AudioError says what is wrong.

    The header is read first (rate, channels, length): a reference longer than `max_s` by its header, or whose
    header does not give its length, is refused before any decoding, and the decode itself stops after `max_s`, so
    a few KB of compressed silence cannot expand to hours of samples in memory."""
    if not data:
        raise AudioError("reference audio: the upload is empty")
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"reference audio: not a readable audio file (wav, flac, ogg, mp3): {exc}") from exc
    if not 1 <= info.channels <= MAX_CHANNELS or not 1000 <= info.samplerate <= 384_000:
        raise AudioError(f"reference audio: {info.channels} channels at {info.samplerate} Hz is not speech audio")
    if not 0 < info.frames < UNKNOWN_FRAMES:
        raise AudioError("reference audio: its header does not say how long it is; send WAV, FLAC, Ogg or MP3 files")
    if info.frames / info.samplerate > max_s:
        seconds = info.frames / info.samplerate
        raise AudioError(f"reference audio: {seconds:.2f} s long by its header; voices need {min_s:g} to {max_s:g} s")
    most = int(max_s * info.samplerate) + 1
    try:
        wave, sr = sf.read(io.BytesIO(data), frames=most, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"reference audio: not a readable audio file (wav, flac, ogg, mp3): {exc}") from exc
    if len(wave) >= most:
        raise AudioError(f"reference audio: longer than {max_s:g} s; voices need {min_s:g} to {max_s:g} s")
    wave = check_wave(wave, "reference audio")
    seconds = len(wave) / sr
    if not min_s <= seconds <= max_s:
        raise AudioError(f"reference audio: {seconds:.2f} s long; voices need {min_s:g} to {max_s:g} s")
    if np.abs(wave).max() < 1e-4:
        raise AudioError("reference audio: silent")
    return wave, sr


class VoiceStore:
    """Id -> Voice of one replica: the preset voices (the same in every replica, made from the config)."""

    def __init__(self) -> None:
        self.voices: dict[str, Voice] = {}

    def add(self, voice: Voice) -> Voice:
        self.voices[voice.id] = voice
        return voice

    def get(self, voice_id: str) -> Voice | None:
        return self.voices.get(voice_id)

    def list(self) -> list[Voice]:
        return sorted(self.voices.values(), key=lambda v: (v.kind != "default", v.created, v.id))


class VoiceRegistry:
    """The uploaded voices of every API replica, and the arena tokens already voted on (a Serve deployment with one
    replica, bound in `tts.serve.app.build_app`; a plain object in tests)."""

    def __init__(self, directory: str | None = None, max_per_owner: int = 100):
        self.directory = Path(directory) if directory else None
        self.max_per_owner = max_per_owner
        self.voices: dict[str, Voice] = {}
        self.spent: dict[str, float] = {}  # arena nonce -> until when it is remembered
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            for path in sorted(self.directory.glob("voice_*.npz"), key=lambda p: p.stat().st_mtime):
                with np.load(path) as z:
                    meta = json.loads(str(z["meta"]))
                    self.voices[meta["id"]] = Voice(**meta, codes=z["codes"])

    def create(self, owner: str | None, name: str, text: str, codes: np.ndarray) -> Voice | str:
        """The new voice, or why not (a message: this key already keeps `max_per_owner` voices)."""
        mine = sum(v.owner == owner for v in self.voices.values())
        if mine >= self.max_per_owner:
            return f"this key keeps {mine} voices, the most it may; delete one first (DELETE /v1/voices/ID)"
        voice = Voice(f"voice_{secrets.token_hex(8)}", name, "clone", text, np.asarray(codes), owner=owner)
        if self.directory is not None:
            meta = {k: v for k, v in asdict(voice).items() if k != "codes"}
            tmp = self.directory / f".{voice.id}.npz"
            with open(tmp, "wb") as f:
                np.savez(f, codes=voice.codes, meta=json.dumps(meta))
            tmp.replace(self.directory / f"{voice.id}.npz")
        self.voices[voice.id] = voice
        return voice

    def get(self, owner: str | None, voice_id: str) -> Voice | None:
        """The voice if `owner` made it (another key's voice is as unknown as a missing one)."""
        voice = self.voices.get(voice_id)
        return voice if voice is not None and voice.owner == owner else None

    def delete(self, owner: str | None, voice_id: str) -> bool:
        if self.get(owner, voice_id) is None:
            return False
        del self.voices[voice_id]
        if self.directory is not None:
            (self.directory / f"{voice_id}.npz").unlink(missing_ok=True)
        return True

    def list(self, owner: str | None) -> list[Voice]:
        return sorted((v for v in self.voices.values() if v.owner == owner), key=lambda v: v.created)  # stable

    def spend(self, nonce: str, until: float) -> bool:
        """True the first time `nonce` is spent (remembered until `until`), False after."""
        now = time.time()
        self.spent = {n: t for n, t in self.spent.items() if t >= now}
        if nonce in self.spent:
            return False
        self.spent[nonce] = until
        return True
