"""Tests for our onnxruntime DNSMOS scorer (rewards/dnsmos.py) against the official script vendored in speechmos."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from speechmos import dnsmos as reference

import rewards.dnsmos as dnsmos
from rewards.dnsmos import P808, P835, P835_PERSONALIZED, DnsmosModel, model_path, p808_features, windows
from rewards.weights import WeightsError
from tts.base.audio import AudioError
from tts.corpus.generate import speak
from tts.corpus.voices import Speaker

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH")

SR = 16000
SPEAKER = Speaker("t", "en", "en-us+m1")
FIRST = "The quick brown fox jumps over the lazy dog near the river bank."
SECOND = (
    "Please call Stella and ask her to bring these things with her from the store, "
    "six spoons of fresh snow peas and a snack for her brother Bob."
)
SHORT_S = 2.5  # tiled to 10 s: one window (a 4 s clip would tile to 16 s and cost seven)
FIELDS = ("ovrl", "sig", "bak", "p808")


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    first = speak(SPEAKER, FIRST, SR)
    noise = np.random.default_rng(0).normal(0.0, 0.1, 5 * SR).clip(-1, 1).astype(np.float32)
    return {
        "short": first[: int(SHORT_S * SR)],
        "long": np.concatenate([first, speak(SPEAKER, SECOND, SR)]),  # ~12 s: three windows
        "noise": noise,
    }


@pytest.fixture(scope="module")
def scorers() -> dict[bool, DnsmosModel]:
    return {False: DnsmosModel(), True: DnsmosModel(personalized=True)}


@pytest.fixture(scope="module")
def batch(clips, scorers) -> dict[bool, dict[str, dnsmos.DnsmosScores]]:
    return {p: dict(zip(clips, s.score_batch(list(clips.values()), [SR] * len(clips)))) for p, s in scorers.items()}


# --- agreement with the official script ---------------------------------------------------------------------


@needs_espeak
def test_clip_lengths_cover_tiling_and_averaging(clips):
    assert len(clips["short"]) < dnsmos.WINDOW and len(windows(clips["short"])) == 1
    assert len(clips["long"]) > dnsmos.WINDOW and len(windows(clips["long"])) >= 3


@needs_espeak
@pytest.mark.parametrize("personalized", [False, True], ids=["dnsmos", "personalized"])
@pytest.mark.parametrize("clip", ["short", "long", "noise"])
def test_matches_reference(clips, batch, clip, personalized):
    ref = reference.run(clips[clip], SR, model_type="dnsmos_personalized" if personalized else "dnsmos")
    ours = batch[personalized][clip].as_dict()
    assert set(ours) == set(FIELDS) and set(ref) == {f"{f}_mos" for f in FIELDS}
    for field in FIELDS:
        assert ours[field] == pytest.approx(float(ref[f"{field}_mos"]), abs=1e-3), field


class _Recorder:
    """Stands in for an ONNX session inside the reference to capture exactly what it feeds the models."""

    def __init__(self) -> None:
        self.inputs: list[np.ndarray] = []

    def run(self, _outputs, feeds):
        x = feeds["input_1"]
        self.inputs.append(x[0])
        return [np.zeros((1, 3 if x.ndim == 2 else 1), np.float32)]


def test_windows_and_p808_features_match_reference_cut():
    # 40 s: the reference's float end index drops hops 7-23, so this also pins that quirk.
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, 40 * SR).astype(np.float32)
    ref = object.__new__(reference.DNSMOS)
    ref.onnx_sess, ref.p808_onnx_sess = _Recorder(), _Recorder()
    ref(audio, SR, False)
    ours = windows(audio)
    assert len(ours) == 14
    np.testing.assert_array_equal(ours, np.stack(ref.onnx_sess.inputs))
    np.testing.assert_allclose(p808_features(ours), np.stack(ref.p808_onnx_sess.inputs), atol=1e-5)


def test_personalized_mode_uses_pdnsmos_and_the_same_p808():
    assert "pdnsmos" in P835_PERSONALIZED and "pdnsmos" not in P835 + P808


# --- behaviour ----------------------------------------------------------------------------------------------


@needs_espeak
def test_clean_speech_scores_above_noise(batch):
    assert batch[False]["short"].ovrl > batch[False]["noise"].ovrl + 0.8


@needs_espeak
def test_batch_equals_one_by_one(clips, scorers, batch):
    for name in ("short", "noise"):
        one = scorers[False].score(clips[name], SR).as_dict()
        for key, value in batch[False][name].as_dict().items():
            assert one[key] == pytest.approx(value, abs=1e-5), (name, key)


@needs_espeak
def test_22khz_input_is_resampled(scorers, batch):
    wave = speak(SPEAKER, FIRST, 22050)[: int(SHORT_S * 22050)]
    got, want = scorers[False].score(wave, 22050).as_dict(), batch[False]["short"].as_dict()
    for key in FIELDS:
        assert got[key] == pytest.approx(want[key], abs=5e-3), key


def test_out_of_range_samples_are_clipped(scorers):
    loud = np.random.default_rng(2).normal(0.0, 2.0, int(SHORT_S * SR)).astype(np.float32)
    a, b = scorers[False].score_batch([loud, np.clip(loud, -1, 1)], [SR, SR])
    assert a == b


@pytest.mark.parametrize("wave", [np.zeros(0, np.float32), np.array([0.1, np.nan, 0.2], np.float32)])
def test_empty_or_nan_audio_raises(scorers, wave):
    with pytest.raises(AudioError):
        scorers[False].score(wave, SR)


def test_batch_argument_checks(scorers):
    assert scorers[False].score_batch([], []) == []
    with pytest.raises(ValueError, match="sample rates"):
        scorers[False].score_batch([np.zeros(SR, np.float32)], [])


# --- pinned model files -------------------------------------------------------------------------------------


def test_wrong_digest_raises(monkeypatch):
    monkeypatch.setitem(dnsmos.DIGESTS, P808, "0" * 64)
    with pytest.raises(WeightsError, match="SHA-256"):
        DnsmosModel()


def test_model_dir_with_wheel_layout(tmp_path):
    for relpath in (P835, P808):
        (tmp_path / relpath).parent.mkdir(exist_ok=True)
        shutil.copy(model_path(relpath), tmp_path / relpath)
    DnsmosModel(model_dir=str(tmp_path))
    with pytest.raises(WeightsError, match="missing"):
        DnsmosModel(model_dir=str(tmp_path), personalized=True)
    with open(tmp_path / P808, "ab") as f:
        f.write(b"\0")
    with pytest.raises(WeightsError, match="SHA-256"):
        DnsmosModel(model_dir=str(tmp_path))


@needs_espeak
def test_reward_mode_scores_first_windows_and_skips_p808(clips, scorers):
    """windows_per_clip=1 scores what the official mean starts from (its first window); p808=False leaves the
    P.808 MOS out (NaN) and keeps the P.835 heads unchanged."""
    fast = DnsmosModel(windows_per_clip=1, p808=False)
    long = clips["long"]
    first_only = scorers[False].score_batch([windows(long)[0]], [SR])[0]
    got = fast.score(long, SR)
    for key in ("ovrl", "sig", "bak"):
        assert getattr(got, key) == pytest.approx(getattr(first_only, key), abs=1e-4)
    assert np.isnan(got.p808)
    official = scorers[False].score(long, SR)
    assert got.ovrl != pytest.approx(official.ovrl, abs=1e-6)  # the long clip's windows differ: not the same score
    short = fast.score(clips["short"], SR)  # one window anyway: the official score exactly
    assert short.ovrl == pytest.approx(scorers[False].score(clips["short"], SR).ovrl, abs=1e-5)
    with pytest.raises(ValueError, match="windows_per_clip"):
        DnsmosModel(windows_per_clip=0)
