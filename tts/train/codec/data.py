"""Training audio for the codec decoder: manifest rows per progressive stage, random whole-token crops.

A stage uses the rows whose manifest `sample_rate` is at least its `min_sample_rate` (the paper: first
>= 32 kHz audio, then native 48 kHz). Each crop is read at its native rate and resampled twice: to 16 kHz
for the encoder and to the decoder's rate for the target. The batch of step s on rank r depends only on
(seed, s, r), so a resumed run reads exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tts.base.audio import AudioError, resample
from tts.base.manifest import Utterance, read_manifest
from tts.codec.xcodec2.config import ENCODER_SAMPLE_RATE, FRAME_RATE
from tts.train.codec.config import CodecTrainConfig


@dataclass(frozen=True)
class Clip:
    id: str
    path: str
    sample_rate: int  # native, from the manifest (or the file header when the manifest has none)
    seconds: float


def clips(cfg: CodecTrainConfig, split: str) -> list[Clip]:
    """Rows of `split` in `cfg.languages` (all when empty), sorted by id."""
    manifest = Path(cfg.manifest)
    rows: list[Utterance] = read_manifest(manifest, split=split)
    out = []
    for r in rows:
        if cfg.languages and r.language not in cfg.languages:
            continue
        path = r.wav_path(manifest.parent)
        sr, seconds = r.sample_rate, r.duration
        if not sr or not seconds:
            info = sf.info(str(path))
            sr, seconds = info.samplerate, info.frames / info.samplerate
        out.append(Clip(r.id, str(path), int(sr), float(seconds)))
    return sorted(out, key=lambda c: c.id)


def stage_clips(all_clips: list[Clip], min_sample_rate: int) -> list[Clip]:
    return [c for c in all_clips if c.sample_rate >= min_sample_rate]


def plan_stages(cfg: CodecTrainConfig, train: list[Clip]) -> list[dict]:
    """Rows and hours per stage; an error naming the manifest's sample rates when a stage has no rows."""
    rates = dict(sorted(Counter(c.sample_rate for c in train).items()))
    plan = []
    for k, stage in enumerate(cfg.stages):
        chosen = stage_clips(train, stage.min_sample_rate)
        if not chosen:
            raise ValueError(
                f"stage {k + 1} (sample_rate >= {stage.min_sample_rate} Hz) selects no {cfg.train_split} rows of "
                f"{cfg.manifest}{' in ' + str(cfg.languages) if cfg.languages else ''}: its sample rates are "
                f"{rates} (rate: rows); lower min_sample_rate or add audio recorded at that rate"
            )
        hours = sum(c.seconds for c in chosen) / 3600
        plan.append({"min_sample_rate": stage.min_sample_rate, "steps": stage.steps, "rows": len(chosen)})
        plan[-1]["hours"] = round(hours, 3)
    return plan


def read_span(clip: Clip, start: float, seconds: float, rates: tuple[int, ...]) -> list[np.ndarray]:
    """`seconds` of `clip` from `start` (zero-padded past its end), resampled to each of `rates`."""
    a = int(round(start * clip.sample_rate))
    try:
        wave, sr = sf.read(clip.path, start=a, stop=a + int(round(seconds * clip.sample_rate)), dtype="float32")
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{clip.path}: unreadable audio ({exc})") from exc
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    out = []
    for rate in rates:
        y = resample(wave, sr, rate)
        n = int(round(seconds * rate))
        out.append(np.pad(y[:n], (0, max(0, n - len(y)))))
    return out


class Segments:
    """Random whole-token crops of `tokens` codes: (16 kHz encoder input, target at `sample_rate`)."""

    def __init__(self, train: list[Clip], tokens: int, sample_rate: int, seed: int):
        self.train, self.tokens, self.sample_rate, self.seed = train, tokens, sample_rate, seed

    def batch(self, step: int, rank: int, batch_size: int, stage_min_rate: int) -> tuple[np.ndarray, np.ndarray]:
        pool = stage_clips(self.train, stage_min_rate)
        rng = np.random.default_rng([self.seed, step, rank])
        seconds = self.tokens / FRAME_RATE
        enc, tgt = [], []
        for i in rng.integers(len(pool), size=batch_size):
            clip = pool[int(i)]
            spare = int(np.ceil(clip.seconds * FRAME_RATE)) - self.tokens
            start = int(rng.integers(max(spare, 0) + 1)) / FRAME_RATE
            e, t = read_span(clip, start, seconds, (ENCODER_SAMPLE_RATE, self.sample_rate))
            enc.append(e)
            tgt.append(t)
        return np.stack(enc), np.stack(tgt)


def held_out(cfg: CodecTrainConfig, sample_rate: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The first `eval_utterances` rows of the eval split that the last stage would train on, whole (cut to
    `eval_max_seconds`, padded to whole tokens): (id, 16 kHz input, target)."""
    if not cfg.eval_utterances:
        return []
    pool = stage_clips(clips(cfg, cfg.eval_split), cfg.stages[-1].min_sample_rate)[: cfg.eval_utterances]
    out = []
    for clip in pool:
        tokens = int(np.ceil(min(clip.seconds, cfg.eval_max_seconds) * FRAME_RATE))
        e, t = read_span(clip, 0.0, tokens / FRAME_RATE, (ENCODER_SAMPLE_RATE, sample_rate))
        out.append((clip.id, e, t))
    return out
