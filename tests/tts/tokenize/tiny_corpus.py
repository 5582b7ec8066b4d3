"""A tiny espeak-ng corpus with one hand-made row per failure mode, and a small codec, for tokenisation tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.tiny import random_codec
from tts.base.audio import load_audio, resample
from tts.corpus.generate import CorpusConfig, generate

MAX_DURATION = 8.0  # test setting: the 3-file concatenation is longer, every corpus file shorter
# id -> the reason it must end up with (bad_files or dropped); rows not listed are good corpus rows
EXPECTED = {
    "corrupt": "unreadable_audio",
    "missing": "missing_file",
    "rate4k": "unsupported_sample_rate",
    "punct": "junk_transcript",
    "digits": "junk_transcript",
    "alien": "unsupported_language",
    "clipped": "too_short",
    "long": "too_long",
}
BAD_MANIFEST_ROWS = 2  # an empty transcript and a line that is not JSON


def small_codec(directory: Path) -> Path:
    return random_codec(directory)


def make_corpus(root: Path) -> Path:
    """16 good rows (en 12, de 4), an 8 kHz copy of an English row (good: resampled), the EXPECTED failures
    and BAD_MANIFEST_ROWS; returns the manifest path."""
    generate(CorpusConfig(out_dir=str(root), sentences={"en": 12, "de": 4}))
    manifest = root / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    en = next(r for r in rows if r["language"] == "en")
    wave, sr = load_audio(root / en["wav"])
    bad = root / "bad"
    bad.mkdir(exist_ok=True)
    (bad / "corrupt.wav").write_bytes(np.random.default_rng(1).bytes(4000))
    sf.write(bad / "rate8k.wav", resample(wave, sr, 8000), 8000)
    sf.write(bad / "rate4k.wav", resample(wave, sr, 4000), 4000)
    sf.write(bad / "clipped.wav", wave[: int(0.3 * sr)], sr)
    sf.write(bad / "long.wav", np.concatenate([wave] * 3), sr)

    def row(id: str, wav: str, text: str = en["text"], language: str = "en") -> str:
        return json.dumps({"id": id, "text": text, "language": language, "speaker": "spk", "wav": wav})

    extra = [
        row("rate8k", "bad/rate8k.wav"),
        row("corrupt", "bad/corrupt.wav"),
        row("missing", "bad/missing.wav"),
        row("rate4k", "bad/rate4k.wav"),
        row("punct", en["wav"], text=" ?!... , "),
        row("digits", en["wav"], text="12 345"),
        row("alien", en["wav"], language="xx"),
        row("clipped", "bad/clipped.wav"),
        row("long", "bad/long.wav"),
        row("empty", en["wav"], text=""),
        '{"id": "broken", "text": ',
    ]
    with open(manifest, "a", encoding="utf-8") as f:
        f.write("\n".join(extra) + "\n")
    return manifest
