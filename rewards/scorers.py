"""Reward models behind one batch interface: `score_batch(samples) -> one dict of measurements per sample`.

A scorer loads its model once (in a Ray actor, see `rewards.pool`) and never raises for one bad sample: it
returns None for the measurement and a flag, so the batch completes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tts.base.audio import AudioError, check_wave, resample
from tts.base.languages import CER_LANGUAGES

SR = 16000


@dataclass
class Sample:
    """One generated utterance to score: its audio, target text, and (for SIM) the reference audio."""

    wave: np.ndarray
    sr: int
    text: str
    language: str = "en"
    ref_wave: np.ndarray | None = None
    ref_sr: int | None = None
    id: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def audio_problem(wave: np.ndarray | None, silence_rms: float) -> str | None:
    """Why this audio cannot be scored (empty, NaN, silent), or None."""
    if wave is None:
        return "no audio"
    try:
        wave = check_wave(wave, "audio")
    except AudioError as exc:
        return str(exc)
    if float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) < silence_rms:
        return "audio: silent"
    return None


class Scorer(ABC):
    measurement: str

    @abstractmethod
    def score_batch(self, samples: list[Sample]) -> list[dict]: ...

    def _guard(self, sample: Sample, fn) -> dict:
        try:
            return fn(sample)
        except Exception as exc:  # noqa: BLE001  one bad sample must not kill the batch
            return {self.measurement: None, "flags": [f"{self.measurement}: {type(exc).__name__}: {exc}"]}


class AsrScorer(Scorer):
    """Transcript + WER (CER for CER languages); with `likelihood`, also `asr_likelihood` (the intelligibility
    reward's measurement) from the same ASR."""

    measurement = "error_rate"

    def __init__(
        self,
        backend: str = "faster-whisper",
        model: str | None = None,
        device: str = "cpu",
        cer_languages: list[str] | None = None,
        threads: int = 1,
        per_language: dict[str, dict[str, str]] | None = None,
        likelihood: bool = False,
    ):
        from rewards.asr import load_asr

        self.default = load_asr(backend, model, device=device, threads=threads)
        self.routed = {
            language: load_asr(spec["backend"], spec.get("model"), device=device, threads=threads)
            for language, spec in (per_language or {}).items()
        }
        self.cer_languages = frozenset(cer_languages) if cer_languages is not None else CER_LANGUAGES
        self.likelihood = likelihood
        lacking = [
            type(a).__name__
            for a in (self.default, *self.routed.values())
            if not hasattr(a, "transcribe_and_likelihood")
        ]
        if likelihood and lacking:
            raise ValueError(f"the intelligibility reward needs an ASR that scores a given text; {lacking} cannot")

    def asr(self, language: str):
        """The ASR that transcribes `language`: its `per_language` model, else the default."""
        return self.routed.get(language, self.default)

    def _record(self, s: Sample, transcript: str, likelihood: float | None = None) -> dict:
        from rewards.asr import error_rate

        rate = error_rate(s.text, transcript, s.language, self.cer_languages)
        return {
            "transcript": transcript,
            "error_rate": rate,
            "metric": "cer" if s.language in self.cer_languages else "wer",
        } | ({"asr_likelihood": likelihood} if self.likelihood else {})

    def _one(self, s: Sample) -> dict:
        wave, asr = resample(check_wave(s.wave), s.sr, SR), self.asr(s.language)
        if self.likelihood:  # one encoder pass for both, as in a batch
            (text,), (likely,) = asr.transcribe_and_likelihood([wave], [s.text], s.language)
            return self._record(s, text, likely)
        return self._record(s, asr.transcribe(wave, s.language))

    def score_batch(self, samples: list[Sample]) -> list[dict]:
        """One batched decode per language; a failing batch falls back to one sample at a time."""
        out: list[dict | None] = [None] * len(samples)
        by_language: dict[str, list[int]] = {}
        for i, s in enumerate(samples):
            by_language.setdefault(s.language, []).append(i)
        for language, idx in by_language.items():
            try:
                waves = [resample(check_wave(samples[i].wave), samples[i].sr, SR) for i in idx]
                asr = self.asr(language)
                if self.likelihood:  # one encoder pass for both
                    texts, likely = asr.transcribe_and_likelihood(waves, [samples[i].text for i in idx], language)
                else:
                    texts, likely = asr.transcribe_batch(waves, language), [None] * len(idx)
                for i, text, lk in zip(idx, texts, likely):
                    out[i] = self._guard(samples[i], lambda s, text=text, lk=lk: self._record(s, text, lk))
            except Exception:  # noqa: BLE001  isolate the bad sample
                for i in idx:
                    out[i] = self._guard(samples[i], self._one)
        return out  # type: ignore[return-value]


class SpeakerScorer(Scorer):
    """Cosine similarity of speaker embeddings, generated vs reference audio."""

    measurement = "sim"

    def __init__(self, backend: str = "resemblyzer", path: str | None = None, device: str = "cpu"):
        from rewards.speaker import load_speaker_encoder

        self.encoder = load_speaker_encoder(backend, path, device=device)

    def score_batch(self, samples: list[Sample]) -> list[dict]:
        out: list[dict | None] = [None] * len(samples)
        usable = []
        for i, s in enumerate(samples):
            if s.ref_wave is None:
                out[i] = {"sim": None, "flags": ["sim: no reference audio"]}
            else:
                usable.append(i)
        if usable:
            try:
                gen = self.encoder.embed_batch([samples[i].wave for i in usable], [samples[i].sr for i in usable])
                ref = self.encoder.embed_batch(
                    [samples[i].ref_wave for i in usable], [samples[i].ref_sr or samples[i].sr for i in usable]
                )
                for k, i in enumerate(usable):
                    out[i] = {"sim": float(np.dot(gen[k], ref[k]))}
            except Exception:  # noqa: BLE001  fall back to one at a time to isolate the bad sample
                for i in usable:
                    out[i] = self._guard(samples[i], self._one)
        return out  # type: ignore[return-value]

    def _one(self, s: Sample) -> dict:
        gen = self.encoder.embed(s.wave, s.sr)
        ref = self.encoder.embed(s.ref_wave, s.ref_sr or s.sr)
        return {"sim": float(np.dot(gen, ref))}


class DnsmosScorer(Scorer):
    """DNSMOS P.835 SIG/BAK/OVRL and P.808 of the generated audio."""

    measurement = "dnsmos"

    def __init__(
        self,
        model_dir: str | None = None,
        personalized: bool = False,
        threads: int = 1,
        windows_per_clip: int | None = None,
        p808: bool = True,
    ):
        from rewards.dnsmos import DnsmosModel as Model

        self.model = Model(model_dir, personalized, threads, windows_per_clip=windows_per_clip, p808=p808)

    def score_batch(self, samples: list[Sample]) -> list[dict]:
        try:
            scores = self.model.score_batch([s.wave for s in samples], [s.sr for s in samples])
            return [{"dnsmos": sc.as_dict()} for sc in scores]
        except Exception:  # noqa: BLE001
            return [self._guard(s, lambda s: {"dnsmos": self.model.score(s.wave, s.sr).as_dict()}) for s in samples]


SCORERS: dict[str, type[Scorer]] = {"asr": AsrScorer, "speaker": SpeakerScorer, "dnsmos": DnsmosScorer}


def build_scorer(kind: str, **kwargs: Any) -> Scorer:
    if kind not in SCORERS:
        raise ValueError(f"unknown scorer {kind!r}; known: {sorted(SCORERS)}")
    return SCORERS[kind](**kwargs)
