"""Codec round trip on a corpus split: ASR error rate and DNSMOS of original vs decoded audio, plus speed, and
optionally the loudness steadiness of streamed (chunked) decoding.

Shared by `bench/codec.py` (full table, several codecs on the same rows) and the embedded main job (a quick
check).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tts.base.audio import AudioError, load_audio, resample
from tts.base.manifest import Utterance
from tts.codec import Codec

# streaming decode as the server does it: 0.5 s of new codes per call after 1 s of already-sent codes
STREAM_CHUNK_CODES = 25
STREAM_CONTEXT_CODES = 50


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
    chunk_db_error: float | None = None  # set when measured (`roundtrip(streaming=True)`)
    chunk_db_error_std: float | None = None
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
        streamed = {k: getattr(self, k) for k in ("chunk_db_error", "chunk_db_error_std")}
        return (
            out
            | {
                "failures": len(self.failures),
                "encode_rtf": self.encode_rtf,
                "decode_rtf": self.decode_rtf,
                "wer_ratio": self.wer_roundtrip / max(self.wer_original, 1e-9),
                "ovrl_drop": self.ovrl_original - self.ovrl_roundtrip,
            }
            | {k: v for k, v in streamed.items() if v is not None}
        )


def streaming_loudness(
    codec: Codec,
    codes: np.ndarray,
    reference: np.ndarray,
    chunk: int = STREAM_CHUNK_CODES,
    context: int = STREAM_CONTEXT_CODES,
) -> tuple[float, float]:
    """Decode `codes` `chunk` codes at a time, each after up to `context` earlier codes, and compare the
    loudness of 200 ms chunks with `reference` (at `codec.sample_rate`): (mean |dB error|, std over chunks of
    the dB error). The std catches a voice that swells and fades between streamed pieces."""
    import torch

    from tts.train.codec.losses import chunk_db_differences

    parts = [
        codec.decode_with_context(codes[a : a + chunk], codes[max(0, a - context) : a])
        for a in range(0, len(codes), chunk)
    ]
    diff = chunk_db_differences(torch.from_numpy(np.concatenate(parts)), torch.from_numpy(reference), codec.sample_rate)
    if not len(diff):
        return 0.0, 0.0
    return float(diff.abs().mean()), float(diff.std(correction=0))


def _scores(wave: np.ndarray, sr: int, row: Utterance, asr, dnsmos) -> dict:
    """Whisper WER (English rows, with the hypothesis) and DNSMOS OVRL of one wave."""
    from rewards.asr import error_rate

    out: dict = {}
    if asr is not None and row.language == "en":
        hyp = asr.transcribe(resample(wave, sr, 16000))
        out |= {"wer": error_rate(row.text, hyp), "hyp": hyp}
    if dnsmos is not None:
        out["ovrl"] = dnsmos.score(wave, sr).ovrl
    return out


def roundtrip(
    codec: Codec,
    rows: list[Utterance],
    root: Path,
    asr=None,
    dnsmos=None,
    streaming: bool = False,
    originals: dict[str, dict] | None = None,
) -> RoundTripResult:
    """Encode+decode every row; score with `asr` (FasterWhisperASR; English rows only) and `dnsmos`
    (DnsmosModel), either None to skip, and with `streaming` the chunk loudness of `streaming_loudness`.
    `originals` caches the original audio's scores by row id: pass one dict to several calls (same scorers) to
    score each original once."""
    originals = {} if originals is None else originals
    res = RoundTripResult()
    for row in tqdm(rows, desc="codec round trip"):
        try:
            original, original_sr = load_audio(row.wav_path(root))
        except AudioError as exc:
            res.failures.append(str(exc))
            continue
        if row.id not in originals:
            originals[row.id] = _scores(original, original_sr, row, asr, dnsmos)
        sr = codec.encoder_sample_rate
        wave = resample(original, original_sr, sr)
        t0 = time.perf_counter()
        codes = codec.encode(wave, sr, name=row.id)
        t1 = time.perf_counter()
        decoded = codec.decode(codes)
        t2 = time.perf_counter()
        res.encode_seconds += t1 - t0
        res.decode_seconds += t2 - t1
        res.audio_seconds += len(wave) / sr
        entry: dict = {"id": row.id, "language": row.language, "speaker": row.speaker, "codes": int(len(codes))}
        entry |= {f"{k}_original": v for k, v in originals[row.id].items()}
        entry |= {f"{k}_roundtrip": v for k, v in _scores(decoded, codec.sample_rate, row, asr, dnsmos).items()}
        if streaming:
            reference = resample(original, original_sr, codec.sample_rate)
            entry["chunk_db_error"], entry["chunk_db_error_std"] = streaming_loudness(codec, codes, reference)
        res.utterances.append(entry)
        res.n += 1

    def mean(key: str) -> float:
        values = [u[key] for u in res.utterances if key in u]
        return float(np.mean(values)) if values else float("nan")

    res.wer_original, res.wer_roundtrip = mean("wer_original"), mean("wer_roundtrip")
    res.ovrl_original, res.ovrl_roundtrip = mean("ovrl_original"), mean("ovrl_roundtrip")
    if streaming:
        res.chunk_db_error, res.chunk_db_error_std = mean("chunk_db_error"), mean("chunk_db_error_std")
    return res
