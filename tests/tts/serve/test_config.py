"""Serve settings: where the API key comes from, and placeholders that must never reach the internet."""

from __future__ import annotations

import pytest

from tts.base.config import load_config
from tts.serve.config import (
    API_KEY_ENV,
    ARENA_SECRET_ENV,
    MAX_INPUT_CHARS,
    WATERMARK_KEY_ENV,
    Limits,
    ServeConfig,
    with_secrets,
)
from tts.serve.guard import FORM_OVERHEAD, GuardSettings


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    monkeypatch.delenv(ARENA_SECRET_ENV, raising=False)
    monkeypatch.delenv(WATERMARK_KEY_ENV, raising=False)


def test_key_from_file_over_environment_over_config(tmp_path, monkeypatch):
    assert with_secrets(ServeConfig()).api_keys == []  # no key anywhere: an open local server
    assert with_secrets(ServeConfig(api_key="from-config-1234")).api_keys == ["from-config-1234"]
    monkeypatch.setenv(API_KEY_ENV, "from-env-5678")
    assert with_secrets(ServeConfig(api_key="from-config-1234")).api_keys == ["from-env-5678"]
    (tmp_path / "keys").write_text("# team a\nfrom-file-9012\n\nfrom-file-3456\n")
    cfg = with_secrets(ServeConfig(api_key="from-config-1234", api_key_file=str(tmp_path / "keys")))
    assert cfg.api_keys == ["from-file-9012", "from-file-3456"] and cfg.api_key is None and cfg.api_key_file is None


def test_missing_or_empty_key_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="api_key_file"):
        with_secrets(ServeConfig(api_key_file=str(tmp_path / "absent")))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        with_secrets(ServeConfig(api_key_file=str(tmp_path / "empty")))


@pytest.mark.parametrize("key", ["change-me", "CHANGE-ME", " changeme ", ""])
def test_placeholder_key_refused(key):
    with pytest.raises(ValueError, match="placeholder"):
        with_secrets(ServeConfig(api_key=key))


def test_placeholder_arena_secret_refused_and_env_secret_used(monkeypatch):
    cfg = ServeConfig(api_key="a-real-key-123456")
    cfg.arena.secret = "change-me-too"
    with pytest.raises(ValueError, match="arena.secret is a placeholder"):
        with_secrets(cfg)
    monkeypatch.setenv(ARENA_SECRET_ENV, "a-real-secret-7890")
    assert with_secrets(cfg).arena.secret == "a-real-secret-7890"


def test_watermark_on_by_default_key_from_environment_over_config(monkeypatch):
    assert ServeConfig().watermark.enabled and with_secrets(ServeConfig()).watermark.key == "tts-align"
    cfg = load_config(ServeConfig, None, ["watermark.key=from-config-1234", "watermark.enabled=false"])
    assert with_secrets(cfg).watermark.key == "from-config-1234" and not cfg.watermark.enabled
    monkeypatch.setenv(WATERMARK_KEY_ENV, "from-env-5678")
    assert with_secrets(cfg).watermark.key == "from-env-5678"
    monkeypatch.setenv(WATERMARK_KEY_ENV, "change-me")
    with pytest.raises(ValueError, match="watermark.key is a placeholder"):
        with_secrets(cfg)


def test_production_example_needs_the_operators_key_file(tmp_path):
    cfg = load_config(ServeConfig, "rayjobs/configs/serve_production.yaml")
    assert cfg.api_key is None and not cfg.api_keys and cfg.arena.secret is None  # no secret in the file
    with pytest.raises(FileNotFoundError, match="api_key_file"):
        with_secrets(cfg)


def test_input_bound_and_body_caps():
    with pytest.raises(ValueError, match="max_input_chars"):
        ServeConfig(limits=Limits(max_input_chars=MAX_INPUT_CHARS + 1))
    guard = GuardSettings(("k",), max_body_bytes=100, max_upload_bytes=1000)
    assert guard.cap("POST", "/v1/audio/speech") == 100
    assert guard.cap("POST", "/v1/voices") == guard.cap("POST", "/v1/voices/") == 1000 + FORM_OVERHEAD
    assert guard.cap("GET", "/v1/voices") == 100
