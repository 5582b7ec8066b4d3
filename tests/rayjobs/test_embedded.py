"""End to end: the embedded main job on a tiny corpus (corpus -> codec fit -> round trip -> SpeechLM)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evals.embedded import EmbeddedJobConfig
from tts.base.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def tiny_overrides(tmp: Path) -> list[str]:
    return [
        f"run_dir={tmp}/run",
        f"corpus.out_dir={tmp}/corpus",
        "corpus.sentences={en: 24, de: 6}",
        "refit_codec=true",
        "codec.env_clusters=24",
        "codec.f0_bins=8",
        "codec_fit_files=30",
        "check_utterances=2",
        "speechlm.hidden_size=64",
        "speechlm.num_layers=1",
        "speechlm.num_heads=2",
        "speechlm.num_kv_heads=1",
        "speechlm.intermediate_size=128",
        "speechlm.text_vocab_size=300",
    ]


def test_config_overrides_reach_nested_dataclasses(tmp_path):
    cfg = load_config(EmbeddedJobConfig, ROOT / "rayjobs/configs/embedded.yaml", tiny_overrides(tmp_path))
    assert cfg.codec.codebook_size == 8 * 24 and cfg.corpus.sentences == {"en": 24, "de": 6}
    assert cfg.speechlm.hidden_size == 64 and cfg.refit_codec is True


@pytest.mark.slow
def test_embedded_job_end_to_end(tmp_path):
    res = subprocess.run(
        [sys.executable, str(ROOT / "rayjobs/embedded.py"), *tiny_overrides(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((tmp_path / "run/report.json").read_text())
    assert report["corpus"]["utterances"] == 30 and report["corpus"]["failures"] == 0
    assert report["codec"]["codebook_size"] == 192
    rt = report["roundtrip"]
    assert rt["n"] == 2 and 0.0 <= rt["wer_original"] <= 1.0 and 1.0 < rt["ovrl_roundtrip"] < 5.0
    lm = tmp_path / "run/speechlm-init"
    assert (lm / "layout.json").is_file() and (lm / "model.safetensors").is_file()
    assert report["speechlm"]["codebook_size"] == 192
