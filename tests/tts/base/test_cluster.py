"""tts.base.cluster.init_ray: a fresh local Ray unless RAY_ADDRESS names a cluster, whatever /tmp/ray says; a
cluster that does not answer is a clear error at once."""

from __future__ import annotations

import socket
import time

import pytest
import ray

from tts.base.cluster import free_port, init_ray


def test_a_stale_current_cluster_file_is_not_followed(monkeypatch):
    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    init_ray(num_cpus=1)
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    init_ray()
    assert calls == [{"address": "local", "num_cpus": 1}, {"address": "auto"}]


def test_an_initialised_ray_is_kept(monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "init", lambda **kw: (_ for _ in ()).throw(AssertionError("ray.init called again")))
    init_ray()


def test_an_unreachable_cluster_is_a_clear_error_at_once(monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: (_ for _ in ()).throw(AssertionError("ray.init reached")))
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("RAY_ADDRESS", address)
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=f"cannot reach the Ray cluster at {address}.*ray status"):
        init_ray(connect_timeout_s=5)
    assert time.monotonic() - start < 5
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5")
    with pytest.raises(ValueError, match="not host:port"):
        init_ray()


def test_a_listening_cluster_address_goes_on_to_ray(monkeypatch):
    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        monkeypatch.setenv("RAY_ADDRESS", address)
        init_ray()
    assert calls == [{"address": address}]
