import json
import math

import pytest

from tts.grpo.telemetry import (
    MEASURES,
    compare_evals,
    compare_markdown,
    eval_metrics,
    plot_eval_curves,
    set_key,
    summarise,
)


def row(prompt: str, k: int, wer: float | None, total: float, unscorable: bool = False) -> dict:
    return {
        "id": f"{prompt}#{k}",
        "error_rate": wer,
        "sim": None if wer is None else 0.7,
        "dnsmos": None if wer is None else {"ovrl": 3.0},
        "rewards": {"total": total},
        "flags": ["audio: silent"] if unscorable else [],
        "unscorable": unscorable,
    }


def test_compare_evals_pairs_samples_by_prompt_and_counts_unscorable_outputs():
    before = [row("a", 0, 1.0, 0.1), row("a", 1, 0.8, 0.2), row("b", 0, None, 0.0, True), row("b", 1, 0.6, 0.3)]
    after = [row("a", 0, 0.5, 0.5), row("a", 1, 0.3, 0.6), row("b", 0, 0.4, 0.4), row("b", 1, 0.2, 0.5)]
    c = compare_evals(before, after)
    assert set(c) == {*MEASURES, "unscorable", "samples"}
    wer = c["wer"]
    assert wer["paired"] == 2
    assert wer["before"]["mean"] == pytest.approx((0.9 + 0.6) / 2)  # prompt means; the silent sample left out
    assert wer["delta"] == pytest.approx(((0.4 - 0.9) + (0.3 - 0.6)) / 2)
    assert wer["delta_ci95"][0] <= wer["delta"] <= wer["delta_ci95"][1] < 0
    assert c["reward_total"]["before"]["mean"] == pytest.approx((0.15 + 0.15) / 2)
    assert c["unscorable"] == {"before": 1, "after": 0} and c["samples"] == {"before": 4, "after": 4}
    md = compare_markdown(c)
    assert "| wer % | 75.0 [" in md and "| unscorable outputs | 1 | 0 | -1 |" in md


def test_summarise_counts_outputs_the_router_could_not_score():
    scored = {"rewards": {"total": 0.5, "wer": 0.5, "sim": 0.5, "dnsmos": 0.5}, "error_rate": 0.2, "failed": []}
    silent = {"rewards": {"total": 0.0, "wer": 0.0, "sim": 0.0, "dnsmos": 0.0}, "flags": ["audio: silent"]}
    s = summarise([scored, silent, dict(scored)])
    assert s["n"] == 3 and s["unscorable"] == 1 and s["raw"]["wer"] == pytest.approx(0.2)


def summary(wer: float | None, total: float, **sets: dict) -> dict:
    out = {"total": total, "raw": {"wer": wer, "sim": 0.7, "dnsmos_ovrl": 3.0}}
    return out | ({"sets": sets} if sets else {})


def test_eval_metrics_name_each_sets_figures_after_the_set():
    m = eval_metrics(summary(0.9, 0.3, **{"cloning/en": summary(0.8, 0.4), "length/en": summary(None, 0.1)}))
    assert m["eval_wer"] == 0.9 and m["eval_reward"] == 0.3 and m["eval_cloning_en_wer"] == 0.8
    assert m["eval_cloning_en_reward"] == 0.4 and m["eval_length_en_sim"] == 0.7
    assert math.isnan(m["eval_length_en_wer"])  # nothing scorable: NaN in the row, not a missing key
    assert set_key("continuation/zh-CN") == "continuation_zh_CN"
    assert eval_metrics(summary(0.5, 0.2)).keys() == {"eval_reward", "eval_wer", "eval_sim", "eval_dnsmos_ovrl"}


def test_eval_curves_plot_every_set_from_before_through_the_steps_to_after(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    rows = [{"step": 1}, {"step": 2} | eval_metrics(summary(0.7, 0.3, **{"cloning/en": summary(0.6, 0.4)}))]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = {"before": summary(0.9, 0.2, **{"cloning/en": summary(0.8, 0.3)}), "steps": 3}
    report["after"] = summary(0.5, 0.4, **{"cloning/en": summary(0.4, 0.5)})
    out = plot_eval_curves(metrics, tmp_path / "eval_curves.png", report)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_eval_curves(tmp_path / "none.jsonl", tmp_path / "no.png", {"before": None, "after": None}) is None
    assert not (tmp_path / "no.png").exists()


def test_a_sets_compare_table_goes_under_its_own_title():
    c = compare_evals([row("a", 0, 1.0, 0.1)], [row("a", 0, 0.5, 0.5)])
    md = compare_markdown(c, "## cloning/en")
    assert md.startswith("## cloning/en\n") and "| wer % |" in md
