"""The jobs at the shape users run (slow, root): a three-host Ray cluster on one machine (tests/netns_cluster.py:
network namespaces, distinct addresses, head with --num-cpus=0). GRPO submitted with `ray job submit` from the
head, learner ranks on two hosts (the rendezvous is on rank 0's node, not the driver's), two actors in every
pool: it trains, checkpoints and resumes, and report.json names every actor's host. The same cluster serves the
Serve app (`serve deploy`, replicas on the worker hosts, the HTTP proxy on the head) and runs an eval job."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from tests.netns_cluster import RAY, Cluster, available
from tests.rayjobs.test_eval import eval_argv, eval_inputs
from tests.rayjobs.test_grpo import CONFIG, ROOT, overrides
from tests.tts.grpo.tiny_setup import tiny_codec, tiny_corpus, tiny_policy
from tests.tts.serve.tiny_app import tiny_config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(available() is not None, reason=str(available())),
    # two jobs of 12 actors each on 2 cores: a job that is still running after submit's own timeout is stopped
    # and reported with its log; pytest's limit stays above that
    pytest.mark.timeout(2 * 1200 + 300),
]

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


REPLICAS = """
import json, sys
from ray.util.state import list_actors, list_nodes

ips = {n.node_id: n.node_ip for n in list_nodes(address=sys.argv[1])}
hosts = {}
for a in list_actors(address=sys.argv[1], filters=[("state", "=", "ALIVE")], limit=1000):
    hosts.setdefault(a.class_name, []).append(ips[a.node_id])
print("RESULT", json.dumps(hosts))
"""


def test_serve_app_runs_its_replicas_on_worker_hosts(cluster, tmp_path):
    cfg = tiny_config(tmp_path)  # tiny random SpeechLM + codec, transformers generation
    cfg.generation.backend = "hf"
    cfg.generation.deployment.num_replicas = cfg.decoding.num_replicas = 2
    cfg.generation.deployment.num_cpus = cfg.decoding.num_cpus = 0.25  # CPUs: only the workers have them
    cfg.host, cfg.port = "0.0.0.0", 8000
    cfg.arena.votes = str(tmp_path / "votes.sqlite")  # replicas run in Ray's own working directories
    (tmp_path / "serve.yaml").write_text(yaml.safe_dump(asdict(cfg)))
    deploy = {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "0.0.0.0", "port": 8000},
        "applications": [
            {
                "name": "tts",
                "route_prefix": "/",
                "import_path": "tts.serve.app:app_builder",
                "args": {"config": str(tmp_path / "serve.yaml")},
            }
        ],
    }
    (tmp_path / "deploy.yaml").write_text(yaml.safe_dump(deploy))
    res = cluster.run(
        0,
        [str(Path(RAY).with_name("serve")), "deploy", str(tmp_path / "deploy.yaml"), "--address", cluster.dashboard],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    url, deadline, answer = f"http://{cluster.ip(0)}:8000", time.monotonic() + 600, None
    probe = [
        sys.executable,
        "-c",
        "import httpx, sys; r = httpx.post(sys.argv[1] + '/v1/audio/speech', json={"
        "'model': 'tts-1', 'input': 'hello there', 'voice': 'default', 'response_format': 'wav', "
        "'stream': False}, timeout=120); print(r.status_code, len(r.content))",
        url,
    ]
    while time.monotonic() < deadline:  # the app answers once every replica is up
        answer = cluster.run(0, probe, capture_output=True, text=True, timeout=200)
        if answer.returncode == 0 and answer.stdout.split()[:1] == ["200"]:
            break
        time.sleep(5)
    assert answer is not None and answer.stdout.split()[:1] == ["200"], (answer.stdout + answer.stderr)[-3000:]
    assert int(answer.stdout.split()[1]) > 1000  # a wav with audio in it
    hosts = cluster.run(
        0, [sys.executable, "-c", REPLICAS, f"{cluster.ip(0)}:6379"], capture_output=True, text=True, timeout=120
    )
    placed = json.loads(next(x for x in hosts.stdout.splitlines() if x.startswith("RESULT "))[7:])
    workers = {cluster.ip(1), cluster.ip(2)}
    generation = next(v for k, v in placed.items() if k.startswith("ServeReplica:tts:") and "Generation" in k)
    decoding = next(v for k, v in placed.items() if k.startswith("ServeReplica:tts:") and "Decod" in k)
    assert len(generation) == len(decoding) == 2 and set(generation) | set(decoding) <= workers, placed
    assert set(generation) == workers, placed  # the two replicas of a deployment spread over the two workers
    cluster.run(
        0,
        [str(Path(RAY).with_name("serve")), "shutdown", "-y", "--address", cluster.dashboard],
        capture_output=True,
        timeout=300,
    )


def test_eval_job_runs_on_the_cluster(cluster, tmp_path):
    inputs = eval_inputs(tmp_path / "inputs")
    out = tmp_path / "eval"
    entry = [sys.executable, "rayjobs/eval.py", *eval_argv(inputs, out)]
    res = cluster.submit(entry, ROOT)
    assert res.returncode == 0 and "succeeded" in res.stdout, (res.stdout + res.stderr)[-4000:]
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["n"] == 2 and len(report["utterances"]) == 4  # two items, with and without prompt
