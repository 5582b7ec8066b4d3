"""Weight sync on GPUs: learner rank 0 broadcasts each parameter straight into every vLLM engine over NCCL, or,
when the engines share the learner's GPU, hands them CUDA IPC handles; no copy through the object store or host.

vLLM's own weight-transfer API does the data plane (`vllm.distributed.weight_transfer`: the engines join an NCCL
group with the trainer at `init_weight_transfer_engine`, receive at `update_weights`). Its NCCL trainer engine
assumes the inference side is one engine whose workers sit at ranks 1..n; the GRPO job runs several independent
engines (one per rollout worker, each its own `LLM`), so engine w is told to sit at rank 1 + w, as OpenRLHF and
verl number theirs (IPC needs no ranks: vLLM's trainer engine is used as it is). Under ZeRO-3 every learner rank
iterates the same parameters (each one a gather); only rank 0 sends. The object store
(`tts.base.weights.FlatWeights`) stays the fallback and the path on CPUs.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from tts.base.distributed import full_parameters, parameter_shapes
from tts.rollout import WEIGHT_SYNCS, with_tied_head

GPU_SYNCS = ("nccl", "ipc")


def resolve_weight_sync(choice: str, backend: str, rollout_gpus: float, learner_gpus: float) -> str:
    """`auto` is NCCL when the engines are vLLM and both sides hold GPUs (engines and learner on GPUs of their
    own, the shape of a cluster), the object store otherwise. `nccl` or `ipc` where they cannot work is refused
    here, before any actor starts."""
    if choice not in WEIGHT_SYNCS:
        raise ValueError(f"rollout.weight_sync must be one of {WEIGHT_SYNCS}, got {choice!r}")
    possible = backend == "vllm" and rollout_gpus > 0 and learner_gpus > 0
    if choice in ("nccl", "ipc") and not possible:
        raise ValueError(
            f"rollout.weight_sync={choice} needs rollout.backend=vllm and GPUs on both sides "
            f"(rollout.num_gpus={rollout_gpus}, learner.num_gpus={learner_gpus}, backend={backend!r}); "
            "use object_store or auto"
        )
    if choice == "auto":
        return "nccl" if possible else "object_store"
    return choice


def check_gpus(choice: str, learner_gpu: str, engine_gpus: list[str]) -> None:
    """NCCL cannot hold two ranks on one GPU, and CUDA IPC only reaches a GPU the learner's tensors are on: say
    which to use instead of hanging or failing inside NCCL."""
    shared = [w for w, gpu in enumerate(engine_gpus) if gpu == learner_gpu]
    if choice == "nccl" and shared:
        raise ValueError(
            f"rollout.weight_sync=nccl: rollout workers {shared} share learner rank 0's GPU {learner_gpu}, and NCCL "
            "cannot put two ranks on one GPU; use weight_sync=ipc for engines colocated with the learner"
        )
    if choice == "ipc" and len(shared) < len(engine_gpus):
        apart = [w for w in range(len(engine_gpus)) if w not in shared]
        raise ValueError(
            f"rollout.weight_sync=ipc: rollout workers {apart} are not on learner rank 0's GPU {learner_gpu} (CUDA "
            "IPC needs the engines colocated with the learner); use weight_sync=nccl"
        )


def engine_ranks(engines: int) -> list[int]:
    """Rank of each engine's (single) worker in the transfer group; the learner sends from rank 0."""
    return [1 + w for w in range(engines)]


def worker_payloads(address: str, port: int, engines: int, buffer_bytes: int) -> list[dict[str, Any]]:
    """`init_weight_transfer_engine` request of each engine: same rendezvous, its own rank offset."""
    world = 1 + engines
    return [
        {
            "init_info": {
                "master_address": address,
                "master_port": port,
                "rank_offset": rank,
                "world_size": world,
                "packed": True,
                "packed_buffer_size_bytes": buffer_bytes,
            }
        }
        for rank in engine_ranks(engines)
    ]


