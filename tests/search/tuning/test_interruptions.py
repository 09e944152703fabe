"""A search interrupted at any moment, by Ctrl-C or by killing its driver and Ray, is
finished by one `resume`: every trial exactly once, its epochs 1..n with no gap or
repeat, the searches row `completed`. The search is `interrupted_search.py`, run as its
own process: one pair, six trials, one at a time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from results.store import ResultStore
from search.tuning.ingest import ingest_experiment

pytestmark = pytest.mark.slow

DRIVER = Path(__file__).with_name("interrupted_search.py")
TRIALS = 6


def statuses(folder: Path) -> dict[str, str]:
    """Trial id -> Ray status, as the driver last wrote them (in creation order)."""
    try:
        return json.loads((folder / "statuses.json").read_text())
    except (OSError, ValueError):
        return {}


def reported(folder: Path) -> dict[str, int]:
    """Trial folder name -> epochs in its result.json so far."""
    return {
        path.parent.name: len(path.read_text().splitlines())
        for path in (folder / "runs" / "s").glob("*/result.json")
    }


def before_the_first_report(folder: Path) -> bool:
    started = (folder / "runs" / "s" / "polarmap-search.json").exists() and statuses(folder)
    return bool(started) and not any(reported(folder).values())


def mid_bracket(folder: Path) -> bool:
    return sum(reported(folder).values()) >= 4 and "TERMINATED" not in statuses(folder).values()


def at_a_rung_with_trials_paused(folder: Path) -> bool:
    """The full-budget bracket (the first three trials): two paused at its last epoch for
    the third, which runs and has reported (so a resume runs it first)."""
    first = list(statuses(folder).items())[:3]
    if sorted(status for _, status in first) != ["PAUSED", "PAUSED", "RUNNING"]:
        return False
    running = next(trial for trial, status in first if status == "RUNNING")
    return any(running in name and count >= 2 for name, count in reported(folder).items())


def during_the_last_trials(folder: Path) -> bool:
    return 3 <= list(statuses(folder).values()).count("TERMINATED") < TRIALS


MOMENTS = [before_the_first_report, mid_bracket, at_a_rung_with_trials_paused,
           during_the_last_trials]  # fmt: skip


def driver(folder: Path, action: str) -> subprocess.Popen:
    env = {**os.environ, "POLARMAP_FROZEN": str(folder / "frozen")}
    log = open(folder / f"{action}.log", "w")  # noqa: SIM115 - the process writes it
    return subprocess.Popen(
        [sys.executable, str(DRIVER), str(folder), action],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("moment", MOMENTS, ids=lambda m: m.__name__)
def test_one_resume_finishes_a_search_interrupted_at_any_moment(tmp_path, moment, how):
    run = driver(tmp_path, "run")
    deadline = time.monotonic() + 120
    while not moment(tmp_path):
        assert run.poll() is None and time.monotonic() < deadline, (
            f"the search never reached the moment {moment.__name__}:\n"
            + (tmp_path / "run.log").read_text()[-3000:]
        )
        time.sleep(0.05)
    if how == "SIGINT":  # Ctrl-C: Ray Tune stops gracefully and saves its state
        run.send_signal(signal.SIGINT)
    else:  # the driver and the Ray it started, at once
        os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    store = ResultStore(tmp_path / "runs" / "results")
    (row,) = store.table("searches", search="s").to_pylist()
    assert row["status"] == ("interrupted" if how == "SIGINT" else "running")  # killed: no end
    if list((tmp_path / "runs" / "s").glob("*/params.json")):  # rebuilt now, the tables
        ingest_experiment(tmp_path / "runs" / "s")  # never call a cut-off trial stopped
        early = store.table("trials", search="s").to_pandas().query("epochs_run < 3")
        assert "stopped" not in set(early["status"])  # Hyperband's first rung is at 3

    resume = driver(tmp_path, "resume")
    try:
        assert resume.wait(timeout=150) == 0, (tmp_path / "resume.log").read_text()[-3000:]
    except subprocess.TimeoutExpired:
        os.killpg(resume.pid, signal.SIGKILL)
        pytest.fail(
            "resume did not finish: " + json.dumps(statuses(tmp_path))
            + (tmp_path / "resume.log").read_text()[-3000:]
        )  # fmt: skip

    trials = store.table("trials", search="s").to_pandas()
    assert sorted(trials["trial_id"]) == sorted(set(trials["trial_id"])) and len(trials) == TRIALS
    assert len(list((tmp_path / "runs" / "s").glob("*/params.json"))) == TRIALS
    assert set(trials["status"]) <= {"completed", "stopped"}
    epochs = store.table("epochs", search="s").to_pandas()
    for trial_id, rows in epochs.groupby("trial_id"):
        run_epochs = sorted(rows["epoch"])
        assert run_epochs == list(range(1, len(run_epochs) + 1)), (trial_id, run_epochs)
        ran = trials.set_index("trial_id").loc[trial_id, "epochs_run"]
        assert len(run_epochs) == ran and ran in (3, 9)
    (search_row,) = store.table("searches", search="s").to_pylist()
    assert search_row["status"] == "completed"
