"""Reward router and Ray pools on real espeak-ng audio: clean vs noise vs silence, same vs other voice,
bad samples flagged (never raised), and a killed actor replaced with the batch completed."""

from __future__ import annotations

import numpy as np
import pytest
import ray

from rewards.composite import RewardSpec
from rewards.pool import ScorerPool
from rewards.router import RewardModelError, RewardRouter, RewardsConfig, check_failures, public_record
from rewards.scorers import Sample
from tts.base.actors import PoolConfig, PoolError
from tts.base.cluster import init_ray
from tts.corpus.generate import speak
from tts.corpus.voices import Speaker

SR = 16000
A = Speaker("a", "en", "en-us+m1", 45, 160)
B = Speaker("b", "en", "en-us+f4", 65, 170)
TEXT = "The children walked to the park after lunch."
REF_TEXT = "My sister bought a warm coat for the winter."


@pytest.fixture(scope="module")
def audio():
    rng = np.random.default_rng(0)
    clean = speak(A, TEXT, SR)
    return {
        "clean": clean,
        "ref_a": speak(A, REF_TEXT, SR),
        "other": speak(B, TEXT, SR),
        "noise": (0.3 * rng.standard_normal(len(clean))).astype(np.float32),
        "silence": np.zeros(len(clean), np.float32),
    }


@pytest.fixture(scope="module")
def local_router():
    return RewardRouter(RewardsConfig(), use_ray=False)


def test_clean_noise_silence(local_router, audio):
    samples = [
        Sample(audio[k], SR, TEXT, ref_wave=audio["ref_a"], ref_sr=SR, id=k) for k in ("clean", "noise", "silence")
    ]
    clean, noise, silence = local_router.score(samples)
    assert clean["error_rate"] < 0.3 and clean["flags"] == []
    assert noise["error_rate"] >= 1.0 and noise["rewards"]["wer"] <= np.exp(-2.5)
    assert clean["dnsmos"]["ovrl"] > noise["dnsmos"]["ovrl"] + 0.5
    assert clean["rewards"]["total"] > noise["rewards"]["total"] + 0.2
    assert silence["rewards"] == {"wer": 0.0, "sim": 0.0, "dnsmos": 0.0, "total": 0.0}
    assert any("silent" in f for f in silence["flags"])


def test_same_voice_more_similar(local_router, audio):
    same, other = local_router.score(
        [
            Sample(audio["clean"], SR, TEXT, ref_wave=audio["ref_a"], ref_sr=SR),
            Sample(audio["other"], SR, TEXT, ref_wave=audio["ref_a"], ref_sr=SR),
        ]
    )
    assert same["sim"] > other["sim"] and same["rewards"]["sim"] > other["rewards"]["sim"]


def test_bad_samples_flagged_not_raised(local_router, audio):
    recs = local_router.score(
        [
            Sample(None, SR, TEXT, meta={"error": "x.wav: unreadable audio"}),
            Sample(np.full(SR, np.nan, np.float32), SR, TEXT),
            Sample(audio["clean"], SR, TEXT),
        ]
    )  # no reference: SIM gets its minimum, flagged
    assert recs[0]["rewards"]["total"] == 0.0 and recs[0]["flags"][0] == "x.wav: unreadable audio"
    assert recs[1]["rewards"]["total"] == 0.0 and "NaN" in recs[1]["flags"][0]
    assert recs[2]["rewards"]["sim"] == 0.0 and any("no reference" in f for f in recs[2]["flags"])
    assert recs[2]["rewards"]["wer"] > 0.5
    assert "failed" not in recs[0] and "failed" not in recs[1] and recs[2]["failed"] == ["speaker"]


def test_a_reward_model_failing_on_too_many_samples_stops_the_step():
    ok = {"flags": [], "failed": []}
    sim_down = {
        "flags": ["sim: RuntimeError: CUDA error", "sim: no measurement, minimum reward"],
        "failed": ["speaker"],
    }
    silent = {"flags": ["silent audio"]}  # unusable audio is the policy's doing, not a reward model's
    check_failures([ok, sim_down, silent, silent], max_share=0.5)  # 1 of 2 scorable: not more than half
    with pytest.raises(RewardModelError, match=r"reward model speaker failed on 2 of 3 .*first: sim: RuntimeError"):
        check_failures([ok, sim_down, sim_down, silent], max_share=0.5)
    check_failures([sim_down], max_share=1.0)  # 1.0: never stop


def test_public_record_shape(local_router, audio):
    rec = public_record(local_router.score([Sample(audio["clean"], SR, TEXT, ref_wave=audio["ref_a"], ref_sr=SR)])[0])
    assert set(rec) == {"id", "transcript", "wer", "sim", "dnsmos", "rewards", "flags"}
    assert set(rec["dnsmos"]) == {"ovrl", "sig", "bak", "p808"}
    assert set(rec["rewards"]) == {"wer", "sim", "dnsmos", "total"}


