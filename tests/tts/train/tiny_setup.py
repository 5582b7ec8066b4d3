"""Tiny inputs for training tests: a 64-code codec, shards of random codes with real transcripts, a tiny
SpeechLM and a plain (unexpanded) causal LM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.tiny import TINY_LM, random_codec
from tts.codec import load_codec
from tts.codec.base import read_manifest
from tts.corpus.text import generate_sentences
from tts.speechlm import create_tiny_speechlm, train_text_tokenizer
from tts.tokenize.shards import shard_dir, write_shard

CODEBOOK = 64
SMALL = TINY_LM


def small_codec(directory: Path) -> Path:
    return random_codec(directory)  # 64 codes


def write_corpus(
    root: Path, codec_dir: Path, rows: int = 12, speakers: int = 3, n_codes: tuple[int, int] = (20, 60), seed: int = 0
) -> Path:
    """A tokenize output directory (one shard + summary.json naming the codec) of random codes."""
    codebook = load_codec(codec_dir).codebook_size
    rng = np.random.default_rng(seed)
    items = []
    for i, text in enumerate(generate_sentences("en", rows)):
        codes = rng.integers(0, codebook, size=int(rng.integers(*n_codes)))
        meta = {"id": f"u{i:03d}", "text": text, "language": "en", "speaker": f"spk{i % speakers}"}
        items.append((meta | {"duration": len(codes) / 50, "n_codes": len(codes)}, codes))
    write_shard(shard_dir(root, 0), "test", items, [])
    sha = read_manifest(codec_dir)[0]["sha256"]
    summary = {"codec": {"dir": str(codec_dir), "sha256": sha, "codebook_size": codebook, "frame_rate": 50}}
    (root / "summary.json").write_text(json.dumps(summary))
    return root


def tiny_speechlm(directory: Path) -> Path:
    create_tiny_speechlm(directory, SMALL, codebook_size=CODEBOOK)
    return directory


def plain_lm(directory: Path) -> Path:
    """A small LLaMA with a text-only tokenizer: what `tts.layout.expand` turns into a SpeechLM."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_text_tokenizer(generate_sentences("en", 200), 300)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
