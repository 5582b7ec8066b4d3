"""Training settings: validation, overrides, the learning-rate schedule and SFT's start from pre-training's lr."""

from __future__ import annotations

import json

import pytest
import torch

from tts.base import checkpoint
from tts.base.config import load_config
from tts.base.distributed import deepspeed_config, optimizer, scheduler
from tts.train.config import PretrainConfig, SFTConfig


def test_job_defaults_and_overrides():
    pre, sft = PretrainConfig(), SFTConfig()
    assert (pre.warmup_fraction, sft.warmup_fraction) == (0.10, 0.05)
    assert pre.weight_decay == sft.weight_decay == 0.1 and pre.max_len == 2048 and pre.zero_stage == 2
    assert pre.text_fraction == 0.1 and pre.max_segment_seconds == 40.0 and not hasattr(pre, "clone_fraction")
    cfg = load_config(SFTConfig, None, ["lr=3e-5", "tiny.num_layers=2", "shards=[a, b]", "max_steps=null", "epochs=2"])
    assert cfg.lr == 3e-5 and cfg.tiny.num_layers == 2 and cfg.shards == ["a", "b"] and cfg.epochs == 2
    with pytest.raises(ValueError, match="unknown key"):
        load_config(PretrainConfig, None, ["clone_fraction=0.5"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["epochs=1"], "exactly one of max_steps and epochs"),
        (["text_fraction=1.0"], "text_fraction"),
        (["zero_stage=3"], "ZeRO-3"),
        (["batch_size=0"], "batch_size"),
        (["shards=[]"], "shards is empty"),
    ],
)
def test_bad_settings_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(PretrainConfig, None, overrides)


def test_bf16_follows_the_device_unless_set():
    assert not PretrainConfig().use_bf16 and PretrainConfig(use_gpu=True).use_bf16
    assert not PretrainConfig(use_gpu=True, bf16=False).use_bf16
    cfg = PretrainConfig(batch_size=2, grad_accum=4)
    ds = deepspeed_config(cfg.batch_size, cfg.grad_accum, cfg.grad_clip, cfg.zero_stage, cfg.use_bf16)
    assert ds["zero_optimization"] == {"stage": 2} and ds["gradient_accumulation_steps"] == 4
    assert ds["train_micro_batch_size_per_gpu"] == 2 and ds["bf16"] == {"enabled": False}


def test_cosine_schedule_with_warmup():
    cfg = PretrainConfig(lr=1e-3, max_steps=100, warmup_fraction=0.1, min_lr_ratio=0.1)
    opt = optimizer(torch.nn.Linear(4, 4), cfg)
    sched = scheduler(opt, cfg)
    lrs = []
    for _ in range(cfg.max_steps + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(5e-4) and lrs[10] == pytest.approx(1e-3)
    assert lrs[55] == pytest.approx(1e-4 + 0.5 * 9e-4)  # half-way down the cosine
    assert lrs[100] == pytest.approx(1e-4)  # lr * min_lr_ratio after the last step
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]  # matrix decayed, bias not


def write_state(directory, step, max_steps, lr, job="pretrain"):
    directory.mkdir(parents=True)
    state = {"job": job, "step": step, "max_steps": max_steps, "lr": lr, "world_size": 1}
    (directory / checkpoint.STATE).write_text(json.dumps(state))


def test_start_lr_from_reads_the_final_lr_of_a_pretraining_run(tmp_path):
    run = tmp_path / "pretrain"
    write_state(run / "checkpoint_000500", 500, 1000, 6e-5)
    write_state(run / "checkpoint_001000", 1000, 1000, 1e-5)
    assert checkpoint.latest(run) == run / "checkpoint_001000"
    assert checkpoint.final_lr(run) == 1e-5 and checkpoint.final_lr(run / "checkpoint_001000") == 1e-5
    with pytest.raises(ValueError, match="stopped at step 500 of 1000"):
        checkpoint.final_lr(run / "checkpoint_000500")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoint.final_lr(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="neither a training checkpoint nor a run directory"):
        checkpoint.final_lr(tmp_path)


def test_sft_lora_section_from_yaml_and_overrides():
    from tts.base.config import load_config
    from tts.lora import LoraSettings
    from tts.train.config import SFTConfig

    assert SFTConfig().lora is None
    cfg = load_config(SFTConfig, None, ["lora.rank=8", "lora.train_embeddings=true"])
    assert cfg.lora == LoraSettings(rank=8, train_embeddings=True)  # the rest: Table 6's 16/32/0.2 defaults
    assert (LoraSettings().rank, LoraSettings().alpha, LoraSettings().dropout) == (16, 32, 0.2)
    with pytest.raises(ValueError, match="rank >= 1"):
        load_config(SFTConfig, None, ["lora.rank=0"])
