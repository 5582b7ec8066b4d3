"""Bootstrap confidence intervals for evaluation means and paired before/after deltas (scipy's `bootstrap`).

Small held-out sets (16-100 prompts) make a mean move by chance; reports give each mean and each delta with its
95% interval so a reader can tell a change from noise. Deltas are paired (the same prompts before and after),
which is much tighter than comparing two independent intervals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy.stats import binom, bootstrap

RESAMPLES = 2000
CONFIDENCE = 0.95


def _finite(values: Iterable[float | None]) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)


def mean_ci(values: Iterable[float | None], resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """`{"mean", "ci95": [lo, hi] | None, "n"}` over the finite values (None and NaN are left out; the interval
    needs two or more). Percentile bootstrap: it stays defined when every value is equal (BCa does not). For 0/1
    values (a share) it is computed exactly: the resampled mean is binomial, so its quantiles need no draws, and an
    interval on a goal's threshold does not flip with the resample order."""
    x = _finite(values)
    if len(x) == 0:
        return {"mean": None, "ci95": None, "n": 0}
    ci = None
    if len(x) > 1:
        if np.ptp(x) == 0:
            ci = [float(x[0]), float(x[0])]
        elif np.isin(x, (0.0, 1.0)).all():
            tails = [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2]
            ci = [float(k) / len(x) for k in binom.ppf(tails, len(x), x.mean())]
        else:
            res = bootstrap(
                (x,),
                np.mean,
                confidence_level=CONFIDENCE,
                n_resamples=resamples,
                method="percentile",
                rng=np.random.default_rng(seed),
                vectorized=True,
            )
            ci = [float(res.confidence_interval.low), float(res.confidence_interval.high)]
    return {"mean": float(x.mean()), "ci95": ci, "n": int(len(x))}


def key_means(m: Mapping[str, Sequence[float | None]]) -> dict[str, float]:
    """The mean of each key's finite samples (a prompt's or utterance's several samples); keys with none are left
    out."""
    out = {}
    for k, vals in m.items():
        x = _finite(vals)
        if len(x):
            out[k] = float(x.mean())
    return out


def paired_delta(
    before: Mapping[str, Sequence[float | None]], after: Mapping[str, Sequence[float | None]], seed: int = 0
) -> dict:
    """Before, after and after - before of a metric measured per key (prompt or utterance id), each key possibly
    several samples. Keys are averaged first, then the delta is bootstrapped over the keys both runs measured."""

    a, b = key_means(before), key_means(after)
    keys = sorted(set(a) & set(b))
    delta = mean_ci([b[k] - a[k] for k in keys], seed=seed)
    return {
        "before": mean_ci(a.values(), seed=seed),
        "after": mean_ci(b.values(), seed=seed),
        "delta": delta["mean"],
        "delta_ci95": delta["ci95"],
        "paired": len(keys),
    }


def ci_text(mean: float | None, ci: Sequence[float] | None, scale: float = 1.0, digits: int = 3) -> str:
    """'0.412 [0.371, 0.455]' for tables ('-' when unmeasured)."""
    if mean is None:
        return "-"
    text = f"{mean * scale:.{digits}f}"
    return text if ci is None else f"{text} [{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"
