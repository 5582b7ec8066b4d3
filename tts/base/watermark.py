"""An inaudible, keyed audio watermark: a static log-spectral patchwork, embedded by one minimum-phase FIR filter.

Why a classical scheme: the maintained neural watermarkers (AudioSeal, WavMark) download their weights at run time
and audiowmark is not packaged for our Debian, while our machines work offline. This one needs numpy and scipy
(librosa for detection) and is small enough to read.

Embedding. A key (any string, hashed with SHA-256 to a seed) draws a balanced pseudo-random sign s_i = +-1 for each of
`bands` equal sub-bands between `low_hz` and `high_hz` (70 Hz wide by default; a pattern is redrawn until 55-65% of
neighbouring bands differ in sign, since long runs of one sign leave little ripple to find, which made some keys
markedly weaker than others). The magnitude spectrum is multiplied
by 10^(a s_i / 20) in band i (a = `strength_db`; raised-cosine transitions between bands): a fine, static ripple of
+-a dB over the speech band. Being the same at every instant it is one linear time-invariant filter, and we use its
minimum-phase version (designed from the log-magnitude through the real cepstrum). A causal filter marks a stream
chunk by chunk with no look-ahead and no added latency; its output has the input's length and alignment, and the
streamed output equals the whole-signal output up to float rounding. Its phase departs from zero by a fraction of a
radian (group-delay wiggles well under a millisecond), which is inaudible; a ripple this fine is a faint colouring
at most. Bands above 45% of the sample rate are left out, so low-rate audio (8 kHz) is marked in the bands it has.

Detection. The audio is resampled to 16 kHz (bands are defined in Hz, so any rate works) and cut into STFT frames;
frames more than `floor_db` below the loud ones (pauses) are dropped. In each frame every band's log energy minus the
mean of its two neighbours' (a second difference across bands) removes the smooth spectral envelope and any gain,
fixed or varying; these residuals are clipped (a harmonic or a valley is an outlier), averaged over frames, and
correlated with the key's pattern through the same second difference (the matched filter). The correlation rho is
normalised by its spread over random keys and reported as score = rho sqrt(n-1) / sqrt(1 - rho^2): about N(0, 1)
for audio that does not carry the key whatever the audio is, growing with the evidence for audio that does.
`threshold` (4.0) is set from the null distribution measured on real speech (`bench/watermark.py`).

What it resists: re-encoding (MP3, Ogg Opus), resampling (down to 8 kHz and back, with half the bands), gain
changes and compression (a gain is the same for every band of a frame), cutting and concatenation (the pattern is
everywhere, no synchronisation is needed). What it does not: it carries no payload (only "marked with this key" or
not); it needs a second or more of sound (a few seconds of speech for a confident score); a pitch shift or time
stretch by more than a few percent moves the bands and erases it; and it is not secure against an informed
attacker: knowing the scheme, one can estimate the static ripple from a few marked files and equalise it away, or
swamp it with a random EQ of a few dB, and anyone holding the key can mark other audio. Treat it as provenance
labelling for honest pipelines, not as forensics.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import astuple, dataclass

import numpy as np
from scipy.signal import oaconvolve

from tts.base.audio import AudioError, check_wave, resample

DETECT_SR = 16000  # detection resamples to this rate; bands above its Nyquist frequency cannot be marked
N_FFT = 1024  # 15.6 Hz bins at 16 kHz: four or more per band
HOP = 256
MIN_SECONDS = 1.0  # shorter audio holds too few frames for a meaningful score
MIN_SR = 8000
FRAME_CLIP_DB = 2.0  # a frame's band residual beyond +-2 dB is a harmonic peak or a valley, not the mark
MAD_CLIP = 1.5  # averaged residuals are clipped at 1.5 robust standard deviations
SIGN_CHANGES = (0.55, 0.65)  # patterns with fewer sign changes carry less detectable ripple: redrawn
KEY_ENV = "TTS_ALIGN_WATERMARK_KEY"  # Serve and `tts-align watermark` take the key from here when it is set


def env_key(key: str) -> str:
    """The watermark key in force: $TTS_ALIGN_WATERMARK_KEY when set, else `key`."""
    return os.environ.get(KEY_ENV) or key


class WatermarkError(AudioError):
    """Audio the watermark cannot be embedded in or detected on (too short, a rate too low)."""


@dataclass
class WatermarkConfig:
    """The watermark of served audio (`ServeConfig.watermark`) and of `tts-align watermark`. Detection needs the
    key and band settings the audio was marked with; `threshold` is on the score's z-like scale."""

    enabled: bool = True
    # anyone with the key can detect the mark (the default is public: anyone can check audio for it) and forge it;
    # Serve: $TTS_ALIGN_WATERMARK_KEY replaces it (tts.serve.config.with_secrets)
    key: str = "tts-align"
    strength_db: float = 1.5  # +-dB of each band's gain (bench/watermark.py measures the trade-off)
    low_hz: float = 300.0  # above room rumble and most hum
    high_hz: float = 7000.0  # below the 8 kHz Nyquist frequency of 16 kHz audio
    bands: int = 96  # even: half raised, half lowered
    threshold: float = 4.0  # score at or above which audio counts as marked
    floor_db: float = 40.0  # detection ignores frames this far below the loud ones

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("watermark.key is empty")
        if not 0.0 < self.strength_db <= 6.0:
            raise ValueError(f"watermark.strength_db must be in (0, 6], got {self.strength_db}")
        if not 0.0 < self.low_hz < self.high_hz <= 0.45 * DETECT_SR:
            raise ValueError(
                f"watermark bands must satisfy 0 < low_hz < high_hz <= {0.45 * DETECT_SR:.0f}, "
                f"got {self.low_hz}-{self.high_hz}"
            )
        if self.bands < 16 or self.bands % 2:
            raise ValueError(f"watermark.bands must be an even number >= 16, got {self.bands}")
        if self.threshold <= 0 or self.floor_db <= 0:
            raise ValueError(f"watermark.threshold and floor_db must be > 0, got {self.threshold}, {self.floor_db}")

    @property
    def band_hz(self) -> float:
        return (self.high_hz - self.low_hz) / self.bands

    def centres(self) -> np.ndarray:
        return self.low_hz + (np.arange(self.bands) + 0.5) * self.band_hz

    def signs(self) -> np.ndarray:
        """The key's balanced +-1 pattern, one sign per band (deterministic)."""
        seed = int.from_bytes(hashlib.sha256(self.key.encode()).digest()[:8], "little")
        rng = np.random.default_rng(seed)
        signs = np.repeat([1.0, -1.0], self.bands // 2)
        lo, hi = (f * (self.bands - 1) for f in SIGN_CHANGES)
        while True:
            pattern = rng.permutation(signs)
            if lo <= np.count_nonzero(np.diff(pattern)) <= hi:
                return pattern


@dataclass(frozen=True)
class Detection:
    watermarked: bool
    score: float

    def as_dict(self) -> dict:
        return {"watermarked": self.watermarked, "score": round(self.score, 3)}


def _bumps(freqs: np.ndarray, cfg: WatermarkConfig, width: float = 2.0) -> np.ndarray:
    """(bands, len(freqs)) raised-cosine weights centred on each band, `width` bands wide at the base. At width 2
    neighbouring bumps sum to 1: equal signs give a flat gain, opposite signs a smooth transition."""
    x = (freqs[None, :] - cfg.centres()[:, None]) / (cfg.band_hz * width / 2)
    return np.where(np.abs(x) < 1.0, 0.5 + 0.5 * np.cos(np.pi * x), 0.0)


def gain_db(freqs: np.ndarray, cfg: WatermarkConfig, sr: int | None = None) -> np.ndarray:
    """The embedding filter's gain in dB at `freqs` (Hz): +-strength_db per band, 0 outside the marked bands (and,
    given `sr`, 0 in bands reaching above 45% of it)."""
    signs = cfg.signs()
    if sr is not None:
        signs = np.where(cfg.centres() + cfg.band_hz <= 0.45 * sr, signs, 0.0)
    return cfg.strength_db * (signs @ _bumps(freqs, cfg))


_TAPS: dict[tuple, np.ndarray] = {}


def design_filter(sr: int, cfg: WatermarkConfig) -> np.ndarray:
    """Minimum-phase FIR taps whose magnitude is 10^(gain_db/20), by the real cepstrum (homomorphic design): the
    log-magnitude on a fine grid, its cepstrum folded onto positive quefrencies and exponentiated back; the impulse
    response is cut once 1e-6 of its energy is left, with a short fade. Cached per rate and settings."""
    if sr < MIN_SR:
        raise WatermarkError(f"sample rate {sr} Hz is below {MIN_SR} Hz: too low to watermark")
    cache_key = (sr, *astuple(cfg)[1:])
    if cache_key not in _TAPS:
        n = 1 << int(np.ceil(np.log2(64 * sr / cfg.band_hz)))
        log_mag = gain_db(np.fft.rfftfreq(n, 1 / sr), cfg, sr) * (np.log(10) / 20)
        cep = np.fft.irfft(log_mag, n)
        fold = np.zeros(n)
        fold[0], fold[n // 2] = cep[0], cep[n // 2]
        fold[1 : n // 2] = 2 * cep[1 : n // 2]
        h = np.fft.irfft(np.exp(np.fft.rfft(fold)), n)
        energy = np.cumsum(h**2)
        taps = min(n, int(np.searchsorted(energy, energy[-1] * (1 - 1e-6))) + 1)
        fade = np.ones(taps)
        k = taps // 8
        fade[taps - k :] = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, k + 1) / k)
        if len(_TAPS) >= 64:  # a few rates and keys in practice; never grow without bound
            _TAPS.clear()
        _TAPS[cache_key] = h[:taps] * fade
    return _TAPS[cache_key]


class WatermarkFilter:
    """The embedding filter and its state for one stream: `process(chunk)` returns the marked chunk (same length),
    so a stream marked chunk by chunk equals the whole signal marked at once; `flush()` ends the stream. The
    filter is causal, so nothing is held back: flush returns no samples and only resets the state (the filter's
    ringing past the last sample is dropped, keeping the length)."""

    def __init__(self, sr: int, cfg: WatermarkConfig):
        self.sr, self.cfg = sr, cfg
        self.taps = design_filter(sr, cfg)
        self.tail = np.zeros(0)  # the filter's ringing past the samples returned so far

    def process(self, chunk: np.ndarray) -> np.ndarray:
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim != 1:
            raise WatermarkError(f"expected mono audio, got shape {x.shape}")
        if x.size == 0:
            return np.zeros(0, np.float32)
        if not np.all(np.isfinite(x)):
            raise WatermarkError("audio contains NaN or infinite samples")
        y = oaconvolve(x, self.taps)
        if len(self.tail) > len(y):
            y = np.concatenate([y, np.zeros(len(self.tail) - len(y))])
        y[: len(self.tail)] += self.tail
        self.tail = y[len(x) :]
        return y[: len(x)].astype(np.float32)

    def flush(self) -> np.ndarray:
        self.tail = np.zeros(0)
        return np.zeros(0, np.float32)


def embed(wave: np.ndarray, sr: int, cfg: WatermarkConfig) -> np.ndarray:
    """`wave` marked with `cfg.key` (float32 mono, same length and alignment)."""
    return WatermarkFilter(sr, cfg).process(check_wave(wave, "audio to watermark"))


def band_residuals(wave: np.ndarray, sr: int, cfg: WatermarkConfig) -> np.ndarray:
    """Each band's log energy (dB) minus the mean of its neighbours', clipped per frame and averaged over the
    loud frames; `bands - 2` values (the outer bands have one neighbour). Zeros for silent audio."""
    import librosa

    wave = check_wave(wave, "audio to check")
    if len(wave) < MIN_SECONDS * sr:
        raise WatermarkError(
            f"audio is {len(wave) / sr:.2f} s long; watermark detection needs at least {MIN_SECONDS:.1f} s"
        )
    x = resample(wave, sr, DETECT_SR)
    power = np.abs(librosa.stft(x, n_fft=N_FFT, hop_length=HOP, center=False)) ** 2  # (bins, frames)
    energy = _bumps(np.fft.rfftfreq(N_FFT, 1 / DETECT_SR), cfg, width=1.0) @ power  # (bands, frames)
    total = energy.sum(axis=0)
    if not np.any(total > 0):
        return np.zeros(cfg.bands - 2)
    loud = total >= np.percentile(total, 95) * 10 ** (-cfg.floor_db / 10)
    log = 10 * np.log10(energy[:, loud] + 1e-10 * total[loud].max())
    second = log[1:-1] - 0.5 * (log[:-2] + log[2:])
    return np.clip(second, -FRAME_CLIP_DB, FRAME_CLIP_DB).mean(axis=1)


def score(residuals: np.ndarray, cfg: WatermarkConfig) -> float:
    """The key's matched filter on `band_residuals`: rho, the correlation of its sign pattern with q (the residuals,
    outliers clipped, passed back through the second difference), as rho sqrt(n-1) / sqrt(1 - rho^2). For a sign
    pattern unrelated to the audio, <s, q> has variance |q|^2, so the score is about N(0, 1)."""
    spread = 1.4826 * float(np.median(np.abs(residuals - np.median(residuals))))
    r = np.clip(residuals, -MAD_CLIP * spread, MAD_CLIP * spread)
    q = np.zeros(cfg.bands)
    q[1:-1] += r
    q[:-2] -= 0.5 * r
    q[2:] -= 0.5 * r
    norm = float(np.linalg.norm(q))
    if norm == 0.0:
        return 0.0
    rho = float(cfg.signs() @ q) / (norm * np.sqrt(cfg.bands))
    return float(rho * np.sqrt(cfg.bands - 1) / np.sqrt(max(1.0 - rho**2, 1e-12)))


def detect(wave: np.ndarray, sr: int, cfg: WatermarkConfig) -> Detection:
    """Whether `wave` carries the watermark of `cfg.key` (silent audio scores 0: nothing can be marked in it)."""
    s = score(band_residuals(wave, sr, cfg), cfg)
    return Detection(bool(s >= cfg.threshold), s)
