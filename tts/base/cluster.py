"""Which Ray cluster a job joins.

Under `ray job submit` (or with RAY_ADDRESS set) the job joins that cluster; otherwise it starts a local Ray of its
own. Ray's own default for a bare `ray.init()` is to join the cluster named in /tmp/ray/ray_current_cluster, which
`ray start` writes and a killed head leaves behind: a job run next to another Ray (or after one died) would then
hang on a dead or foreign GCS. Set RAY_ADDRESS=auto to join a cluster started with `ray start` on this machine.
"""

from __future__ import annotations

import os
import socket
from typing import Any


def init_ray(connect_timeout_s: float = 15.0, **kwargs: Any) -> None:
    """`ray.init` once per process, on RAY_ADDRESS if set, else on a fresh local instance. A cluster address that
    does not answer is an error naming it within `connect_timeout_s` (Ray itself may wait minutes)."""
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS") or "local"
    if address not in ("local", "auto") and "://" not in address:  # host:port of a cluster's GCS
        check_reachable(address, connect_timeout_s)
    ray.init(address=address, **kwargs)


def check_reachable(address: str, timeout_s: float) -> None:
    """A TCP connection to `address` (host:port) opens within `timeout_s`, or a ConnectionError saying what to
    check."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"RAY_ADDRESS {address!r} is not host:port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConnectionError(
            f"cannot reach the Ray cluster at {address} (RAY_ADDRESS) within {timeout_s:.0f} s: {e}. Is its head "
            f"running (`ray status --address {address}`) and reachable from this host?"
        ) from None


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now (rendezvous of process groups, test servers)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def bind_collectives_to_node_ip() -> str | None:
    """Make gloo and NCCL use the interface that holds this Ray node's IP (returned; None if not found).

    Left alone they pick the interface the hostname resolves to, which on a host with several interfaces (or
    network namespaces) may be one the other ranks cannot reach. A user's own GLOO_/NCCL_SOCKET_IFNAME wins."""
    import psutil
    import ray

    ip = ray.util.get_node_ip_address()
    for name, addrs in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == ip for a in addrs):
            os.environ.setdefault("GLOO_SOCKET_IFNAME", name)
            os.environ.setdefault("NCCL_SOCKET_IFNAME", name)
            return name
    return None


def gpu_uuid() -> str:
    """UUID of the GPU this process computes on ("" without one): tells colocated actors from separate ones."""
    import torch

    if not torch.cuda.is_available():
        return ""
    return str(torch.cuda.get_device_properties(torch.cuda.current_device()).uuid)
