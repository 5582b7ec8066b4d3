"""Codec training settings: stages, the frozen-encoder default, model overrides checked before any work."""

from __future__ import annotations

import pytest

from tts.base.config import load_config
from tts.train.codec.config import CodecTrainConfig, Stage


def test_defaults_are_the_papers_progressive_48k_recipe():
    cfg = CodecTrainConfig()
    assert [s.min_sample_rate for s in cfg.stages] == [32000, 48000]
    assert cfg.codec_config().sample_rate == 48000 and cfg.mel_weight == 15.0
    assert cfg.mpd_periods == [2, 3, 5, 7, 11]
    assert cfg.freeze_encoder is False  # no init_from: nothing to freeze


def test_encoder_is_frozen_when_loaded_and_must_be_loaded_to_be_frozen():
    assert CodecTrainConfig(init_from="some/codec").freeze_encoder is True
    assert CodecTrainConfig(init_from="some/codec", freeze_encoder=False).freeze_encoder is False
    with pytest.raises(ValueError, match="freeze_encoder needs init_from"):
        CodecTrainConfig(freeze_encoder=True)


def test_stage_boundaries():
    cfg = CodecTrainConfig(stages=[Stage(16000, 3), Stage(48000, 2)])
    assert cfg.max_steps == 5
    assert [cfg.stage_at(s) for s in range(5)] == [0, 0, 0, 1, 1]


def test_model_overrides_apply_to_the_base_config():
    cfg = load_config(CodecTrainConfig, None, ["base_config=xcodec2-tiny", "model.hidden=128", "model.heads=4"])
    codec = cfg.codec_config()
    assert codec.hidden == 128 and codec.upsample_strides == (2,) and codec.causal


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.not_a_field=1"], r"unknown XCodec2Config field\(s\) \['not_a_field'\]"),
        (["model.hidden=100", "model.heads=16"], "not divisible by heads"),
        (["base_config=xcodec2-96k"], "base_config 'xcodec2-96k'"),
        (["stages=[]"], "stages is empty"),
        (["stages=[{min_sample_rate: 16000, steps: 0}]"], r"stages\[0\].steps must be >= 1"),
        (["adversarial=wgan"], "adversarial 'wgan'"),
        (["mel_n_mels=[10]"], "mel_n_ffts and mel_n_mels differ"),
        (["segment_seconds=0.01"], "under one token"),
    ],
)
def test_bad_settings_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(CodecTrainConfig, None, overrides)
