"""bench/codec_decoders.py times the 16/24/48 kHz decoders and the embedded SpeechLM: table and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DECODERS = ("xcodec2-16k", "xcodec2-24k", "xcodec2-48k", "embedded (codec_embedded.yaml)")
EMBEDDED_LM = "embedded SpeechLM (7.85 M)"


@pytest.mark.slow
def test_codec_decoders_bench_table_and_json(tmp_path):
    out = tmp_path / "decoders.json"
    cmd = [sys.executable, str(ROOT / "bench/codec_decoders.py"), "--seconds", "0.2", "--repeats", "1"]
    cmd += [
        "--llm-1b-tokens",
        "0",
        "--group",
        "2",
        "--reference-seconds",
        "1",
        "--out",
        str(out),
    ]  # 0: the 1B-shaped SpeechLM is skipped
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()
    assert lines[0].split()[:5] == ["decoder", "kHz", "params", "M", "decode"]
    for name, khz in zip(DECODERS, ("16", "24", "48", "16")):
        assert any(line.startswith(name) and line[len(name) :].split()[0] == khz for line in lines)
    assert f"generation of 10 tokens (0.2 s of audio), {EMBEDDED_LM}" in res.stdout

    report = json.loads(out.read_text())
    assert report["tokens"] == 10 and report["llm_1b_tokens_timed"] == 0
    assert list(report["generation_s"]) == [EMBEDDED_LM] and report["generation_s"][EMBEDDED_LM] > 0
    rows = {r["decoder"]: r for r in report["decoders"]}
    assert list(rows) == list(DECODERS)
    assert [rows[n]["sample_rate"] for n in DECODERS[:3]] == [16000, 24000, 48000]
    for row in rows.values():
        assert row["rtf"] > 0 and row["rtf"] == pytest.approx(row["decode_s"] / 0.2)
        assert row["decode_over_generation"][EMBEDDED_LM] > 0
    assert 186 < rows["xcodec2-16k"]["params_m"] < 188 and 192 < rows["xcodec2-48k"]["params_m"] < 195

    assert "GRPO group decode: 2 x 0.2 s after a 1 s reference" in res.stdout
    groups = {r["codec"]: r for r in report["group_decode"]}
    assert list(groups) == ["codec-speechlm", "codec-wordsync", "xcodec2-16k (random)"]
    for r in groups.values():
        assert r["whole_s"] > 0 and r["tail_s"] > 0 and r["speedup"] == pytest.approx(r["whole_s"] / r["tail_s"])
    for name in ("codec-speechlm", "codec-wordsync"):  # the tail changes the audio less than another completion
        assert 0 <= groups[name]["tail_vs_whole_db"] < groups[name]["two_completions_db"]
