"""The tokenize job's entry point: overrides, a seed-tts-eval meta.lst end to end, and the stdlib-name guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.tts.tokenize.tiny_corpus import small_codec
from tts.base.audio import load_audio
from tts.base.config import load_config
from tts.codec import load_codec
from tts.tokenize import ShardDataset, TokenizeConfig

ROOT = Path(__file__).resolve().parents[2]
JOB = ROOT / "rayjobs/tokenize_corpus.py"


def test_overrides_reach_the_config():
    cfg = load_config(TokenizeConfig, None, ["language=de", "languages=[en, xx]", "dnsmos_drop_fraction=0.1"])
    assert cfg.language == "de" and cfg.languages == ["en", "xx"] and cfg.dnsmos_drop_fraction == 0.1
    assert cfg.codec_dir is None and cfg.shard_size == 256


def test_entry_point_reports_bad_overrides_without_shadowing_stdlib_tokenize(tmp_path):
    # `python rayjobs/tokenize_corpus.py` puts rayjobs/ on sys.path; dataclasses -> inspect -> `import tokenize` would
    # then load this job instead of the stdlib module unless the script removes its directory first.
    res = subprocess.run(
        [sys.executable, str(JOB), "--manifest", "m.jsonl", "--out", "out", "not_a_field=1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert res.returncode != 0 and "unknown key(s) ['not_a_field']" in res.stderr, res.stderr[-2000:]


def vowel(seconds: float, f0: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 20))
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


@pytest.mark.slow
def test_meta_lst_end_to_end(tmp_path):
    data = tmp_path / "seed"
    (data / "wavs").mkdir(parents=True)
    for i, name in enumerate(["prompt1", "gt1", "prompt2", "prompt3"]):
        sf.write(data / "wavs" / f"{name}.wav", vowel(1.0 + 0.25 * i, 100 + 20 * i), 16000)
    lines = [
        "u1|the prompt speaks|wavs/prompt1.wav|the target is read|wavs/gt1.wav",
        "u2|another prompt here|wavs/prompt2.wav|some other target",
        "u3| ... |wavs/prompt3.wav|target three",
        "u4|three|fields",
        "u5|a missing prompt|wavs/nowhere.wav|target five",
        "u6||wavs/prompt3.wav|an empty prompt transcript",
    ]
    (data / "meta.lst").write_text("\n".join(lines) + "\n")
    codec_dir = small_codec(tmp_path / "codec")
    out = tmp_path / "out"
    cmd = [sys.executable, str(JOB), "--manifest", str(data / "meta.lst"), "--out", str(out), "--language", "de"]
    cmd += [f"codec_dir={codec_dir}", "dnsmos_drop_fraction=0", "dnsmos_actors=1", "encode_actors=1"]
    env = os.environ | {"RAY_ADDRESS": "local"}  # a fresh local instance, never a cluster found on the machine
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "kept by filters" in res.stdout and "paper: 48 kHz audio" in res.stdout

    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_in"] == 6 and summary["kept"] == 2 and summary["shards"] == 1
    assert summary["bad_reasons"] == {"bad_manifest_row": 1, "missing_file": 1}
    assert {k: v for k, v in summary["dropped"].items() if v} == {"junk_transcript": 2}
    codec = load_codec(codec_dir)
    got = {meta["id"]: (meta, codes) for meta, codes in ShardDataset(out)}
    assert got["u1"][0]["text"] == "the target is read" and got["u1"][0]["wav"].endswith("wavs/gt1.wav")
    assert got["u2"][0]["text"] == "another prompt here" and got["u2"][0]["wav"].endswith("wavs/prompt2.wav")
    for meta, codes in got.values():
        assert meta["language"] == "de"
        np.testing.assert_array_equal(codes, codec.encode(*load_audio(meta["wav"])))
