"""NCCL weight sync (tts/grpo/weight_transfer.py) on what a CPU can check: when it is chosen, how each engine is
told its rank, that the learner's parameter stream agrees with its declared metadata (checked by vLLM's own
trainer-side check), how rollout workers forward vLLM's calls, and when the driver re-forms the group. The
broadcast itself needs GPUs: `test_engines_hold_the_learners_weights_after_a_gpu_sync` below, skipped without CUDA,
run as docs/gpu.md says."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from tts.base.config import load_config
from tts.grpo import driver as driver_module
from tts.grpo.config import GRPOConfig
from tts.grpo.weight_transfer import (
    ParameterSource,
    RolloutClient,
    check_gpus,
    resolve_weight_sync,
    worker_payloads,
)
from tts.rollout import RolloutConfig, RolloutWorker


def test_auto_is_nccl_only_with_vllm_and_gpus_on_both_sides():
    assert resolve_weight_sync("auto", "vllm", 1, 1) == "nccl"
    assert resolve_weight_sync("auto", "vllm", 0, 1) == "object_store"
    assert resolve_weight_sync("auto", "hf", 1, 1) == "object_store"
    assert resolve_weight_sync("object_store", "vllm", 1, 1) == "object_store"
    assert resolve_weight_sync("ipc", "vllm", 0.3, 0.5) == "ipc"
    for choice in ("nccl", "ipc"):
        with pytest.raises(ValueError, match="needs rollout.backend=vllm and GPUs on both sides"):
            resolve_weight_sync(choice, "vllm", 1, 0)
    with pytest.raises(ValueError, match="must be one of"):
        RolloutConfig(weight_sync="rdma")
    assert GRPOConfig().rollout.weight_sync == "object_store"  # the embedded default runs on CPUs
    production = Path(__file__).parents[3] / "rayjobs" / "configs" / "grpo_production.yaml"
    assert load_config(GRPOConfig, production).rollout.weight_sync == "nccl"
    with pytest.raises(ValueError, match="GPUs on both sides"):
        GRPOConfig(rollout=RolloutConfig(weight_sync="nccl"))


def test_a_gpu_placement_the_chosen_sync_cannot_reach_names_the_one_that_can():
    check_gpus("nccl", "GPU-a", ["GPU-b", "GPU-c"])
    check_gpus("ipc", "GPU-a", ["GPU-a", "GPU-a"])
    with pytest.raises(ValueError, match=r"rollout workers \[1\] share learner rank 0's GPU.*use weight_sync=ipc"):
        check_gpus("nccl", "GPU-a", ["GPU-b", "GPU-a"])
    with pytest.raises(ValueError, match=r"rollout workers \[0\] are not on learner rank 0's GPU.*weight_sync=nccl"):
        check_gpus("ipc", "GPU-a", ["GPU-b", "GPU-a"])


def test_each_engine_joins_at_its_own_rank_of_one_group():
    payloads = [p["init_info"] for p in worker_payloads("10.0.0.2", 29555, 3, 1 << 20)]
    assert [p["rank_offset"] for p in payloads] == [1, 2, 3]  # rank 0 is the learner
    assert {(p["master_address"], p["master_port"], p["world_size"], p["packed"]) for p in payloads} == {
        ("10.0.0.2", 29555, 4, True)
    }


def tiny_engine() -> SimpleNamespace:
    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2)
    cfg.tie_word_embeddings = True
    return SimpleNamespace(module=LlamaForCausalLM(cfg), zero_optimization_stage=lambda: 2)


def test_parameter_stream_matches_its_metadata_by_vllms_own_check():
    from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerWeightTransferEngine

    engine = tiny_engine()
    source = ParameterSource(engine, torch.bfloat16, torch.device("cpu"))
    meta = source.metadata()
    sent = list(NCCLTrainerWeightTransferEngine._checked_iter(source, meta))  # raises on any disagreement
    names = [n for n, _ in sent]
    assert names == [m.name for m in meta] and len(set(names)) == len(names)
    # tied to the embeddings, the head is sent too: vLLM's layerwise reload would keep the old one
    assert names[-1] == "lm_head.weight" and names.count("model.embed_tokens.weight") == 1
    assert all(t.dtype == torch.bfloat16 and t.is_contiguous() for _, t in sent)
    state = engine.module.state_dict()
    assert all(torch.equal(t, state[n].to(torch.bfloat16)) for n, t in sent)
    fp32 = ParameterSource(engine, torch.float32, torch.device("cpu"))  # the learner's own dtype: still copies
    assert not any(t.data_ptr() == p.data_ptr() for (_, t), p in zip(fp32, engine.module.parameters()))


class Remote:
    """A method of a fake actor: `.remote(...)` runs it at once (ray.get is the identity below)."""

    def __init__(self, fn):
        self.fn = fn

    def remote(self, *args):
        return self.fn(*args)


@pytest.fixture()
def no_ray(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "get", lambda refs: refs)


def test_client_sends_each_engine_its_payload_and_fans_calls_out(no_ray):
    calls = []
    engines = [
        SimpleNamespace(
            init_weight_transfer_engine=Remote(lambda p, w=w: calls.append((w, "init", p))),
            start_weight_update=Remote(lambda w=w: calls.append((w, "start"))),
            update_weights=Remote(lambda r, w=w: calls.append((w, "update", r))),
            finish_weight_update=Remote(lambda w=w: calls.append((w, "finish"))),
        )
        for w in range(2)
    ]
    RolloutClient(engines).init_weight_transfer_engine({"packed": True})  # IPC: the trainer's own request
    assert [c[2] for c in calls] == [{"init_info": {"packed": True}}] * 2
    calls.clear()
    client = RolloutClient(engines, worker_payloads("h", 1, 2, 8))
    client.init_weight_transfer_engine({"ignored": True})
    client.start_weight_update()
    client.update_weights({"names": ["a"]})
    client.finish_weight_update()
    assert [c[2]["init_info"]["rank_offset"] for c in calls if c[1] == "init"] == [1, 2]
    assert [(w, kind) for w, kind, *_ in calls[2:]] == [
        (0, "start"),
        (1, "start"),
        (0, "update"),
        (1, "update"),
        (0, "finish"),
        (1, "finish"),
    ]
    assert calls[4][2] == {"update_info": {"names": ["a"]}}


class FakeLLM:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append(name)


def test_rollout_worker_forwards_vllms_calls_leaves_an_old_group_and_drops_stale_kv():
    worker = RolloutWorker.__new__(RolloutWorker)
    worker.llm, worker.version = FakeLLM(), 0
    worker._sync, worker._sync_started, worker._transfer_open = {"engine_s": 0.0}, 0.0, False
    worker.init_weight_transfer_engine({"init_info": {}})
    worker.init_weight_transfer_engine({"init_info": {}})  # re-formed group after a peer was replaced
    worker.start_weight_update()
    worker.update_weights({"update_info": {}})
    worker.finish_weight_update()
    assert worker.commit_version(3) == 3 and worker.version == 3 and worker.last_sync()["engine_s"] >= 0
    assert worker.llm.calls == [
        "init_weight_transfer_engine",
        "shutdown_weight_transfer_engine",
        "init_weight_transfer_engine",
        "start_weight_update",
        "update_weights",
        "finish_weight_update",
        "reset_prefix_cache",
    ]


def test_driver_forms_the_group_once_and_again_after_a_worker_is_replaced(no_ray, monkeypatch):
    log = []
    learners = [
        SimpleNamespace(
            open_weight_transfer=Remote(lambda choice, engines, dtype, r=r: log.append(("open", r, len(engines)))),
            gpu=Remote(lambda: "GPU-0"),
            send_weights=Remote(lambda r=r: log.append(("send", r))),
            weights=Remote(lambda dtype: "packed"),
        )
        for r in range(2)
    ]
    engines = [
        SimpleNamespace(
            commit_version=Remote(lambda v: v), load_weights=Remote(lambda w, v: v), gpu=Remote(lambda g=g: g)
        )
        for g in ("GPU-1", "GPU-2")
    ]
    job = driver_module.GRPOJob.__new__(driver_module.GRPOJob)
    job.cfg = SimpleNamespace(rollout=SimpleNamespace(weight_sync="nccl", dtype="bfloat16"))
    job.learners = SimpleNamespace(actors=learners)
    job.rollouts = FakeGroup(engines)
    job.version, job._reform = 1, True
    job.sync()
    job.version = 2
    job.sync()
    assert log == [("open", 0, 2), ("open", 1, 2), ("send", 0), ("send", 1), ("send", 0), ("send", 1)]
    log.clear()
    job._replace_rollout(1, engines[1])  # weights from the object store, then the group forms again
    job.sync()
    assert log[:2] == [("open", 0, 2), ("open", 1, 2)]
    job.version = 3
    engines[0].commit_version = Remote(lambda v: v - 1)  # an engine left behind is an error, not silence
    with pytest.raises(RuntimeError, match="expected 3"):
        job.sync()


class FakeGroup:
    def __init__(self, actors):
        self.actors = actors

    def __getitem__(self, k):
        return self.actors[k]

    def replace(self, *args) -> bool:
        return True


def _perturb(learner) -> None:
    with torch.no_grad():
        for p in learner.engine.module.parameters():
            p.add_(torch.randn_like(p) * 0.02)


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="vLLM's GPU weight transfer needs CUDA")
@pytest.mark.parametrize("choice", ["ipc", "nccl"])
def test_engines_hold_the_learners_weights_after_a_gpu_sync(choice, tmp_path):
    """On the lent GPU machine (docs/gpu.md): the embedded policy, one learner rank, two vLLM engines; after the
    learner's weights change, one sync makes the engines' log-probs the learner's."""
    import ray

    from tts.base.actors import ActorGroup, PoolConfig
    from tts.base.cluster import free_port, init_ray
    from tts.grpo.config import LearnerConfig
    from tts.grpo.learner import LearnerRank
    from tts.speechlm import EMBEDDED_SPEECHLM, open_speechlm

    if choice == "nccl" and torch.cuda.device_count() < 3:
        pytest.skip("NCCL puts the learner and each engine on a GPU of its own: 3 GPUs")
    init_ray()
    share = 0.25 if choice == "ipc" else 1.0
    policy = str(open_speechlm(EMBEDDED_SPEECHLM).directory)
    rollout = RolloutConfig(num_gpus=share, weight_sync=choice, dtype="bfloat16", gpu_memory_utilization=0.2)
    learner = (
        ray.remote(LearnerRank)
        .options(num_gpus=share)
        .remote(policy, LearnerConfig(num_gpus=share), 0, 1, ("127.0.0.1", free_port()), 1, 0)
    )
    workers = ActorGroup(RolloutWorker, lambda k: (policy, rollout, k), PoolConfig(actors=2, num_gpus=share), "engines")
    workers.wait_ready(900, "rollout workers")
    ids = list(range(10, 60))
    ray.get(learner.__ray_call__.remote(_perturb))
    want = ray.get(learner.sequence_logprobs.remote(ids))
    before = ray.get(workers.actors[0].sequence_logprobs.remote(ids))
    assert max(abs(a - b) for a, b in zip(before, want)) > 0.1  # the engines do not hold these weights yet
    check_gpus(choice, ray.get(learner.gpu.remote()), ray.get([w.gpu.remote() for w in workers.actors]))
    ray.get(learner.open_weight_transfer.remote(choice, workers.actors, "bfloat16"))
    ray.get(learner.send_weights.remote())
    assert ray.get([w.commit_version.remote(1) for w in workers.actors]) == [1, 1]
    for w in workers.actors:
        got = ray.get(w.sequence_logprobs.remote(ids))
        assert max(abs(a - b) for a, b in zip(got, want)) < 0.05  # bf16 engine vs bf16 learner
    workers.shutdown()
    ray.kill(learner)
