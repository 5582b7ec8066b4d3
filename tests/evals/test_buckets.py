"""Length buckets of Table 7: the partition's edges and the statistics table."""

from __future__ import annotations

import pytest

from evals.buckets import DEFAULT_BOUNDS, bucket_of, check_bounds, length_stats, names, table7


@pytest.mark.parametrize(
    ("n", "bucket"), [(1, "short"), (12, "short"), (40, "short"), (41, "medium"), (120, "medium"), (121, "long")]
)
def test_bucket_edges_follow_table7(n, bucket):
    assert bucket_of("x" * n) == bucket
    assert bucket_of("  " + "x" * n + "\n") == bucket  # surrounding whitespace is not counted


def test_custom_bounds_and_order():
    bounds = {"tiny": 5, "short": 10}
    assert names(bounds) == ["tiny", "short", "long"]
    assert [bucket_of("x" * n, bounds) for n in (5, 6, 10, 11)] == ["tiny", "short", "short", "long"]


@pytest.mark.parametrize("bad", [{}, {"a": 10, "b": 5}, {"a": 5, "b": 5}, {"long": 5}, {"a": 0}])
def test_bad_bounds_are_refused(bad):
    with pytest.raises(ValueError, match="increasing character bounds"):
        check_bounds(bad)


def test_table7_statistics():
    texts = ["abc", "abcdefg", "x" * 50, "y" * 70, "z" * 150]
    t = table7(texts, DEFAULT_BOUNDS)
    assert t["short"] == {"total": 2, "avg_chars": 5.0, "min_chars": 3, "max_chars": 7}
    assert t["medium"] == {"total": 2, "avg_chars": 60.0, "min_chars": 50, "max_chars": 70}
    assert t["long"] == {"total": 1, "avg_chars": 150.0, "min_chars": 150, "max_chars": 150}
    assert length_stats([]) == {"total": 0, "avg_chars": None, "min_chars": None, "max_chars": None}
