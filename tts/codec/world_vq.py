"""Embedded codec: WORLD vocoder parameters, product-quantised into one code per 20 ms frame.

Why this design: espeak-ng speech is source-filter speech, so a source-filter vocoder (WORLD) resynthesises
it far better than Griffin-Lim of a quantised mel spectrogram (ENVIRONMENT.md measured WER 4x, OVRL -0.6 for
that probe). A 20 ms code is `f0_bin * env_clusters + env_cluster`: f0 on a log grid (bin 0 = unvoiced)
times a k-means cluster of the mel-cepstral envelope and band aperiodicity of its two 10 ms WORLD sub-frames.
The envelope gets most of the 16 bits (8 f0 bins x 8,192 clusters): 8 plain f0 bins would flatten intonation,
so the encoder dithers them (error diffusion) and the decoder smooths log f0 over neighbouring codes.
Fitting is a k-means on the corpus (minutes on 2 cores), so the codec is reproducible from the corpus alone.
The codebook's rows are real training frames, each the one nearest a k-means centre: a centre averages many
frames and blurs their formants (docs/codec.md). The fit also sees vocal-tract-length-warped copies
of its frames, so that voices it has not heard (the held-out test speakers) find near codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pyworld as pw
from tqdm import tqdm

from tts.base.audio import load_audio
from tts.codec.base import Codec, read_codec_manifest, write_manifest

KIND = "world_vq"
WEIGHTS = "world_vq.npz"
PLAIN_F0 = {"f0_error_diffusion": False, "f0_smoothing": 1}  # f0 coding of the codecs fitted before both fields


@dataclass(frozen=True)
class WorldVQConfig:
    sample_rate: int = 16000
    frame_rate: int = 50
    fft_size: int = 1024
    envelope_dims: int = 40  # mel-cepstral coefficients of the WORLD envelope
    f0_bins: int = 8  # including bin 0 = unvoiced
    f0_min: float = 60.0
    f0_max: float = 420.0
    env_clusters: int = 8192  # 8 x 8192 = 65,536 codes, the paper's codebook size
    aperiodicity_weight: float = 4.0  # scales band aperiodicity (dB/20) against the cepstrum in k-means
    subframes: int = 2  # WORLD analysis runs at subframes x frame_rate; one code quantises the trajectory
    synthesis_upsample: int = 2  # decode on a finer grid than the sub-frames (interpolated): no stair-steps
    f0_error_diffusion: bool = True  # encoder carries each voiced code's log-f0 rounding error to the next one
    f0_smoothing: int = 5  # decoder log-averages f0 over this many neighbouring codes (triangular window; 1: off)

    @property
    def codebook_size(self) -> int:
        return self.f0_bins * self.env_clusters

    @property
    def code_dims(self) -> int:
        """Width of one codebook row: the sub-frames' cepstra and aperiodicity bands side by side."""
        return self.subframes * (self.envelope_dims + pw.get_num_aperiodicities(self.sample_rate))

    @property
    def frame_period_ms(self) -> float:
        return 1000.0 / self.frame_rate

    @property
    def analysis_period_ms(self) -> float:
        return self.frame_period_ms / self.subframes


