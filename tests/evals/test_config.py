"""Evaluation configs: the shipped YAML files load, bad bucket or set settings are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.config import EvalConfig, SetsConfig
from tts.base.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "rayjobs" / "configs"


@pytest.mark.parametrize("name", ["eval_embedded.yaml", "eval_production.yaml"])
def test_shipped_configs_load(name):
    cfg = load_config(EvalConfig, CONFIGS / name)
    assert cfg.meta
    # production names its codec; the embedded run uses the one its SpeechLM records (tts.speechlm.open_speechlm)
    assert bool(cfg.synthesis.codec_dir) == (name == "eval_production.yaml")


def test_seed_tts_eval_config_runs_their_asr_per_language():
    cfg = load_config(EvalConfig, CONFIGS / "eval_seed_tts.yaml")
    assert cfg.protocol == "seed-tts-eval" and cfg.asr_languages == ["en", "zh"]
    assert cfg.rewards.asr.backend == "transformers-whisper" and cfg.rewards.asr.model
    assert cfg.rewards.asr.per_language["zh"]["backend"] == "paraformer"
    assert cfg.rewards.speaker.backend == "wavlm_ecapa"


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="increasing character bounds"):
        load_config(EvalConfig, None, ["buckets={short: 50, medium: 20}"])
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        load_config(EvalConfig, None, ["chunk=0"])
    with pytest.raises(ValueError, match="short_chars .* must lie in the short bucket"):
        SetsConfig(short_chars=[3, 60])
    with pytest.raises(ValueError, match="long_chars"):
        SetsConfig(long_chars=[100, 200])
    with pytest.raises(ValueError, match="markup_takes must be >= 1"):
        SetsConfig(markup_takes=0)
