"""The GRPO learner (tts/grpo/learner.py): collation, and one DeepSpeed rank in this process (world 1, gloo)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import ray
import torch

import tts.grpo.learner as learner_module
from tts.base import checkpoint
from tts.base.cluster import free_port
from tts.grpo.config import LearnerConfig
from tts.grpo.learner import LearnerRank, NonFiniteError, Trajectory, collate, distributed_step, grpo_update
from tts.grpo.math import GRPOLossConfig
from tts.lora import LoraSettings
from tts.rollout import RolloutConfig, RolloutWorker
from tts.speechlm import load_speechlm

PAD = 99


def test_collate_aligns_mask_and_old_logprobs_with_next_token_targets():
    seqs = [
        Trajectory([1, 2, 3], [10, 11], [-0.1, -0.2], 0.5),
        Trajectory([1, 2], [12, 13, 14, 15], [-1.0, -2.0, -3.0, -4.0], -1.0),
        Trajectory([1, 2, 3, 4, 5], [16], [-7.0], 0.0),
    ]
    b = collate(seqs, PAD)
    width = 6  # the longest prompt + completion
    assert b["input_ids"].shape == (3, width) and b["mask"].shape == b["old_logprobs"].shape == (3, width - 1)
    for k, s in enumerate(seqs):
        full = s.prompt + s.completion
        assert b["input_ids"][k].tolist() == full + [PAD] * (width - len(full))
        assert b["attention_mask"][k].tolist() == [1] * len(full) + [0] * (width - len(full))
        for t in range(width - 1):
            target_is_completion = len(s.prompt) <= t + 1 < len(full)
            assert b["mask"][k, t].item() == float(target_is_completion), (k, t)
            if target_is_completion:
                assert b["input_ids"][k, t + 1].item() == s.completion[t + 1 - len(s.prompt)]
                assert b["old_logprobs"][k, t].item() == pytest.approx(s.old_logprobs[t + 1 - len(s.prompt)])
            else:
                assert b["old_logprobs"][k, t].item() == 0.0
    assert b["advantages"].tolist() == [0.5, -1.0, 0.0]


def test_collate_leaves_tokens_the_engine_wrote_out_of_the_mask():
    """Word-synchronous completions: the tokens of a word after its first are forced, not the policy's choice."""
    seqs = [Trajectory([1, 2], [10, 11, 12, 13], [-0.1] * 4, 1.0, forced=[False, False, True, False])]
    b = collate(seqs, PAD)
    assert b["mask"][0].tolist() == [0.0, 1.0, 1.0, 0.0, 1.0]  # targets 2 (prompt), 10, 11, 12 (forced), 13


def test_collate_places_per_token_advantages_like_the_mask():
    seqs = [Trajectory([1, 2], [10, 11, 12], [-0.1] * 3, [0.5, -1.0, 2.0]), Trajectory([1, 2, 3], [13], [-0.2], 0.25)]
    b = collate(seqs, PAD)
    assert b["advantages"].tolist() == [[0.0, 0.5, -1.0, 2.0], [0.0, 0.0, 0.25, 0.0]]
    assert (b["advantages"] != 0).float().equal(b["mask"])


SEQS = 4  # two micro-batches of two: gradient accumulation is part of every step


def trajectories(learner: LearnerRank, advantages: list[float]) -> list[Trajectory]:
    """Clone-style prompts with audio completions of different lengths; old log-probs from the learner itself."""
    layout = learner.layout
    rng = np.random.default_rng(0)
    out = []
    for k, adv in enumerate(advantages):
        text = learner.tokenizer.encode(f"Sentence number {k} is here.", add_special_tokens=False)
        ref = layout.codes_to_ids(rng.integers(0, layout.codebook_size, 6 + k)).tolist()
        prompt = [layout.text_start_id, *text, layout.text_end_id, layout.speech_start_id, *ref]
        completion = layout.codes_to_ids(rng.integers(0, layout.codebook_size, 3 + 2 * k)).tolist()
        if k % 2:
            completion.append(layout.speech_end_id)
        old = learner.sequence_logprobs(prompt + completion)[len(prompt) - 1 :]
        out.append(Trajectory(prompt, completion, old, adv))
    return out


