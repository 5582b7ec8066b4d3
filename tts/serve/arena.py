"""Blind A/B arena (paper section 4.2): random pairs of contenders behind encrypted tokens, votes into SQLite.

A pair token carries the two contenders and the text, encrypted and authenticated (Fernet: AES + HMAC, with a
timestamp), so the page cannot read the names before voting, cannot alter them, and any API replica holding the
key can serve the audio and count the vote. A token is voted on once (the voice registry remembers it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import secrets
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from tts.serve.config import ServeConfig


class ArenaError(ValueError):
    """A pair that cannot be made or used; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def model_label(cfg: ServeConfig) -> str:
    """The served model's name in contender names: its directory's name (a GRPO run's, or the checkpoint's)."""
    return Path(cfg.model).resolve().name


def contenders(cfg: ServeConfig) -> list[str]:
    """The configured contenders, else the served model with each preset voice; ValueError for names that do
    not name the served model and one of its preset voices."""
    label = model_label(cfg)
    voices = [cfg.default_voice, *(v.name for v in cfg.voices)]
    names = cfg.arena.contenders or [f"{label}/{v}" for v in voices]
    bad = [n for n in names if n.partition("/")[0] != label or n.partition("/")[2] not in voices]
    if bad:
        raise ValueError(f"arena.contenders {bad}: expected '{label}/<voice>' with a preset voice of {voices}")
    if len(set(names)) != len(names):
        raise ValueError(f"arena.contenders has duplicates: {names}")
    return names


def voice_of(contender: str) -> str:
    return contender.partition("/")[2]


class Pairing:
    """Makes and checks pair tokens for one API replica."""

    def __init__(self, cfg: ServeConfig):
        self.names = contenders(cfg)
        secret = cfg.arena.secret
        key = base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()) if secret else Fernet.generate_key()
        self.fernet = Fernet(key)
        self.ttl, self.seed = cfg.arena.pair_ttl_s, cfg.arena.seed

    def new(self, text: str, rng: random.Random | None = None) -> str:
        """A token for `text` and two distinct contenders in random order."""
        if len(self.names) < 2:
            raise ArenaError(f"the arena needs two contenders (configure voices); this server has {self.names}", 409)
        a, b = (rng or random.SystemRandom()).sample(self.names, 2)
        seed = self.seed if self.seed is not None else secrets.randbelow(2**31)
        payload = {"a": a, "b": b, "text": text, "seed": seed, "nonce": secrets.token_hex(8)}
        return self.fernet.encrypt(json.dumps(payload).encode()).decode()

    def open(self, token: str) -> dict:
        """The pair a token names ({a, b, text, seed, nonce}); ArenaError when forged, altered or expired."""
        try:
            pair = json.loads(self.fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError, TypeError):
            raise ArenaError("unknown pair token (made by another server, or altered)", 404) from None
        if self.fernet.extract_timestamp(token.encode()) + self.ttl < time.time():
            raise ArenaError("this pair expired; start a new one", 410)
        return pair

    def expiry(self, token: str) -> float:
        """Until when a token can be used (its vote must be remembered that long)."""
        return self.fernet.extract_timestamp(token.encode()) + self.ttl
