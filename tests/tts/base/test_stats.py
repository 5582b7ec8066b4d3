import math

import numpy as np
import pytest

from tts.base.stats import ci_text, mean_ci, paired_delta


def test_mean_ci_leaves_out_missing_values_and_needs_two():
    assert mean_ci([]) == {"mean": None, "ci95": None, "n": 0}
    assert mean_ci([None, float("nan"), 0.5]) == {"mean": 0.5, "ci95": None, "n": 1}
    assert mean_ci([0.3, 0.3, None, 0.3]) == {"mean": pytest.approx(0.3), "ci95": [0.3, 0.3], "n": 3}


def test_mean_ci_brackets_the_mean_and_narrows_with_more_data():
    rng = np.random.default_rng(1)
    small, large = rng.normal(1.0, 1.0, 20), rng.normal(1.0, 1.0, 500)
    s, lg = mean_ci(small.tolist()), mean_ci(large.tolist())
    assert s["ci95"][0] < s["mean"] < s["ci95"][1]
    assert (lg["ci95"][1] - lg["ci95"][0]) < 0.5 * (s["ci95"][1] - s["ci95"][0])
    # the percentile interval of a mean is close to the normal one: mean +- 1.96 sd / sqrt(n)
    half = 1.96 * large.std(ddof=1) / math.sqrt(len(large))
    assert (lg["ci95"][1] - lg["ci95"][0]) / 2 == pytest.approx(half, rel=0.15)


def test_mean_ci_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    hits = 0
    for trial in range(60):
        ci = mean_ci(rng.exponential(1.0, 40).tolist(), resamples=500, seed=trial)["ci95"]
        hits += ci[0] <= 1.0 <= ci[1]
    assert 48 <= hits <= 60  # ~57 expected; a broken interval (a point, or the data's range) misses this


def test_paired_delta_pairs_prompts_and_sees_a_shift_their_spread_hides():
    rng = np.random.default_rng(3)
    level = {f"p{i}": rng.uniform(0.0, 1.0) for i in range(30)}  # prompts differ a lot
    before = {k: [v, v + 0.01] for k, v in level.items()}
    after = {k: [v - 0.05, v - 0.04, None] for k, v in level.items()}  # every prompt 0.05 better
    after["only_after"] = [0.0]
    d = paired_delta(before, after)
    assert d["paired"] == 30 and d["after"]["n"] == 31 and d["before"]["n"] == 30
    assert d["delta"] == pytest.approx(-0.05)
    assert d["delta_ci95"][1] < 0  # the paired interval excludes 0 ...
    b, a = d["before"]["ci95"], d["after"]["ci95"]
    assert a[1] > b[0]  # ... while the two unpaired intervals overlap


def test_ci_text_formats_scaled_intervals():
    assert ci_text(0.1234, [0.1, 0.15], scale=100, digits=1) == "12.3 [10.0, 15.0]"
    assert ci_text(None, None) == "-" and ci_text(0.5, None) == "0.500"


def test_a_share_of_yes_or_no_outcomes_gets_the_bootstraps_exact_interval_whatever_the_order():
    """0/1 values (a share of prompts): the percentile bootstrap's own limit, the binomial quantiles of the observed
    share, so the interval depends on neither the resamples nor the order (6 of 8 sat on a goal's threshold, 0.5,
    and met it or not by the draw)."""
    six = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0]
    assert {tuple(mean_ci(np.roll(six, k).tolist(), seed=s)["ci95"]) for k in range(8) for s in range(3)} == {
        (0.375, 1.0)
    }
    assert mean_ci([1.0] * 7 + [0.0])["ci95"] == [0.625, 1.0]
    assert mean_ci([0.0, 1.0, 0.0, 0.0])["ci95"] == [0.0, 0.75]
