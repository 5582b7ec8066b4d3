"""The embedded tiny SpeechLM: built through the token layout, saved with save_pretrained, loadable by
transformers and by vLLM CPU (the rollout engine of the GRPO job)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from tests.tiny import TINY_LM
from tts import prompts
from tts.base.layout import TokenLayout
from tts.speechlm import create_tiny_speechlm, load_speechlm

SMALL = TINY_LM


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm")
    info = create_tiny_speechlm(out, SMALL, codebook_size=1024)
    return out, info


def test_created_through_layout(tiny):
    out, info = tiny
    layout = TokenLayout.load(out)
    assert layout.kind == "tts-align" and layout.codebook_size == 1024
    assert layout.vocab_size % 32 == 0 and layout.vocab_size == info["vocab_size"]
    assert layout.audio_offset == layout.text_vocab_size + 29
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["vocab_size"] == layout.vocab_size
    assert cfg["eos_token_id"] == layout.speech_end_id
    assert layout.interleave is None  # the plain layout unless asked


def test_a_word_synchronous_speechlm_records_its_layout(tmp_path):
    create_tiny_speechlm(tmp_path, dataclasses.replace(SMALL, interleave="words"), codebook_size=64)
    assert TokenLayout.load(tmp_path).interleave == "words"
    with pytest.raises(ValueError, match="unknown interleave 'phones'"):
        create_tiny_speechlm(tmp_path / "bad", dataclasses.replace(SMALL, interleave="phones"), codebook_size=64)


def test_reload_and_forward_tts_prompt(tiny):
    out, _ = tiny
    model, tokenizer, layout = load_speechlm(out)
    text = prompts.encode_text(tokenizer, layout, "The children walked to the park [happy] after lunch.")
    assert layout.tag_id("[happy]") in text  # markup tags stay whole tokens
    p = prompts.tts(layout, text, np.arange(20) % layout.codebook_size)
    with torch.no_grad():
        loss = model(input_ids=torch.tensor([p.input_ids]), labels=torch.tensor([p.labels])).loss
    assert torch.isfinite(loss) and loss.item() > 0


def test_text_tokenizer_is_byte_level(tiny):
    _, tokenizer, _ = load_speechlm(tiny[0])
    ids = tokenizer("Zwölf Boxkämpfer jagen 今天 naïve", add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == "Zwölf Boxkämpfer jagen 今天 naïve"


def test_missing_checkpoint_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_speechlm(tmp_path)


VLLM_SCRIPT = r"""
import json, os, sys
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
if __name__ == "__main__":
    from vllm import LLM, SamplingParams
    llm = LLM(model=sys.argv[1], dtype="float32", max_model_len=256, enforce_eager=True, seed=0)
    prompt = json.loads(sys.argv[2])
    out = llm.generate([{"prompt_token_ids": prompt}], SamplingParams(max_tokens=6, temperature=0.0, logprobs=0))
    print("RESULT", json.dumps(list(out[0].outputs[0].token_ids)))
"""


@pytest.mark.slow
def test_vllm_cpu_loads_and_matches_transformers(tiny, tmp_path):
    """vLLM CPU serves the saved checkpoint and its greedy tokens equal transformers' (fp32)."""
    import subprocess
    import sys

    out, _ = tiny
    model, tokenizer, layout = load_speechlm(out)
    p = prompts.inference(layout, prompts.encode_text(tokenizer, layout, "My sister bought a warm coat."))
    with torch.no_grad():
        hf = model.generate(
            torch.tensor([p.input_ids]), max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0
        )[0, len(p.input_ids) :].tolist()
    script = tmp_path / "probe.py"
    script.write_text(VLLM_SCRIPT)
    res = subprocess.run(
        [sys.executable, str(script), str(out), json.dumps(p.input_ids)], capture_output=True, text=True, timeout=600
    )
    lines = [line for line in res.stdout.splitlines() if line.startswith("RESULT ")]
    assert res.returncode == 0 and lines, res.stderr[-3000:]
    vllm_tokens = json.loads(lines[0][len("RESULT ") :])
    assert vllm_tokens == hf


