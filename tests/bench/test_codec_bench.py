"""bench/codec.py runs on a manifest and a codec checkpoint, prints its table and writes JSON."""

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
def test_codec_bench_table_and_json(tmp_path):
    generate(CorpusConfig(out_dir=str(tmp_path / "corpus"), sentences={"en": 40}, test_fraction=0.05))
    random_codec(tmp_path / "codec", env_clusters=8)
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        str(ROOT / "bench/codec.py"),
        "--manifest",
        str(tmp_path / "corpus/manifest.jsonl"),
        "--codec",
        str(tmp_path / "codec"),
        "--limit",
        "2",
        "--out",
        str(out),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "DNSMOS OVRL" in res.stdout and "decode RTF" in res.stdout
    s = json.loads(out.read_text())["summary"]
    assert s["n"] == 2 and s["encode_rtf"] > 0 and s["decode_rtf"] > 0
    # random centroids: intelligibility is destroyed, so the round trip must score worse than the original
    assert s["wer_roundtrip"] > s["wer_original"]
