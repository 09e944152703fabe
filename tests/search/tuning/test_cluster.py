"""A real two-node Ray cluster on this machine, used as a user would after `ray up`:
a head and a second node started with `ray start` (one logical GPU each, a custom
resource per node), a search submitted with `ray job submit`, trials on both nodes with
half a GPU each, and the second node killed mid-search by its own process id: its trials
go on on the head from their checkpoints and the search completes with nothing lost.

Every process the test starts is found by the cluster's private temporary folder and
killed at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from results import load_epochs, load_searches, load_trials
from tests.conftest import write_example_dataset

pytestmark = [pytest.mark.slow, pytest.mark.alone]

RAY = str(Path(sys.executable).parent / "ray")
POLARMAP = str(Path(sys.executable).parent / "polarmap")
GPUS_PER_TRIAL = 0.5  # two trials per node's one logical GPU
TRIALS = 4
EPOCHS = (1, 17)  # warm-up, fine-tune: long enough to lose a node in the middle, before
# the trials pause at the rung of their Hyperband bracket (6 epochs, 2 of 4 go on)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_mentioning(text: str) -> list[int]:
    """Process ids whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(int(entry.name))
    return found


class Cluster:
    """Two Ray nodes on this machine, reached as a user reaches a launched cluster."""

    def __init__(self, temp_dir: str):
        self.temp_dir = temp_dir
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        # Ray 2.60 turns token authentication on; every client must say so.
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}"

    def ray(self, *args: str, check: bool = True, timeout: float = 120):
        return subprocess.run([RAY, *args], env=self.env, capture_output=True, text=True,
                              check=check, timeout=timeout)  # fmt: skip

    def start(self) -> None:
        common = ["--num-cpus", "4", "--num-gpus", "1", "--disable-usage-stats"]
        # Two nodes on one host: each node's own services need ports of their own (on
        # separate machines the defaults would do); Ray takes the rest at random.
        self.ray_ports = {
            node: [arg for flag in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                                    "--runtime-env-agent-port", "--metrics-export-port",
                                    "--ray-client-server-port")
                   for arg in (flag, str(free_port()))]
            for node in ("head", "second")
        }  # fmt: skip
        self.ray("start", "--head", "--port", str(self.gcs_port), "--temp-dir", self.temp_dir,
                 "--dashboard-host", "127.0.0.1", "--dashboard-port", str(self.dashboard_port),
                 "--resources", json.dumps({"node_head": 1}), *common,
                 *self.ray_ports["head"])  # fmt: skip
        address = f"{self.node_ip()}:{self.gcs_port}"
        self.ray("start", "--address", address, "--resources", json.dumps({"node_b": 1}), *common,
                 *self.ray_ports["second"])  # fmt: skip
        deadline = time.monotonic() + 60
        while len(self.alive_nodes()) < 2:
            assert time.monotonic() < deadline, "the second node did not join"
            time.sleep(1)
        # Jobs are taken once the head's agent is up ("No available agent to submit job,
        # please try again later" until then), as after `ray up`.
        deadline = time.monotonic() + 180
        while self.ray("job", "submit", "--address", self.dashboard, "--", "true",
                       check=False).returncode != 0:  # fmt: skip
            assert time.monotonic() < deadline, "the cluster takes no jobs"
            time.sleep(2)

    def node_ip(self) -> str:
        """The address the head's GCS was started on (Ray picks the host's address)."""
        for pid in processes_mentioning(self.temp_dir):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            for part in command:
                if part.startswith(b"--node-ip-address="):
                    return part.split(b"=", 1)[1].decode()
        raise AssertionError("no Ray process of this cluster names its address")

    def alive_nodes(self) -> dict[str, dict]:
        """node id -> its record, for the nodes alive now."""
        listed = self.ray("list", "nodes", "--address", self.dashboard, "--format", "json",
                          check=False)  # fmt: skip
        if listed.returncode != 0:
            return {}
        nodes = json.loads(listed.stdout)
        return {n["node_id"]: n for n in nodes if n["state"] == "ALIVE"}

    def node_with(self, resource: str) -> str:
        for node_id, node in self.alive_nodes().items():
            if resource in node["resources_total"]:
                return node_id
        raise AssertionError(f"no alive node holds {resource}")

    def raylet_pid(self, node_id: str) -> int:
        (pid,) = [p for p in processes_mentioning(f"--node_id={node_id}")
                  if "raylet" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
                  .split("\0")[0]]  # fmt: skip
        return pid

    def stop(self) -> None:
        """Kill every process of this cluster (found by its temporary folder), not other
        Ray instances on the machine."""
        for _ in range(3):
            pids = [p for p in processes_mentioning(self.temp_dir) if p != os.getpid()]
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                    os.kill(pid, signal.SIGKILL)
            time.sleep(1)