def snapshot(learner: LearnerRank) -> dict[str, torch.Tensor]:
    return learner.weights().state_dict()  # a packed copy: later steps do not change it


def max_change(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Over b's tensors (the learner's parameters: a tied lm_head only once), all of which a must have."""
    assert set(b) <= set(a) and len(b) >= len(a) - 1, set(a) ^ set(b)
    return max((a[k] - b[k]).abs().max().item() for k in b)


@pytest.fixture(scope="module")
def learner(policy_dir):
    """One rank for the module (DeepSpeed keeps its process groups, so a second rank in this process would not
    start). Its first step is taken here, from the start policy, whichever test runs first."""
    cfg = LearnerConfig(lr=1e-2, micro_batch_size=2, loss=GRPOLossConfig(beta=0.04))
    rank = LearnerRank(str(policy_dir), cfg, 0, 1, ("127.0.0.1", free_port()), grad_accum=2, seed=0)
    adv = [1.0, -1.0, 0.5, -0.5]
    seqs = trajectories(rank, adv)
    before = snapshot(rank)
    metrics = rank.train_step(seqs, float(sum(len(s.completion) for s in seqs)))
    rank.first_step = {"adv": adv, "seqs": seqs, "metrics": metrics, "before": before, "after": snapshot(rank)}
    yield rank  # the process group stays: DeepSpeed caches it for later in-process runs (as trainer.run_local)


def test_on_policy_step_has_ratio_one_and_moves_the_weights(learner):
    first = learner.first_step
    adv, seqs, m = first["adv"], first["seqs"], first["metrics"]
    tokens = sum(len(s.completion) for s in seqs)
    assert abs(m["ratio_mean"] - 1.0) < 1e-5 and m["clip_fraction"] == 0.0
    assert m["learner_tokens"] == tokens and m["kl"] == pytest.approx(0.0, abs=1e-6)  # reference = start policy
    # at ratio 1 the token-mean policy loss over both micro-batches is -sum(A_i |o_i|) / tokens
    expected = -sum(a * len(s.completion) for a, s in zip(adv, seqs)) / tokens
    assert m["policy_loss"] == pytest.approx(expected, abs=1e-5) and m["loss"] == pytest.approx(expected, abs=1e-5)
    assert m["grad_norm"] > 0
    assert max_change(first["before"], first["after"]) > 1e-4
    # the update raised the log-probability of the positively rewarded completion
    s = seqs[0]
    new = learner.sequence_logprobs(s.prompt + s.completion)[len(s.prompt) - 1 :]
    assert sum(new) > sum(s.old_logprobs)


def test_second_step_sees_the_reference_and_its_own_ratio(learner):
    seqs = trajectories(learner, [0.5, -0.5, 1.0, -1.0])  # old log-probs from the updated policy
    m = learner.train_step(seqs, float(sum(len(s.completion) for s in seqs)))
    assert abs(m["ratio_mean"] - 1.0) < 1e-5
    assert m["kl"] > 1e-6  # the policy moved away from the frozen reference
    assert m["loss"] == pytest.approx(m["policy_loss"] + 0.04 * m["kl"], abs=1e-6)


def test_mini_batches_take_one_optimizer_step_each(learner, monkeypatch):
    """learner.mini_batches=2: two updates from one rollout; the second slice's old log-probs predate the first
    update, so its ratio leaves 1 (the clip now matters), and the step's metrics cover both slices."""
    slices = []

    def one_rank_step(learners, trajs, aggregation):
        slices.append([t.advantage for t in trajs])
        return learners[0].train_step(trajs, float(sum(len(t.completion) for t in trajs)))

    monkeypatch.setattr(learner_module, "distributed_step", one_rank_step)
    seqs = trajectories(learner, [1.0, -1.0, 0.5, -0.5])
    m = grpo_update([learner], seqs, "token_mean", mini_batches=2)
    assert slices == [[1.0, -1.0], [0.5, -0.5]]  # contiguous: a group stays in one slice
    assert abs(m["ratio_mean"] - 1.0) > 1e-5
    assert m["learner_tokens"] == sum(len(s.completion) for s in seqs)
    slices.clear()
    grpo_update([learner], seqs[:1], "token_mean", mini_batches=2)  # fewer sequences than slices: no empty step
    assert slices == [[1.0]]


def test_nan_advantage_stops_before_the_update(learner):
    seqs = trajectories(learner, [math.nan, 1.0, -1.0, 0.0])
    before = snapshot(learner)
    with pytest.raises(NonFiniteError, match="non-finite GRPO loss"):
        learner.train_step(seqs, float(sum(len(s.completion) for s in seqs)))
    assert max_change(before, snapshot(learner)) == 0.0


def test_a_smaller_share_leaves_micro_batches_idle_and_a_larger_one_is_refused(learner):
    """Group filtering can leave a rank fewer sequences than its micro-batches hold: the rest run idle (zero
    loss, same collectives), and the step still trains on what there is."""
    seqs = trajectories(learner, [1.0, -1.0])  # one micro-batch of two; the engine accumulates two
    before = snapshot(learner)
    m = learner.train_step(seqs, float(sum(len(s.completion) for s in seqs)))
    assert m["learner_tokens"] == sum(len(s.completion) for s in seqs)
    assert m["grad_norm"] > 0 and max_change(before, snapshot(learner)) > 0
    assert 0 < m["entropy"] < math.log(learner.engine.module.config.vocab_size) and m["lr"] == pytest.approx(1e-2)
    with pytest.raises(ValueError, match="more than the 2 micro-batches"):
        learner.train_step(trajectories(learner, [1.0, -1.0, 0.5, -0.5, 0.1]), 10.0)


def test_save_writes_a_loadable_hf_checkpoint_of_the_weights(learner, policy_dir, tmp_path):
    seqs = trajectories(learner, [1.0, -1.0, 0.5, -0.5])
    learner.train_step(seqs, float(sum(len(s.completion) for s in seqs)))
    weights = snapshot(learner)
    start, _, _ = load_speechlm(policy_dir)
    assert max_change(start.state_dict(), weights) > 1e-4  # the checkpoint holds trained weights, not the start
    learner.save(str(tmp_path / "ckpt"), {"step": 1, "job": "grpo"})
    model, tokenizer, layout = load_speechlm(tmp_path / "ckpt")
    assert max_change(model.state_dict(), weights) == 0.0
    assert layout == learner.layout and tokenizer.encode("a b") == learner.tokenizer.encode("a b")
    # the ranks' parts are not a checkpoint yet: the driver writes train_state.json once every rank returned
    assert not (tmp_path / "ckpt" / checkpoint.STATE).exists() and checkpoint.latest(tmp_path / "ckpt") is None
    assert (tmp_path / "ckpt" / checkpoint.DEEPSPEED).is_dir() and (tmp_path / "ckpt" / "rng" / "rank_0.pt").is_file()


