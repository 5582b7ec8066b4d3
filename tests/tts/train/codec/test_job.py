"""The codec decoder training job: configs, checks before any worker starts, and (slow) a run under Ray Train
that resumes exactly where an uninterrupted run would be."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.tts.train.codec.tiny_corpus import TINY, tone, write_tiny_corpus
from tts.base.config import load_config
from tts.codec import load_codec
from tts.train.codec.config import CodecTrainConfig
from tts.train.codec.job import prepare, run_local

ROOT = Path(__file__).resolve().parents[4]
CONFIGS = ROOT / "rayjobs" / "configs"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    rates = {"train": [16000, 16000, 24000, 48000], "val": [16000, 48000]}
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus"), rates)


def test_configs_load():
    embedded = load_config(CodecTrainConfig, CONFIGS / "codec_embedded.yaml")
    assert not embedded.use_gpu and not embedded.freeze_encoder and embedded.init_from is None
    assert [s.min_sample_rate for s in embedded.stages] == [16000] and embedded.codec_config().causal
    assert embedded.adv_start_step < embedded.max_steps
    production = load_config(CodecTrainConfig, CONFIGS / "codec_production.yaml")
    assert production.use_gpu and production.freeze_encoder and production.num_workers == 8
    assert [s.min_sample_rate for s in production.stages] == [32000, 48000]
    codec = production.codec_config()
    assert codec.sample_rate == 48000 and codec.upsample_strides == (3, 2) and codec.hop_length == 160


def test_production_stages_on_a_16khz_corpus_fail_before_any_worker(tmp_path):
    only16k = write_tiny_corpus(tmp_path / "corpus", {"train": [16000, 16000], "val": [16000]})
    overrides = [f"manifest={only16k}", f"run_dir={tmp_path}/run", "init_from=null", "freeze_encoder=false"]
    cfg = load_config(CodecTrainConfig, CONFIGS / "codec_production.yaml", overrides)
    with pytest.raises(ValueError, match=r"stage 1 \(sample_rate >= 32000 Hz\) selects no train rows.*\{16000: 2\}"):
        prepare(cfg)
    assert not (tmp_path / "run").exists()


def test_bad_inputs_are_named_before_any_worker(manifest, tmp_path):
    base = [*TINY, f"manifest={manifest}", f"run_dir={tmp_path}/run", "stages=[{min_sample_rate: 16000, steps: 2}]"]
    with pytest.raises(FileNotFoundError, match="init_from .*nowhere does not exist"):
        prepare(load_config(CodecTrainConfig, None, [*base, f"init_from={tmp_path}/nowhere"]))
    (tmp_path / "weights.txt").write_text("x")
    with pytest.raises(ValueError, match="expected a codec directory or a"):
        prepare(load_config(CodecTrainConfig, None, [*base, f"init_from={tmp_path}/weights.txt"]))
    with pytest.raises(ValueError, match="no test rows .* for the held-out loss"):
        prepare(load_config(CodecTrainConfig, None, [*base, "eval_split=test"]))
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        prepare(load_config(CodecTrainConfig, None, [*base, f"manifest={tmp_path}/none.jsonl"]))


def job(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"RAY_ADDRESS": "local"}  # a fresh local instance, never a cluster found on the machine
    cmd = [sys.executable, str(ROOT / "rayjobs" / "codec.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_resume_under_ray_matches_an_uninterrupted_run(manifest, tmp_path):
    """Two progressive stages (16 kHz rows, then >= 24 kHz), GAN from step 2; halted at the stage boundary,
    continued under Ray Train from the checkpoint: the same losses and weights as one local run."""
    common = [
        *TINY,
        f"manifest={manifest}",
        "stages=[{min_sample_rate: 16000, steps: 2}, {min_sample_rate: 24000, steps: 2}]",
    ]
    common += ["adv_start_step=1", "log_interval=1", "eval_interval=2", "checkpoint_interval=2"]
    common += ["eval_utterances=1", "eval_samples=1", "warmup_fraction=0"]
    whole = run_local(*prepare(load_config(CodecTrainConfig, None, [*common, f"run_dir={tmp_path}/whole"])))
    halves = tmp_path / "halves"
    run_local(*prepare(load_config(CodecTrainConfig, None, [*common, f"run_dir={halves}", "halt_at_step=2"])))
    res = job(*common, f"run_dir={halves}", "--resume", str(halves / "checkpoint_000002"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "TrainController" in res.stderr + res.stdout  # it ran under Ray Train
    rows = metrics(halves)
    assert [m["step"] for m in rows] == [1, 2, 3, 4] and [m["stage"] for m in rows] == [1, 1, 2, 2]
    assert "loss_d" not in rows[0] and "loss_d" in rows[1]  # discriminators from the second step
    for key in ("loss_g", "mel", "rms", "loss_d", "eval_mel"):
        assert rows[-1][key] == pytest.approx(whole["metrics"][key], abs=1e-6), key
    final = halves / "checkpoint_000004"
    a = load_file(Path(whole["checkpoint"]) / "codec" / "xcodec2.safetensors")
    b = load_file(final / "codec" / "xcodec2.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    samples = [json.loads(line) for line in (halves / "samples" / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [2, 4] and (halves / "samples" / samples[-1]["wav"]).is_file()
    codec = load_codec(final / "codec")  # a checkpoint's codec is a codec the other jobs open
    wave = tone(0.4, 16000, 150.0, 0)
    assert codec.decode(codec.encode(wave, 16000)).shape == wave.shape