def analyse(wave: np.ndarray, cfg: WorldVQConfig) -> tuple[np.ndarray, np.ndarray]:
    """WORLD analysis: per code, (f0 [T], the sub-frames' features side by side [T, subframes * dims]).

    20 ms WORLD frames blur espeak's fast transitions (WER doubled in our probe); 10 ms sub-frames do not.
    """
    x = wave.astype(np.float64)
    fs, k = cfg.sample_rate, cfg.subframes
    f0, t = pw.dio(x, fs, f0_floor=cfg.f0_min, f0_ceil=cfg.f0_max, frame_period=cfg.analysis_period_ms)
    f0 = pw.stonemask(x, f0, t, fs)
    sp = pw.cheaptrick(x, f0, t, fs, fft_size=cfg.fft_size)
    ap = pw.d4c(x, f0, t, fs, fft_size=cfg.fft_size)
    n = -(-len(wave) // (fs // cfg.frame_rate))  # ceil: one code per hop of input
    feats = np.hstack(
        [
            pw.code_spectral_envelope(sp, fs, cfg.envelope_dims),
            pw.code_aperiodicity(ap, fs) / 20.0 * cfg.aperiodicity_weight,
        ]
    )
    pad = n * k - len(f0)
    if pad > 0:
        f0, feats = np.pad(f0, (0, pad)), np.pad(feats, ((0, pad), (0, 0)), mode="edge")
    f0 = f0[: n * k].reshape(n, k)
    voiced = f0 > 0
    logf0 = np.where(voiced, np.log(np.maximum(f0, 1e-3)), 0.0).sum(1) / np.maximum(voiced.sum(1), 1)
    f0_code = np.where(voiced.sum(1) * 2 >= k, np.exp(logf0), 0.0)  # voiced if at least half the sub-frames are
    return f0_code, feats[: n * k].reshape(n, -1)


class WorldVQCodec(Codec):
    def __init__(self, cfg: WorldVQConfig, centroids: np.ndarray):
        if centroids.shape != (cfg.env_clusters, cfg.code_dims):
            raise ValueError(
                f"codebook of shape {centroids.shape} does not fit the config: expected {cfg.env_clusters} clusters x"
                f" {cfg.code_dims} features ({cfg.subframes} sub-frames of {cfg.envelope_dims} cepstra + aperiodicity)"
            )
        self.cfg = cfg
        self.frame_rate = cfg.frame_rate
        self.centroids = centroids.astype(np.float64)
        self._c2 = (self.centroids**2).sum(1)
        edges = np.linspace(np.log(cfg.f0_min), np.log(cfg.f0_max), cfg.f0_bins)  # bins 1..f0_bins-1
        self._f0_edges = edges
        self._log_f0_centres = np.concatenate([[0.0], (edges[:-1] + edges[1:]) / 2])  # bin 0 (unvoiced): 0
        self._f0_centres = np.exp(self._log_f0_centres)
        self._f0_centres[0] = 0.0

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def encoder_sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def codebook_size(self) -> int:
        return self.cfg.codebook_size

    def quantise(self, f0: np.ndarray, feats: np.ndarray) -> np.ndarray:
        d = self._c2[None, :] - 2.0 * feats @ self.centroids.T
        env = d.argmin(1)
        return self.f0_codes(f0) * self.cfg.env_clusters + env

    def f0_codes(self, f0: np.ndarray) -> np.ndarray:
        """f0 bin per code (0: unvoiced). With error diffusion (sigma-delta) the bins dither between
        neighbours so that the decoder's smoothed contour follows the true one, not the bin centres: with 8 bins,
        DNSMOS OVRL drops 0.26 instead of 0.57 (docs/codec.md)."""
        bins = np.zeros(len(f0), dtype=np.int64)
        voiced = f0 > 0
        if not self.cfg.f0_error_diffusion:
            bins[voiced] = self._nearest_bin(np.log(f0[voiced]))
            return bins
        err = 0.0
        for t in np.flatnonzero(voiced):
            if t > 0 and not voiced[t - 1]:
                err = 0.0  # a new voiced run starts from its own f0
            target = np.log(f0[t]) + err
            bins[t] = self._nearest_bin(target)
            err = target - self._log_f0_centres[bins[t]]
        return bins

    def _nearest_bin(self, logf0: np.ndarray | float) -> np.ndarray:
        return np.clip(np.searchsorted(self._f0_edges, logf0), 1, self.cfg.f0_bins - 1)

    def decoded_f0(self, codes: np.ndarray) -> np.ndarray:
        """f0 per voiced code: the log-average of the bin centres of the voiced codes among its `f0_smoothing`
        neighbours (triangular weights); unvoiced codes stay 0."""
        from scipy.ndimage import convolve1d  # zero beyond the ends, output as long as the input

        bins, w = codes // self.cfg.env_clusters, self.cfg.f0_smoothing
        if w <= 1:
            return self._f0_centres[bins]
        voiced = bins > 0
        kernel = np.bartlett(w + 2)[1:-1]
        num = convolve1d(self._log_f0_centres[bins], kernel, mode="constant")  # unvoiced codes add 0
        den = convolve1d(voiced.astype(float), kernel, mode="constant")
        return np.where(voiced, np.exp(num / np.maximum(den, 1e-9)), 0.0)

    def _encode(self, wave: np.ndarray) -> np.ndarray:
        return self.quantise(*analyse(wave, self.cfg))

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        cfg, up, k = self.cfg, self.cfg.synthesis_upsample, self.cfg.subframes
        f0 = np.repeat(self.decoded_f0(codes), k)
        feats = self.centroids[codes % cfg.env_clusters].reshape(len(codes) * k, -1)
        # Interpolate on a finer grid: log-f0 inside voiced runs, envelope everywhere.
        n = len(f0)
        grid = np.arange((n - 1) * up + 1) / up
        frames = np.arange(n)
        env = np.stack([np.interp(grid, frames, feats[:, k]) for k in range(feats.shape[1])], axis=1)
        voiced = f0 > 0
        logf0 = np.interp(grid, frames, np.log(np.where(voiced, f0, 1.0)))
        near_voiced = voiced[np.rint(grid).astype(int)]
        f0_fine = np.where(near_voiced, np.exp(logf0), 0.0)
        fs = cfg.sample_rate
        sp = pw.decode_spectral_envelope(np.ascontiguousarray(env[:, : cfg.envelope_dims]), fs, cfg.fft_size)
        bap = np.ascontiguousarray(env[:, cfg.envelope_dims :] * 20.0 / cfg.aperiodicity_weight)
        ap = pw.decode_aperiodicity(bap, fs, cfg.fft_size)
        y = pw.synthesize(f0_fine, sp, ap, fs, cfg.analysis_period_ms / up)
        out = np.zeros(len(codes) * self.hop_length, dtype=np.float32)
        m = min(len(y), len(out))
        out[:m] = y[:m]
        return out

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / WEIGHTS, centroids=self.centroids.astype(np.float32))
        write_manifest(directory, KIND, WEIGHTS, asdict(self.cfg))
        return directory

    @classmethod
    def codebook_size_of(cls, config: dict) -> int:
        return WorldVQConfig(**{**PLAIN_F0, **config}).codebook_size

    @classmethod
    def load(cls, directory: str | Path) -> WorldVQCodec:
        manifest, weights = read_codec_manifest(directory, KIND)
        config = {**PLAIN_F0, **manifest["config"]}  # checkpoints from before f0 dithering keep their plain bins
        with np.load(weights) as z:
            return cls(WorldVQConfig(**config), z["centroids"])


