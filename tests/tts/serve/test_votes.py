"""Arena vote store: the exact schema the arena statistics read, clear errors for votes that cannot count."""

from __future__ import annotations

import sqlite3

import pytest

from tts.serve.votes import SCHEMA, Vote, VoteStore


def test_votes_round_trip_and_persist(tmp_path):
    path = tmp_path / "arena" / "votes.sqlite"
    store = VoteStore(path)
    first = store.add("m/alice", "m/bob", "a", "ann", "Hello there.")
    store.add("m/bob", "m/alice", "tie", " bo ", " Second text ")
    votes = VoteStore(path).all()  # another process / replica
    assert votes[0] == first and isinstance(first, Vote)
    assert [(v.id, v.winner, v.annotator, v.text) for v in votes] == [
        (1, "a", "ann", "Hello there."),
        (2, "tie", "bo", "Second text"),
    ]
    assert votes[0].created <= votes[1].created


def test_schema_is_exactly_the_shared_one(tmp_path):
    VoteStore(tmp_path / "v.sqlite")
    with sqlite3.connect(tmp_path / "v.sqlite") as db:
        (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'votes'").fetchone()
        assert sql == SCHEMA.replace("IF NOT EXISTS ", "")
        with pytest.raises(sqlite3.IntegrityError):  # the database itself refuses a bad winner
            db.execute("INSERT INTO votes VALUES (NULL, 0, 'a', 'b', 'c', 'x', 't')")


@pytest.mark.parametrize(
    "args, needle",
    [
        (("m/a", "m/b", "c", "ann", "t"), "winner must be"),
        (("m/a", "m/b", "A", "ann", "t"), "winner must be"),
        (("m/a", "m/b", "a", "  ", "t"), "annotator is empty"),
        (("m/a", "m/b", "a", "ann", ""), "text is empty"),
        (("m/a", "m/a", "a", "ann", "t"), "two different models"),
        (("", "m/b", "a", "ann", "t"), "two different models"),
    ],
)
def test_bad_votes_are_refused_and_nothing_is_written(tmp_path, args, needle):
    store = VoteStore(tmp_path / "v.sqlite")
    with pytest.raises(ValueError, match=needle):
        store.add(*args)
    assert store.all() == []