class ParameterSource:
    """The learner's parameters as vLLM's trainer engine reads them (`WeightSource`'s two channels): names, wire
    dtypes and full shapes without gathering, then each whole tensor on the learner's device, one at a time. A
    tied output head is sent as well: the engines receive in checkpoint format through vLLM's layerwise reload,
    which keeps the head apart from the embedding (`tts.rollout.with_tied_head`, the object store's fix)."""

    def __init__(self, engine: Any, dtype: torch.dtype, device: torch.device):
        self.engine, self.dtype, self.device = engine, dtype, device

    def metadata(self) -> list:
        from vllm.distributed.weight_transfer.base import ParamMeta

        shapes = with_tied_head(parameter_shapes(self.engine).items())  # the names and order __iter__ sends
        return [ParamMeta(name, self.dtype, shape) for name, shape in shapes]

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        # always a copy (also when the learner's dtype is the wire's): ZeRO-3 frees each gathered tensor
        copies = ((n, t.to(self.device, self.dtype, copy=True).contiguous()) for n, t in full_parameters(self.engine))
        yield from with_tied_head(copies)


class RolloutClient:
    """vLLM's `VLLMWeightSyncClient` over our rollout workers (Ray actors forwarding to their `LLM`): each call
    goes to every engine and waits for all. `payloads`: each engine's own init request (NCCL ranks); without
    them every engine gets the trainer's."""

    def __init__(self, engines: list[Any], payloads: list[dict[str, Any]] | None = None):
        self.engines, self.payloads = engines, payloads

    def _all(self, method: str, *args: Any) -> None:
        import ray

        ray.get([getattr(e, method).remote(*args) for e in self.engines])

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        import ray

        payloads = self.payloads or [{"init_info": init_info}] * len(self.engines)
        ray.get([e.init_weight_transfer_engine.remote(p) for e, p in zip(self.engines, payloads)])

    def shutdown_weight_transfer_engine(self) -> None:
        self._all("shutdown_weight_transfer_engine")

    def start_weight_update(self) -> None:
        self._all("start_weight_update")

    def update_weights(self, update_info: dict[str, Any]) -> None:
        self._all("update_weights", {"update_info": update_info})

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self._all("finish_weight_update")


def open_sender(choice: str, source: ParameterSource, rank: int, engines: list[Any]) -> Any:
    """One learner rank's end of the sync, vLLM's trainer engine (`send_weights()`, `shutdown()`): NCCL or CUDA
    IPC. Rank 0 drives the engines; the other ranks only join each parameter's ZeRO-3 gather."""
    if choice == "ipc":  # colocated: the engines map rank 0's packed buffers, no rendezvous
        from vllm.distributed.weight_transfer.ipc_engine import IPCTrainerInitInfo, IPCTrainerWeightTransferEngine

        info = IPCTrainerInitInfo(rank=rank, packed=True)
        return IPCTrainerWeightTransferEngine.trainer_init(info, client=RolloutClient(engines), source=source)
    return open_nccl(source, rank, engines)


def open_nccl(source: ParameterSource, rank: int, engines: list[Any], buffer_bytes: int = 1 << 28) -> Any:
    """vLLM's NCCL trainer engine, its group opened by rank 0 on its own node's address (a free port there) with
    each engine at its own rank."""
    from vllm.distributed.weight_transfer.nccl_common import trainer_init as open_trainer_endpoint
    from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerWeightTransferEngine

    client = RolloutClient(engines)
    engine = NCCLTrainerWeightTransferEngine(
        client=client, source=source, is_sender=rank == 0, packed=True, packed_buffer_size_bytes=buffer_bytes
    )
    if rank != 0:
        return engine
    import ray

    from tts.base.cluster import free_port

    address = ray.util.get_node_ip_address()
    port = free_port(address)
    client.payloads = worker_payloads(address, port, len(engines), buffer_bytes)
    # the engines block in their rendezvous until rank 0 opens its end: both at once, as vLLM's trainer_init does
    with ThreadPoolExecutor(max_workers=1) as pool:
        joined = pool.submit(client.init_weight_transfer_engine, {})
        engine.model_update_group = open_trainer_endpoint(
            {"master_address": address, "master_port": port, "world_size": 1 + len(engines)}
        )
        joined.result()
    return engine
