"""A search interrupted at any moment, by Ctrl-C or by killing its driver and Ray, is
finished by one `resume`: every trial exactly once, its epochs 1..n with no gap or
repeat, the searches row `completed`. The search is `interrupted_search.py`, run as its
own process: one pair, six trials, one at a time; two such searches run side by side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from results.store import ResultStore
from search.tuning.ingest import ingest_experiment

pytestmark = [pytest.mark.slow, pytest.mark.alone]

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
    """The first three trials: two paused at the rung (3 epochs) for the others, the
    third running and reported (so a resume runs it first)."""
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


HOWS = ("SIGINT", "SIGKILL")


@dataclass
class Interrupted:
    """What one interruption and its resume left: how the search ended each time, and
    the tables after the resume."""

    folder: Path
    stopped_row: dict
    cut_off_statuses: set[str]  # of trials below the first rung, in a table rebuilt then
    resume_exit: int | str
    trials: pd.DataFrame
    epochs: pd.DataFrame
    row: dict


def interrupt_and_resume(folder: Path, moment, how: str) -> Interrupted:
    """Run the search, stop it at `moment` by `how`, rebuild its tables, resume it once."""
    run = driver(folder, "run")
    deadline = time.monotonic() + 150
    while not moment(folder):
        if run.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(
                f"the search never reached the moment {moment.__name__}:\n"
                + (folder / "run.log").read_text()[-3000:]
            )
        time.sleep(0.05)
    if how == "SIGINT":  # Ctrl-C: Ray Tune stops gracefully and saves its state
        run.send_signal(signal.SIGINT)
    else:  # the driver and the Ray it started, at once
        os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    store = ResultStore(folder / "runs" / "results")
    (stopped_row,) = store.table("searches", search="s").to_pylist()
    cut_off: set[str] = set()
    if list((folder / "runs" / "s").glob("*/params.json")):  # rebuilt now, the tables
        ingest_experiment(folder / "runs" / "s")  # never call a cut-off trial stopped
        early = store.table("trials", search="s").to_pandas().query("epochs_run < 3")
        cut_off = set(early["status"])

    resume = driver(folder, "resume")
    try:
        exit_status: int | str = resume.wait(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(resume.pid, signal.SIGKILL)
        exit_status = "did not finish: " + json.dumps(statuses(folder))
    (row,) = store.table("searches", search="s").to_pylist()
    return Interrupted(
        folder, stopped_row, cut_off, exit_status,
        store.table("trials", search="s").to_pandas(),
        store.table("epochs", search="s").to_pandas(), row,
    )  # fmt: skip


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> dict:
    """Every moment and signal, two searches at a time (each runs one trial at a time):
    (moment name, how) -> what it left, or the exception that stopped it."""
    cases = [(moment, how) for moment in MOMENTS for how in HOWS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            (moment.__name__, how): pool.submit(
                interrupt_and_resume, tmp_path_factory.mktemp(moment.__name__), moment, how
            )
            for moment, how in cases
        }
    return {case: future.exception() or future.result() for case, future in futures.items()}


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("moment", [m.__name__ for m in MOMENTS])
def test_one_resume_finishes_a_search_interrupted_at_any_moment(interrupted, moment, how):
    outcome = interrupted[moment, how]
    if isinstance(outcome, BaseException):
        raise outcome
    folder = outcome.folder
    # interrupted means interrupted: Ctrl-C says so; a killed driver leaves no end
    assert outcome.stopped_row["status"] == ("interrupted" if how == "SIGINT" else "running")
    assert "stopped" not in outcome.cut_off_statuses  # Hyperband's first rung is at 3
    assert outcome.resume_exit == 0, (folder / "resume.log").read_text()[-3000:]

    trials = outcome.trials
    assert sorted(trials["trial_id"]) == sorted(set(trials["trial_id"])) and len(trials) == TRIALS
    assert len(list((folder / "runs" / "s").glob("*/params.json"))) == TRIALS
    assert set(trials["status"]) <= {"completed", "stopped"}
    for trial_id, rows in outcome.epochs.groupby("trial_id"):
        run_epochs = sorted(rows["epoch"])
        assert run_epochs == list(range(1, len(run_epochs) + 1)), (trial_id, run_epochs)
        ran = trials.set_index("trial_id").loc[trial_id, "epochs_run"]
        # a rung, or the end; a trial paused at the rung when the search stopped runs one
        # epoch more after the resume before its fresh bracket judges it (Ray's Hyperband
        # keeps no bracket across a restore)
        assert len(run_epochs) == ran and ran in (3, 4, 9)
    assert outcome.row["status"] == "completed"
    assert outcome.row["started"] == outcome.stopped_row["started"]  # also when anew
