"""docs/results.md stays true: every column of every table is documented, and its
copy-paste queries and commands run against a real search's tables and agree with the
project's own reading of them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from results import leaderboard, load_trials
from results.schema import SCHEMA_VERSION, TABLES
from search.cli import main

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "results.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_every_column_of_every_table_is_documented():
    text = DOC.read_text()
    for table, columns in TABLES.items():
        section = text[text.index(f"### `{table}`") :]
        section = section[: section.index("\n### ", 1)] if "\n### " in section[1:] else section
        documented = re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.MULTILINE)
        assert documented == [name for name, _ in columns], table


@pytest.fixture(scope="module")
def ran(finished_search, tmp_path_factory):
    """The document's Python blocks run in order in one namespace, from the folder that
    holds `polarmap-runs`, as a reader pasting them would."""
    namespace: dict = {}
    with pytest.MonkeyPatch.context() as env:
        env.chdir(finished_search.root)
        for code in blocks("python"):
            exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def test_the_python_queries_run_and_agree_with_the_project(ran, finished_search):
    results = finished_search.results
    trials = load_trials(results, "my-search")
    board = leaderboard(str(results), "my-search")
    # project API block
    assert len(ran["finished"]) == (trials["status"] != "errored").sum()
    assert set(ran["dual"]["mode"]) == {"dual"}
    assert list(ran["curve"]["epoch"]) == list(range(1, len(ran["curve"]) + 1))
    assert sum(ran["summary"].trials.values()) == len(trials)
    # the held-out predictions give back each trial's validation figures
    by_trial = trials.set_index("trial_id")
    assert set(ran["recomputed"]) == set(trials["trial_id"])
    for trial, value in ran["recomputed"].items():
        assert value == pytest.approx(by_trial.loc[trial, "best_val_balanced_accuracy"])
    for row in ran["held_out_accuracy"].itertuples():
        assert row.accuracy == pytest.approx(by_trial.loc[row.trial_id, "best_val_accuracy"])
    assert set(ran["held_out_accuracy"]["patients"]) == {len(ran["held_out"]) // len(trials)}
    # pandas and pyarrow: the same rows, the schema version in the files
    assert sorted(ran["trials"]["trial_id"]) == sorted(trials["trial_id"])
    assert len(ran["best"]) == len(board)
    epochs = pd.read_parquet(results / "epochs")
    assert len(ran["epochs"]) == len(epochs)
    assert ran["table"].num_rows == (trials["status"] == "completed").sum()
    assert ran["version"] == SCHEMA_VERSION
    # DuckDB: the winners are the leaderboard, the cost adds up, one comparable group
    winners = ran["winners"]
    assert list(winners["trial_id"]) == list(board["trial_id"])
    assert ran["cost"]["trials"].sum() == len(trials)
    assert ran["cost"]["trial_hours"].sum() == pytest.approx(trials["wall_seconds"].sum() / 3600)
    assert [list(s) for s in ran["comparable"]["searches"]] == [["my-search"]]
    # polars: one row per trial and stage reached; a column per class
    assert ran["per_stage"].height == len(epochs[["trial_id", "stage"]].drop_duplicates())
    assert {"Infarction", "Ischemia", "Normal"} <= set(ran["sensitivity"].columns)


def test_the_commands_in_the_document_run(finished_search, monkeypatch, capsys):
    monkeypatch.chdir(finished_search.root)
    commands = [
        line.removeprefix("$ ") for block in blocks("console") for line in block.splitlines()
    ]
    assert any("ingest" in c for c in commands) and any("curves" in c for c in commands)
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "polarmap", command
        assert main(words[1:]) == 0, command
    out = capsys.readouterr().out
    assert "leaderboard" in out and "<- best" in out and "GPU-hours" in out
    assert (finished_search.root / "plots" / "leaderboard-my-search.png").exists()
