"""`polarmap search run|resume` and `polarmap spaces` as a user runs them: problems listed
before Ray starts, a real search end to end, a killed driver resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from results import load_trials
from results.store import ResultStore
from search.cli import main

SMALL = [
    "--space", "tiny", "--backbones", "test_resnet", "--split", "50/25/25", "--quiet",
]  # fmt: skip


def trial_epochs(experiment: Path) -> dict[str, list[int]]:
    """Every epoch row each trial wrote, in order, from Ray's result files."""
    rows = {}
    for result in experiment.glob("*/result.json"):
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        rows[result.parent.name] = [int(r["epoch"]) for r in lines]
    return rows


def stored_epochs(store: ResultStore, search: str) -> dict[str, list[int]]:
    """Every epoch row of each trial in the result tables, in order."""
    table = store.table("epochs", search=search).to_pandas().sort_values(["trial_id", "epoch"])
    return {trial: list(map(int, rows)) for trial, rows in table.groupby("trial_id")["epoch"]}


def test_spaces_are_listed_and_shown(capsys):
    assert main(["spaces", "list"]) == 0
    listed = capsys.readouterr().out
    assert "paper-binary" in listed and "paper-triad" in listed and "demo" in listed
    assert main(["spaces", "show", "paper-binary"]) == 0
    shown = capsys.readouterr().out
    assert "resnetv2_152x2_bit" in shown and "a           3 .. 4" in shown
    with pytest.raises(SystemExit) as exited:
        main(["spaces", "show", "nope"])
    assert exited.value.code == 2


def test_bad_arguments_fail_before_ray_starts_listing_every_problem(manifest, tmp_path, capsys):
    import ray

    args = [
        "search", "run", "--data", str(manifest), "--space", "tiny",
        "--backbones", "test_resnet,no_such_net", "--modes", "stress,sideways",
        "--outer-parallel", "2", "--cpus-per-trial", "999", "--storage", str(tmp_path / "runs"),
    ]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    for expected in (
        "no_such_net", "needs view 'sideways'", "outer parallel: only a nested run",
        "cpus per trial 999",
    ):  # fmt: skip
        assert expected in err, expected
    assert "4 problem(s)" in err
    assert not ray.is_initialized()
    assert not (tmp_path / "runs").exists()


def test_an_unknown_space_is_a_usage_error(manifest, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["search", "run", "--data", str(manifest), "--space", "papers"])
    assert exited.value.code == 2
    assert "known: demo, paper-binary, paper-triad" in capsys.readouterr().err