def warp_envelope(coded: np.ndarray, alpha: float, cfg: WorldVQConfig) -> np.ndarray:
    """Vocal-tract-length warp of coded envelopes [N, envelope_dims]: a formant at f moves to alpha * f.

    The fit adds warped copies of its frames so that the codebook also covers voices whose formants sit
    between or beyond the training speakers' (held-out speakers' round-trip WER: docs/results.md)."""
    from scipy.interpolate import interp1d

    sp = pw.decode_spectral_envelope(np.ascontiguousarray(coded, dtype=np.float64), cfg.sample_rate, cfg.fft_size)
    bins = np.arange(sp.shape[1])
    log_sp = interp1d(bins, np.log(sp), axis=1)(np.clip(bins / alpha, 0, bins[-1]))  # output bin b reads b / alpha
    return pw.code_spectral_envelope(np.ascontiguousarray(np.exp(log_sp)), cfg.sample_rate, coded.shape[1])


def warped_copies(
    per_file: list[np.ndarray], cfg: WorldVQConfig, copies: int, warp_range: tuple[float, float], seed: int
) -> list[np.ndarray]:
    """`copies` warped versions of each file's code features, one alpha per file (log-uniform in
    `warp_range`); aperiodicity is left as it is."""
    rng = np.random.default_rng(seed)
    lo, hi = np.log(warp_range[0]), np.log(warp_range[1])
    out = []
    for _ in range(copies):
        for feats in per_file:
            sub = feats.reshape(len(feats) * cfg.subframes, -1).copy()  # one row per sub-frame
            sub[:, : cfg.envelope_dims] = warp_envelope(sub[:, : cfg.envelope_dims], np.exp(rng.uniform(lo, hi)), cfg)
            out.append(sub.reshape(feats.shape))
    return out


