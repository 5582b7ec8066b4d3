"""Codec training data: progressive stages by the manifest's sample_rate, whole-token crops at both rates,
batches fixed by (seed, step, rank)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.tts.train.codec.tiny_corpus import write_tiny_corpus
from tts.base.audio import resample
from tts.train.codec.config import CodecTrainConfig, Stage
from tts.train.codec.data import Segments, clips, held_out, plan_stages, read_span, stage_clips


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    rates = {"train": [16000, 22050, 32000, 44100, 48000, 48000], "val": [16000, 48000]}
    resample(np.zeros(100, np.float32), 44100, 16000)  # librosa's lazy imports (seconds) once, not in a test
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus"), rates)


def config(manifest, **kw) -> CodecTrainConfig:
    return CodecTrainConfig(manifest=str(manifest), base_config="xcodec2-tiny", **kw)


def test_stages_select_rows_by_sample_rate(manifest):
    cfg = config(manifest)  # the paper's stages: >= 32 kHz, then native 48 kHz
    train = clips(cfg, "train")
    assert [c.sample_rate for c in stage_clips(train, 32000)] == [32000, 44100, 48000, 48000]
    assert [c.sample_rate for c in stage_clips(train, 48000)] == [48000, 48000]
    plan = plan_stages(cfg, train)
    assert [p["rows"] for p in plan] == [4, 2] and plan[0]["hours"] > 0


def test_a_stage_without_rows_names_the_manifests_rates(manifest):
    cfg = config(manifest, stages=[Stage(16000, 10), Stage(96000, 10)])
    with pytest.raises(ValueError, match=r"stage 2 \(sample_rate >= 96000 Hz\) selects no train rows.*16000: 1"):
        plan_stages(cfg, clips(cfg, "train"))


def test_languages_filter(manifest):
    assert clips(config(manifest, languages=["de"]), "train") == []
    assert len(clips(config(manifest, languages=["en"]), "train")) == 6


def test_read_span_resamples_and_pads(manifest):
    clip = [c for c in clips(config(manifest), "train") if c.sample_rate == 44100][0]
    enc, tgt = read_span(clip, clip.seconds - 0.1, 0.2, (16000, 48000))
    assert enc.shape == (3200,) and tgt.shape == (9600,)
    assert np.all(tgt[-4000:] == 0)  # past the end of the file
    native, _ = sf.read(clip.path, dtype="float32")
    enc, tgt = read_span(clip, 0.1, 0.2, (16000, 48000))
    a = int(0.1 * 44100)
    rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
    assert rms(enc) == pytest.approx(rms(native[a : a + 8820]), rel=0.05)  # the same span, resampled
    assert rms(tgt) == pytest.approx(rms(native[a : a + 8820]), rel=0.05)


def test_batches_are_fixed_by_seed_step_and_rank(manifest):
    train = clips(config(manifest), "train")
    seg = Segments(train, tokens=10, sample_rate=48000, seed=0)
    enc, tgt = seg.batch(step=3, rank=0, batch_size=4, stage_min_rate=32000)
    assert enc.shape == (4, 10 * 320) and tgt.shape == (4, 10 * 960)
    again = Segments(train, tokens=10, sample_rate=48000, seed=0).batch(3, 0, 4, 32000)
    np.testing.assert_array_equal(enc, again[0])
    assert not np.array_equal(enc, seg.batch(4, 0, 4, 32000)[0])
    assert not np.array_equal(enc, seg.batch(3, 1, 4, 32000)[0])


def test_held_out_whole_utterances_of_the_last_stage(manifest):
    cfg = config(manifest, eval_utterances=5)  # last stage: >= 48 kHz -> the one 48 kHz val row
    items = held_out(cfg, 16000)
    assert [uid for uid, _, _ in items] == ["val_01_48000"]
    uid, enc, tgt = items[0]
    assert len(enc) % 320 == 0 and len(enc) == len(tgt)
    assert held_out(config(manifest, eval_utterances=0), 16000) == []
