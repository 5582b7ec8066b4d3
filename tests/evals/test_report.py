"""Report tables from known rows: Table 8's Total Avg. is the mean of the bucket values, Table 10 appears when the
no-prompt decode was scored, the Markdown names failures."""

from __future__ import annotations

import pytest

from evals.config import EvalConfig
from evals.report import build_report, table8_row, to_markdown


def row(uid, text, rate, decode="prompt", failure=None, sim=0.5, language="en"):
    return {
        "id": uid,
        "decode": decode,
        "language": language,
        "text": text,
        "chars": len(text),
        "transcript": "",
        "metric": "wer",
        "error_rate": None if failure else rate,
        "edits": None if failure else 1,
        "ref_len": None if failure else 10,
        "sim": None if failure else sim,
        "dnsmos": None if failure else {"sig": 3.0, "bak": 4.0, "ovrl": 3.0, "p808": 3.5},
        "duration": 1.0,
        "synth_s": None,
        "failure": failure,
        "flags": [],
    }


def test_table8_total_average_is_the_mean_of_the_buckets():
    # the paper's TTS-1 row: 11.3, 4.0, 8.5 -> 7.9 (not weighted by the 208/150/517 utterances)
    per_bucket = {"short": {"wer": 0.113}, "medium": {"wer": 0.040}, "long": {"wer": 0.085}}
    assert table8_row(per_bucket, "wer")["total_avg"] == pytest.approx(0.0793, abs=1e-4)
    assert table8_row({"short": {"wer": None}, "medium": {"wer": 0.1}}, "wer")["total_avg"] == pytest.approx(0.1)


def test_report_per_bucket_and_prompt_decoding():
    rows = [
        row("s1", "Hi there.", 0.2),
        row("s2", "Hello.", 0.4),
        row("m1", "x" * 60, 0.1),
        row("l1", "y" * 150, 0.3, failure="missing: l1.wav"),
        row("s1", "Hi there.", 0.5, decode="no_prompt", sim=0.3),
    ]
    report = build_report(rows, EvalConfig(), {"wav_dir": "/gen"})
    assert report["summary"]["n"] == 4 and report["summary"]["failures"] == 1
    assert report["per_bucket"]["short"]["wer"] == pytest.approx(0.3)
    assert report["table8"]["row"] == pytest.approx({"short": 0.3, "medium": 0.1, "long": None, "total_avg": 0.2})
    assert report["buckets"]["table7"]["short"]["total"] == 2
    assert report["decode_prompt"]["no_prompt"]["sim"] == pytest.approx(0.3)
    assert report["decode_prompt"]["prompt"]["sim"] == pytest.approx(0.5)
    md = to_markdown(report)
    for heading in (
        "## Summary",
        "## Per language (Figure 8)",
        "## Length buckets (Table 7",
        "## WER by length (Table 8)",
        "## Decoding with vs without the prompt audio (Table 10)",
        "## Failures (1)",
    ):
        assert heading in md
    assert "| this run | 30.0 | 10.0 | - | 20.0 |" in md
    assert "- l1 (prompt): missing: l1.wav" in md


def test_cer_only_sets_are_judged_by_cer():
    rows = [row("z", "下午我的父母", 0.2, language="zh") | {"metric": "cer"}]
    report = build_report(rows, EvalConfig(), {"wav_dir": "/gen"})
    assert report["table8"]["metric"] == "cer" and report["table8"]["row"]["short"] == pytest.approx(0.2)
    assert "| zh | 1 | 0 | 20.0 (CER) |" in to_markdown(report)
