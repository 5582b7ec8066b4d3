"""The GRPO job end to end on Ray (slow): a tiny policy, a random codec and the real embedded reward models, with
the HF rollout backend. One Ray session for the module; every job writes into its own run directory."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest
import ray
from safetensors.torch import load_file

from rayjobs.grpo import main
from tests.tts.grpo.tiny_setup import tiny_codec, tiny_corpus, tiny_policy
from tts.base import checkpoint
from tts.base.actors import PoolError
from tts.base.cluster import free_port
from tts.base.config import load_config
from tts.base.layout import TokenLayout
from tts.base.manifest import read_manifest
from tts.grpo.config import GRPOConfig
from tts.grpo.driver import GRPOJob, all_equal
from tts.grpo.learner import NonFiniteError
from tts.grpo.telemetry import GAUGES, SET_GAUGES
from tts.speechlm import load_speechlm

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "rayjobs" / "configs" / "grpo_embedded.yaml"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo_inputs")
    manifest = tiny_corpus(root / "corpus")
    out = {"manifest": manifest, "codec": tiny_codec(root / "codec"), "policy": tiny_policy(root / "lm", manifest)}
    return out | {"meta": cloning_meta(manifest, root / "sets" / "cloning" / "en" / "meta.lst")}


def cloning_meta(manifest: Path, meta: Path) -> Path:
    """A two-row seed-tts-eval meta.lst over the tiny corpus (train voices saying test sentences)."""
    train = [r for r in read_manifest(manifest, split="train") if r.language == "en"]
    test = [r for r in read_manifest(manifest, split="test") if r.language == "en"]
    meta.parent.mkdir(parents=True)
    wav = [os.path.relpath(r.wav_path(manifest.parent), meta.parent) for r in train[:2]]
    meta.write_text("".join(f"m{k}|{train[k].text}|{wav[k]}|{test[k].text}\n" for k in range(2)))
    return meta


@pytest.fixture(scope="module")
def ray_session() -> int:
    """The Prometheus port of a fresh local Ray of our own (address="local": never a cluster another job started on
    this machine)."""
    port = free_port()
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False, _metrics_export_port=port)
    yield port
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
        "learner.mini_batches=1",  # one update per step: step 1 on-policy at the reference (tests/tts/grpo: more)
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


@pytest.fixture(scope="module")
def baseline(ray_session, inputs, tmp_path_factory) -> tuple[dict, Path]:
    """One uninterrupted 3-step run with held-out evaluation (before, at step 2 and after), the reference that the
    resume, off-policy and 2-rank tests compare with (every job start costs its actors' start-up, so jobs are
    shared where they can be)."""
    runs = tmp_path_factory.mktemp("baseline")
    sets = f"data.eval_sets={{cloning/en: {inputs['meta']}}}"
    extra = ("steps=3", "checkpoint_interval=1", "keep_checkpoints=3", "eval_interval=2", sets)
    report = run(inputs, runs, "base", *extra)
    return report, runs / "base"


def test_end_to_end_run_writes_report_metrics_curve_and_checkpoint(baseline, inputs):
    report, run_dir = baseline
    on_disk = json.loads((run_dir / "report.json").read_text())
    assert on_disk["steps"] == report["steps"] == 3 and on_disk["before"] == report["before"]
    for tag in ("before", "after"):
        r = on_disk[tag]
        assert {"total", "wer", "sim", "dnsmos", "raw"} <= set(r) and r["n"] == 2
        assert set(r["raw"]) == {"wer", "sim", "dnsmos_ovrl"}
        assert 0.0 <= r["total"] <= 1.0
        assert json.loads((run_dir / f"eval_{tag}.json").read_text())["summary"] == r
    compare = on_disk["compare"]  # held-out before vs after, bootstrap intervals, paired over prompts
    assert compare["samples"] == {"before": 2, "after": 2} and set(compare["unscorable"]) == {"before", "after"}
    for tag in ("before", "after"):
        assert compare["reward_total"][tag]["mean"] == pytest.approx(on_disk[tag]["total"])
    assert "| reward_total |" in (run_dir / "compare.md").read_text()
    rows = metrics(run_dir)
    assert [r["step"] for r in rows] == [1, 2, 3]
    for row in rows:
        for key in ("reward_mean", "kl", "loss", "clip_fraction", "rollout_s", "reward_tail_s", "learner_s"):
            assert math.isfinite(row[key]), (key, row)
        assert row["sync_s"] >= 0 and row["step_s"] > 0 and 0.0 <= row["clip_fraction"] <= 1.0
        assert row["learner_tokens"] > 0 and 0.0 <= row["reward_mean"] <= 1.0
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6) and rows[1]["kl"] > 0  # step 1 starts at the reference
    # evaluation during training (eval_interval=2): step 2's row holds the held-out figures of that step's policy
    assert [("eval_wer" in r) for r in rows] == [False, True, False]
    during = json.loads((run_dir / "eval_step_000002.json").read_text())["summary"]
    assert rows[1]["eval_reward"] == pytest.approx(during["total"]) and during["n"] == 2
    assert rows[1]["eval_sim"] == pytest.approx(during["raw"]["sim"])
    # the benchmark set (data.eval_sets) at every evaluation: its own figures, rows and before/after comparison
    on_set = during["sets"]["cloning/en"]
    assert on_set["n"] == 2 and rows[1]["eval_cloning_en_sim"] == pytest.approx(on_set["raw"]["sim"])
    set_rows = json.loads((run_dir / "eval_step_000002.json").read_text())["sets"]["cloning/en"]["samples"]
    assert sorted(r["id"] for r in set_rows) == ["cloning/en:m0#0", "cloning/en:m1#0"]
    assert all(r["transcript"] is not None or r["unscorable"] for r in set_rows)
    assert on_disk["before"]["sets"]["cloning/en"]["n"] == on_disk["after"]["sets"]["cloning/en"]["n"] == 2
    assert on_disk["compare_sets"]["cloning/en"]["samples"] == {"before": 2, "after": 2}
    assert "## cloning/en" in (run_dir / "compare.md").read_text()
    assert (run_dir / "eval_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # on-policy, the learner sees the rollout policy itself: ratio 1 (gradients accumulate, one update per step)
    assert rows[1]["ratio_mean"] == pytest.approx(1.0, abs=1e-5)
    assert (run_dir / "reward_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ckpts == [f"checkpoint_00000{i}" for i in (1, 2, 3)]  # nothing temporary left
    final = run_dir / "checkpoints" / "checkpoint_000003"
    model, _, layout = load_speechlm(final)
    assert layout.codebook_size == 64 and checkpoint.read_state(final)["step"] == 3
    assert max_diff(weights(final), weights(inputs["policy"])) > 1e-4
    # every actor's host, by role; the checkpoint records the codec its policy speaks
    assert set(on_disk["placement"]) == {"rollout", "learner", "decoder", "asr", "speaker", "dnsmos"}
    assert all(len(hosts) >= 1 and all(h.count(".") == 3 for h in hosts) for hosts in on_disk["placement"].values())
    assert layout.codec["sha256"] == json.loads((inputs["codec"] / "codec.json").read_text())["sha256"]


def test_step_metrics_reach_rays_prometheus_export(baseline, ray_session):
    """What the Ray dashboard's Grafana panels read: every gauge, tagged with the run's name."""
    missing, text = list(GAUGES), ""
    deadline = time.monotonic() + 45  # Ray flushes metrics to its agent every few seconds
    while missing and time.monotonic() < deadline:
        time.sleep(2)
        text = httpx.get(f"http://127.0.0.1:{ray_session}/metrics", timeout=10).text
        missing = [k for k in GAUGES if not re.search(rf'ray_grpo_{k}{{[^}}]*run="base"', text)]
        missing += [m for m in SET_GAUGES if not re.search(rf'ray_grpo_eval_set_{m}{{[^}}]*set="cloning/en"', text)]
    assert not missing, (missing, sorted({line.split("{")[0] for line in text.splitlines() if "grpo" in line}))


def test_resume_matches_an_uninterrupted_run(baseline, inputs, tmp_path):
    """A run stopped after step 2's checkpoint (the baseline's run directory without its step-3 checkpoint, so its
    metrics still have a row 3 that the resume must drop) continues to exactly the uninterrupted step 3."""
    _, whole = baseline
    shutil.copytree(whole, tmp_path / "base")
    shutil.rmtree(tmp_path / "base" / "checkpoints" / "checkpoint_000003")
    run(inputs, tmp_path, "base", "steps=3", "eval_before=false", "eval_after=false", resume=True)  # keep 2
    halves = metrics(tmp_path / "base")
    assert [r["step"] for r in halves] == [1, 2, 3]
    for key in ("reward_mean", "loss", "kl", "policy_loss", "completion_tokens_mean"):
        assert halves[-1][key] == pytest.approx(metrics(whole)[-1][key], abs=1e-6), key
    ckpts = tmp_path / "base" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["checkpoint_000002", "checkpoint_000003"]  # 1 pruned
    a = weights(whole / "checkpoints" / "checkpoint_000003")
    assert max_diff(a, weights(ckpts / "checkpoint_000003")) <= 1e-6


@pytest.fixture(scope="class")
def faults_job(ray_session, inputs, tmp_path_factory):
    """One started job for the fault tests; class scope so that its actors are gone before other jobs start
    (the session has 4 CPUs: a job left running starves the next one's learners)."""
    extra = ("steps=2", "checkpoint_interval=1", "eval_before=false", "eval_after=false")
    cfg = load_config(GRPOConfig, CONFIG, overrides(inputs, tmp_path_factory.mktemp("runs"), "faults", *extra))
    job = GRPOJob(cfg)
    yield job
    job.shutdown()


class TestFaults:
    def test_killed_reward_and_decoder_actors_are_replaced(self, faults_job):
        job = faults_job
        prompts = job.data["train"].for_step(0, job.cfg.prompts_per_step, job.cfg.seed)
        rollout = job.launch(prompts, 0)
        ray.kill(job.rewards.pools["sim"].actors[0])
        ray.kill(job.decoders.actors[0])
        results, timing = job.collect(rollout)
        assert len(results) == len(prompts)
        for prompt, group, records in results:
            assert len(group) == len(records) == job.cfg.rollout.group_size
            for i, rec in enumerate(records):
                assert rec["id"] == f"{prompt.id}#{i}" and math.isfinite(rec["rewards"]["total"])
                assert rec["sim"] is not None and not any("decode" in f for f in rec["flags"]), rec
        assert job.decoders.replaced >= 1 and job.rewards.pools["sim"].replaced >= 1
        assert timing["rollout_s"] > 0

    def test_killed_rollout_worker_is_replaced_and_its_calls_retried(self, faults_job):
        job = faults_job
        prompts = job.data["train"].for_step(0, job.cfg.prompts_per_step, job.cfg.seed)
        dead = job.rollouts[0]
        rollout = job.launch(prompts, 0)  # both prompts stream from the one worker
        ray.kill(dead)
        results, _ = job.collect(rollout)
        assert job.rollouts[0] is not dead and ray.get(job.rollouts[0].ping.remote()) == job.version
        assert [len(group) for _, group, _ in results] == [job.cfg.rollout.group_size] * len(prompts)

    def test_rollout_worker_dying_during_the_weight_sync_is_replaced_with_the_new_weights(self, faults_job):
        job = faults_job
        dead = job.rollouts[0]
        ray.kill(dead)
        job.version += 1  # as after an update
        assert job.sync() > 0
        assert job.rollouts[0] is not dead and ray.get(job.rollouts[0].ping.remote()) == job.version

    def test_group_filter_drops_or_resamples_all_equal_groups(self, faults_job, monkeypatch):
        job = faults_job
        prompts = job.data["train"].for_step(0, job.cfg.prompts_per_step, job.cfg.seed)
        results, _ = job.collect(job.launch(prompts, 0))
        for rec in results[0][2]:
            rec["rewards"]["total"] = 0.5  # group 0 carries no signal
        for i, rec in enumerate(results[1][2]):
            rec["rewards"]["total"] = 0.2 + 0.1 * i  # group 1 does
        kept, m = job.filter_groups(results)  # group_filter=keep: everything, and the share is measured
        assert len(kept) == 2 and m == {"groups_all_equal": 0.5, "groups_trained": 2}
        monkeypatch.setattr(job.cfg, "group_filter", "drop")
        kept, m = job.filter_groups(results)
        assert [p.id for p, _, _ in kept] == [results[1][0].id] and m == {"groups_all_equal": 0.5, "groups_trained": 1}
        draws, launch = [], job.launch
        monkeypatch.setattr(job, "launch", lambda *a, **kw: draws.append(kw.get("draw")) or launch(*a, **kw))
        monkeypatch.setattr(job.cfg, "group_filter", "resample")
        kept, m = job.filter_groups(results)
        assert draws[:1] == [1] and len(draws) <= job.cfg.resample_rounds  # new prompts under other seeds
        assert kept[0][0].id == results[1][0].id and m["groups_trained"] == len(kept) <= 2
        assert not any(all_equal(recs) for _, _, recs in kept)

    def test_truncated_completions_can_be_left_out_of_the_loss(self, faults_job, monkeypatch):
        job = faults_job
        prompts = job.data["train"].for_step(0, job.cfg.prompts_per_step, job.cfg.seed)
        results, _ = job.collect(job.launch(prompts, 0))
        for _, group, _ in results:
            for c in group:
                c.finish = "length"
        monkeypatch.setattr(job.cfg, "mask_truncated", True)
        before = ray.get(job.learners[0].weights.remote()).state_dict()
        m = job.learn(results)  # nothing left to train on: no update, and the metrics say so
        assert m["learner_tokens"] == 0 and m["ratio_mean"] == 1.0
        assert max_diff(before, ray.get(job.learners[0].weights.remote()).state_dict()) == 0.0

    def test_nan_advantage_in_the_learner_surfaces_unwrapped(self, faults_job):
        """A non-finite loss inside a learner actor reaches the driver as NonFiniteError, weights untouched."""
        job = faults_job
        prompts = job.data["train"].for_step(1, job.cfg.prompts_per_step, job.cfg.seed)
        results, _ = job.collect(job.launch(prompts, 1))
        results[0][2][0]["rewards"]["total"] = float("nan")  # NaN advantages for the whole first group
        before = ray.get(job.learners[0].weights.remote()).state_dict()
        with pytest.raises(NonFiniteError, match="non-finite GRPO loss"):
            job.learn(results)
        assert max_diff(before, ray.get(job.learners[0].weights.remote()).state_dict()) == 0.0

    def test_nan_reward_stops_the_run_and_keeps_the_last_checkpoint(self, faults_job, monkeypatch):
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


def test_off_policy_generates_the_next_step_with_the_previous_weights_and_resumes_exactly(baseline, inputs, tmp_path):
    """With off_policy, step 2 was generated while step 1 trained, so its ratio is not 1 (on-policy it is: see
    the end-to-end test). A resume from step 2's checkpoint replays the step-3 groups it kept (generated before
    step 2's update) instead of generating them with newer weights, and ends exactly where the whole run did."""
    extra = ("steps=3", "eval_before=false", "eval_after=false", "off_policy=true", "checkpoint_interval=1")
    run(inputs, tmp_path / "whole", "stale", *extra)
    off = metrics(tmp_path / "whole" / "stale")
    assert [r["step"] for r in off] == [1, 2, 3]
    assert off[0]["ratio_mean"] == pytest.approx(1.0, abs=1e-5)  # step 1 is on-policy in both modes
    assert off[0]["loss"] == pytest.approx(metrics(baseline[1])[0]["loss"], abs=1e-6)
    assert abs(off[1]["ratio_mean"] - 1.0) > 1e-4 and abs(off[2]["ratio_mean"] - 1.0) > 1e-4
    ckpts = tmp_path / "whole" / "stale" / "checkpoints"
    assert (ckpts / "checkpoint_000002" / "next_rollout.json").is_file()
    assert not (ckpts / "checkpoint_000003" / "next_rollout.json").exists()  # the last step launches nothing
    shutil.copytree(tmp_path / "whole" / "stale", tmp_path / "half" / "stale")
    shutil.rmtree(tmp_path / "half" / "stale" / "checkpoints" / "checkpoint_000003")
    run(inputs, tmp_path / "half", "stale", *extra, resume=True)
    resumed = metrics(tmp_path / "half" / "stale")
    assert [r["step"] for r in resumed] == [1, 2, 3]
    for key in ("ratio_mean", "reward_mean", "loss", "kl", "completion_tokens_mean"):
        assert resumed[-1][key] == pytest.approx(off[-1][key], abs=1e-6), key
    final = "checkpoints/checkpoint_000003"
    assert max_diff(weights(tmp_path / "whole" / "stale" / final), weights(tmp_path / "half" / "stale" / final)) <= 1e-6


def test_actors_that_cannot_be_placed_fail_the_job_and_free_what_started(ray_session, inputs, tmp_path):
    total = ray.cluster_resources()["CPU"]  # nothing else runs in this session between tests
    with pytest.raises(PoolError, match=r"rollout workers: not all 1 actor\(s\) could be placed within 20 s.*'CPU'"):
        run(inputs, tmp_path, "starved", "rollout.num_cpus=64", "start_timeout_s=20")  # the session has 4
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < total and time.monotonic() < deadline:
        time.sleep(0.5)  # ray.kill returns before the actors' resources are released
    assert ray.available_resources()["CPU"] == total


def test_placed_groups_reserve_before_the_free_pools_start_and_are_freed_on_failure(
    ray_session, inputs, tmp_path, monkeypatch
):
    """Learner ranks and rollout workers hold their placement groups before a decoder or reward actor is scheduled
    (one started first may take the part of a node that a strict_spread placement needs); a start that fails
    afterwards leaves no reservation behind."""
    from ray.util import placement_group_table

    def live() -> list[str]:
        return sorted(g["name"] for g in placement_group_table().values() if g["state"] != "REMOVED")

    seen = []

    def no_decoders(*_):
        seen.append(live())
        raise RuntimeError("decoders refused")

    monkeypatch.setattr("tts.grpo.driver.decoder_pool", no_decoders)
    with pytest.raises(RuntimeError, match="decoders refused"):
        run(inputs, tmp_path, "reserved", "start_timeout_s=60")
    assert seen == [["learner ranks", "rollout workers"]]
    deadline = time.monotonic() + 30
    while live() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert live() == []


def test_a_word_synchronous_policy_trains_without_the_words_the_engine_wrote(ray_session, inputs, tmp_path):
    """The words a word-synchronous policy's engine writes (all of a word's tokens but the first) are not its
    choices: the learner's token count leaves them out."""
    policy = tmp_path / "words_policy"
    shutil.copytree(inputs["policy"], policy)
    dataclasses.replace(TokenLayout.load(policy), interleave="words").save(policy)
    extra = ("steps=1", "eval_before=false", "eval_after=false", "rollout.max_new_tokens=120", f"policy={policy}")
    run(inputs, tmp_path, "words", *extra)
    (row,) = metrics(tmp_path / "words")
    written = row["completion_tokens_mean"] * 4  # 2 prompts x 2 completions
    assert 0 < row["learner_tokens"] < written and math.isfinite(row["loss"])