@pytest.fixture
def cluster():
    temp_dir = tempfile.mkdtemp(prefix="rc", dir="/tmp")  # short: Ray's socket paths
    started = Cluster(temp_dir)
    try:
        started.start()
        yield started
    finally:
        started.stop()


def reported_epochs(experiment: Path) -> list[dict]:
    """Every report the driver has written so far (each trial's result.json)."""
    reports = []
    for path in experiment.glob("*/result.json"):
        for line in path.read_text().splitlines():
            try:
                reports.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written
                continue
    return reports


def test_a_search_submitted_as_a_job_survives_losing_a_node(cluster, tmp_path):
    manifest = write_example_dataset(tmp_path / "data")
    storage, name = tmp_path / "runs", "cluster-search"
    head, second = cluster.node_with("node_head"), cluster.node_with("node_b")
    runtime_env = {"env_vars": {"POLARMAP_CACHE": str(tmp_path / "cache"),
                                "POLARMAP_FROZEN": str(tmp_path / "frozen")}}  # fmt: skip
    command = [
        POLARMAP, "search", "run", "--data", str(manifest), "--space", "tiny",
        "--backbones", "test_resnet", "--modes", "stress", "--samples", str(TRIALS),
        "--warmup-epochs", str(EPOCHS[0]), "--finetune-epochs", str(EPOCHS[1]),
        "--gpus-per-trial", str(GPUS_PER_TRIAL), "--cpus-per-trial", "0.5", "--threads", "1",
        "--max-failures", "3", "--address", "auto", "--storage", str(storage),
        "--name", name, "--quiet",
    ]  # fmt: skip
    job = subprocess.Popen(
        [RAY, "job", "submit", "--address", cluster.dashboard, "--submission-id", name,
         "--runtime-env-json", json.dumps(runtime_env), "--", *command],
        env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        # Lose the second node once its trials are under way: an epoch reported from it.
        deadline = time.monotonic() + 240
        while not any(r.get("node_id") == second for r in reported_epochs(storage / name)):
            assert job.poll() is None, job.stdout.read()
            assert time.monotonic() < deadline, "no trial reported from the second node"
            time.sleep(0.2)
        os.kill(cluster.raylet_pid(second), signal.SIGKILL)
        output, _ = job.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        job.kill()
        output, _ = job.communicate()
        pytest.fail(f"the search did not end after the node was lost:\n{output[-4000:]}")
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, output
    status = cluster.ray("job", "status", "--address", cluster.dashboard, name).stdout
    assert f"Job '{name}' succeeded" in status, status
    deadline = time.monotonic() + 90  # it really was lost: the head notices in a while
    while second in cluster.alive_nodes():
        assert time.monotonic() < deadline, "the killed node is still alive"
        time.sleep(2)

    results = storage / "results"
    (search,) = load_searches(results, name).to_dict("records")
    assert search["status"] == "completed"
    trials = load_trials(results, name)
    assert len(trials) == TRIALS and set(trials["status"]) <= {"completed", "stopped"}
    assert set(trials["gpus"]) == {GPUS_PER_TRIAL}
    epochs = load_epochs(results, name)

    # Placement: trials ran on both nodes, never more at once on a node than its one
    # logical GPU allows at half a GPU each.
    assert set(epochs["node_id"]) == {head, second}
    assert _most_at_once(storage / name, head) <= 1 / GPUS_PER_TRIAL
    assert _most_at_once(storage / name, second) <= 1 / GPUS_PER_TRIAL

    # The lost node's trials: restarted from their checkpoints on the head, every epoch
    # once, none lost.
    moved = trials[trials["failures"] > 0]
    assert len(moved) >= 1
    for trial_id in moved["trial_id"]:
        its = epochs[epochs["trial_id"] == trial_id].sort_values("epoch")
        assert list(its["epoch"]) == list(range(1, len(its) + 1))  # no gap, no repeat
        assert its["node_id"].iloc[0] == second and its["node_id"].iloc[-1] == head
        on_head = [r for r in reported_epochs(storage / name)
                   if r["trial_id"] == trial_id and r["node_id"] == head]  # fmt: skip
        assert min(r["resumed_at_epoch"] for r in on_head) >= 1  # from a checkpoint
    assert (trials["epochs_run"] == epochs.groupby("trial_id")["epoch"].max()
            .reindex(trials["trial_id"]).to_numpy()).all()  # fmt: skip


def _most_at_once(experiment: Path, node_id: str) -> int:
    """The most trials that were in an epoch on `node_id` at the same moment, from the
    driver's records (each epoch's end and duration)."""
    intervals = []
    for report in reported_epochs(experiment):
        if report.get("node_id") == node_id:
            end = report["reported_at"]
            intervals.append((end - report["epoch_seconds"], end, report["trial_id"]))
    most = 0
    for start, end, trial in intervals:
        middle = (start + end) / 2
        running = {t for s, e, t in intervals if s <= middle <= e}
        most = max(most, len(running | {trial}))
    return most
