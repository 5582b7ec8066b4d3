"""The pre-training and SFT jobs end to end under Ray Train (DeepSpeed ZeRO-2 on the CPU accelerator)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from tests.tts.train.tiny_setup import SMALL, small_codec, tiny_speechlm, write_corpus
from tts.base.config import load_config
from tts.train.config import PretrainConfig, SFTConfig
from tts.train.trainer import run_local

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "rayjobs" / "configs"


def job(name: str, *args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = os.environ | {"RAY_ADDRESS": "local"}  # a fresh local instance, never a cluster found on the machine
    cmd = [sys.executable, str(ROOT / "rayjobs" / f"{name}.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    codec = small_codec(root / "codec")
    return {"codec": codec, "tokens": write_corpus(root / "tokens", codec, rows=4), "lm": tiny_speechlm(root / "lm")}


def data_overrides(inputs: dict) -> list[str]:
    # Three training rows fit one 512-token sequence: every step sees the same batch.
    return [f"codec_dir={inputs['codec']}", f"shards=[{inputs['tokens']}]", "val_ids=[u003]", "val_fraction=0"]


def test_configs_load():
    for name, cls in [("pretrain", PretrainConfig), ("sft", SFTConfig)]:
        embedded = load_config(cls, CONFIGS / f"{name}_embedded.yaml")
        production = load_config(cls, CONFIGS / f"{name}_production.yaml")
        assert not embedded.use_gpu and not embedded.use_bf16 and embedded.zero_stage == 2
        assert production.use_gpu and production.use_bf16 and production.num_workers == 8
        assert production.zero_stage == 2 and production.max_len == 2048
    sft = load_config(SFTConfig, CONFIGS / "sft_embedded.yaml")
    assert sft.init_from == sft.start_lr_from == "runs/pretrain_embedded" and sft.lora is None
    markups = load_config(SFTConfig, CONFIGS / "sft_markups.yaml")
    assert markups.lora.train_embeddings and (markups.lora.rank, markups.lora.alpha) == (64, 128)  # docs/results.md
    voice = load_config(SFTConfig, CONFIGS / "sft_voice_lora.yaml")
    assert voice.lora and not voice.lora.train_embeddings and voice.clone_fraction == 0.0


def test_missing_checkpoint_fails_before_ray_starts(tmp_path):
    start = time.time()
    codec = f"codec_dir={ROOT}/tts/checkpoints/codec-speechlm"  # the config's path is relative to the repository
    res = job(
        "sft", "--config", str(CONFIGS / "sft_embedded.yaml"), f"init_from={tmp_path}/nowhere", codec, cwd=tmp_path
    )
    assert res.returncode == 2 and f"error: init_from {tmp_path}/nowhere does not exist" in res.stderr, res.stderr
    assert "Ray" not in res.stdout + res.stderr and time.time() - start < 60
    res = job("pretrain", "--resume", str(tmp_path), "not_a_field=1", cwd=tmp_path)
    assert res.returncode == 2 and "unknown key(s) ['not_a_field']" in res.stderr, res.stderr


PRETRAIN = [
    # init_from null: the tiny SpeechLM goes to run_dir/init (its front end stays the default, raw text)
    *[f"tiny.{k}={v}" for k, v in vars(SMALL).items() if k != "front_end" and v is not None],
    "max_len=512",
    "grad_accum=2",
    "cpus_per_worker=1",
    "lr=3e-3",
    "min_lr_ratio=0.1",
    "max_steps=8",
    "log_interval=1",
    "eval_interval=4",
    "checkpoint_interval=4",
    "sample_max_seconds=0.5",
]


@pytest.fixture(scope="module")
def pretrained(inputs, tmp_path_factory) -> Path:
    """One pre-training run under Ray Train, stopped after step 4 and resumed from its checkpoint by a second job
    (every job start costs Ray's and DeepSpeed's start-up, so the resume, pre-training and SFT tests share it)."""
    root = tmp_path_factory.mktemp("pretrain")
    args = ["--config", str(CONFIGS / "pretrain_embedded.yaml"), *data_overrides(inputs), *PRETRAIN]
    logs = []
    for extra in (["halt_at_step=4"], []):  # the second job restores the run directory's latest checkpoint
        res = job("pretrain", *args, f"run_dir={root}/pre", *extra, cwd=root)
        assert res.returncode == 0, res.stderr[-3000:]
        logs.append(res.stderr + res.stdout)
        assert "TrainController" in logs[-1]  # it ran under Ray Train
    (root / "jobs.log").write_text("\n".join(logs))
    return root / "pre"


@pytest.mark.slow
def test_job_log_is_free_of_placement_group_cleaner_warnings(pretrained):
    # Ray Train's cleaner asks the State API (served by the dashboard) once a second whether the controller lives;
    # a local Ray without its dashboard filled the job log with one warning per second (1,744 lines in one SFT run).
    log = (pretrained.parent / "jobs.log").read_text()
    assert "TrainController" in log and "Failed to query Ray Train Controller actor state" not in log


@pytest.mark.slow
def test_pretrain_under_ray_learns_and_writes_checkpoints_and_samples(pretrained):
    losses = [m["loss"] for m in metrics(pretrained)]
    assert [m["step"] for m in metrics(pretrained)] == list(range(1, 9))
    assert losses[-1] < losses[0] - 0.3, losses
    final = pretrained / "checkpoint_000008"
    assert (final / "model.safetensors").is_file() and (final / "layout.json").is_file()
    assert (pretrained / "init" / "config.json").is_file()
    state = json.loads((final / "train_state.json").read_text())
    # three rows fill one sequence, so each epoch is one micro-batch: 8 steps x 2 accumulated = epochs 0..15
    assert state["lr"] == pytest.approx(3e-4) and state["position"]["epoch"] == 15
    samples = (pretrained / "samples" / "samples.jsonl").read_text().splitlines()
    assert [json.loads(s)["step"] for s in samples] == [4, 8]  # one held-out row to continue, once per job


@pytest.mark.slow
def test_resume_under_ray_matches_an_uninterrupted_run(inputs, pretrained, tmp_path):
    overrides = [*data_overrides(inputs), *PRETRAIN, f"init_from={pretrained}/init", f"run_dir={tmp_path}"]
    whole = run_local(load_config(PretrainConfig, CONFIGS / "pretrain_embedded.yaml", overrides))
    assert metrics(pretrained)[-1]["loss"] == pytest.approx(whole["metrics"]["loss"], abs=1e-6)
    a = load_file(Path(whole["checkpoint"]) / "model.safetensors")
    b = load_file(pretrained / "checkpoint_000008" / "model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6


@pytest.mark.slow
def test_sft_starts_from_the_pretrained_run_at_its_final_lr(inputs, pretrained, tmp_path):
    res = job(
        "sft",
        "--config",
        str(CONFIGS / "sft_embedded.yaml"),
        *data_overrides(inputs),
        f"run_dir={tmp_path}/sft",
        f"init_from={pretrained}",
        f"start_lr_from={pretrained}",
        "max_len=512",
        "grad_accum=1",
        "cpus_per_worker=1",
        "max_steps=3",
        "log_interval=1",
        "eval_interval=3",
        "checkpoint_interval=3",
        "sample_max_seconds=0.5",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    sft = tmp_path / "sft"
    config = yaml.safe_load((sft / "config.yaml").read_text())
    assert config["lr"] == pytest.approx(3e-4) and config["init_from"] == str(pretrained / "checkpoint_000008")
    assert metrics(sft)[0]["lr"] == pytest.approx(3e-4)  # 5% warm-up of 3 steps rounds to none
    assert json.loads((sft / "checkpoint_000003" / "train_state.json").read_text())["job"] == "sft"
