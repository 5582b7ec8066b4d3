"""DNSMOS (P.835 SIG/BAK/OVRL and P.808 MOS) of speech, run with onnxruntime on the official DNS-Challenge models.

The ONNX files are borrowed from the `speechmos` wheel (or a directory with the same layout) and pinned by SHA-256.
The maths reproduces the official `dnsmos_local.py` (vendored as `speechmos.dnsmos`) so our scores stay comparable
with published DNSMOS numbers; unlike it, the windows of a whole batch of clips go through each model in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import librosa
import numpy as np
import onnxruntime as ort

from rewards.weights import WeightsError, package_file, verify
from tts.base.audio import check_wave, resample

SAMPLE_RATE = 16000
INPUT_LENGTH = 9.01  # seconds per model window, hop 1 s
WINDOW = int(INPUT_LENGTH * SAMPLE_RATE)  # 144160 samples

P835 = "dnsmos_models/sig_bak_ovr.onnx"
P835_PERSONALIZED = "pdnsmos_models/sig_bak_ovr.onnx"
P808 = "dnsmos_models/model_v8.onnx"  # the personalised mode keeps this P.808 model, as the official script does
# Pinned files of speechmos 0.0.1.1.
DIGESTS = {
    P835: "269fbebdb513aa23cddfbb593542ecc540284a91849ac50516870e1ac78f6edd",
    P835_PERSONALIZED: "9e3a197449ca2177f0997afec3bd6b890117ce2f17b89d6eea7fa0d47272c81c",
    P808: "9246480c58567bc6affd4200938e77eef49468c8bc7ed3776d109c07456f6e91",
}

# Official polynomials mapping the raw SIG, BAK, OVRL outputs to MOS (highest power first), applied per window.
POLYNOMIALS = {
    False: (
        [-0.08397278, 1.22083953, 0.0052439],
        [-0.13166888, 1.60915514, -0.39604546],
        [-0.06766283, 1.11546468, 0.04602535],
    ),
    True: (
        [-0.01019296, 0.02751166, 1.19576786, -0.24348726],
        [-0.04976499, 0.44276479, -0.1644611, 0.96883132],
        [-0.00533021, 0.005101, 1.18058466, -0.11236046],
    ),
}


@dataclass
class DnsmosScores:
    ovrl: float
    sig: float
    bak: float
    p808: float

    def as_dict(self) -> dict[str, float]:
        """Field-keyed (ovrl, sig, bak, p808), the keys reward heads select; the official script adds `_mos`."""
        return asdict(self)


def model_path(relpath: str, model_dir: str | None = None) -> Path:
    """Pinned model file from the speechmos wheel, or from `model_dir` laid out like the wheel."""
    if model_dir is None:
        return package_file("speechmos", relpath, DIGESTS[relpath])
    path = Path(model_dir) / relpath
    if not path.is_file():
        raise WeightsError(f"{path}: missing; the DNSMOS model_dir must hold {relpath} as laid out in speechmos")
    verify(path, DIGESTS[relpath])
    return path


def windows(audio: np.ndarray) -> np.ndarray:
    """(n, WINDOW) model windows of 16 kHz audio, cut exactly as the official script cuts them.

    Short clips are doubled until they fill a window. The end index is computed in float and truncated, which
    lands one sample short for some hops (7-23, 119-122); the official script skips those windows, and so do we.
    """
    while len(audio) < WINDOW:
        audio = np.concatenate([audio, audio])
    hops = int(np.floor(len(audio) / SAMPLE_RATE) - INPUT_LENGTH) + 1
    segments = [audio[int(i * SAMPLE_RATE) : int((i + INPUT_LENGTH) * SAMPLE_RATE)] for i in range(hops)]
    return np.stack([s for s in segments if len(s) == WINDOW])


def p808_features(batch: np.ndarray) -> np.ndarray:
    """(n, 900, 120) P.808 input: 120-band log-mel of each window minus its last 160 samples, dB from its own max."""
    mel = librosa.feature.melspectrogram(y=batch[:, :-160], sr=SAMPLE_RATE, n_fft=321, hop_length=160, n_mels=120)
    db = np.stack([librosa.power_to_db(m, ref=np.max) for m in mel])
    return ((db + 40) / 40).transpose(0, 2, 1).astype(np.float32)


class DnsmosModel:
    """DNSMOS of mono clips at any rate; `personalized` uses pDNSMOS, which penalises interfering talkers."""

    def __init__(
        self,
        model_dir: str | None = None,
        personalized: bool = False,
        threads: int = 1,
        max_windows: int = 4,
        windows_per_clip: int | None = None,
        p808: bool = True,
    ) -> None:
        if max_windows < 1:
            raise ValueError(f"max_windows must be >= 1, got {max_windows}")
        if windows_per_clip is not None and windows_per_clip < 1:
            raise ValueError(f"windows_per_clip must be >= 1 or None (every hop), got {windows_per_clip}")
        # The official score averages every 1 s hop of a clip doubled to >= 9.01 s: a 4 s clip makes 5-7 windows
        # that overlap by 8 s. A reward can take the first few (`windows_per_clip`) and skip P.808 (its mel
        # features cost as much as the P.835 model); published tables need the defaults.
        self.windows_per_clip, self.p808 = windows_per_clip, p808
        # The P.835 model's activations grow linearly with the windows of one call and onnxruntime's arena keeps
        # its peak: one call with a few dozen windows held ~10 GB per actor, and was no faster on CPU.
        self.max_windows = max_windows
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        paths = [model_path(P835_PERSONALIZED if personalized else P835, model_dir), model_path(P808, model_dir)]
        self._p835, self._p808 = (
            ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for p in paths
        )
        self._polynomials = POLYNOMIALS[personalized]

    def score(self, wave: np.ndarray, sr: int) -> DnsmosScores:
        return self.score_batch([wave], [sr])[0]

    def score_batch(self, waves: Sequence[np.ndarray], srs: Sequence[int]) -> list[DnsmosScores]:
        """Scores per clip; raises `AudioError` on empty or non-finite audio, clips samples outside [-1, 1]."""
        if len(waves) != len(srs):
            raise ValueError(f"{len(waves)} waves but {len(srs)} sample rates")
        if not waves:
            return []
        clips = [
            windows(np.clip(resample(check_wave(w, f"clip {i}"), sr, SAMPLE_RATE), -1.0, 1.0))[: self.windows_per_clip]
            for i, (w, sr) in enumerate(zip(waves, srs))
        ]
        batch = np.concatenate(clips)
        # Both models declare a dynamic batch dimension ('N'): windows of all clips go in calls of `max_windows`.
        parts = [batch[i : i + self.max_windows] for i in range(0, len(batch), self.max_windows)]
        raw = np.concatenate([self._p835.run(None, {"input_1": x})[0] for x in parts])
        if self.p808:
            p808 = np.concatenate([self._p808.run(None, {"input_1": p808_features(x)})[0][:, 0] for x in parts])
        else:
            p808 = np.full(len(batch), np.nan)
        sig, bak, ovrl = (np.polyval(c, raw[:, k]) for k, c in enumerate(self._polynomials))
        bounds = np.cumsum([len(c) for c in clips])[:-1]
        return [
            DnsmosScores(ovrl=float(o.mean()), sig=float(s.mean()), bak=float(b.mean()), p808=float(p.mean()))
            for o, s, b, p in zip(*(np.split(x, bounds) for x in (ovrl, sig, bak, p808)))
        ]
