"""Filter decisions on constructed tables: junk transcripts, language, duration, OVRL quantile, cps tails."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tts.tokenize.config import TokenizeConfig
from tts.tokenize.filters import chars_per_second, decide, is_junk


def table(rows: list[dict]) -> pd.DataFrame:
    base = {"text": "a normal sentence", "language": "en", "duration": 2.0, "ovrl": 3.0}
    return pd.DataFrame([base | r for r in rows])


@pytest.mark.parametrize("text", ["", "   ", " ?!... , ", "12 345", "— «» …", "\t\n", "¿¡", "²³"])
def test_junk_transcripts(text):
    assert is_junk(text)


@pytest.mark.parametrize("text", ["a", "Hello.", "42 Straße", "日本語", "こんにちは", "안녕하세요", "x1"])
def test_real_transcripts_in_any_script(text):
    assert not is_junk(text)


def test_chars_per_second_ignores_whitespace():
    assert chars_per_second(" ab c\td \n", 2.0) == 2.0
    assert chars_per_second("abc", 0.0) == float("inf")


def test_ovrl_quantile_cut_drops_the_lowest_fifth():
    d = decide(table([{"ovrl": float(v)} for v in range(1, 11)]), TokenizeConfig())
    assert d.thresholds["dnsmos_ovrl"] == pytest.approx(np.quantile(np.arange(1, 11), 0.2)) == pytest.approx(2.8)
    assert list(d.reasons) == ["low_dnsmos"] * 2 + [""] * 8


def test_ovrl_quantile_counts_every_scored_row_but_not_unscored_ones():
    rows = [{"ovrl": float(v)} for v in range(1, 11)]
    rows[0]["text"] = "?!"  # junk, but still in the OVRL population: rows 1 and 2 are below 2.8
    rows.append({"ovrl": float("nan"), "duration": 50.0})  # overlong rows are not scored
    d = decide(table(rows), TokenizeConfig())
    assert d.thresholds["dnsmos_ovrl"] == pytest.approx(2.8)
    assert list(d.reasons) == ["junk_transcript", "low_dnsmos"] + [""] * 8 + ["too_long"]


def test_zero_fraction_keeps_every_ovrl():
    d = decide(table([{"ovrl": float(v)} for v in range(5)]), TokenizeConfig(dnsmos_drop_fraction=0.0))
    assert d.thresholds["dnsmos_ovrl"] is None and not any(d.reasons)


def test_quantile_cut_is_deterministic_and_keeps_ties():
    t = table([{"ovrl": v} for v in [2.0, 2.0, 2.0, 2.0, 3.0]])
    first, second = decide(t, TokenizeConfig()), decide(t.copy(), TokenizeConfig())
    assert first.thresholds == second.thresholds and list(first.reasons) == list(second.reasons) == [""] * 5


def test_cps_tails_per_language_with_enough_rows():
    # en: 20 rows at 1..20 chars per second; de: 5 rows with extreme rates but too few rows for tails
    en = [{"text": "a" * k, "duration": 1.0} for k in range(1, 21)]
    de = [{"text": "b" * k, "duration": 1.0, "language": "de"} for k in (1, 2, 50, 60, 70)]
    cfg = TokenizeConfig(dnsmos_drop_fraction=0.0, cps_min_rows=20)
    d = decide(table(en + de), cfg)
    lo, hi = np.quantile(np.arange(1, 21), [0.05, 0.95])
    assert d.thresholds["cps"] == {"en": [pytest.approx(lo), pytest.approx(hi)]}
    assert list(d.reasons[:20]) == ["cps_outlier"] + [""] * 18 + ["cps_outlier"]
    assert not any(d.reasons[20:])
    assert list(decide(table(en + de), TokenizeConfig(dnsmos_drop_fraction=0.0, cps_min_rows=5)).reasons[20:]) == [
        "cps_outlier",
        "",
        "",
        "",
        "cps_outlier",
    ]


def test_cps_population_excludes_rows_failing_earlier_checks():
    en = [{"text": "a" * k, "duration": 1.0} for k in range(1, 21)]
    en.append({"text": "a" * 500, "duration": 1.0, "language": "xx"})  # not en: not part of en's tails
    en.append({"text": "a" * 400, "duration": 0.2})  # too short: not part of the tails either
    d = decide(table(en), TokenizeConfig(dnsmos_drop_fraction=0.0))
    assert d.thresholds["cps"]["en"] == [pytest.approx(x) for x in np.quantile(np.arange(1, 21), [0.05, 0.95])]
    assert list(d.reasons[20:]) == ["unsupported_language", "too_short"]


def test_language_and_duration_bounds():
    rows = [
        {"language": "xx"},
        {"language": "ko", "text": "안녕하세요"},
        {"duration": 0.49},
        {"duration": 0.5},
        {"duration": 40.0},
        {"duration": 40.01},
    ]
    d = decide(table(rows), TokenizeConfig(dnsmos_drop_fraction=0.0))
    assert list(d.reasons) == ["unsupported_language", "", "too_short", "", "", "too_long"]
    only_xx = decide(table(rows[:2]), TokenizeConfig(dnsmos_drop_fraction=0.0, languages=["xx"]))
    assert list(only_xx.reasons) == ["", "unsupported_language"]


def test_first_reason_wins():
    rows = [{"text": "...", "language": "xx", "duration": 0.1, "ovrl": 1.0}, {"language": "xx", "ovrl": 1.0}]
    rows += [{"ovrl": 4.0}] * 8
    assert list(decide(table(rows), TokenizeConfig()).reasons[:2]) == ["junk_transcript", "unsupported_language"]


def test_empty_table():
    d = decide(table([]).reindex(columns=["text", "language", "duration", "ovrl"]), TokenizeConfig())
    assert len(d.reasons) == 0 and d.thresholds == {"dnsmos_ovrl": None, "cps": {}}


@pytest.mark.parametrize(
    "bad",
    [
        {"dnsmos_drop_fraction": 1.0},
        {"cps_low_quantile": 0.9, "cps_high_quantile": 0.1},
        {"min_duration": 5.0, "max_duration": 1.0},
        {"shard_size": 0},
    ],
)
def test_config_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        TokenizeConfig(**bad)
