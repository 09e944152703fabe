"""The recorder writes a trial's rows the moment it ends, and a table it cannot write
costs a warning that says how to rebuild it, not the search."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from results.store import ResultStore
from search.tuning.recorder import ResultsRecorder


def ended_trial(recorder, trial, records, error_file=None):
    for number, record in enumerate(records, start=1):
        recorder.on_trial_result(number, [trial], trial, record)
    if error_file is None:
        recorder.on_trial_complete(len(records), [trial], trial)
    else:
        trial.error_file = str(error_file)
        recorder.on_trial_error(len(records), [trial], trial)


def a_trial(tmp_path, trial_id, config):
    return SimpleNamespace(
        trial_id=trial_id, config=config, local_path=str(tmp_path / trial_id), error_file=None,
        checkpoint=None,
        num_failures=1 if trial_id == "t2" else 0,
    )  # fmt: skip


def test_a_trial_lands_when_it_ends(tmp_path, config, make_records):
    recorder = ResultsRecorder(str(tmp_path / "results"), "s1")
    ended_trial(recorder, a_trial(tmp_path, "t1", config), make_records(3))
    error = tmp_path / "error.txt"
    error.write_text("Traceback (most recent call last):\nRuntimeError: CUDA out of memory\n")
    ended_trial(recorder, a_trial(tmp_path, "t2", config), make_records(1), error)
    trials = ResultStore(tmp_path / "results").table("trials", "s1").to_pandas()
    trials = trials.set_index("trial_id")
    assert trials.loc["t1", "status"] == "completed" and trials.loc["t1", "epochs_run"] == 3
    assert trials.loc["t2", "status"] == "errored"
    assert trials.loc["t2", "error"] == "RuntimeError: CUDA out of memory"
    assert list(trials["failures"]) == [0, 1]  # Ray's restarts after failures, as it counted


def test_a_table_it_cannot_write_is_a_warning_not_a_crash(tmp_path, config, make_records, capsys):
    blocked = tmp_path / "results"
    blocked.write_text("a file where the tables' folder should be")
    recorder = ResultsRecorder(str(blocked), "s1")
    ended_trial(recorder, a_trial(tmp_path, "t1", config), make_records(3))
    err = capsys.readouterr().err
    assert "warning: trial t1 could not be written to the result tables" in err
    assert str(blocked) in err and "polarmap results ingest" in err
    # the next trial is still tried once the folder can be written
    blocked.unlink()
    ended_trial(recorder, a_trial(tmp_path, "t2", config), make_records(2))
    assert ResultStore(blocked).table("trials").num_rows == 1


def test_a_torn_last_line_of_result_json_is_left_out_not_a_crash(tmp_path, config, make_records):
    """A full disk (or a kill) while Ray appended a report tears result.json's last line:
    the trial is recorded from the whole lines, the checkpoint's log keeping that epoch;
    before, the torn line raised in the driver, outside the recorder's error handling."""
    import json

    recorder = ResultsRecorder(str(tmp_path / "results"), "s1")
    trial = a_trial(tmp_path, "t1", config)
    folder = tmp_path / "t1"
    folder.mkdir()
    records = make_records(3)
    whole = "".join(json.dumps(r) + "\n" for r in records[:2])
    (folder / "result.json").write_text(whole + json.dumps(records[2])[:40])
    recorder.on_trial_complete(3, [trial], trial)
    epochs = ResultStore(tmp_path / "results").table("epochs", "s1").to_pandas()
    assert sorted(epochs["epoch"]) == [1, 2]


def test_report_lines_leave_out_a_torn_line():
    from trainables.report_log import report_lines

    text = '{"epoch": 1}\n{"epoch": 2, "tr{"epoch": 3}\n{"epoch": 4}\n{"epoch": 5, "va'
    assert report_lines(text.encode()) == [{"epoch": 1}, {"epoch": 4}]
    assert report_lines(b"") == []


