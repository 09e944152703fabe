"""The recorder writes a trial's rows the moment it ends, and a table it cannot write
costs a warning that says how to rebuild it, not the search."""

from __future__ import annotations

from types import SimpleNamespace

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
