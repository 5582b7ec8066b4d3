"""Plots are written for a normal report and for one where nothing could be measured."""

from __future__ import annotations

from evals.config import EvalConfig
from evals.plots import plot_report
from evals.report import build_report
from tests.evals.test_report import row


def test_plots_with_data_and_without(tmp_path):
    rows = [row("a", "Hi.", 0.1), row("b", "x" * 70, 0.2, language="de")]
    for name, data in (("full", rows), ("failed", [row("a", "Hi.", 0.1, failure="missing: a.wav")])):
        out = tmp_path / name
        out.mkdir()
        written = plot_report(build_report(data, EvalConfig(), {"wav_dir": "/x"}), out)
        assert [p.name for p in written] == ["per_language.png", "length_buckets.png", "dnsmos.png"]
        assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