def test_text_vocabulary_padded_to_the_configured_size(tmp_path):
    """A LLaMA-3-sized text vocabulary (a 1B-shaped random policy for the GPU check) cannot come from BPE on
    our small corpus; reserved tokens fill it, so the layout lands on the paper's numbers."""
    info = create_tiny_speechlm(tmp_path, dataclasses.replace(SMALL, text_vocab_size=10_000), codebook_size=64)
    assert info["text_vocab_size"] == 10_000 and info["audio_offset"] > 10_000
    _, tokenizer, layout = load_speechlm(tmp_path)
    vocab = tokenizer.get_vocab()
    reserved = {i for t, i in vocab.items() if t.startswith("<|reserved_text_")}
    assert reserved and max(reserved) < 10_000
    assert not reserved & set(prompts.encode_text(tokenizer, layout, "My sister bought a warm coat; reserved text."))


def test_export_round_trip_and_checksum(tiny, tmp_path):
    from tts.speechlm import export_speechlm, verify_export

    out, _ = tiny
    info = export_speechlm(out, tmp_path / "exp", "bfloat16", {"made_by": "test"})
    assert verify_export(tmp_path / "exp") == info and info["notes"] == {"made_by": "test"}
    model, _, _ = load_speechlm(tmp_path / "exp")
    ref, _, _ = load_speechlm(out)
    w, r = model.get_input_embeddings().weight, ref.get_input_embeddings().weight
    assert torch.equal(w, r.to(torch.bfloat16).float()) and not torch.equal(w, r)
    with open(tmp_path / "exp" / "model.safetensors", "r+b") as f:
        f.seek(-8, 2)
        f.write(b"\x00" * 8)
    with pytest.raises(ValueError, match="checksum"):
        verify_export(tmp_path / "exp")
    with pytest.raises(FileNotFoundError, match="export.json"):
        verify_export(out)


# -- the one door: open_speechlm ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def policy_with_codec(tmp_path_factory):
    """A tiny SpeechLM created for a 64-code codec, which its layout.json records."""
    from tests.tiny import random_codec

    root = tmp_path_factory.mktemp("door")
    codec = random_codec(root / "codec")  # 4 x 16 = 64 codes
    create_tiny_speechlm(root / "lm", SMALL, codec_dir=codec)
    return root / "lm", codec


def test_open_speechlm_uses_the_codec_the_model_records(policy_with_codec):
    from tts.codec import codec_ref
    from tts.speechlm import open_speechlm

    lm, codec = policy_with_codec
    assert TokenLayout.load(lm).codec == {"path": str(codec.resolve()), "sha256": codec_ref(codec).sha256}
    opened = open_speechlm(lm)
    assert opened.directory == lm and opened.codec.directory == codec and opened.codec.codebook_size == 64
    assert opened.layout.codebook_size == 64 and len(opened.tokenizer) == opened.layout.vocab_size
    assert opened.codec.load().codebook_size == 64


def test_open_speechlm_refuses_a_codec_of_another_size_naming_both(policy_with_codec, tmp_path):
    from tests.tiny import random_codec
    from tts.speechlm import open_speechlm

    lm, _ = policy_with_codec
    other = random_codec(tmp_path / "other", env_clusters=32)  # 128 codes
    with pytest.raises(ValueError, match=rf"SpeechLM {lm} expects a codebook of 64 codes but codec {other} has 128"):
        open_speechlm(lm, other)


def test_open_speechlm_without_a_recorded_codec_asks_for_one(tiny):
    from tts.speechlm import open_speechlm

    out, _ = tiny  # created from a codebook size alone: no codec recorded
    with pytest.raises(ValueError, match="records no codec"):
        open_speechlm(out)


def test_open_speechlm_notices_a_refitted_codec(policy_with_codec, tmp_path):
    import shutil

    from tts.codec import load_codec
    from tts.speechlm import open_speechlm

    lm, codec = policy_with_codec
    copy = shutil.copytree(lm, tmp_path / "lm")
    old = load_codec(codec)
    moved = type(old)(old.cfg, old.centroids + 1.0).save(tmp_path / "codec")  # a refit: same size, new weights
    layout = TokenLayout.load(copy)
    layout.codec["path"] = str(moved)
    layout.save(copy)
    with pytest.raises(ValueError, match="was trained with codec .* now holds weights"):
        open_speechlm(copy)


def test_committed_policy_opens_with_its_codec():
    from tts.speechlm import _ROOT, EMBEDDED_SPEECHLM, open_speechlm

    opened = open_speechlm(_ROOT / EMBEDDED_SPEECHLM)
    assert opened.codec.directory.name == "codec-wordsync" and opened.codec.codebook_size == 16384
    assert opened.layout.interleave == "words" and opened.layout.front_end["kind"] == "phonemes"
