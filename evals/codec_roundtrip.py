"""Codec round trip on a corpus split: ASR error rate and DNSMOS of original vs decoded audio, plus speed.

Shared by `bench/codec.py` (full table) and the embedded main job (a quick check).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tts.audio import AudioError, load_audio, resample
from tts.codec import Codec
from tts.corpus.manifest import Utterance


@dataclass
class RoundTripResult:
    n: int = 0
    failures: list[str] = field(default_factory=list)
    wer_original: float = float("nan")
    wer_roundtrip: float = float("nan")
    ovrl_original: float = float("nan")
    ovrl_roundtrip: float = float("nan")
    audio_seconds: float = 0.0
    encode_seconds: float = 0.0
    decode_seconds: float = 0.0
    utterances: list[dict] = field(default_factory=list)

    @property
    def encode_rtf(self) -> float:
        return self.encode_seconds / max(self.audio_seconds, 1e-9)

    @property
    def decode_rtf(self) -> float:
        return self.decode_seconds / max(self.audio_seconds, 1e-9)

    def summary(self) -> dict:
        keys = ("n", "wer_original", "wer_roundtrip", "ovrl_original", "ovrl_roundtrip", "audio_seconds")
        out = {k: getattr(self, k) for k in keys}
        return out | {
            "failures": len(self.failures),
            "encode_rtf": self.encode_rtf,
            "decode_rtf": self.decode_rtf,
            "wer_ratio": self.wer_roundtrip / max(self.wer_original, 1e-9),
            "ovrl_drop": self.ovrl_original - self.ovrl_roundtrip,
        }


def roundtrip(codec: Codec, rows: list[Utterance], root: Path, asr=None, dnsmos: bool = True) -> RoundTripResult:
    """Encode+decode every row; score with `asr` (FasterWhisperASR; English rows only) and DNSMOS."""
    from rewards.dnsmos import DnsmosScorer

    scorer = DnsmosScorer() if dnsmos else None
    from rewards.asr import error_rate

    res = RoundTripResult()
    wer_o, wer_r, mos_o, mos_r = [], [], [], []
    for row in tqdm(rows, desc="codec round trip"):
        try:
            wave, sr = load_audio(row.wav_path(root), codec.encoder_sample_rate)
        except AudioError as exc:
            res.failures.append(str(exc))
            continue
        t0 = time.perf_counter()
        codes = codec.encode(wave, sr, name=row.id)
        t1 = time.perf_counter()
        decoded = codec.decode(codes)
        t2 = time.perf_counter()
        res.encode_seconds += t1 - t0
        res.decode_seconds += t2 - t1
        res.audio_seconds += len(wave) / sr
        entry: dict = {"id": row.id, "language": row.language, "speaker": row.speaker, "codes": int(len(codes))}
        if asr is not None and row.language == "en":
            hyp_o = asr.transcribe(resample(wave, sr, 16000))
            hyp_r = asr.transcribe(resample(decoded, codec.sample_rate, 16000))
            entry |= {
                "wer_original": error_rate(row.text, hyp_o),
                "wer_roundtrip": error_rate(row.text, hyp_r),
                "hyp_roundtrip": hyp_r,
            }
            wer_o.append(entry["wer_original"])
            wer_r.append(entry["wer_roundtrip"])
        if scorer is not None:
            entry |= {
                "ovrl_original": scorer.score(wave, sr).ovrl,
                "ovrl_roundtrip": scorer.score(decoded, codec.sample_rate).ovrl,
            }
            mos_o.append(entry["ovrl_original"])
            mos_r.append(entry["ovrl_roundtrip"])
        res.utterances.append(entry)
        res.n += 1
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
    res.wer_original, res.wer_roundtrip = mean(wer_o), mean(wer_r)
    res.ovrl_original, res.ovrl_roundtrip = mean(mos_o), mean(mos_r)
    return res
