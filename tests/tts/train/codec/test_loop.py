"""Codec training loop pieces: what a step updates (frozen encoder/FSQ or not, discriminators only in GAN
steps), initialisation from a codec or a public checkpoint, held-out evaluation with samples."""

from __future__ import annotations

import json

import pytest
import torch

from tests.tts.codec.test_xcodec2 import _public_layout
from tests.tts.train.codec.tiny_corpus import TINY, write_tiny_corpus
from tts.base.config import load_config
from tts.codec.xcodec2 import XCodec2, XCodec2Codec
from tts.train.codec.config import CodecTrainConfig
from tts.train.codec.data import Segments, clips, held_out
from tts.train.codec.loop import Trainer, initialise, match_loudness, scale_encoder
from tts.train.codec.losses import rms_db


def trainer(manifest, *overrides: str) -> Trainer:
    cfg = load_config(CodecTrainConfig, None, [*TINY, f"manifest={manifest}", "warmup_fraction=0", *overrides])
    torch.manual_seed(0)
    return Trainer(cfg, torch.device("cpu"), world=1)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    path = write_tiny_corpus(tmp_path_factory.mktemp("corpus"), {"train": [16000, 16000], "val": [16000]})
    trainer(path).step(*batch(), adversarial=True)  # one-off costs (imports, oneDNN kernels: seconds) here
    return path


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3200, generator=g) * 0.1, torch.randn(2, 3200, generator=g) * 0.1


def test_frozen_encoder_and_fsq_keep_their_weights(manifest, tmp_path):
    codec = XCodec2Codec(trainer(manifest).model).save(tmp_path / "init")
    t = trainer(manifest, f"init_from={codec}")
    assert t.cfg.freeze_encoder
    initialise(t.model, str(codec), frozen=True)
    before = snapshot(t.model)
    out = t.step(*batch(), adversarial=False)
    moved = changed(before, t.model)
    assert not any(k.startswith(("encoder.", "quantizer.")) for k in moved)
    assert any(k.startswith("decoder.head.") for k in moved) and any(k.startswith("decoder.upsampler.") for k in moved)
    assert set(out) == {"mel", "rms", "loss_g", "grad_norm_g", "code_usage"} and 0 < out["code_usage"] <= 1


def test_from_scratch_the_encoder_trains_too(manifest):
    t = trainer(manifest)
    before = snapshot(t.model)
    t.step(*batch(), adversarial=False)
    moved = changed(before, t.model)
    assert any(k.startswith("encoder.acoustic.") for k in moved) and "quantizer.project_in.weight" in moved


def test_discriminators_learn_only_in_gan_steps(manifest):
    t = trainer(manifest)
    before = snapshot(t.disc)
    t.step(*batch(), adversarial=False)
    assert not changed(before, t.disc) and all(p.grad is None for p in t.disc.parameters())
    out = t.step(*batch(), adversarial=True)
    assert changed(before, t.disc)
    assert {"loss_d", "adv", "fm", "grad_norm_d"} <= set(out)
    assert all(p.requires_grad for p in t.disc.parameters())  # frozen only during the generator's update


def test_a_smaller_decoder_initialises_from_a_codec_directory(manifest, tmp_path):
    src = trainer(manifest, "model.upsample_channels=[8]").model  # another super-resolution width
    codec = XCodec2Codec(src).save(tmp_path / "c")
    t = trainer(manifest, f"init_from={codec}")
    report = initialise(t.model, str(codec), frozen=True)
    assert report["fresh"] and all(k.startswith(("decoder.upsampler.", "decoder.head.")) for k in report["fresh"])
    torch.testing.assert_close(t.model.encoder.fc_prior.weight, src.encoder.fc_prior.weight)


def test_public_checkpoint_without_an_encoder_cannot_be_frozen(manifest, tmp_path):
    t = trainer(manifest)
    public = {k: v for k, v in _public_layout(t.model).items() if not k.startswith("CodecEnc.")}
    torch.save({"state_dict": public}, tmp_path / "x.ckpt")
    assert initialise(XCodec2(t.model.cfg), str(tmp_path / "x.ckpt"), frozen=False)["fresh"]
    with pytest.raises(ValueError, match="frozen encoder/FSQ would keep random weights"):
        initialise(XCodec2(t.model.cfg), str(tmp_path / "x.ckpt"), frozen=True)


def test_evaluate_scores_held_out_utterances_and_writes_samples(manifest, tmp_path):
    t = trainer(manifest, "eval_utterances=1", "eval_samples=1", "stages=[{min_sample_rate: 16000, steps: 10}]")
    items = held_out(t.cfg, t.model.cfg.sample_rate)
    scores = t.evaluate(items, tmp_path, step=7)
    assert set(scores) == {"eval_mel", "eval_rms", "eval_chunk_db"} and scores["eval_mel"] > 0
    row = json.loads((tmp_path / "samples.jsonl").read_text())
    assert row["step"] == 7 and (tmp_path / row["wav"]).is_file() and t.gen.training


def test_from_scratch_init_spreads_fsq_input_and_matches_loudness(manifest):
    t = trainer(manifest, "batch_size=4")
    t.gen.eval()
    enc, target = (torch.from_numpy(a) for a in Segments(clips(t.cfg, "train"), 10, 16000, 0).batch(0, 0, 4, 0))
    with torch.no_grad():
        before = t.model.quantizer.project_in(t.model.encoder(enc))
    assert before.std(dim=(0, 1)).max() < 0.05  # default init: FSQ would see one code
    scale_encoder(t.model, enc)
    with torch.no_grad():
        z = t.model.quantizer.project_in(t.model.encoder(enc)).flatten(0, 1)
        codes = t.model.quantizer.quantize(t.model.encoder(enc))[1]
    torch.testing.assert_close(z.mean(0), torch.zeros(8), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(8), atol=1e-3, rtol=0)
    assert codes.unique().numel() > codes.numel() // 2
    gap = match_loudness(t.gen, enc, target)
    assert abs(gap) > 1.0  # the random decoder starts off the data's level ...
    with torch.no_grad():
        assert (rms_db(target) - rms_db(t.gen(enc))).mean().abs() < 0.01  # ... and starts at it after (dB)
