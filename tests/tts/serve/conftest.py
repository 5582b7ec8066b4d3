"""One tiny Serve app on one local Ray for every end-to-end test of this package (a Ray start costs tens of
seconds on 2 cores), and one headless Chromium for the page tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import soundfile as sf

from tests.tts.serve.codecs import bursts
from tests.tts.serve.tiny_app import KEY, KEY2, free_port, save_lora, tiny_config
from tts.serve.config import VoiceSpec


@pytest.fixture(scope="package")
def tiny(tmp_path_factory) -> Path:
    """Directory of the tiny SpeechLM (lm/), codec (codec/) and a LoRA voice adapter (lora/) of the package."""
    directory = tmp_path_factory.mktemp("tiny")
    save_lora(tiny_config(directory).model, directory / "lora")
    return directory


@pytest.fixture(scope="package")
def server(tiny, tmp_path_factory):
    """(url, ServeConfig, metrics port) of the tiny app with two API replicas and bearer keys `KEY` and `KEY2`,
    three preset voices (a reference file, a corpus speaker and a LoRA adapter: four arena contenders) and its arena
    votes under a temporary directory. Generation backend "auto": the vLLM engine where vllm is installed (one
    engine start for every test of the package; the transformers engine is tested directly in test_generation.py)."""
    import ray
    from ray import serve

    from tts.serve.app import start

    tmp = tmp_path_factory.mktemp("serve")
    sf.write(tmp / "alice.wav", bursts(2.0, seed=4), 16000)
    (tmp / "keys").write_text(f"{KEY}\n{KEY2}\n")
    cfg = tiny_config(tiny, api_key_file=str(tmp / "keys"), voices_dir=str(tmp / "voices"))
    cfg.api.num_replicas = 2  # voices and arena votes must hold across API replicas
    cfg.voices = [
        VoiceSpec(name="alice", audio=str(tmp / "alice.wav"), text="a reference"),
        VoiceSpec(name="bob", speaker="en_08", text="A small red boat."),
        VoiceSpec(name="carol", lora=str(tiny / "lora")),
    ]
    cfg.arena.votes = str(tmp / "arena" / "votes.sqlite")
    metrics_port = free_port()
    url = start(cfg, num_cpus=2, include_dashboard=False, log_to_driver=False, _metrics_export_port=metrics_port)
    yield url, cfg, metrics_port
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="package")
def browser():
    """Headless Debian Chromium driven by Selenium through Debian's chromedriver (no browser download)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Debian chromium + chromium-driver not installed (scripts/install.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
    ):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(driver), options=opts)
    drv.set_script_timeout(60)
    yield drv
    drv.quit()
