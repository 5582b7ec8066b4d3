"""Synthesis seeds depend only on (seed, utterance id): batching and resuming sample the same audio."""

from __future__ import annotations

from evals.synthesize import utterance_seed


def test_utterance_seed_is_stable_and_distinct():
    assert utterance_seed(0, "en_08_00000") == utterance_seed(0, "en_08_00000")
    seeds = {utterance_seed(0, f"u{k}") for k in range(1000)}
    assert len(seeds) == 1000 and all(0 <= s < 2**31 for s in seeds)
    assert utterance_seed(1, "u0") != utterance_seed(0, "u0")
