"""Arena statistics: win-rate matrix counts (Table 9 cells), Bradley-Terry on synthetic votes with known
strengths, ties, and the two vote sources (JSONL and the arena's SQLite schema)."""

from __future__ import annotations

import json
import math
import sqlite3
from contextlib import closing

import numpy as np
import pytest

from evals.arena import Vote, arena_report, bradley_terry, cell_text, read_votes, to_markdown, win_matrix, write_arena
from evals.config import ArenaConfig
from tts.serve.votes import VoteStore


def test_win_matrix_counts_and_ties_as_half():
    votes = [Vote("x", "y", "a")] * 3 + [Vote("y", "x", "a"), Vote("x", "y", "tie"), Vote("x", "z", "b")]
    m = win_matrix(votes)
    assert m["x"]["y"] == {"wins": 3, "losses": 1, "ties": 1, "games": 5, "win_rate": 0.7}
    assert m["y"]["x"] == {"wins": 1, "losses": 3, "ties": 1, "games": 5, "win_rate": 0.3}
    assert m["z"]["x"]["win_rate"] == 1.0 and m["y"]["z"]["games"] == 0 and m["y"]["z"]["win_rate"] is None
    assert cell_text(m["x"]["y"]) == "70.0% (3/5, 1 ties)"
    assert cell_text({"wins": 27, "losses": 15, "ties": 0, "games": 42, "win_rate": 27 / 42}) == "64.3% (27/42)"


def synthetic(strengths: dict[str, float], n: int, seed: int = 0) -> list[Vote]:
    rng = np.random.default_rng(seed)
    names = list(strengths)
    votes = []
    for _ in range(n):
        a, b = (names[k] for k in rng.choice(len(names), 2, replace=False))
        p = 1 / (1 + math.exp(strengths[b] - strengths[a]))
        votes.append(Vote(a, b, "a" if rng.random() < p else "b"))
    return votes


def test_bradley_terry_recovers_known_strengths():
    true = {"A": 0.0, "B": 0.5, "C": 1.0, "D": 2.0}
    ratings = bradley_terry(synthetic(true, 3000), ArenaConfig(bootstrap=60))
    assert list(ratings) == ["D", "C", "B", "A"]  # ranked by the lower bound
    mean = np.mean(list(true.values()))
    for name, r in ratings.items():
        assert r["strength"] == pytest.approx(true[name] - mean, abs=0.12)
        expected = 1000 + 400 / math.log(10) * (true[name] - mean)
        assert r["ci_low"] < r["rating"] < r["ci_high"]
        assert r["ci_low"] - 25 < expected < r["ci_high"] + 25
    assert sum(r["strength"] for r in ratings.values()) == pytest.approx(0.0, abs=1e-6)


def test_ties_only_give_equal_ratings_and_a_perfect_record_stays_finite():
    ties = bradley_terry([Vote("x", "y", "tie")] * 10, ArenaConfig(bootstrap=20))
    assert ties["x"]["rating"] == pytest.approx(1000.0, abs=1e-3) == ties["y"]["rating"]
    sweep = bradley_terry([Vote("x", "y", "a")] * 10, ArenaConfig(bootstrap=20))
    assert math.isfinite(sweep["x"]["rating"]) and sweep["x"]["rating"] > 1200 > 800 > sweep["y"]["rating"]


def test_fewer_votes_give_wider_intervals():
    true = {"A": 0.0, "B": 1.0}
    wide = bradley_terry(synthetic(true, 60), ArenaConfig(bootstrap=100))["B"]
    narrow = bradley_terry(synthetic(true, 2000), ArenaConfig(bootstrap=100))["B"]
    assert wide["ci_high"] - wide["ci_low"] > 3 * (narrow["ci_high"] - narrow["ci_low"])


def test_votes_from_the_arena_sqlite_store_and_jsonl(tmp_path):
    db = tmp_path / "votes.sqlite"
    store = VoteStore(db)  # the Serve arena's store: its schema is the one read here
    store.add("tts-1", "tts-1-max", "b", "ann1", "Hello.")
    store.add("tts-1-max", "tts-1", "tie", "ann2", "Hi.")
    votes = read_votes(db)
    assert votes == [
        Vote("tts-1", "tts-1-max", "b", "ann1", "Hello."),
        Vote("tts-1-max", "tts-1", "tie", "ann2", "Hi."),
    ]
    jsonl = tmp_path / "votes.jsonl"
    jsonl.write_text("".join(json.dumps(v.__dict__) + "\n" for v in votes))
    assert read_votes(jsonl) == votes

    report = write_arena(db, tmp_path / "out", ArenaConfig(bootstrap=10))
    assert report["votes"] == 2 and report["ties"] == 1 and report["annotators"] == 2
    assert (
        json.loads((tmp_path / "out" / "arena.json").read_text())["win_matrix"]["tts-1-max"]["tts-1"]["win_rate"]
        == 0.75
    )
    md = (tmp_path / "out" / "arena.md").read_text()
    assert "| tts-1-max | - | 75.0% (1/2, 1 ties) |" in md and "ranked by the lower bound" in md


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"model_a": "x", "model_b": "y", "winner": "c"}', "winner must be one of"),
        ('{"model_a": "x", "model_b": "x", "winner": "a"}', "cannot play itself"),
        ('{"model_a": "x", "winner": "a"}', "missing \\['model_b'\\]"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_votes_name_the_line(tmp_path, line, message):
    path = tmp_path / "votes.jsonl"
    path.write_text('{"model_a": "x", "model_b": "y", "winner": "a"}\n' + line + "\n")
    with pytest.raises(ValueError, match=f"votes.jsonl:2: .*{message}"):
        read_votes(path)


def test_sqlite_without_the_votes_table_and_no_votes(tmp_path):
    db = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(db)) as con:
        con.execute("CREATE TABLE t (x)")
    with pytest.raises(ValueError, match="no votes table"):
        read_votes(db)
    with pytest.raises(ValueError, match="no votes"):
        arena_report([])
    with pytest.raises(FileNotFoundError):
        read_votes(tmp_path / "absent.sqlite")


def test_markdown_orders_rows_and_columns_by_rank():
    report = arena_report(synthetic({"low": 0.0, "high": 1.5}, 200), ArenaConfig(bootstrap=20))
    md = to_markdown(report)
    assert md.index("| 1 | high |") < md.index("| 2 | low |")
    assert "| model | high | low |" in md
