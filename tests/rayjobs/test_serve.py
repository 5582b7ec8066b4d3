"""Serve job configs: every ServeConfig YAML loads, and the Serve config file passes Ray's own schema."""

from __future__ import annotations

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
        assert cfg.codec is None and open_speechlm(ROOT / cfg.model).codec.directory.name == "codec-speechlm"
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
