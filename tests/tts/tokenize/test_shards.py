"""Shard planning, writing, resumable markers and reading back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tts.tokenize.shards import (
    CODES,
    DONE,
    OFFSETS,
    ShardDataset,
    ShardWriter,
    check_codebook,
    is_done,
    plan_shards,
    read_done,
    read_index,
    read_shard,
    shard_dir,
    write_shard,
)


def row(position: int, text: str = "some text") -> dict:
    return {"position": position, "id": f"u{position}", "text": text, "language": "en", "speaker": "s", "wav": "w"}


def item(position: int, n: int) -> tuple[dict, np.ndarray]:
    codes = np.random.default_rng(position).integers(0, 1 << 16, n)
    return {"id": f"u{position}", "n_codes": n}, codes


def test_codebook_must_fit_uint16():
    check_codebook(1 << 16)
    with pytest.raises(ValueError, match="codebook_size 65537 does not fit the uint16"):
        check_codebook((1 << 16) + 1)


def test_shards_follow_input_positions():
    plans = plan_shards([row(9), row(0), row(2), row(3), row(5)], shard_size=4, codec_sha256="c")
    assert [(p.number, p.positions) for p in plans] == [(0, [0, 2, 3]), (1, [5]), (2, [9])]
    again = plan_shards([row(0), row(2), row(3), row(5), row(9)], shard_size=4, codec_sha256="c")
    assert [p.fingerprint for p in plans] == [p.fingerprint for p in again]
    other_codec = plan_shards([row(0)], 4, "d")[0].fingerprint
    other_text = plan_shards([row(0, "other")], 4, "c")[0].fingerprint
    assert len({plans[0].fingerprint, other_codec, other_text, plan_shards([row(0)], 4, "c")[0].fingerprint}) == 4
    timed = plan_shards([row(0) | {"timed": True}], 4, "c")[0].fingerprint  # timings added: encoded again
    untimed = plan_shards([row(0) | {"timed": False}], 4, "c")[0].fingerprint
    assert timed != untimed == plan_shards([row(0)], 4, "c")[0].fingerprint  # untimed shards keep their fingerprint


def test_write_and_read_back(tmp_path):
    items = [item(0, 5), item(1, 1), item(2, 300)]
    write_shard(tmp_path / "s", "fp", items, bad=[{"id": "x", "reason": "encode_failed"}])
    offsets = np.load(tmp_path / "s" / OFFSETS)
    assert offsets.dtype == np.int64 and list(offsets) == [0, 5, 6, 306]
    assert (tmp_path / "s" / CODES).stat().st_size == 306 * 2
    assert np.fromfile(tmp_path / "s" / CODES, dtype="<u2")[5] == items[1][1][0]
    for (meta, codes), (want_meta, want) in zip(read_shard(tmp_path / "s"), items, strict=True):
        assert meta == want_meta and codes.dtype == np.int64
        np.testing.assert_array_equal(codes, want)
    assert read_done(tmp_path / "s") == {
        "fingerprint": "fp",
        "rows": 3,
        "codes": 306,
        "bad": [{"id": "x", "reason": "encode_failed"}],
    }


def test_dataset_over_all_shards(tmp_path):
    write_shard(shard_dir(tmp_path, 0), "a", [item(0, 3), item(1, 4)], [])
    write_shard(shard_dir(tmp_path, 3), "b", [item(7, 2)], [])
    ds = ShardDataset(tmp_path)
    assert len(ds) == 3 and [m["id"] for m, _ in ds] == ["u0", "u1", "u7"]
    meta, codes = ds[-1]
    assert meta["id"] == "u7"
    np.testing.assert_array_equal(codes, item(7, 2)[1])
    np.testing.assert_array_equal(ds[1][1], item(1, 4)[1])
    assert len(ShardDataset(shard_dir(tmp_path, 3))) == 1
    with pytest.raises(IndexError):
        ds[3]


def test_unfinished_or_inconsistent_shards_are_refused(tmp_path):
    d = shard_dir(tmp_path, 0)
    write_shard(d, "a", [item(0, 3), item(1, 4)], [])
    (d / DONE).unlink()
    with pytest.raises(ValueError, match="incomplete shard"):
        ShardDataset(tmp_path)
    write_shard(d, "a", [item(0, 3), item(1, 4)], [])
    np.save(d / OFFSETS, np.array([0, 3, 8]))
    with pytest.raises(ValueError, match="disagree"):
        read_index(d)


def test_is_done_checks_the_fingerprint(tmp_path):
    plan = plan_shards([row(0)], 4, "c")[0]
    d = shard_dir(tmp_path, 0)
    assert not is_done(d, plan)
    write_shard(d, plan.fingerprint, [item(0, 2)], [])
    assert is_done(d, plan) and not is_done(d, plan_shards([row(0, "new text")], 4, "c")[0])


def test_writer_waits_for_every_row_in_any_order(tmp_path):
    plans = plan_shards([row(0), row(1), row(2), row(5)], shard_size=4, codec_sha256="c")
    meta = {p: {"id": f"u{p}"} for p in (0, 1, 2, 5)}
    writer = ShardWriter(tmp_path, plans, meta)
    writer.add(0, 2, np.array([7, 8]))
    writer.add(1, 5, np.array([1]))
    writer.add(0, 0, {"id": "u0", "path": "w", "reason": "encode_failed", "message": "boom"})
    assert writer.written == [1] and read_done(shard_dir(tmp_path, 0)) is None
    writer.add(0, 1, np.array([3, 4, 5]))
    assert writer.written == [1, 0] and not writer.pending
    got = list(read_shard(shard_dir(tmp_path, 0)))
    assert [m for m, _ in got] == [{"id": "u1", "n_codes": 3}, {"id": "u2", "n_codes": 2}]
    assert [list(c) for _, c in got] == [[3, 4, 5], [7, 8]]
    assert [b["id"] for b in read_done(shard_dir(tmp_path, 0))["bad"]] == ["u0"]
    assert json.loads((shard_dir(tmp_path, 1) / "meta.jsonl").read_text()) == {"id": "u5", "n_codes": 1}
