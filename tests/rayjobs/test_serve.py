"""Serve job configs: every ServeConfig YAML loads, and the Serve config file passes Ray's own schema."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from tts.base.config import load_config
from tts.serve.config import BACKENDS, ServeConfig
from tts.speechlm import open_speechlm

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "rayjobs" / "configs"


@pytest.mark.parametrize("name", ["serve_embedded.yaml", "serve_production.yaml"])
def test_app_configs_load(name):
    cfg = load_config(ServeConfig, CONFIGS / name)
    assert cfg.generation.backend in BACKENDS
    if name == "serve_embedded.yaml":  # no codec configured: the one the committed SpeechLM records
        assert cfg.codec is None and open_speechlm(ROOT / cfg.model).codec.directory.name == "codec-wordsync"
    cfg.generation.deployment.options()  # autoscaling or fixed replicas, as Serve takes them


def test_production_autoscales_vllm():
    cfg = load_config(ServeConfig, CONFIGS / "serve_production.yaml")
    opts = cfg.generation.deployment.options()
    assert cfg.generation.backend == "vllm" and "autoscaling_config" in opts and "num_replicas" not in opts


def test_serve_deploy_file_matches_rays_schema():
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(yaml.safe_load((CONFIGS / "serve_deploy.yaml").read_text()))
    app = schema.applications[0]
    assert app.import_path == "tts.serve.app:app_builder"
    assert load_config(ServeConfig, CONFIGS.parent.parent / app.args["config"]).model
    # what `serve run` does with the file before deploying: import the builder and build the application
    from ray import serve
    from ray.serve._private.utils import import_attr

    assert isinstance(import_attr(app.import_path)(app.args), serve.Application)


def test_embedded_app_has_preset_voices_for_the_arena():
    from tts.serve.arena import contenders
    from tts.serve.voices import corpus_speaker

    cfg = load_config(ServeConfig, CONFIGS / "serve_embedded.yaml")
    assert contenders(cfg) == ["speechlm-embedded/default", "speechlm-embedded/alice", "speechlm-embedded/bob"]
    assert all(corpus_speaker(v.speaker).held_out for v in cfg.voices)


def test_a_model_and_codec_that_do_not_belong_together_stop_the_app_before_it_starts(tmp_path, caplog):
    """build_app opens the pair through the one door: a codebook of another size is an error naming both, another
    codec of the same size is served with a warning naming both (a retrained decoder keeps the codes' meaning)."""
    from tests.tts.serve.codecs import burst_codec
    from tests.tts.serve.tiny_app import tiny_config
    from tts.base.layout import TokenLayout
    from tts.codec import codec_ref
    from tts.serve.app import build_app
    from tts.speechlm import with_codec

    cfg = tiny_config(tmp_path)  # a SpeechLM of 64 codes (8 f0 bins x 8) with its codec, recorded in its layout
    with_codec(TokenLayout.load(cfg.model), codec_ref(cfg.codec)).save(cfg.model)
    bigger, same_size = tmp_path / "codec-128", tmp_path / "codec-64"
    burst_codec(16).save(bigger)
    burst_codec(8).save(same_size)
    cfg.codec = str(bigger)
    with pytest.raises(ValueError, match=r"SpeechLM .*lm expects a codebook of 64 codes but codec .*codec-128 has 128"):
        build_app(cfg)
    cfg.codec = str(same_size)
    with caplog.at_level(logging.WARNING, logger="tts.speechlm"):
        build_app(cfg)
    assert "was trained with codec" in caplog.text and "codec-64" in caplog.text
