"""The GRPO job at the shape users run (slow, root): a three-host Ray cluster on one machine (tests/netns_cluster.py:
network namespaces, distinct addresses, head with --num-cpus=0), the job submitted with `ray job submit` from the
head, learner ranks on two hosts (the rendezvous is on rank 0's node, not the driver's), two actors in every
pool; it trains, checkpoints and resumes, and report.json names every actor's host."""

from __future__ import annotations

import json
import sys

import pytest

from tests.netns_cluster import Cluster, available
from tests.rayjobs.test_grpo import CONFIG, ROOT, overrides
from tests.tts.grpo.tiny_setup import tiny_codec, tiny_corpus, tiny_policy

pytestmark = [pytest.mark.slow, pytest.mark.skipif(available() is not None, reason=str(available()))]

TWO_OF_EACH = [
    "learner.ranks=2",
    "learner.placement=strict_spread",  # one rank per worker host
    "learner.num_cpus=0.5",
    "rollout.workers=2",
    "rollout.num_cpus=0.5",
    "decoder.actors=2",
    "decoder.num_cpus=0.25",
    *(f"rewards.{kind}.pool={{actors: 2, num_cpus: 0.25}}" for kind in ("asr", "speaker", "dnsmos")),
    "checkpoint_interval=1",
    "eval_after=false",
    "start_timeout_s=600",
]


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(workers=2, worker_cpus=2)
    try:
        yield c.start()
    finally:
        c.stop()


def test_grpo_trains_checkpoints_and_resumes_across_hosts(cluster, tmp_path):
    manifest = tiny_corpus(tmp_path / "corpus")
    inputs = {
        "manifest": manifest,
        "codec": tiny_codec(tmp_path / "codec"),
        "policy": tiny_policy(tmp_path / "lm", manifest),
    }
    runs = tmp_path / "runs"
    entry = [sys.executable, "rayjobs/grpo.py", "--config", str(CONFIG.relative_to(ROOT))]
    first = cluster.submit([*entry, *overrides(inputs, runs, "multi", "steps=1", *TWO_OF_EACH)], ROOT)
    assert first.returncode == 0 and "succeeded" in first.stdout, (first.stdout + first.stderr)[-4000:]
    run_dir = runs / "multi"
    report = json.loads((run_dir / "report.json").read_text())
    placement = report["placement"]
    workers = {cluster.ip(1), cluster.ip(2)}
    assert set(placement) == {"rollout", "learner", "decoder", "asr", "speaker", "dnsmos"}
    assert all(len(hosts) == 2 and set(hosts) <= workers for hosts in placement.values()), placement
    assert set(placement["learner"]) == workers  # the ranks met across hosts
    assert "learner actors on" in first.stdout  # the job log names each actor's host at start-up
    resumed = cluster.submit([*entry, *overrides(inputs, runs, "multi", "steps=2", *TWO_OF_EACH), "--resume"], ROOT)
    assert resumed.returncode == 0 and "succeeded" in resumed.stdout, (resumed.stdout + resumed.stderr)[-4000:]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir())[-1] == "checkpoint_000002"
