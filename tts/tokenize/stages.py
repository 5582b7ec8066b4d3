"""The per-row work of the pipeline as Ray Data `map_batches` callables over numpy batches.

A row that fails gets a `reason` (a short code that is counted) and a `message` (the error, naming the file)
instead of an exception, so one bad file never fails a block. Waves travel as ragged float32 arrays in the
`wave` column; the stage that consumes them drops the column, so audio never reaches the driver.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tts.base.audio import load_audio, resample

MISSING_FILE = "missing_file"
UNREADABLE_AUDIO = "unreadable_audio"
UNSUPPORTED_SAMPLE_RATE = "unsupported_sample_rate"
DNSMOS_FAILED = "dnsmos_failed"
ENCODE_FAILED = "encode_failed"
READ_ERRORS = (OSError, ValueError, RuntimeError)  # AudioError is a ValueError; soundfile raises RuntimeErrors
EMPTY = np.zeros(0, np.float32)


def ragged(arrays: list[np.ndarray]) -> np.ndarray:
    """A 1-D object array of arrays (np.array would try to stack equal-length ones)."""
    out = np.empty(len(arrays), dtype=object)
    out[:] = arrays
    return out


def writable(column: np.ndarray) -> np.ndarray:
    """An object copy of a string column: Ray's numpy batches are read-only, and a fixed-width `<U0` column
    of empty strings would silently truncate what is written into it."""
    return np.array(column, dtype=object)


def _read_one(wav: str, target_sr: int, min_sr: int, max_wave_seconds: float | None) -> tuple:
    """(file rate, file samples, wave at target_sr, reason, message) of one file."""
    if not Path(wav).is_file():
        return 0, 0, EMPTY, MISSING_FILE, f"{wav}: no such audio file"
    try:
        raw, sr = load_audio(wav)
    except READ_ERRORS as exc:
        return 0, 0, EMPTY, UNREADABLE_AUDIO, str(exc)
    if sr < min_sr:
        message = f"{wav}: sample rate {sr} Hz is below the {min_sr} Hz the codec accepts"
        return sr, len(raw), EMPTY, UNSUPPORTED_SAMPLE_RATE, message
    if max_wave_seconds is not None and len(raw) / sr > max_wave_seconds:
        return sr, len(raw), EMPTY, "", ""
    return sr, len(raw), resample(raw, sr, target_sr), "", ""


def read_audio(
    batch: dict[str, np.ndarray], target_sr: int, min_sr: int, max_wave_seconds: float | None = None
) -> dict[str, np.ndarray]:
    """Adds sample_rate / num_samples (of the file), duration, reason, message and `wave` at `target_sr`.

    `min_sr` is the codec's lowest input rate, checked here so such files are rejected before DNSMOS spends
    time on them. Waves longer than `max_wave_seconds` are left empty: they are only counted, never scored.
    """
    srs, lengths, waves, reasons, messages = zip(
        *(_read_one(str(wav), target_sr, min_sr, max_wave_seconds) for wav in batch["wav"])
    )
    srs, lengths = np.array(srs, np.int64), np.array(lengths, np.int64)
    return batch | {
        "sample_rate": srs,
        "num_samples": lengths,
        "duration": lengths / np.maximum(srs, 1),
        "reason": np.array(reasons, dtype=object),
        "message": np.array(messages, dtype=object),
        "wave": ragged(list(waves)),
    }


class DnsmosAnnotator:
    """Adds ovrl / sig / bak / p808 (NaN where there is no wave); loads the DNSMOS models once per actor.

    Clips are scored one at a time: scoring a batch in one ONNX call changes the last bits of some scores with
    the batch's make-up, and the OVRL quantile filter must give the same threshold on every re-run.
    """

    def __init__(self, sample_rate: int, model_dir: str | None = None, personalized: bool = False, threads: int = 1):
        from rewards.dnsmos import DnsmosModel

        self.sample_rate = sample_rate
        self.scorer = DnsmosModel(model_dir, personalized=personalized, threads=threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        waves = batch.pop("wave")
        reasons, messages = writable(batch["reason"]), writable(batch["message"])
        scores = np.full((len(waves), 4), np.nan)
        for i, wave in enumerate(waves):
            if len(wave) == 0:
                continue
            try:
                s = self.scorer.score(wave, self.sample_rate)
                scores[i] = s.ovrl, s.sig, s.bak, s.p808
            except ValueError as exc:
                reasons[i], messages[i] = DNSMOS_FAILED, f"{batch['wav'][i]}: {exc}"
        return batch | {"reason": reasons, "message": messages} | dict(zip(("ovrl", "sig", "bak", "p808"), scores.T))


def unscored(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What `DnsmosAnnotator` adds, unmeasured (NaN), for runs with `dnsmos: false`: the wave is dropped."""
    n = len(batch.pop("wave"))
    return batch | {k: np.full(n, np.nan) for k in ("ovrl", "sig", "bak", "p808")}


class CodecEncoder:
    """Adds `codes` (ragged int64) for rows without an error; loads the codec once per actor."""

    def __init__(self, codec_dir: str | None = None):
        from tts.codec import load_codec

        self.codec = load_codec(codec_dir)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        waves = batch.pop("wave")
        reasons, messages = writable(batch["reason"]), writable(batch["message"])
        codes = []
        for i, wave in enumerate(waves):
            c = np.zeros(0, np.int64)
            if not reasons[i]:
                try:
                    c = self.codec.encode(wave, self.codec.encoder_sample_rate, name=batch["wav"][i])
                except ValueError as exc:
                    reasons[i], messages[i] = ENCODE_FAILED, str(exc)
            codes.append(c)
        return batch | {"reason": reasons, "message": messages, "codes": ragged(codes)}