def nearest_frames(centres: np.ndarray, x: np.ndarray) -> np.ndarray:
    """For each centre, the row of `x` nearest to it (sklearn works in memory-bounded chunks: 150k x 4,096
    distances at once would take 5 GB)."""
    from sklearn.metrics import pairwise_distances_argmin

    return x[pairwise_distances_argmin(centres, x)]


def _analyse_file(args: tuple[str, WorldVQConfig]) -> tuple[np.ndarray, np.ndarray] | str:
    path, cfg = args
    try:
        wave, _ = load_audio(path, cfg.sample_rate)
        return analyse(wave, cfg)
    except ValueError as exc:  # AudioError: counted by the caller, never fatal
        return str(exc)


def fit(
    paths: Sequence[str | Path],
    cfg: WorldVQConfig = WorldVQConfig(),
    workers: int = 2,
    seed: int = 0,
    max_frames: int = 300_000,
    max_iter: int = 25,
    warps: int = 1,
    warp_range: tuple[float, float] = (0.88, 1.15),
) -> tuple[WorldVQCodec, dict]:
    """Fit the envelope k-means on `paths` plus `warps` vocal-tract-length-warped copies of each file (at
    most `max_frames` random frames, which keeps the fit within ~10 min on 2 cores), each centre then
    replaced by its nearest training frame; returns the codec and fit statistics. Unreadable files are
    skipped and listed."""
    from sklearn.cluster import KMeans

    feats, bad = [], []
    jobs = [(str(p), cfg) for p in paths]
    with get_context("spawn").Pool(workers) as pool:
        for res in tqdm(pool.imap(_analyse_file, jobs, chunksize=4), total=len(jobs), desc="WORLD analysis"):
            if isinstance(res, str):
                bad.append(res)
            else:
                feats.append(res[1])
    if not feats:
        raise ValueError(f"no usable audio among {len(paths)} files; first error: {bad[:1]}")
    x = np.concatenate(feats + (warped_copies(feats, cfg, warps, warp_range, seed) if warps else []))
    if len(x) > max_frames:
        x = x[np.random.default_rng(seed).choice(len(x), max_frames, replace=False)]
    if len(x) < cfg.env_clusters:
        raise ValueError(f"{len(x)} frames cannot fit {cfg.env_clusters} clusters; give the fit more audio")
    km = KMeans(cfg.env_clusters, n_init=1, max_iter=max_iter, random_state=seed).fit(x)
    stats = {
        "files": len(feats),
        "bad_files": bad,
        "frames": int(len(x)),
        "warps": warps,
        "warp_range": list(warp_range),
        "inertia_per_frame": float(km.inertia_ / len(x)),
        "codebook": "the training frames (or their warped copies) nearest the k-means centres",
    }
    return WorldVQCodec(cfg, nearest_frames(km.cluster_centers_, x)), stats


def fit_from_manifest(
    manifest: str | Path,
    out: str | Path,
    cfg: WorldVQConfig = WorldVQConfig(),
    max_files: int = 1200,
    split: str = "train",
    seed: int = 0,
    workers: int = 2,
    **fit_options,
) -> dict:
    """Fit on up to `max_files` rows of one split (a seeded sample across languages and speakers), save the
    codec to `out` with its checksum, and write `out/fit.json` (statistics, timing, settings). `fit_options`
    go to `fit` (max_frames, max_iter, warps, warp_range)."""
    import json
    import random
    import time

    from tts.base.manifest import iter_manifest

    manifest = Path(manifest)
    errors: list[str] = []
    rows = list(iter_manifest(manifest, split=split, errors=errors))
    if not rows:
        raise ValueError(f"{manifest}: no usable rows in split {split!r} ({len(errors)} bad rows)")
    rows = random.Random(seed).sample(rows, min(max_files, len(rows)))
    start = time.time()
    paths = [r.wav_path(manifest.parent) for r in rows]
    codec, stats = fit(paths, cfg, workers=workers, seed=seed, **fit_options)
    codec.save(out)
    stats |= {
        "manifest": str(manifest),
        "split": split,
        "bad_rows": errors,
        "seconds": round(time.time() - start, 1),
        "config": asdict(cfg),
        "seed": seed,
    }
    (Path(out) / "fit.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats
