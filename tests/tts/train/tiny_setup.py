"""Tiny inputs for training tests: a 64-code codec, shards of random codes with real transcripts, a tiny
SpeechLM and a plain (unexpanded) causal LM."""

from __future__ import annotations

from pathlib import Path

from tests.tiny import TINY_LM, random_codec
from tts.corpus.text import generate_sentences
from tts.speechlm import create_tiny_speechlm, train_text_tokenizer
from tts.tokenize.synthetic import write_random_shards

CODEBOOK = 64
SMALL = TINY_LM


def small_codec(directory: Path) -> Path:
    return random_codec(directory)  # 64 codes


write_corpus = write_random_shards


def tiny_speechlm(directory: Path) -> Path:
    create_tiny_speechlm(directory, SMALL, codebook_size=CODEBOOK)
    return directory


def plain_lm(directory: Path) -> Path:
    """A small LLaMA with a text-only tokenizer: what `tts.base.layout.expand` turns into a SpeechLM."""
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
