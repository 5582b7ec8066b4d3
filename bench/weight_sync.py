"""Weight sync, learner -> rollout engines, as the GRPO driver does it: where the seconds go.

One learner rank and `--workers` vLLM rollout workers run as Ray actors, shaped as the embedded GRPO job
(0.5 CPU each). Each sync is timed in three parts: `gather` (the learner's state dict ready in the object
store), `load` (every engine holds the new weights) and, inside `load`, `engine` (vLLM's in-place reload
itself, as the workers report it). Transports: the object store as a pickled state dict and as one packed
buffer (`flat`, the job's CPU path); with `--gpu ipc|nccl` also vLLM's GPU weight transfer as the job drives it
(tts.grpo.weight_transfer: `gather` is 0, `load` the whole send): `ipc` with every actor on one GPU, `nccl` with
the learner and each engine on GPUs of their own (1 + workers GPUs).

    python bench/weight_sync.py [--workers 2] [--repeats 5] [--gpu ipc|nccl] [--out runs/bench/weight_sync.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import ray
import torch

from tts.base.actors import ActorGroup, PoolConfig
from tts.base.cluster import free_port, init_ray
from tts.base.weights import FlatWeights
from tts.grpo.config import LearnerConfig
from tts.grpo.learner import LearnerRank
from tts.grpo.weight_transfer import GPU_SYNCS, check_gpus
from tts.rollout import RolloutConfig, RolloutWorker
from tts.speechlm import EMBEDDED_SPEECHLM, open_speechlm

TRANSPORTS = ("state_dict", "flat")


def _state_dict(learner: LearnerRank, dtype: str) -> dict:
    return {k: v.detach().to(getattr(torch, dtype)) for k, v in learner.engine.module.state_dict().items()}


def _load_state_dict(worker: RolloutWorker, state: dict, version: int) -> int:
    return worker.load_weights(FlatWeights.from_state_dict(state, next(iter(state.values())).dtype), version)


def sync_once(transport: str, learner, workers: ActorGroup, dtype: str, version: int) -> dict[str, float]:
    t0 = time.perf_counter()
    if transport in GPU_SYNCS:
        ray.get(learner.send_weights.remote())
        loaded = ray.get([w.commit_version.remote(version) for w in workers.actors])
        t2 = time.perf_counter()
        engine = max(t["engine_s"] for t in ray.get([w.last_sync.remote() for w in workers.actors]))
        return {"gather_s": 0.0, "load_s": t2 - t0, "engine_s": engine, "total_s": t2 - t0}
    if transport == "flat":
        weights = learner.weights.remote(dtype)
    else:
        weights = learner.__ray_call__.remote(_state_dict, dtype)
    ray.wait([weights], fetch_local=False)
    t1 = time.perf_counter()
    if transport == "flat":
        loaded = ray.get([w.load_weights.remote(weights, version) for w in workers.actors])
    else:
        loaded = ray.get([w.__ray_call__.remote(_load_state_dict, weights, version) for w in workers.actors])
    t2 = time.perf_counter()
    if loaded != [version] * len(workers):
        raise RuntimeError(f"engines report versions {loaded}, expected {version}")
    engine = max(t["engine_s"] for t in ray.get([w.last_sync.remote() for w in workers.actors]))
    return {"gather_s": t1 - t0, "load_s": t2 - t1, "engine_s": engine, "total_s": t2 - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", default=EMBEDDED_SPEECHLM)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--gpu", choices=GPU_SYNCS, help="also time vLLM's GPU weight transfer (actors on GPUs)")
    p.add_argument("--out", default="runs/bench/weight_sync.json")
    args = p.parse_args()

    init_ray()
    policy = str(open_speechlm(args.policy).directory)
    # ipc: the learner and every engine share one GPU; nccl: one GPU each (NCCL cannot put two ranks on one)
    share = {None: 0.0, "ipc": 1 / (args.workers + 2), "nccl": 1.0}[args.gpu]
    rollout = RolloutConfig(num_cpus=0.5, num_gpus=share, weight_sync=args.gpu or "object_store")
    if args.gpu:
        rollout.dtype, rollout.gpu_memory_utilization = "bfloat16", 0.8 * share
    learner = (
        ray.remote(LearnerRank)
        .options(num_cpus=0.5, num_gpus=share)
        .remote(policy, LearnerConfig(num_gpus=share), 0, 1, ("127.0.0.1", free_port()), 1, 0)
    )
    workers = ActorGroup(
        RolloutWorker,
        lambda k: (policy, rollout, k),
        PoolConfig(actors=args.workers, num_cpus=0.5, num_gpus=share),
        "rollout workers",
    )
    workers.wait_ready(900, "rollout workers")
    ray.get(learner.ping.remote())
    transports = TRANSPORTS + ((args.gpu,) if args.gpu else ())
    if args.gpu:
        check_gpus(args.gpu, ray.get(learner.gpu.remote()), ray.get([w.gpu.remote() for w in workers.actors]))
        ray.get(learner.open_weight_transfer.remote(args.gpu, workers.actors, rollout.dtype))
    rows: dict[str, list[dict]] = {t: [] for t in transports}
    for version in range(1, args.repeats + 1):  # interleaved: every transport sees the same machine state
        for t in transports:
            rows[t].append(sync_once(t, learner, workers, rollout.dtype, version))
    median = {t: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for t, rs in rows.items()}
    print(f"{args.workers} engines, {rollout.dtype}, median of {args.repeats} syncs")
    print(f"{'transport':>10s} " + " ".join(f"{k:>9s}" for k in median["flat"]))
    for t, m in median.items():
        print(f"{t:>10s} " + " ".join(f"{v:9.3f}" for v in m.values()))
    for t in transports[1:]:
        print(f"{t} is x{median['state_dict']['total_s'] / median[t]['total_s']:.1f} faster than state_dict")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"workers": args.workers, "dtype": rollout.dtype, "gpu": args.gpu, "rows": rows, "median": median}
    out.write_text(json.dumps(record))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
