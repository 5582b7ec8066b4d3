"""The GRPO job end to end on Ray (slow): a tiny policy, a random codec and the real embedded reward models, with
the HF rollout backend. One Ray session for the module; every job writes into its own run directory."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import ray
from safetensors.torch import load_file

from rayjobs.grpo import main
from tests.tts.grpo.tiny_setup import tiny_codec, tiny_corpus, tiny_policy
from tts.config import load_config
from tts.grpo.config import GRPOConfig
from tts.grpo.driver import GRPOJob
from tts.grpo.learner import NonFiniteError
from tts.speechlm import load_speechlm
from tts.train import checkpoint

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "rayjobs" / "configs" / "grpo_embedded.yaml"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo_inputs")
    manifest = tiny_corpus(root / "corpus")
    return {"manifest": manifest, "codec": tiny_codec(root / "codec"), "policy": tiny_policy(root / "lm", manifest)}


@pytest.fixture(scope="module")
def ray_session():
    # address="local": a fresh instance of our own, never a cluster another job started on this machine
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def overrides(inputs: dict, runs_dir: Path, name: str, *extra: str) -> list[str]:
    return [
        f"name={name}",
        f"runs_dir={runs_dir}",
        f"policy={inputs['policy']}",
        f"codec_dir={inputs['codec']}",
        f"data.manifest={inputs['manifest']}",
        "data.max_ref_seconds=4.5",  # both held-out speakers have a reference
        "data.refs_per_speaker=2",
        "data.eval_prompts=2",
        "eval_samples=1",
        "prompts_per_step=2",
        "rollout.backend=hf",
        "rollout.group_size=2",
        "rollout.max_new_tokens=16",
        "rollout.max_model_len=512",
        "learner.micro_batch_size=2",  # 4 sequences per step: two accumulated micro-batches
        "learner.lr=1e-2",  # large enough that every step visibly changes the weights
        "wandb_mode=disabled",
        *extra,
    ]


def run(inputs: dict, runs_dir: Path, name: str, *extra: str, resume: bool = False) -> dict:
    argv = ["--config", str(CONFIG), *overrides(inputs, runs_dir, name, *extra)]
    return main(argv + (["--resume"] if resume else []))


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def weights(ckpt: Path) -> dict:
    return load_file(ckpt / "model.safetensors")


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_end_to_end_run_writes_report_metrics_curve_and_checkpoint(ray_session, inputs, tmp_path):
    report = run(inputs, tmp_path, "e2e", "steps=2", "checkpoint_interval=1")
    run_dir = tmp_path / "e2e"
    on_disk = json.loads((run_dir / "report.json").read_text())
    assert on_disk["steps"] == report["steps"] == 2 and on_disk["before"] == report["before"]
    for tag in ("before", "after"):
        r = on_disk[tag]
        assert {"total", "wer", "sim", "dnsmos", "raw"} <= set(r) and r["n"] == 2
        assert set(r["raw"]) == {"wer", "sim", "dnsmos_ovrl"}
        assert 0.0 <= r["total"] <= 1.0
        assert json.loads((run_dir / f"eval_{tag}.json").read_text())["summary"] == r
    rows = metrics(run_dir)
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        for key in ("reward_mean", "kl", "loss", "clip_fraction", "rollout_s", "reward_tail_s", "learner_s"):
            assert math.isfinite(row[key]), (key, row)
        assert row["sync_s"] >= 0 and row["step_s"] > 0 and 0.0 <= row["clip_fraction"] <= 1.0
        assert row["learner_tokens"] > 0 and 0.0 <= row["reward_mean"] <= 1.0
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6) and rows[1]["kl"] > 0  # step 1 starts at the reference
    assert (run_dir / "reward_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ckpts == ["checkpoint_000001", "checkpoint_000002"]  # keep_checkpoints 2, nothing temporary left
    final = run_dir / "checkpoints" / "checkpoint_000002"
    model, _, layout = load_speechlm(final)
    assert layout.codebook_size == 64 and checkpoint.read_state(final)["step"] == 2
    assert max_diff(weights(final), weights(inputs["policy"])) > 1e-4


def test_resume_matches_an_uninterrupted_run(ray_session, inputs, tmp_path):
    common = ("eval_before=false", "eval_after=false", "checkpoint_interval=2")
    run(inputs, tmp_path, "whole", "steps=3", *common)
    run(inputs, tmp_path, "halves", "steps=2", *common)
    assert metrics(tmp_path / "halves")[-1]["step"] == 2
    run(inputs, tmp_path, "halves", "steps=3", *common, resume=True)
    whole, halves = metrics(tmp_path / "whole"), metrics(tmp_path / "halves")
    assert [r["step"] for r in halves] == [1, 2, 3]
    for key in ("reward_mean", "loss", "kl", "policy_loss", "completion_tokens_mean"):
        assert halves[-1][key] == pytest.approx(whole[-1][key], abs=1e-6), key
    a = weights(tmp_path / "whole" / "checkpoints" / "checkpoint_000003")
    b = weights(tmp_path / "halves" / "checkpoints" / "checkpoint_000003")
    assert max_diff(a, b) <= 1e-6
    assert max_diff(a, weights(inputs["policy"])) > 1e-4  # the steps really trained


@pytest.fixture(scope="module")
def faults_job(ray_session, inputs, tmp_path_factory):
    extra = ("steps=2", "checkpoint_interval=1", "eval_before=false", "eval_after=false")
    cfg = load_config(GRPOConfig, CONFIG, overrides(inputs, tmp_path_factory.mktemp("runs"), "faults", *extra))
    job = GRPOJob(cfg)
    yield job
    job.shutdown()


def test_killed_reward_and_decoder_actors_are_replaced(faults_job):
    job = faults_job
    prompts = job.data["train"].for_step(0, job.cfg.prompts_per_step, job.cfg.seed)
    pending = job.launch(prompts, 0)
    ray.kill(job.rewards.pools["sim"].actors[0])
    ray.kill(job.decoders.actors[0])
    with ThreadPoolExecutor(2) as pool:
        results, timing = job.collect(prompts, pending, pool)
    assert len(results) == len(prompts)
    for prompt, group, records in results:
        assert len(group) == len(records) == job.cfg.rollout.group_size
        for i, rec in enumerate(records):
            assert rec["id"] == f"{prompt.id}#{i}" and math.isfinite(rec["rewards"]["total"])
            assert rec["sim"] is not None and not any("decode" in f for f in rec["flags"]), rec
    assert job.decoders.replaced >= 1 and job.rewards.pools["sim"].replaced >= 1
    assert timing["rollout_s"] > 0


def test_nan_advantage_in_the_learner_surfaces_unwrapped(faults_job):
    """A non-finite loss inside a learner actor reaches the driver as NonFiniteError, weights untouched."""
    job = faults_job
    prompts = job.data["train"].for_step(1, job.cfg.prompts_per_step, job.cfg.seed)
    with ThreadPoolExecutor(2) as pool:
        results, _ = job.collect(prompts, job.launch(prompts, 1), pool)
    results[0][2][0]["rewards"]["total"] = float("nan")  # NaN advantages for the whole first group
    before = ray.get(job.learners[0].weights.remote())
    with pytest.raises(NonFiniteError, match="non-finite GRPO loss"):
        job.learn(results)
    assert max_diff(before, ray.get(job.learners[0].weights.remote())) == 0.0


def test_nan_reward_stops_the_run_and_keeps_the_last_checkpoint(faults_job, monkeypatch):
    job = faults_job
    score, calls, poisoned = job.rewards.score, [], []

    def nan_in_step_two(samples):
        records = score(samples)
        calls.append(len(samples))
        if len(calls) > job.cfg.prompts_per_step:  # step 1 is scored group by group; then poison step 2
            records[1]["rewards"]["total"] = float("nan")
            poisoned.append(records[1]["id"])
        return records

    monkeypatch.setattr(job.rewards, "score", nan_in_step_two)
    with pytest.raises(NonFiniteError) as err:
        job.run()
    assert poisoned and poisoned[0] in str(err.value)
    assert [r["step"] for r in metrics(job.run_dir)] == [1]
    names = sorted(p.name for p in job.ckpt_dir.iterdir())
    assert names == ["checkpoint_000001"]  # no checkpoint_000002(.tmp)
    last = job.ckpt_dir / "checkpoint_000001"
    assert checkpoint.latest(job.ckpt_dir) == last and checkpoint.read_state(last)["step"] == 1
    load_speechlm(last)


def test_off_policy_generates_the_next_step_with_the_previous_weights(ray_session, inputs, tmp_path):
    """On-policy, the learner sees the rollout policy itself (ratio 1 over the step: gradients accumulate, one
    update per step). With off_policy, step 2 was generated while step 1 trained, so its ratio is not 1."""
    common = ("steps=2", "eval_before=false", "eval_after=false", "checkpoint_interval=2")
    run(inputs, tmp_path, "on_policy", *common)
    run(inputs, tmp_path, "off_policy", *common, "off_policy=true")
    on, off = metrics(tmp_path / "on_policy"), metrics(tmp_path / "off_policy")
    assert [r["step"] for r in off] == [1, 2]
    assert on[1]["ratio_mean"] == pytest.approx(1.0, abs=1e-5)
    assert off[0]["ratio_mean"] == pytest.approx(1.0, abs=1e-5)  # step 1 is on-policy in both modes
    assert abs(off[1]["ratio_mean"] - 1.0) > 1e-4


def test_two_learner_ranks_make_the_same_update_as_one(ray_session, inputs, tmp_path):
    """ZeRO-2 over 2 ranks (gloo): each rank takes half the step's sequences and divides by the whole step's
    token count, so the update equals the single-rank one up to float summation order."""
    common = ("steps=1", "eval_before=false", "eval_after=false", "checkpoint_interval=1")
    run(inputs, tmp_path, "one", *common, "learner.ranks=1")
    run(inputs, tmp_path, "two", *common, "learner.ranks=2", "learner.micro_batch_size=1")
    one, two = metrics(tmp_path / "one")[0], metrics(tmp_path / "two")[0]
    assert two["learner_tokens"] == one["learner_tokens"] and two["loss"] == pytest.approx(one["loss"], abs=1e-6)
    a = weights(tmp_path / "one" / "checkpoints" / "checkpoint_000001")
    b = weights(tmp_path / "two" / "checkpoints" / "checkpoint_000001")
    assert max_diff(a, weights(inputs["policy"])) > 1e-4
    assert two["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-4)  # the same global gradient
    # Adam's first step is lr * g / |g|: an element whose gradient is ~0 may flip sign with summation order
    differ = sum(int(((a[k] - b[k]).abs() > 1e-6).sum()) for k in a)
    assert differ <= 1e-3 * sum(v.numel() for v in a.values()), differ
