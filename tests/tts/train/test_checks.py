"""Bad input fails at start, on the driver, with a message that says what to fix."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from tests.tiny import random_codec
from tests.tts.train.tiny_setup import CODEBOOK, plain_lm, write_corpus
from tts.base import checkpoint
from tts.train.config import PretrainConfig
from tts.train.model import load as load_model
from tts.train.trainer import prepare


@pytest.fixture
def cfg(tmp_path, codec_dir, lm_dir, tokens_dir):
    return PretrainConfig(
        init_from=str(lm_dir),
        codec_dir=str(codec_dir),
        shards=[str(tokens_dir)],
        run_dir=str(tmp_path / "run"),
        max_len=256,
        val_fraction=0.2,
    )


def test_a_good_config_resolves(cfg, lm_dir, tmp_path):
    resolved, resume = prepare(cfg)
    assert resume is None and resolved.init_from == str(lm_dir) and resolved.max_steps == cfg.max_steps
    assert "job: pretrain" in (tmp_path / "run" / "config.yaml").read_text()
    by_epochs, _ = prepare(replace(cfg, max_steps=None, epochs=2.0, grad_accum=2))
    assert by_epochs.max_steps >= 1 and by_epochs.epochs is None


def test_missing_init_checkpoint(cfg, tmp_path):
    with pytest.raises(FileNotFoundError, match="init_from .*nowhere does not exist"):
        prepare(replace(cfg, init_from=str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither a model checkpoint"):
        prepare(replace(cfg, init_from=str(tmp_path / "empty")))


def test_checkpoint_built_for_another_codebook(cfg, tmp_path):
    other = tmp_path / "codec32"
    random_codec(other, env_clusters=8, f0_bins=4)
    tokens = write_corpus(tmp_path / "tokens32", other)
    changes = {"codec_dir": str(other), "shards": [str(tokens)]}
    with pytest.raises(ValueError, match=f"codebook of {CODEBOOK} codes but the codec has 32"):
        prepare(replace(cfg, **changes))


def test_shards_missing_or_from_another_codec(cfg, tmp_path, tokens_dir):
    with pytest.raises(FileNotFoundError, match="shards directory .*missing not found"):
        prepare(replace(cfg, shards=[str(tmp_path / "missing")]))
    (tmp_path / "hollow").mkdir()
    with pytest.raises(ValueError, match="holds no finished shards"):
        prepare(replace(cfg, shards=[str(tmp_path / "hollow")]))
    moved = shutil.copytree(tokens_dir, tmp_path / "tokens")
    summary = json.loads((moved / "summary.json").read_text())
    summary["codec"]["sha256"] = "0" * 64
    (moved / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="were encoded with codec"):
        prepare(replace(cfg, shards=[str(moved)]))


def test_no_data_left_after_the_split(cfg):
    with pytest.raises(ValueError, match="not enough training data"):
        prepare(replace(cfg, val_fraction=0.99))
    with pytest.raises(ValueError, match="no held-out rows"):
        prepare(replace(cfg, val_fraction=0.0))
    prepare(replace(cfg, val_fraction=0.0, eval_batches=0, eval_samples=0))


def fake_checkpoint(lm_dir, directory, job):
    shutil.copytree(lm_dir, directory)
    state = {"job": job, "step": 5, "max_steps": 10, "lr": 1e-4, "world_size": 1}
    (directory / checkpoint.STATE).write_text(json.dumps(state))
    return directory


def test_resume_from_a_missing_or_mismatched_checkpoint(cfg, tmp_path, lm_dir):
    with pytest.raises(FileNotFoundError, match="--resume .*gone does not exist"):
        prepare(cfg, resume=str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match="--resume .*lm.* neither a training checkpoint nor a run directory"):
        prepare(cfg, resume=str(lm_dir))
    fake_checkpoint(lm_dir, tmp_path / "sft" / "checkpoint_000005", "sft")
    with pytest.raises(ValueError, match="is a sft checkpoint, not pretrain"):
        prepare(cfg, resume=str(tmp_path / "sft"))
    pre = fake_checkpoint(lm_dir, tmp_path / "pre" / "checkpoint_000005", "pretrain")
    with pytest.raises(ValueError, match="written by 1 workers .* num_workers=1, not 2"):
        prepare(replace(cfg, num_workers=2), resume=str(pre))
    assert prepare(cfg, resume=str(tmp_path / "pre"))[1] == str(pre)


def test_a_relative_resume_path_reaches_the_workers_absolute(cfg, tmp_path, lm_dir, monkeypatch):
    """Ray Train's workers run in a directory of their own: a path relative to where the job was started would not
    name the checkpoint there."""
    pre = fake_checkpoint(lm_dir, tmp_path / "pre" / "checkpoint_000005", "pretrain")
    monkeypatch.chdir(tmp_path)
    assert prepare(cfg, resume="pre")[1] == str(pre)


def test_plain_causal_lm_is_expanded_with_the_codec_codebook(cfg, tmp_path):
    base = plain_lm(tmp_path / "base")
    resolved, _ = prepare(replace(cfg, init_from=str(base)))
    model, tokenizer, layout = load_model(base, CODEBOOK, seed=0, attn_implementation="sdpa")
    assert layout.codebook_size == CODEBOOK and layout.vocab_size == len(tokenizer) == model.config.vocab_size
    assert model.generation_config.eos_token_id == layout.speech_end_id