def test_a_lora_learner_trains_adapters_only_and_syncs_and_saves_the_merged_model(policy_dir, tmp_path):
    """learner.lora: the base stays frozen, the engines get base + adapter delta under the base model's names, and
    a plain model loaded with those weights computes the learner's own log-probs (what the rollout engine does)."""
    cfg = LearnerConfig(lr=1e-2, micro_batch_size=2, loss=GRPOLossConfig(beta=0.04), lora=LoraSettings(dropout=0.0))
    rank = LearnerRank(str(policy_dir), cfg, 0, 1, ("127.0.0.1", free_port()), grad_accum=2, seed=0)
    start, _, _ = load_speechlm(policy_dir)
    plain = dict(start.named_parameters())
    base = {n: p.detach().clone() for n, p in rank.engine.module.named_parameters() if "lora_" not in n}
    seqs = trajectories(rank, [1.0, -1.0, 0.5, -0.5])
    m = rank.train_step(seqs, float(sum(len(s.completion) for s in seqs)))
    assert m["grad_norm"] > 0 and abs(m["ratio_mean"] - 1.0) < 1e-5  # no dropout: on-policy ratio is 1
    assert all(torch.equal(p, base[n]) for n, p in rank.engine.module.named_parameters() if "lora_" not in n)
    merged = rank.weights().state_dict()
    assert set(merged) == set(plain)
    assert max_change(start.state_dict(), merged) > 1e-4  # the adapters moved the merged model
    start.load_state_dict(merged, strict=False)
    s = seqs[0]
    ids = torch.tensor([s.prompt + s.completion])
    with torch.no_grad():
        logits = start(input_ids=ids).logits
    from_merged = torch.log_softmax(logits[0, :-1].float(), -1).gather(-1, ids[0, 1:, None])[:, 0].tolist()
    assert from_merged == pytest.approx(rank.sequence_logprobs(s.prompt + s.completion), abs=1e-4)
    rank.save(str(tmp_path / "ckpt"), {"step": 1, "job": "grpo"})
    saved, _, _ = load_speechlm(tmp_path / "ckpt")
    assert max_change(saved.state_dict(), merged) < 1e-6 and (tmp_path / "ckpt" / "adapter").is_dir()


class ActorView:
    """What `trajectories` needs from a learner, for one running as a Ray actor."""

    def __init__(self, actor, policy_dir):
        self.actor = actor
        _, self.tokenizer, self.layout = load_speechlm(policy_dir)

    def sequence_logprobs(self, ids: list[int]) -> list[float]:
        return ray.get(self.actor.sequence_logprobs.remote(ids))


@pytest.mark.slow
def test_two_ranks_make_the_same_update_as_one(policy_dir):
    """ZeRO-2 over 2 ranks (gloo, one Ray actor each): each rank takes half the step's sequences and divides by the
    whole step's token count, so the update equals the single-rank one up to float summation order."""
    ray.init(address="local", num_cpus=3, include_dashboard=False, log_to_driver=False)
    try:
        actor = ray.remote(LearnerRank).options(num_cpus=1)
        cfg = LearnerConfig(lr=1e-2, micro_batch_size=2, loss=GRPOLossConfig(beta=0.04))
        one = [actor.remote(str(policy_dir), cfg, 0, 1, ("127.0.0.1", free_port()), 2, 0)]
        master, half = ("127.0.0.1", free_port()), replace(cfg, micro_batch_size=1)
        two = [actor.remote(str(policy_dir), half, r, 2, master, 2, 0) for r in range(2)]
        seqs = trajectories(ActorView(one[0], policy_dir), [1.0, -1.0, 0.5, -0.5])
        m1, m2 = distributed_step(one, seqs, "token_mean"), distributed_step(two, seqs, "token_mean")
        a, b = (ray.get(group[0].weights.remote()).state_dict() for group in (one, two))
    finally:
        ray.shutdown()
    assert m2["learner_tokens"] == m1["learner_tokens"] == sum(len(s.completion) for s in seqs)
    assert m2["loss"] == pytest.approx(m1["loss"], abs=1e-6)
    assert m2["grad_norm"] == pytest.approx(m1["grad_norm"], rel=1e-4)  # the same global gradient
    start, _, _ = load_speechlm(policy_dir)
    assert max_change(start.state_dict(), a) > 1e-4
    # Adam's first step is lr * g / |g|: an element whose gradient is ~0 may flip sign with summation order
    differ = sum(int(((a[k] - b[k]).abs() > 1e-6).sum()) for k in a)
    assert differ <= 1e-3 * sum(v.numel() for v in a.values()), differ


