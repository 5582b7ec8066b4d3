"""A Ray cluster of several hosts on one machine: each host its own network namespace with its own address on
a bridge (root only). The head runs with --num-cpus=0, as cluster.yaml's head does, so every actor lands on a
worker host; each host's Ray has its own port space and temp dir, so nothing collides with another Ray here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def available() -> str | None:
    """Why such a cluster cannot be built here (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True)
    return None if probe.returncode == 0 else "ip netns is not usable here"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass
class Cluster:
    workers: int = 2
    worker_cpus: int = 2
    tag: str = field(default_factory=lambda: f"t{os.getpid() % 100000}")
    nodes: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.subnet = f"10.213.{os.getpid() % 250}"
        self.hosts = [f"{self.tag}h{i}" for i in range(self.workers + 1)]
        self.env = dict(
            os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", RAY_AUTH_MODE="disabled"
        )

    def ip(self, host: int) -> str:
        return f"{self.subnet}.{host + 1}"

    @property
    def dashboard(self) -> str:
        return f"http://{self.ip(0)}:8265"

    def run(self, host: int, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.hosts[host], *cmd], env=self.env, **kw)

    def start(self) -> Cluster:
        bridge = f"{self.tag}br"
        _ip("netns", "add", bridge)
        _ip("-n", bridge, "link", "add", "br0", "type", "bridge")
        _ip("-n", bridge, "link", "set", "br0", "up")
        for i, host in enumerate(self.hosts):
            _ip("netns", "add", host)
            _ip("link", "add", f"{self.tag}v{i}", "type", "veth", "peer", "name", f"{self.tag}b{i}")
            _ip("link", "set", f"{self.tag}v{i}", "netns", host)
            _ip("link", "set", f"{self.tag}b{i}", "netns", bridge)
            _ip("-n", bridge, "link", "set", f"{self.tag}b{i}", "master", "br0")
            _ip("-n", bridge, "link", "set", f"{self.tag}b{i}", "up")
            _ip("-n", host, "addr", "add", f"{self.ip(i)}/24", "dev", f"{self.tag}v{i}")
            _ip("-n", host, "link", "set", f"{self.tag}v{i}", "up")
            _ip("-n", host, "link", "set", "lo", "up")
        common = ["--disable-usage-stats", "--block"]
        head = [RAY, "start", "--head", f"--node-ip-address={self.ip(0)}", "--num-cpus=0", "--port=6379"]
        head += [f"--dashboard-host={self.ip(0)}", f"--temp-dir=/tmp/ray_{self.hosts[0]}", *common]
        self._spawn(0, head)
        self._wait_for_jobs_api()
        for i in range(1, self.workers + 1):
            worker = [RAY, "start", f"--address={self.ip(0)}:6379", f"--node-ip-address={self.ip(i)}"]
            worker += [f"--num-cpus={self.worker_cpus}", f"--temp-dir=/tmp/ray_{self.hosts[i]}", *common]
            self._spawn(i, worker)
        self._wait_for_nodes()
        return self

    def _spawn(self, host: int, cmd: list[str]) -> None:
        full = ["ip", "netns", "exec", self.hosts[host], *cmd]
        self.nodes.append(subprocess.Popen(full, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def _wait_for_jobs_api(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.nodes[0].poll() is None, "the head exited"
            res = self.run(0, [RAY, "job", "list", "--address", self.dashboard], capture_output=True, timeout=60)
            if res.returncode == 0:
                return
            time.sleep(2)
        raise TimeoutError(f"the head's job API did not answer within {timeout} s")

    def _wait_for_nodes(self, timeout: float = 180) -> None:
        script = f"import ray; ray.init(address='{self.ip(0)}:6379'); print(sum(n['Alive'] for n in ray.nodes()))"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = self.run(0, [sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
            if res.returncode == 0 and res.stdout.strip().splitlines()[-1:] == [str(self.workers + 1)]:
                return
            time.sleep(2)
        raise TimeoutError(f"not all {self.workers + 1} nodes joined within {timeout} s")

    def submit(self, entry: list[str], cwd: Path, timeout: float = 1200) -> subprocess.CompletedProcess:
        """`ray job submit` from the head host, as a user would; waits for the job to end. A job still running
        after `timeout` is stopped and the error carries its log tail and the cluster's resources, so a hang in
        CI says where it hung."""
        self._jobs = getattr(self, "_jobs", 0) + 1
        job = f"{self.tag}-job{self._jobs}"
        cmd = [RAY, "job", "submit", "--address", self.dashboard, "--working-dir", str(cwd)]
        cmd += ["--submission-id", job, "--", *entry]
        deadline = time.monotonic() + 180
        while True:  # the head's job API answers before its node's job agent is up
            try:
                res = self.run(0, cmd, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"job {job} still running after {timeout:.0f} s\n{self.diagnose(job)}") from None
            if "No available agent" not in res.stderr or time.monotonic() > deadline:
                return res
            job = f"{self.tag}-job{self._jobs}-retry{int(time.monotonic())}"
            cmd[cmd.index("--submission-id") + 1] = job
            time.sleep(3)

    def diagnose(self, job: str) -> str:
        """The tail of `job`'s log and the cluster's resource status; the job is stopped."""

        def ray(*args: str) -> str:
            res = self.run(0, [RAY, *args], capture_output=True, text=True, timeout=120)
            return (res.stdout + res.stderr)[-6000:]

        logs = ray("job", "logs", job, "--address", self.dashboard)
        status = ray("status", "--address", f"{self.ip(0)}:6379")
        ray("job", "stop", job, "--address", self.dashboard)
        return f"--- job log (tail) ---\n{logs}\n--- ray status ---\n{status}"

    def stop(self) -> None:
        for node in reversed(self.nodes):  # `ray start --block` stops its node's processes on SIGTERM
            node.terminate()
        for node in reversed(self.nodes):
            try:
                node.wait(timeout=120)
            except subprocess.TimeoutExpired:
                node.kill()
        for host in self.hosts:
            killed = subprocess.run(["ip", "netns", "pids", host], capture_output=True, text=True).stdout.split()
            for pid in killed:  # anything the node left behind in its namespace
                subprocess.run(["kill", "-9", pid], capture_output=True)
            subprocess.run(["ip", "netns", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", f"{self.tag}br"], capture_output=True)
        for host in self.hosts:
            shutil.rmtree(f"/tmp/ray_{host}", ignore_errors=True)