def test_the_intelligibility_reward_is_measured_by_the_asr_pool_alongside_wer(audio):
    cfg = RewardsConfig(components=[RewardSpec("intelligibility"), RewardSpec("sim")])
    router = RewardRouter(cfg, use_ray=False)
    assert set(router.pools) == {"error_rate", "sim"}  # no second ASR pool
    samples = [Sample(audio[k], SR, TEXT, ref_wave=audio["ref_a"], ref_sr=SR, id=k) for k in ("clean", "noise")]
    clean, noise = router.score(samples)
    assert clean["asr_likelihood"] > 0.5 > 0.1 > noise["asr_likelihood"] and clean["error_rate"] < 0.3
    assert clean["rewards"]["intelligibility"] == pytest.approx(clean["asr_likelihood"])
    assert set(clean["rewards"]) == {"intelligibility", "sim", "total"}
    assert (
        "asr_likelihood"
        not in RewardRouter(RewardsConfig(components=[RewardSpec("wer")]), use_ray=False).score(samples[:1])[0]
    )


def test_a_bad_sample_in_a_batch_leaves_the_others_their_transcript_and_likelihood(audio):
    """A batch that fails falls back to one sample at a time: the good sample's record is the batch's own."""
    from rewards.scorers import AsrScorer

    scorer = AsrScorer(likelihood=True)
    good = Sample(audio["clean"], SR, TEXT, id="good")
    (alone,) = scorer.score_batch([good])
    bad = Sample(np.full(SR, np.nan, np.float32), SR, TEXT, id="bad")
    fallback, failed = scorer.score_batch([good, bad])
    assert fallback["transcript"] == alone["transcript"] and fallback["asr_likelihood"] == pytest.approx(
        alone["asr_likelihood"], abs=1e-4
    )
    assert failed["error_rate"] is None and "AudioError" in failed["flags"][0]


def test_the_intelligibility_reward_needs_an_asr_that_scores_a_text(monkeypatch):
    import rewards.asr
    from rewards.scorers import AsrScorer

    monkeypatch.setattr(rewards.asr, "load_asr", lambda *a, **k: object())  # e.g. Paraformer: transcripts only
    AsrScorer()
    with pytest.raises(ValueError, match="needs an ASR that scores a given text"):
        AsrScorer(likelihood=True)


def test_cer_language_reports_cer():
    cfg = RewardsConfig(components=[RewardSpec("wer")])
    router = RewardRouter(cfg, use_ray=False)
    rec = router.score([Sample(speak(A, TEXT, SR), SR, "今天天气很好", language="zh")])[0]
    # the English-only embedded model cannot transcribe Chinese: a flagged failure with the minimum reward
    assert rec["error_rate"] is None and rec["rewards"]["wer"] == 0.0 and "English-only" in rec["flags"][0]


@pytest.fixture(scope="module")
def ray_local():
    init_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_pool_replaces_killed_actor_and_completes(ray_local, audio):
    pool = ScorerPool("dnsmos", {}, PoolConfig(actors=1, batch_size=2))
    pool.wait_ready()
    samples = [Sample(audio[k], SR, TEXT) for k in ("clean", "noise", "other")]
    expected = pool.score(samples)
    ray.kill(pool.actors[0])
    again = pool.score(samples)
    assert pool.replaced == 1
    assert [r["dnsmos"]["ovrl"] for r in again] == pytest.approx([r["dnsmos"]["ovrl"] for r in expected], abs=1e-6)
    pool.shutdown()


def test_ray_pool_that_cannot_be_placed_fails_with_the_free_resources(ray_local):
    pool = ScorerPool("dnsmos", {}, PoolConfig(actors=1, num_cpus=64))  # the session has 2 CPUs
    with pytest.raises(PoolError, match=r"pool dnsmos: not all 1 actor\(s\) started within 3 s.*'CPU'"):
        pool.wait_ready(timeout=3)
    pool.shutdown()


def test_ray_pool_health_replaces_dead(ray_local):
    pool = ScorerPool("dnsmos", {}, PoolConfig(actors=2))
    pool.wait_ready()
    ray.kill(pool.actors[1])
    assert pool.health() == [True, False] and pool.replaced == 1
    assert pool.health() == [True, True]
    pool.shutdown()


def test_ray_router_matches_local(ray_local, local_router, audio):
    cfg = RewardsConfig()
    router = RewardRouter(cfg, use_ray=True)
    samples = [
        Sample(audio["clean"], SR, TEXT, ref_wave=audio["ref_a"], ref_sr=SR),
        Sample(audio["silence"], SR, TEXT, ref_wave=audio["ref_a"], ref_sr=SR),
    ]
    remote, local = router.score(samples), local_router.score(samples)
    assert [r["rewards"]["total"] for r in remote] == pytest.approx([r["rewards"]["total"] for r in local], abs=1e-4)
    router.shutdown()