def test_data_problems_exit_1_without_a_usage_message(manifest, tmp_path, capsys):
    """The same status as a failed data check, and the problems without 17 lines of
    usage before them; problems with the options stay usage errors (2)."""
    args = ["search", "run", "--data", str(manifest), *SMALL, "--split", "98/1/1"]
    assert main([*args, "--storage", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "data: " in err and "too few for a stratified" in err
    assert "usage:" not in err
    assert not (tmp_path / "runs").exists()


def test_an_interrupted_search_exits_130(manifest, tmp_path, monkeypatch):
    """130, as shells report Ctrl-C, so `search run ... && polarmap finalize ...` stops."""
    from search.tuning import runner

    monkeypatch.setattr(runner, "run_search", lambda *a, **k: runner.SearchRun(None, "interrupted"))
    args = ["search", "run", "--data", str(manifest), *SMALL, "--storage", str(tmp_path)]
    assert main(args) == 130


def test_ctrl_c_outside_ray_exits_130(manifest, tmp_path, monkeypatch, capsys):
    from search.commands import search as search_command

    def pressed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(search_command, "prepare_search", pressed)  # while cleaning maps
    args = ["search", "run", "--data", str(manifest), *SMALL, "--storage", str(tmp_path)]
    assert main(args) == 130
    assert "interrupted" in capsys.readouterr().err


def test_the_dry_run_plans_and_starts_nothing(manifest, tmp_path, capsys):
    import ray

    args = ["search", "run", "--data", str(manifest), *SMALL, "--modes", "stress,dual"]
    assert main([*args, "--storage", str(tmp_path / "runs"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 pairs x 6 trials = 12 trials" in out
    assert "test_resnet/stress, test_resnet/dual" in out
    assert "6 trials: 6 to 6* -> 2 to 18* (4 stopped early)" in out
    assert "epoch budget: at most 60 epochs per pair" in out  # 6 x 6 + 2 x 12
    assert "time estimate" in out and "test_resnet: frozen pass" in out
    assert not ray.is_initialized() and not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_search_runs_end_to_end_and_prints_its_leaderboard(finished_search):
    out, storage, name = finished_search.out, finished_search.storage, finished_search.name
    board = out[out.index("leaderboard") :]
    assert "test_resnet/stress" in board and "test_resnet/dual" in board
    epochs = trial_epochs(finished_search.experiment)
    assert len(epochs) == 6
    for rows in epochs.values():
        assert rows == list(range(1, len(rows) + 1)) and rows[-1] <= 3
    store = ResultStore(finished_search.results)  # the result tables, one row per trial
    trials = store.table("trials", search=name).to_pandas()
    assert len(trials) == 6 and set(trials["mode"]) == {"stress", "dual"}
    assert set(trials["status"]) <= {"completed", "stopped"}
    assert store.table("epochs", search=name).num_rows == sum(map(len, epochs.values()))
    search_row = store.table("searches", search=name).to_pylist()[0]
    assert search_row["status"] == "completed" and search_row["data_fingerprint"]
    record = json.loads((storage / name / "polarmap-search.json").read_text())
    assert record["space_name"] == "tiny" and record["settings"]["name"] == name
    assert record["provenance"]["libraries"]["ray"]


def files_and_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def still(folder: Path, quiet_s: float = 5.0, limit_s: float = 90.0) -> dict[str, bytes]:
    """`folder`'s files once nothing has changed them for `quiet_s`: a Ray worker of a
    killed driver, outside its process group, can finish writing a checkpoint after it."""
    deadline, seen = time.monotonic() + limit_s, files_and_bytes(folder)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = files_and_bytes(folder)
        if now == seen:
            return now
        seen = now
    raise AssertionError(f"{folder} still changed {limit_s:g} s after the search was killed")


@pytest.mark.slow
@pytest.mark.alone  # kills at a chosen moment, within a deadline
def test_a_killed_search_moved_elsewhere_resumes_there_every_trial_exactly_once(
    manifest, tmp_path, monkeypatch
):
    """Killed, its storage moved to another place, resumed from a third working
    directory by a relative path: the search goes on where it is now, and writes nothing
    where it was (Ray pickles the storage it started in)."""
    started_in, name = tmp_path / "started", "killed"
    started_in.mkdir()
    monkeypatch.chdir(started_in)  # relative --data and --storage, as users type them
    data = os.path.relpath(manifest, started_in)
    command = [
        sys.executable, "-m", "search", "search", "run", "--data", data, *SMALL,
        "--modes", "stress", "--samples", "6", "--warmup-epochs", "3", "--finetune-epochs",
        "6", "--storage", "runs", "--name", name, "--mlflow", str(tmp_path / "mlflow"),
    ]  # fmt: skip
    driver = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    experiment = started_in / "runs" / name
    store = ResultStore(started_in / "runs" / "results")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # kill it once a trial has landed in the tables
        if (experiment / "polarmap-search.json").exists() and store.table(
            "trials", search=name
        ).num_rows:
            break
        time.sleep(0.5)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started
    driver.wait()
    still(started_in / "runs")  # the killed search's last writes have landed
    before = trial_epochs(experiment)
    kept = set(store.table("trials", search=name)["trial_id"].to_pylist())
    finished_before = {t for t in before if t.split("_")[2] in kept}
    assert kept and len(finished_before) == len(kept) < 6  # finished trials were kept

    moved = tmp_path / "elsewhere" / "runs"  # the storage moved, the old place kept aside
    shutil.copytree(started_in / "runs", moved, symlinks=True)
    old_place = started_in.rename(tmp_path / "old-place")
    untouched = files_and_bytes(old_place)
    third = tmp_path / "third"
    third.mkdir()
    monkeypatch.chdir(third)
    assert main(["search", "resume", os.path.relpath(moved / name), "--quiet"]) == 0
    assert not started_in.exists() and files_and_bytes(old_place) == untouched
    experiment, store = moved / name, ResultStore(moved / "results")
    assert store.table("searches", search=name).to_pylist()[0]["status"] == "completed"
    after = trial_epochs(experiment)
    assert len(after) == 6  # every trial, none lost, none added
    assert store.table("trials", search=name).num_rows == 6  # one row each, never two
    recorded = store.table("trials", search=name).to_pandas().set_index("trial_id")
    recorded_epochs = stored_epochs(store, name)
    assert main(["results", "ingest", str(experiment)]) == 0  # rebuilt: the same rows
    ingested = store.table("trials", search=name).to_pandas().set_index("trial_id")
    assert len(ingested) == 6 and stored_epochs(store, name) == recorded_epochs
    columns = ["status", "epochs_run", "best_epoch", "best_selection", "width", "a"]
    assert ingested.loc[recorded.index, columns].equals(recorded[columns])
    for trial in finished_before:  # finished trials are not run again
        assert after[trial] == before[trial]
    for trial, rows in after.items():  # paused trials went on from their checkpoints
        assert rows[: len(before.get(trial, []))] == before.get(trial, [])
        # The kill can take the line of the epoch a trial had just checkpointed out of
        # Ray's result file; the tables keep it (from the checkpoint's log): every epoch once.
        kept_rows = recorded_epochs[trial.split("_")[2]]
        assert kept_rows == list(range(1, len(kept_rows) + 1)), (trial, rows, kept_rows)
        assert set(rows) <= set(kept_rows) and kept_rows[-1] == rows[-1] <= 9
    state = json.loads(
        max(experiment.glob("experiment_state-*.json")).read_text()
    )  # fmt: skip
    assert state  # Ray's own record of the experiment survived the kill
    # MLflow (the store the search started with): the same runs went on, each epoch once
    runs = mlflow_runs(tmp_path / "mlflow" / "mlflow.db", name)
    assert sorted(runs) == sorted(
        ["search", "pair:test_resnet/stress", *(f"trial:{t}" for t in recorded.index)]
    )
    assert {run.info.status for run in runs.values()} == {"FINISHED"}
    for trial_id, epochs in recorded_epochs.items():
        logged = mlflow_steps(tmp_path / "mlflow" / "mlflow.db", runs[f"trial:{trial_id}"])
        assert logged == epochs, (trial_id, logged, epochs)  # no gap, no twin


def mlflow_runs(store: Path, search: str) -> dict:
    """A search's MLflow runs by key; fails on a key held by two runs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("polarmap-search").experiment_id
    found = client.search_runs([experiment], f"tags.`polarmap.search` = '{search}'")
    keys = [run.data.tags["polarmap.key"] for run in found]
    assert len(keys) == len(set(keys)), keys
    return dict(zip(keys, found, strict=True))


def mlflow_steps(store: Path, run) -> list[int]:
    """The epochs a trial's run holds its training loss at, in order, repeats kept."""
    from mlflow.tracking import MlflowClient

    history = MlflowClient(f"sqlite:///{store}").get_metric_history(run.info.run_id, "train_loss")
    return sorted(m.step for m in history)


@pytest.mark.slow
def test_experiment_state_can_live_on_s3(manifest, s3_storage, capsys):
    import pyarrow.fs as pafs

    from search.tuning.record import SETTINGS_FILE, load_settings

    args = ["search", "run", "--data", str(manifest), *SMALL, "--modes", "stress"]
    args += ["--samples", "2", "--warmup-epochs", "1", "--finetune-epochs", "1"]
    assert main([*args, "--storage", s3_storage, "--name", "on-s3"]) == 0
    assert "leaderboard" in capsys.readouterr().out
    fs, root = pafs.FileSystem.from_uri(s3_storage)
    listed = fs.get_file_info(pafs.FileSelector(f"{root}/on-s3", recursive=True))
    names = [info.base_name for info in listed]
    assert SETTINGS_FILE in names and "tuner.pkl" in names
    assert names.count("result.json") == 2  # one per trial
    base, _, query = s3_storage.partition("?")
    assert load_settings(f"{base}/on-s3?{query}").name == "on-s3"
    trials = load_trials(f"{base}/results?{query}", "on-s3")  # the tables beside it
    assert len(trials) == 2 and set(trials["status"]) <= {"completed", "stopped"}


def test_search_run_shows_the_data_checks_warnings(edit_manifest, tmp_path, capsys):
    manifest = edit_manifest(lambda rows: rows[12].__setitem__(2, rows[11][2]))  # stress
    args = ["search", "run", "--data", str(manifest), *SMALL, "--modes", "stress"]
    assert main([*args, "--storage", str(tmp_path / "runs"), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "warning: data: " in err and "row 13: the 'stress' image is byte-identical" in err


@pytest.mark.parametrize("where", ["a file", "under a file", "refused"])
def test_a_storage_that_cannot_be_written_is_refused_before_any_compute(
    manifest, tmp_path, monkeypatch, capsys, where
):
    """Found by a probe before the cleaning and Ray's start, listed as a usage error; not
    by Ray, after the cleaning, as a traceback with status 1. (Read-only folders do not
    stop root, which the tests may run as: a refused write is simulated.)"""
    import ray

    from search import files
    from search.commands import search as search_command

    taken = tmp_path / "taken"
    taken.write_text("x")
    storage = {"a file": taken, "under a file": taken / "runs", "refused": tmp_path / "ro"}[where]
    expected = {
        "a file": f"storage {taken}: is a file, not a folder",
        "under a file": f"storage {storage}: cannot make the folder: {taken} is a file",
        "refused": f"storage {storage}: cannot write there (Permission denied)",
    }[where]
    if where == "refused":

        def refuse(path, data):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(files, "write_atomic", refuse)

    def cleaned(*args, **kwargs):
        raise AssertionError("the maps were cleaned before the storage was checked")

    monkeypatch.setattr(search_command, "prepare_search", cleaned)
    args = ["search", "run", "--data", str(manifest), *SMALL, "--storage", str(storage)]
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "usage:" in err and "Traceback" not in err
    assert not ray.is_initialized()
    assert not (tmp_path / "ro").exists()


def test_sigterm_outside_ray_exits_143(manifest, tmp_path, monkeypatch, capsys):
    from search.commands import search as search_command

    def preempted(*args, **kwargs):  # while cleaning maps
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("SIGTERM did not stop the command")

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(search_command, "prepare_search", preempted)
    args = ["search", "run", "--data", str(manifest), *SMALL, "--storage", str(tmp_path)]
    assert main(args) == 143
    assert "terminated (SIGTERM)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before  # the command's handler is gone


def test_a_search_stopped_by_sigterm_exits_143(manifest, tmp_path, monkeypatch):
    from search.tuning import runner

    def preempted(*args, **kwargs):
        return runner.SearchRun(None, "interrupted", "SIGTERM")

    monkeypatch.setattr(runner, "run_search", preempted)
    args = ["search", "run", "--data", str(manifest), *SMALL, "--storage", str(tmp_path)]
    assert main(args) == 143
