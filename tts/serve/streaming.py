"""Streaming codec decoding (paper section 5): tokens in, seamless audio chunks out.

Generated codes collect in a buffer. Each decode covers the pending codes after a fixed left context (the tail
of the prompt audio plus the last committed codes), so the decoder sees where the voice and its loudness come
from; the context's own samples are cut off. Audio is emitted only up to the last *non-voicing* code boundary,
a sample b with max |x[b-r : b+r]| < threshold (eq. 13): a seam in silence cannot click. The codes after the cut
stay pending and are decoded again with the next chunk, whose audio then continues exactly there. The last
`lookahead` codes are never emitted before the end, because their audio still depends on codes not yet
generated. When no boundary is silent, the first chunk (time to first audio) and any buffer of `max_pending`
codes are cut at their quietest boundary instead, so latency stays bounded. The final decode emits the rest.

A decode runs every `chunk` new codes (the first after `first_chunk + lookahead`). The class is sans-I/O:
`next_decode` says what to decode and `take` turns the decoded audio into the chunk to
emit, so a Ray Serve handle (async) and a local codec (`stream_decode`) drive the same logic.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from tts.codec.base import Codec


@dataclass
class StreamingConfig:
    first_chunk: int = 10  # codes before the first decode (0.2 s at 50 codes/s): sets time to first audio
    chunk: int = 25  # new codes per later decode
    left_context: int = 25  # committed codes decoded before each chunk (volume stability)
    prompt_context: int = 25  # codes of the prompt audio's tail decoded before every chunk
    lookahead: int = 2  # trailing codes held back until more arrive: their audio depends on the next codes
    silence_radius_ms: float = 5.0  # r of eq. 13
    silence_threshold: float = 0.02  # max |x| inside the window for a non-voicing region
    max_pending: int = 100  # without a silent boundary, cut at the quietest one once this many codes wait

    def __post_init__(self) -> None:
        if min(self.first_chunk, self.chunk) < 1 or min(self.left_context, self.prompt_context, self.lookahead) < 0:
            raise ValueError(f"chunk sizes must be >= 1 and contexts/lookahead >= 0, got {self}")
        if self.max_pending < self.chunk + self.lookahead:
            raise ValueError(f"max_pending {self.max_pending} < chunk + lookahead ({self.chunk + self.lookahead})")
        if self.silence_radius_ms < 0 or self.silence_threshold <= 0:
            raise ValueError("silence_radius_ms must be >= 0 and silence_threshold > 0")


@dataclass(frozen=True)
class DecodeJob:
    """Decode `codes` after `context` (codec.decode_with_context) and pass the result to `StreamingDecoder.take`."""

    codes: np.ndarray
    context: np.ndarray
    final: bool


def window_peak(audio: np.ndarray, positions: np.ndarray, radius: int) -> np.ndarray:
    """max |audio| in [p - radius, p + radius) for each sample position p (clipped to the signal)."""
    mag = np.abs(audio)
    return np.array([mag[max(0, p - radius) : p + radius].max(initial=0.0) for p in positions], dtype=np.float32)


class StreamingDecoder:
    """Per-request state of the streaming algorithm for a codec with `hop` samples per code."""

    def __init__(self, cfg: StreamingConfig, hop: int, sample_rate: int, prompt_codes: Sequence[int] | None = None):
        self.cfg, self.hop = cfg, hop
        self.radius = round(cfg.silence_radius_ms * sample_rate / 1000)
        if self.radius > cfg.lookahead * hop and cfg.lookahead:
            raise ValueError(f"silence radius {self.radius} samples exceeds the lookahead of {cfg.lookahead} codes")
        prompt = np.asarray(prompt_codes if prompt_codes is not None else [], dtype=np.int64)
        self.prompt = prompt[len(prompt) - cfg.prompt_context :] if cfg.prompt_context else prompt[:0]
        self.committed: list[int] = []  # codes whose audio has been emitted
        self.pending: list[int] = []
        self.arrived = 0  # codes pushed since the last decode
        self.chunks = 0

    def push(self, codes: Iterable[int]) -> None:
        before = len(self.pending)
        self.pending.extend(int(c) for c in codes)
        self.arrived += len(self.pending) - before

    def next_decode(self, final: bool = False) -> DecodeJob | None:
        """The decode to run now, or None while too few codes wait (`final`: everything left, at the end)."""
        if final:
            return self._job(True) if self.pending else None
        need = self.cfg.chunk if self.chunks else self.cfg.first_chunk + self.cfg.lookahead
        return self._job(False) if self.arrived >= need else None

    def _job(self, final: bool) -> DecodeJob:
        self.arrived = 0
        left = self.committed[len(self.committed) - self.cfg.left_context :] if self.cfg.left_context else []
        context = np.concatenate([self.prompt, np.asarray(left, dtype=np.int64)])
        return DecodeJob(np.asarray(self.pending, dtype=np.int64), context, final)

    def take(self, job: DecodeJob, audio: np.ndarray) -> np.ndarray:
        """Audio to emit from the decoded samples of `job.codes`; keeps the codes after the cut pending."""
        if len(audio) != len(job.codes) * self.hop:
            raise ValueError(f"decoded {len(audio)} samples for {len(job.codes)} codes of {self.hop} samples")
        cut = len(job.codes) if job.final else self._cut(audio, len(job.codes))
        if cut == 0:
            return audio[:0]
        self.committed.extend(self.pending[:cut])
        del self.pending[:cut]
        self.chunks += 1
        return audio[: cut * self.hop]

    def _cut(self, audio: np.ndarray, n: int) -> int:
        """Number of codes to emit: the last silent boundary, else the quietest one when forced, else 0."""
        bounds = np.arange(1, n - self.cfg.lookahead + 1)
        if bounds.size == 0:
            return 0
        peaks = window_peak(audio, bounds * self.hop, self.radius)
        silent = np.flatnonzero(peaks < self.cfg.silence_threshold)
        if silent.size:
            return int(bounds[silent[-1]])
        if self.chunks == 0 or n >= self.cfg.max_pending:
            return int(bounds[np.argmin(peaks)])
        return 0


def stream_decode(
    codec: Codec,
    cfg: StreamingConfig,
    code_chunks: Iterable[Sequence[int]],
    prompt_codes: Sequence[int] | None = None,
) -> Iterator[np.ndarray]:
    """Audio chunks for codes arriving in `code_chunks`, decoded by a local codec (tests, benchmarks)."""
    dec = StreamingDecoder(cfg, codec.hop_length, codec.sample_rate, prompt_codes)
    for codes in code_chunks:
        dec.push(codes)
        while (job := dec.next_decode()) is not None:
            out = dec.take(job, codec.decode_with_context(job.codes, job.context))
            if out.size:
                yield out
    if (job := dec.next_decode(final=True)) is not None:
        yield dec.take(job, codec.decode_with_context(job.codes, job.context))