ZERO3_VLLM = r"""
import json, sys

if __name__ == "__main__":
    from tts.rollout import RolloutConfig, RolloutWorker

    worker = RolloutWorker(sys.argv[1], RolloutConfig(backend="vllm", max_model_len=512), seed=0)
    print("RESULT", json.dumps(worker.sequence_logprobs(json.loads(sys.argv[2]))), flush=True)
"""


def _local_elements(rank: LearnerRank) -> dict[str, int]:
    """Elements of the policy and of the reference this rank stores (ZeRO-3 partitions: `ds_tensor`)."""
    return {
        name: sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in module.parameters())
        for name, module in (("policy", rank.engine.module), ("reference", rank.ref.module))
    }


@pytest.mark.slow
def test_zero3_ranks_sync_and_save_what_zero2_ranks_do(policy_dir, tmp_path):
    """ZeRO-3 over 2 ranks (each holds a shard of the policy and of the reference): the weights gathered for the
    sync, one parameter at a time, give an engine the same log-probs as ZeRO-2's after the same step, and the
    checkpoint the ranks save holds whole weights that vLLM loads."""
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        actor = ray.remote(LearnerRank).options(num_cpus=1)
        cfg = LearnerConfig(lr=1e-2, micro_batch_size=1, loss=GRPOLossConfig(beta=0.04))
        groups = {}
        for stage in (2, 3):
            master = ("127.0.0.1", free_port())
            stage_cfg = replace(cfg, zero_stage=stage)
            groups[stage] = [actor.remote(str(policy_dir), stage_cfg, r, 2, master, 2, 0) for r in range(2)]
        seqs = trajectories(ActorView(groups[2][0], policy_dir), [1.0, -1.0, 0.5, -0.5])
        metrics = {stage: distributed_step(ranks, seqs, "token_mean") for stage, ranks in groups.items()}
        weights = {stage: ray.get([r.weights.remote() for r in ranks]) for stage, ranks in groups.items()}
        ray.get([r.save.remote(str(tmp_path / "zero3"), {"step": 1, "job": "grpo"}) for r in groups[3]])
        held = ray.get(groups[3][0].__ray_call__.remote(_local_elements))  # what one ZeRO-3 rank holds
    finally:
        ray.shutdown()
    assert weights[3][1] is None and weights[2][1] is None  # only rank 0 packs
    total = weights[2][0].nbytes // 4  # fp32 elements of the whole policy
    assert held["policy"] <= total // 2 + 1000 and held["reference"] <= total // 2 + 1000  # shards, not copies
    assert metrics[3]["loss"] == pytest.approx(metrics[2]["loss"], abs=1e-6)
    assert metrics[3]["grad_norm"] == pytest.approx(metrics[2]["grad_norm"], rel=1e-4)
    z2, z3 = weights[2][0], weights[3][0]
    assert [(n, s) for n, _, _, s in z3.index] == [(n, s) for n, _, _, s in z2.index]  # whole shapes, not shards
    engine = RolloutWorker(str(policy_dir), RolloutConfig(backend="hf", max_model_len=512), seed=0)
    ids = seqs[0].prompt + seqs[0].completion
    synced = {
        stage: (engine.load_weights(w, stage), engine.sequence_logprobs(ids))[1] for stage, w in ((2, z2), (3, z3))
    }
    np.testing.assert_allclose(synced[3], synced[2], atol=1e-5)
    saved, _, _ = load_speechlm(tmp_path / "zero3")
    assert max_change(saved.state_dict(), z3.state_dict()) == 0.0
    script = tmp_path / "zero3_vllm.py"
    script.write_text(ZERO3_VLLM)
    res = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "zero3"), json.dumps(ids)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in res.stdout.splitlines() if line.startswith("RESULT ")]
    assert res.returncode == 0 and lines, res.stderr[-3000:]
    np.testing.assert_allclose(json.loads(lines[0][len("RESULT ") :]), synced[3], atol=1e-3)
