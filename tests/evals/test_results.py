"""Append-only result files: a line cut off by a killed run is ignored on reading and dropped before appending."""

from __future__ import annotations

import pytest

from evals.results import append_rows, read_rows


def test_append_and_read_back(tmp_path):
    path = tmp_path / "r.jsonl"
    assert read_rows(path) == []
    append_rows(path, [{"id": "a"}, {"id": "b"}])
    append_rows(path, [])
    append_rows(path, [{"id": "c", "text": "下午"}])
    assert read_rows(path) == [{"id": "a"}, {"id": "b"}, {"id": "c", "text": "下午"}]


def test_cut_off_last_line_is_skipped_then_replaced(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b", "te')
    assert read_rows(path) == [{"id": "a"}]
    append_rows(path, [{"id": "b"}])
    assert path.read_text() == '{"id": "a"}\n{"id": "b"}\n'


def test_a_broken_line_in_the_middle_is_not_ours(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('garbage\n{"id": "a"}\n')
    with pytest.raises(ValueError, match="r.jsonl:1: not a result row"):
        read_rows(path)
