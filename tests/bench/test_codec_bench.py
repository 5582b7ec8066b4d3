"""bench/codec.py compares two codec checkpoints on one manifest: table columns, chunk loudness, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny import random_codec
from tts.corpus.generate import CorpusConfig, generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_codec_bench_compares_two_codecs(tmp_path):
    generate(CorpusConfig(out_dir=str(tmp_path / "corpus"), sentences={"en": 40}, test_fraction=0.05))
    first, second = random_codec(tmp_path / "coarse", env_clusters=8), random_codec(tmp_path / "fine")
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "bench/codec.py"), "--manifest", str(tmp_path / "corpus/manifest.jsonl")]
    cmd += ["--codec", str(first), "--codec", str(second), "--limit", "2", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    header = next(line for line in res.stdout.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "original", "coarse", "fine"]
    for metric in ("DNSMOS OVRL", "chunk loudness error, dB", "chunk loudness error std", "decode RTF"):
        assert metric in res.stdout
    report = json.loads(out.read_text())
    codecs = report["codecs"]
    assert list(codecs) == [str(first), str(second)]
    assert report["summary"] == codecs[str(first)]["summary"] and report["codec"] == str(first)
    a, b = codecs[str(first)]["summary"], codecs[str(second)]["summary"]
    for s in (a, b):
        assert s["n"] == 2 and s["encode_rtf"] > 0 and s["decode_rtf"] > 0
        # random centroids: intelligibility is destroyed, so the round trip must score worse than the original
        assert s["wer_roundtrip"] > s["wer_original"]
        # ... and the loudness of the streamed pieces is off: positive, finite dB errors
        assert 0 < s["chunk_db_error"] < 100 and 0 < s["chunk_db_error_std"] < 100
    assert (a["wer_original"], a["ovrl_original"]) == (b["wer_original"], b["ovrl_original"])  # scored once
    assert a["chunk_db_error"] != b["chunk_db_error"]


def test_codec_bench_rejects_a_codec_given_twice(tmp_path):
    cmd = [sys.executable, str(ROOT / "bench/codec.py"), "--codec", "x", "--codec", "x"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 2 and "a codec given twice" in res.stderr
