"""tts.base.cluster.init_ray: a fresh local Ray unless RAY_ADDRESS names a cluster, whatever /tmp/ray says."""

from __future__ import annotations

import ray

from tts.base.cluster import init_ray


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