@pytest.mark.slow
def test_a_full_storage_stops_the_search_in_one_line_and_resume_keeps_its_trials(
    manifest, tmp_path, monkeypatch, capfd
):
    """No space left for the second trial's rows: the search stops there (no retries that
    cannot succeed), says so in one line naming the storage and what was being written,
    exits 1 with no traceback, and its searches row says interrupted. Once there is space
    again, the resume keeps the trial already recorded (not run again) and finishes,
    writing the rows the full storage refused."""
    import errno
    import json

    from search.cli import main

    storage, name = tmp_path / "runs", "full"
    experiment = storage / name
    write_trial, calls = ResultStore.write_trial, []

    def full_after_one(store, rows):
        calls.append(rows.trial["trial_id"])
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        write_trial(store, rows)

    monkeypatch.setattr(ResultStore, "write_trial", full_after_one)
    args = [
        "search", "run", "--data", str(manifest), "--space", "tiny", "--backbones",
        "test_resnet", "--modes", "stress", "--split", "50/25/25", "--samples", "4",
        "--warmup-epochs", "1", "--finetune-epochs", "1", "--max-concurrent", "2",
        "--storage", str(storage), "--name", name, "--quiet",
    ]  # fmt: skip
    capfd.readouterr()
    assert main(args) == 1
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "No space left on device" in line]
    assert lines == [
        f"storage {storage} is full (No space left on device) while writing the trial rows "
        f"of trial {calls[1]}; the search stops: free space, then polarmap search resume "
        f"{experiment}"
    ]
    assert len(calls) == 2  # stopped at the first: no more tries
    store = ResultStore(storage / "results")
    assert store.table("searches", search=name).to_pylist()[0]["status"] == "interrupted"
    (recorded,) = store.table("trials", search=name)["trial_id"].to_pylist()

    def reports(trial_id):
        (path,) = experiment.glob(f"*_{trial_id}_*/result.json")
        return path.read_text()

    before = reports(recorded)

    monkeypatch.setattr(ResultStore, "write_trial", write_trial)  # space again
    assert main(["search", "resume", str(experiment), "--quiet"]) == 0
    assert store.table("searches", search=name).to_pylist()[0]["status"] == "completed"
    trials = store.table("trials", search=name)["trial_id"].to_pylist()
    assert sorted(trials) == sorted(set(trials)) and len(trials) == 4  # each once, none lost
    assert calls[1] in trials  # the rows the full storage refused, written by the resume
    assert reports(recorded) == before  # the recorded trial did not run again
    epochs = store.table("epochs", search=name).to_pandas()
    for trial_id, rows in epochs.groupby("trial_id")["epoch"]:
        assert sorted(rows) == list(range(1, len(rows) + 1)), trial_id
    assert json.loads(reports(recorded).splitlines()[-1])["trial_id"] == recorded


def test_a_trial_failing_to_copy_its_checkpoint_stops_the_search(tmp_path, config):
    """Ray would retry it, and every retry would meet the full storage again: the search
    stops after the step (Ray Tune's own graceful stop, its SIGUSR1 handler), once."""
    import signal

    recorder = ResultsRecorder(str(tmp_path / "results"), "s1")
    trial = a_trial(tmp_path, "t1", config)
    trial.error_file = str(tmp_path / "error.txt")
    (tmp_path / "error.txt").write_text(
        "Failure # 1 (occurred at 2026-01-01_00-00-00)\nray::ImplicitFunc.train()\n"
        '  File ".../ray/train/_internal/storage.py", line 568, in persist_current_checkpoint\n'
        "OSError: [Errno 28] Error writing bytes to file. Detail: [errno 28] No space left "
        "on device\n"
    )
    stops = []
    before = signal.signal(signal.SIGUSR1, lambda signum, frame: stops.append(signum))
    try:
        recorder.on_trial_recover(1, [trial], trial)
        recorder.on_step_end(1, [trial])
        recorder.on_step_end(2, [trial])
    finally:
        signal.signal(signal.SIGUSR1, before)
    assert stops == [signal.SIGUSR1]
    assert recorder.watch.problem == (
        f"storage {tmp_path} is full (No space left on device) while trial t1 saved its "
        f"checkpoint; the search stops: free space, then polarmap search resume {tmp_path}/s1"
    )
