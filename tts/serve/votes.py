"""Arena votes (paper section 4.2): blind A/B preferences between two models, one SQLite row per vote.

The Serve app's /arena page writes them (tts.serve.arena); the arena statistics (win-rate matrix, Bradley-Terry)
read them back with `VoteStore(path).all()`. Every call opens its own connection, so API threads, processes and
readers share one file safely.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS votes (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, "
    "model_a TEXT NOT NULL, model_b TEXT NOT NULL, winner TEXT NOT NULL CHECK (winner IN ('a','b','tie')), "
    "annotator TEXT NOT NULL, text TEXT NOT NULL)"
)
WINNERS = ("a", "b", "tie")


@dataclass(frozen=True)
class Vote:
    id: int
    created: float  # unix time
    model_a: str
    model_b: str
    winner: str  # "a" | "b" | "tie"
    annotator: str
    text: str


class VoteStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._db()) as db, db:
            db.execute(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def add(self, model_a: str, model_b: str, winner: str, annotator: str, text: str) -> Vote:
        """Record one vote; ValueError (nothing written) for a vote that could not be counted."""
        annotator, text = annotator.strip(), text.strip()
        if winner not in WINNERS:
            raise ValueError(f"winner must be one of {WINNERS}, got {winner!r}")
        if not annotator:
            raise ValueError("annotator is empty")
        if not text:
            raise ValueError("text is empty")
        if not model_a or not model_b or model_a == model_b:
            raise ValueError(f"a vote needs two different models, got {model_a!r} and {model_b!r}")
        created = time.time()
        with closing(self._db()) as db, db:
            cur = db.execute(
                "INSERT INTO votes (created, model_a, model_b, winner, annotator, text) VALUES (?, ?, ?, ?, ?, ?)",
                (created, model_a, model_b, winner, annotator, text),
            )
        return Vote(cur.lastrowid, created, model_a, model_b, winner, annotator, text)

    def all(self) -> list[Vote]:
        """Every vote, oldest first."""
        with closing(self._db()) as db:
            rows = db.execute("SELECT id, created, model_a, model_b, winner, annotator, text FROM votes ORDER BY id")
            return [Vote(*row) for row in rows]
