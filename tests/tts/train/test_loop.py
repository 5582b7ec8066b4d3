"""The shared training loop in one process (trainer.run_local): exact resume and evaluation steps.

The same loop under Ray Train is tested end to end in tests/rayjobs/test_pretrain_sft.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from tts.train.config import PretrainConfig, SFTConfig
from tts.train.trainer import run_local


def metrics(run_dir: str | Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def weights(checkpoint: str) -> dict[str, torch.Tensor]:
    return load_file(Path(checkpoint) / "model.safetensors")


@pytest.fixture
def common(codec_dir, lm_dir, tokens_dir) -> dict:
    return dict(
        init_from=str(lm_dir),
        codec_dir=str(codec_dir),
        shards=[str(tokens_dir)],
        max_len=128,  # several sequences per epoch: the runs cross epoch boundaries
        grad_accum=2,
        lr=3e-3,
        max_steps=6,
        log_interval=1,
        eval_interval=3,
        checkpoint_interval=3,
        val_fraction=0.2,
        eval_samples=1,
        sample_max_seconds=0.2,
    )


def test_resume_is_exact(common, tmp_path):
    cfg = PretrainConfig(**common)
    whole = run_local(replace(cfg, run_dir=str(tmp_path / "whole")))
    first = run_local(replace(cfg, run_dir=str(tmp_path / "halves"), halt_at_step=3))
    assert first["metrics"]["step"] == 3 and first["checkpoint"].endswith("checkpoint_000003")
    second = run_local(replace(cfg, run_dir=str(tmp_path / "halves")))  # same run_dir: resumes
    assert [m["step"] for m in metrics(tmp_path / "halves")] == [1, 2, 3, 4, 5, 6]
    assert second["metrics"]["loss"] == pytest.approx(whole["metrics"]["loss"], abs=1e-6)
    assert second["metrics"]["eval_loss"] == pytest.approx(whole["metrics"]["eval_loss"], abs=1e-6)
    a, b = weights(whole["checkpoint"]), weights(second["checkpoint"])
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    assert metrics(tmp_path / "whole")[-1]["loss"] < metrics(tmp_path / "whole")[0]["loss"]


def test_eval_steps_write_held_out_loss_and_samples(common, tmp_path):
    sft = SFTConfig(**common | dict(run_dir=str(tmp_path / "sft"), max_steps=2, eval_interval=1, grad_accum=1))
    sft = replace(sft, eval_samples=2, val_speakers=["spk0"], max_len=256, sample_temperature=1.0)
    sft = replace(sft, sample_max_seconds=0.5)
    result = run_local(sft)
    assert all("eval_loss" in m for m in metrics(sft.run_dir))
    rows = [json.loads(line) for line in (Path(sft.run_dir) / "samples" / "samples.jsonl").read_text().splitlines()]
    assert [(r["step"], r["index"]) for r in rows] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert {r["mode"] for r in rows} == {"tts", "clone"}  # spk0 is held out whole: clone references exist
    for r in rows:
        assert r["codes"] <= 26 and r["stop"] in ("speech_end", "non_audio_token", "max_tokens")
        if r["wav"]:
            assert len(sf.read(Path(sft.run_dir) / "samples" / r["wav"])[0]) == r["codes"] * 320
    assert Path(result["checkpoint"]).name == "checkpoint_000002"


def test_cpu_autocast_trains_in_bf16_matmuls_with_fp32_weights(common, tmp_path):
    """cpu_autocast: the same run, matmuls in bf16: losses within bf16's rounding of the fp32 run's, still falling,
    and the checkpoint's weights fp32."""
    cfg = PretrainConfig(**common | dict(eval_samples=0))
    fp32 = run_local(replace(cfg, run_dir=str(tmp_path / "fp32")))
    mixed = run_local(replace(cfg, run_dir=str(tmp_path / "mixed"), cpu_autocast=True))
    a, b = metrics(tmp_path / "fp32"), metrics(tmp_path / "mixed")
    assert b[0]["loss"] == pytest.approx(a[0]["loss"], rel=2e-2)
    assert b[-1]["loss"] < b[0]["loss"]
    assert b[-1]["eval_loss"] == pytest.approx(fp32["metrics"]["eval_loss"], rel=5e-2)
    assert b[-1]["loss"] != a[-1]["loss"]  # the setting did something
    assert all(t.dtype == torch.float32 for t in weights(mixed["checkpoint"]).values())


def test_lora_sft_trains_adapters_on_a_frozen_base_and_checkpoints_merged_plus_adapter(common, lm_dir, tmp_path):
    """SFTConfig.lora: only adapters and tag rows train; each checkpoint is the merged SpeechLM (what every loader
    opens) plus adapter/ (a LoRA voice on the unchanged base), records the markup tags its data taught, and a
    halted run resumes to exactly the uninterrupted one."""
    from tests.tts.train.tiny_setup import write_corpus
    from tts.base.layout import MARKUP_TAGS, TokenLayout
    from tts.lora import LoraSettings, load_adapter
    from tts.speechlm import load_speechlm

    tagged = write_corpus(tmp_path / "tagged", Path(common["codec_dir"]), rows=12, tags=("[sad]", "[laughing]"))
    cfg = SFTConfig(**common | dict(shards=[str(tagged)], eval_samples=0, lr=1e-2, max_steps=4, checkpoint_interval=2))
    cfg = replace(cfg, lora=LoraSettings(rank=4, alpha=8, dropout=0.0, train_embeddings=True))
    whole = run_local(replace(cfg, run_dir=str(tmp_path / "whole")))
    run_local(replace(cfg, run_dir=str(tmp_path / "halves"), halt_at_step=2))
    halves = run_local(replace(cfg, run_dir=str(tmp_path / "halves")))
    a, b = weights(whole["checkpoint"]), weights(halves["checkpoint"])
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6  # exact resume

    ckpt = Path(whole["checkpoint"])
    assert (ckpt / "adapter" / "adapter_config.json").is_file()
    assert TokenLayout.load(ckpt).learned_tags == ["[laughing]", "[sad]"]  # in MARKUP_TAGS order
    base = weights(str(lm_dir))
    assert set(a) == set(base)  # a plain SpeechLM: no lora_ or base_layer keys
    changed = {k for k in a if not torch.equal(a[k], base[k])}
    assert any("q_proj" in k for k in changed) and any("down_proj" in k for k in changed)
    assert not any("norm" in k for k in changed)  # frozen outside the adapters
    layout = TokenLayout.load(ckpt)
    emb = next(k for k in a if "embed_tokens" in k)
    rows = set((a[emb] != base[emb]).any(dim=1).nonzero().flatten().tolist())
    assert {layout.tag_id("[sad]"), layout.tag_id("[laughing]")} <= rows <= {layout.tag_id(t) for t in MARKUP_TAGS}
    # the adapter on the base merges to the checkpoint's weights
    model, _, _ = load_speechlm(lm_dir)
    merged = load_adapter(model, ckpt / "adapter").merge_and_unload().state_dict()
    assert max((merged[k] - a[k]).abs().max().item() for k in a if k in merged) <= 1e-5
    assert metrics(tmp_path / "whole")[-1]["loss"] < metrics(tmp_path / "whole")[0]["loss"]


def test_full_sft_records_no_tags_when_its_data_has_none(common, tmp_path):
    from tts.base.layout import TokenLayout

    cfg = SFTConfig(**common | dict(run_dir=str(tmp_path / "sft"), max_steps=1, eval_samples=0, eval_batches=0))
    assert TokenLayout.load(run_local(cfg)["checkpoint"]).learned_tags == []
