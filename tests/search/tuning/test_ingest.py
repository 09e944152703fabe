"""Re-ingesting a search's folder rebuilds its tables, one row per trial, and the
leaderboard reads them."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from results import load_epochs, load_searches, load_trials
from results.leaderboard import leaderboard
from results.store import ResultStore
from search.tuning.ingest import ingest_experiment

CONFIG = {"backbone": "resnet18", "mode": "dual", "width": 64, "a": 3.5, "warmup_epochs": 2,
          "finetune_epochs": 1}  # fmt: skip


def records(epochs: int) -> list[dict]:
    return [
        {"epoch": e, "stage": "warmup" if e <= 2 else "finetune", "best_epoch": e,
         "best_selection": 0.5 + e / 10, "val_balanced_accuracy": 0.5 + e / 10}
        for e in range(1, epochs + 1)
    ]  # fmt: skip


def write_trial_folder(experiment, trial_id, config, epochs, error=None):
    folder = experiment / f"polarmap_trainable_{trial_id}_1_a=3.5"
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps(config))
    rows = [{**r, "trial_id": trial_id} for r in records(epochs)]
    (folder / "result.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    if error:
        (folder / "error.txt").write_text(f"Traceback ...\n{error}\n")


def test_ingest_twice_leaves_one_row_per_trial_and_ranks_pairs(tmp_path):
    experiment = tmp_path / "runs" / "s1"
    write_trial_folder(experiment, "t1", CONFIG, 3)
    write_trial_folder(experiment, "t2", {**CONFIG, "mode": "stress"}, 2)
    write_trial_folder(experiment, "t3", CONFIG, 1, error="RuntimeError: out of memory")
    assert ingest_experiment(experiment) == 3
    assert ingest_experiment(experiment) == 3
    store = ResultStore(tmp_path / "runs" / "results")
    trials = store.table("trials", search="s1").to_pandas().set_index("trial_id")
    assert len(trials) == 3
    assert trials.loc["t3", "status"] == "errored"
    assert trials.loc["t3", "error"] == "RuntimeError: out of memory"
    board = leaderboard(str(tmp_path / "runs" / "results"))
    assert list(board["mode"]) == ["dual", "stress"]
    assert list(board["trials"]) == [2, 1] and board.loc[0, "trial_id"] == "t1"


def test_the_commands_ingest_and_print_the_leaderboard(tmp_path, capsys):
    from search.cli import main

    experiment = tmp_path / "runs" / "s1"
    write_trial_folder(experiment, "t1", CONFIG, 3)
    assert main(["results", "ingest", str(experiment)]) == 0
    assert "1 trials written" in capsys.readouterr().out
    assert main(["results", "leaderboard", str(tmp_path / "runs" / "results")]) == 0
    out = capsys.readouterr().out
    assert "resnet18" in out and "dual" in out and "0.800" in out


@pytest.mark.slow
def test_lost_tables_are_rebuilt_from_a_real_searchs_folder(finished_search, tmp_path):
    copy = tmp_path / "runs" / finished_search.name  # the search's folder, tables lost
    shutil.copytree(finished_search.experiment, copy)
    assert ingest_experiment(copy) == 6
    rebuilt, original = tmp_path / "runs" / "results", finished_search.results
    (row,) = load_searches(rebuilt).to_dict("records")
    (first,) = load_searches(original).to_dict("records")
    assert row["status"] == "ingested" and first["status"] == "completed"
    for column in ("space_digest", "data_fingerprint", "test_fingerprint", "started", "split"):
        assert row[column] == first[column], column
    trials, before = load_trials(rebuilt), load_trials(original)
    assert row["ended"] == trials["ended"].max()
    columns = [
        "trial_id", "status", "epochs_run", "best_selection", "device", "gpus", "node_id",
        "failures",
    ]  # fmt: skip
    pd.testing.assert_frame_equal(trials[columns], before[columns])
    assert len(load_epochs(rebuilt)) == len(load_epochs(original))


def _trial_folder(tmp_path, result_epochs, logged_epochs):
    from search.tuning.ray_folders import trial_folders
    from trainables.report_log import REPORTS_FILE

    folder = tmp_path / "experiment" / "polarmap_trainable_abc12345_1_a=3.5"
    (folder / "checkpoint_000001").mkdir(parents=True)
    (folder / "params.json").write_text("{}")
    lines = [json.dumps({"epoch": e, "trial_id": "abc12345"}) for e in result_epochs]
    (folder / "result.json").write_text("".join(f"{line}\n" for line in lines))
    log = [{"epoch": e} for e in logged_epochs]
    (folder / "checkpoint_000001" / REPORTS_FILE).write_text(json.dumps(log))
    return trial_folders(tmp_path / "experiment")[0]


def test_a_checkpoint_log_fills_only_epochs_the_results_passed(tmp_path):
    # Seen in CI: a killed search's trial restarted from scratch (its checkpoint was
    # gone), reported epoch 1 and failed; its stale checkpoint still logged epochs 1-4,
    # and ingest wrote 4 epoch rows where the trial's results had 1.
    stale = _trial_folder(tmp_path / "stale", [1], [1, 2, 3, 4])
    assert sorted({r["epoch"] for r in stale.records()}) == [1]
    # A trial restored from its checkpoint: the log holds the epochs before the restore.
    restored = _trial_folder(tmp_path / "restored", [5, 6], [1, 2, 3, 4])
    assert sorted({r["epoch"] for r in restored.records()}) == [1, 2, 3, 4, 5, 6]
    # Killed before its first result line was written: the log is all there is.
    unreported = _trial_folder(tmp_path / "unreported", [], [1, 2])
    assert sorted({r["epoch"] for r in unreported.records()}) == [1, 2]


def test_a_state_file_cut_short_by_a_kill_is_passed_over(tmp_path, caplog):
    # CI (stop 22): SIGKILL mid-bracket left Ray's experiment state empty; ingest
    # stopped on a JSONDecodeError. The newest readable state is the experiment's state.
    from search.tuning.ray_folders import restart_counts, trials_per_pair, unfinished_trials

    experiment = tmp_path / "s"
    experiment.mkdir()
    trial = json.dumps({"trial_id": "t1", "status": "PAUSED", "config": {"pair": "a/stress"}})
    state = {"trial_data": [[trial, json.dumps({"num_failures": 2})]]}
    (experiment / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps(state))
    (experiment / "experiment_state-2026-01-02_00-00-00.json").write_text("")
    assert restart_counts(experiment) == {"t1": 2}
    assert unfinished_trials(experiment) == {"t1"}
    assert "experiment_state-2026-01-02_00-00-00.json is damaged" in caplog.text
    (experiment / "experiment_state-2026-01-01_00-00-00.json").write_text('{"trial_da')
    assert restart_counts(experiment) == {} and trials_per_pair(experiment) is None


def test_ingest_repairs_the_damaged_files_a_reader_names(tmp_path):
    # Issue 29: a cut-short file was skipped, the leaderboard ranked a pair without its
    # best trial. Now a reader names the file and the ingest command that rewrites it.
    from search.cli import main
    from search.errors import DamagedTable
    from search.layout import SEARCH_RECORD

    experiment = tmp_path / "runs" / "s1"
    write_trial_folder(experiment, "t1", CONFIG, 3)
    write_trial_folder(experiment, "t2", CONFIG, 2)
    row = {"search": "s1", "started": "2026-01-01T00:00:00+00:00", "status": "running"}
    (experiment / SEARCH_RECORD).write_text(json.dumps({"search_row": row}))
    assert ingest_experiment(experiment) == 2
    results = tmp_path / "runs" / "results"
    for damaged in ("trials/search=s1/trial-t1.parquet", "searches/search=s1/search.parquet"):
        path = results / damaged
        path.write_bytes(path.read_bytes()[:40])
    command = f"polarmap results ingest {experiment}"
    for read, damaged in ((leaderboard, "trial-t1"), (load_searches, "search")):
        with pytest.raises(DamagedTable, match=rf"{damaged}\.parquet") as caught:
            read(str(results))
        assert command in str(caught.value)
    assert main(command.split()[1:]) == 0
    assert list(leaderboard(str(results))["trial_id"]) == ["t1"]  # the best of the pair
    assert list(load_searches(results)["status"]) == ["ingested"]
