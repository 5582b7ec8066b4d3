"""Short / Medium / Long length buckets of target texts by character count (paper Table 7).

Table 7's datasets overlap (Medium 41-196 chars, Long 75-225); a bucket of any text needs a partition, so the
bounds sit between them: Short <= 40 < Medium (min 41) <= 120 (between the Medium and Long means) < Long.
"""

from __future__ import annotations

import numpy as np

DEFAULT_BOUNDS = {"short": 40, "medium": 120}  # name: largest character count; the last bucket is open
OPEN = "long"


def check_bounds(bounds: dict[str, int]) -> None:
    values = list(bounds.values())
    if not values or values != sorted(set(values)) or OPEN in bounds or values[0] < 1:
        raise ValueError(
            f"buckets must map names to increasing character bounds (the open bucket {OPEN!r} comes "
            f"last, implicitly), got {bounds}"
        )


def names(bounds: dict[str, int] = DEFAULT_BOUNDS) -> list[str]:
    return [*bounds, OPEN]


def chars(text: str) -> int:
    """Table 7 counts characters of the text as written (surrounding whitespace aside)."""
    return len(text.strip())


def bucket_of(text: str, bounds: dict[str, int] = DEFAULT_BOUNDS) -> str:
    n = chars(text)
    return next((name for name, bound in bounds.items() if n <= bound), OPEN)


def length_stats(texts: list[str]) -> dict:
    """Table 7's columns for one bucket: Total, Avg Chars, Min Chars, Max Chars."""
    if not texts:
        return {"total": 0, "avg_chars": None, "min_chars": None, "max_chars": None}
    n = np.array([chars(t) for t in texts])
    return {"total": len(texts), "avg_chars": float(n.mean()), "min_chars": int(n.min()), "max_chars": int(n.max())}


def table7(texts: list[str], bounds: dict[str, int] = DEFAULT_BOUNDS) -> dict[str, dict]:
    by: dict[str, list[str]] = {name: [] for name in names(bounds)}
    for t in texts:
        by[bucket_of(t, bounds)].append(t)
    return {name: length_stats(ts) for name, ts in by.items()}
