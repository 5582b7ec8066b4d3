"""Composite reward (paper eq. 8-12): exact normalisations, registry, conditional activation, minima."""

from __future__ import annotations

import math

import pytest

from rewards.composite import REGISTRY, CompositeReward, RewardComponent, RewardSpec, register


def test_normalisations_exact():
    r = CompositeReward()(
        {"text": "hi", "error_rate": 0.2, "sim": 0.5, "dnsmos": {"ovrl": 3.0, "sig": 4.0, "bak": 4.5, "p808": 3.5}}
    )["rewards"]
    assert r["wer"] == pytest.approx(math.exp(-2.5 * 0.2))  # alpha 0.4 == the reference code's exp(-2.5 WER)
    assert r["sim"] == pytest.approx(0.75)
    assert r["dnsmos"] == pytest.approx(0.6)
    assert r["total"] == pytest.approx((math.exp(-0.5) + 0.75 + 0.6) / 3)  # equal weights


def test_configurable_alpha_head_and_weights():
    specs = [RewardSpec("wer", 2.0, params={"alpha": 1.0}), RewardSpec("dnsmos", 1.0, params={"head": "p808"})]
    out = CompositeReward(specs, normalise_weights=False)({"text": "x", "error_rate": 1.0, "dnsmos": {"p808": 4.0}})
    assert out["rewards"]["wer"] == pytest.approx(math.exp(-1.0))
    assert out["rewards"]["dnsmos"] == pytest.approx(0.8)
    assert out["rewards"]["total"] == pytest.approx(2 * math.exp(-1.0) + 0.8)


def test_ranges_are_clamped():
    r = CompositeReward()({"text": "x", "error_rate": 3.0, "sim": -1.7, "dnsmos": {"ovrl": 6.0}})["rewards"]
    assert r["wer"] == pytest.approx(math.exp(-7.5)) and r["sim"] == 0.0 and r["dnsmos"] == 1.0


def test_missing_measurement_gets_minimum_and_flag():
    out = CompositeReward()({"text": "x", "error_rate": None, "sim": 1.0, "dnsmos": None, "flags": ["audio: silent"]})
    assert out["rewards"]["wer"] == 0.0 and out["rewards"]["dnsmos"] == 0.0 and out["rewards"]["sim"] == 1.0
    assert out["rewards"]["total"] == pytest.approx(1 / 3)
    assert out["flags"][0] == "audio: silent" and any(f.startswith("wer:") for f in out["flags"])


class WhisperStyle(RewardComponent):
    """A style reward for `[whispering]` prompts: 1 - normalised loudness (the new reward is one class)."""

    name, measurement = "whisper_style", "loudness"

    def normalise(self, raw: float) -> float:
        return 1.0 - min(raw, 1.0)


def test_registry_and_conditional_activation():
    register(WhisperStyle)
    try:
        specs = [RewardSpec("wer"), RewardSpec("whisper_style", tags=["[whispering]"])]
        comp = CompositeReward(specs)
        assert comp.measurements == {"error_rate", "loudness"}
        plain = comp({"text": "Hello there.", "error_rate": 0.0, "loudness": 0.9})
        tagged = comp({"text": "[whispering] Hello there.", "error_rate": 0.0, "loudness": 0.2})
        assert "whisper_style" not in plain["rewards"] and plain["rewards"]["total"] == pytest.approx(1.0)
        assert tagged["rewards"]["whisper_style"] == pytest.approx(0.8)
        assert tagged["rewards"]["total"] == pytest.approx((1.0 + 0.8) / 2)
    finally:
        REGISTRY.pop("whisper_style")


def test_bad_specs():
    with pytest.raises(ValueError, match="unknown reward 'bleu'"):
        CompositeReward([RewardSpec("bleu")])
    with pytest.raises(ValueError, match="unknown parameter"):
        CompositeReward([RewardSpec("wer", params={"beta": 1})])
    with pytest.raises(ValueError, match="weight"):
        CompositeReward([RewardSpec("sim", weight=-1)])
    with pytest.raises(ValueError, match="at least one"):
        CompositeReward([])
