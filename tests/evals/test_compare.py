"""Two runs side by side: deltas are B - A, Table 8's rows for both runs, mismatched metrics refused."""

from __future__ import annotations

import json

import pytest

from evals.compare import compare, write_compare
from evals.config import EvalConfig
from evals.report import build_report
from tests.evals.test_report import row


def save(tmp_path, name, rows):
    run = tmp_path / name
    run.mkdir()
    (run / "report.json").write_text(json.dumps(build_report(rows, EvalConfig(), {"wav_dir": name})))
    return run


def test_deltas_are_b_minus_a(tmp_path):
    a = save(tmp_path, "sft", [row("s", "Hi.", 0.3, sim=0.5), row("m", "x" * 60, 0.2, sim=0.6)])
    b = save(tmp_path, "rl", [row("s", "Hi.", 0.1, sim=0.6), row("m", "x" * 60, 0.1, failure="missing: m.wav")])
    c = write_compare(a, b, tmp_path / "cmp")
    assert c["same_utterances"]
    assert c["summary"]["delta"]["wer"] == pytest.approx(0.1 - 0.25)
    assert c["summary"]["delta"]["sim"] == pytest.approx(0.6 - 0.55)
    assert c["summary"]["delta"]["failures"] == 1
    assert c["table8"]["delta"]["short"] == pytest.approx(-0.2) and c["table8"]["delta"]["medium"] is None
    assert c["per_language"]["en"]["delta"]["wer"] == pytest.approx(-0.15)
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| A sft | 30.0 | 20.0 | - | 25.0 |" in md and "| B rl | 10.0 | - | - | 10.0 |" in md
    assert "| B - A | -20.0 | - | - | -15.0 |" in md and "different utterances" not in md
    # per-utterance deltas, paired over what both runs measured: m failed in B, so only s pairs
    wer = c["paired"]["error_rate"]
    assert wer["paired"] == 1 and wer["delta"] == pytest.approx(-0.2) and wer["delta_ci95"] is None
    assert wer["before"]["mean"] == pytest.approx(0.25) and wer["before"]["ci95"][0] <= 0.25
    assert "| WER/CER % | 25.0 [20.0, 30.0] | 10.0 | -20.0 | 1 |" in md


def test_paired_interval_over_many_utterances(tmp_path):
    a = save(tmp_path, "a", [row(f"u{i}", "Hi there.", 0.1 * (i % 5) + 0.05, sim=0.5) for i in range(20)])
    b = save(tmp_path, "b", [row(f"u{i}", "Hi there.", 0.1 * (i % 5), sim=0.5) for i in range(20)])
    wer = compare(a, b)["paired"]["error_rate"]
    assert wer["paired"] == 20 and wer["delta"] == pytest.approx(-0.05)
    assert wer["delta_ci95"] == pytest.approx([-0.05, -0.05])  # the same shift everywhere: no doubt at all
    lo, hi = wer["before"]["ci95"]
    assert lo < wer["before"]["mean"] < hi
    other = save(tmp_path, "other", [row("s", "Hi.", 0.1)])
    assert not write_compare(a, other, tmp_path / "cmp2")["same_utterances"]
    assert "**The runs cover different utterances.**" in (tmp_path / "cmp2" / "compare.md").read_text()


def test_missing_report_and_metric_mismatch(tmp_path):
    a = save(tmp_path, "a", [row("s", "Hi.", 0.3)])
    with pytest.raises(FileNotFoundError, match="no report"):
        compare(a, tmp_path / "nope")
    b = save(tmp_path, "b", [row("z", "下午", 0.2, language="zh") | {"metric": "cer"}])
    with pytest.raises(ValueError, match="judged by wer"):
        compare(a, b)
