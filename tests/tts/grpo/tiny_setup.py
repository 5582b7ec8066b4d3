"""Tiny GRPO inputs shared by tests/tts/grpo and tests/rayjobs/test_grpo.py: an espeak-ng corpus rendered by the
project's own generator, a random 64-code codec and a tiny SpeechLM whose tokenizer is trained on that corpus."""

from __future__ import annotations

from pathlib import Path

from tests.tiny import TINY_LM, random_codec
from tts.corpus.generate import CorpusConfig, generate
from tts.speechlm import create_tiny_speechlm

CODEBOOK = 64  # random_codec's 4 f0 bins x 16 envelope clusters
# en: 2 test (held-out speakers en_08/en_09), 2 val, 20 train rows; de: 2 test, 2 val, 2 train
SENTENCES = {"en": 24, "de": 6}


def tiny_corpus(directory: Path) -> Path:
    """Render the tiny corpus into `directory`; returns its manifest."""
    summary = generate(CorpusConfig(out_dir=str(directory), sentences=dict(SENTENCES), workers=1))
    if summary["failures"]:
        raise RuntimeError(f"espeak-ng failed: {summary['failures'][:3]}")
    return Path(directory) / "manifest.jsonl"


def tiny_policy(directory: Path, manifest: Path) -> Path:
    create_tiny_speechlm(directory, TINY_LM, manifest=manifest, codebook_size=CODEBOOK)
    return Path(directory)


def tiny_codec(directory: Path) -> Path:
    return random_codec(directory)
