"""Shards of random codes with real transcripts: training benchmarks and tests without a tokenisation run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tts.codec import load_codec
from tts.codec.base import read_codec_manifest
from tts.corpus.text import generate_sentences
from tts.tokenize.shards import shard_dir, write_shard


def write_random_shards(
    root: Path,
    codec_dir: Path,
    rows: int = 12,
    speakers: int = 3,
    n_codes: tuple[int, int] = (20, 60),
    seed: int = 0,
    tags: tuple[str, ...] = (),
    timed: bool = False,
) -> Path:
    """A tokenize output directory (one shard + summary.json naming the codec, as the training jobs check);
    with `tags`, row i's transcript starts with markup tag i mod len(tags); `timed`: every row has phoneme timings
    (one "phoneme" per character of its words, evenly over its duration, as tts.corpus.timing writes them)."""
    root = Path(root)
    codebook = load_codec(codec_dir).codebook_size
    rng = np.random.default_rng(seed)
    items = []
    for i, text in enumerate(generate_sentences("en", rows)):
        codes = rng.integers(0, codebook, size=int(rng.integers(*n_codes)))
        text = f"{tags[i % len(tags)]} {text}" if tags else text
        meta = {"id": f"u{i:03d}", "text": text, "language": "en", "speaker": f"spk{i % speakers}"}
        meta |= {"duration": len(codes) / 50, "n_codes": len(codes)}
        if timed:
            chars = "".join(text.split())
            meta["phonemes"] = [[c, round(k * meta["duration"] / len(chars), 3)] for k, c in enumerate(chars)]
        items.append((meta, codes))
    write_shard(shard_dir(root, 0), "synthetic", items, [])
    sha = read_codec_manifest(codec_dir)[0]["sha256"]
    summary = {"codec": {"dir": str(codec_dir), "sha256": sha, "codebook_size": codebook, "frame_rate": 50}}
    (root / "summary.json").write_text(json.dumps(summary))
    return root
