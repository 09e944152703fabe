"""A search's record (`polarmap-search.json`): location-free, so a moved folder resumes
where it is from any working directory; the name it claims; the data it started with,
against which a resume is checked. No Ray here."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from search.cli import main
from search.data import SplitSpec, check_dataset
from search.errors import SearchStateError
from search.tuning import SearchSettings
from search.tuning.record import check_same_data, load_settings, write_settings
from spaces import get_space

SPLIT = SplitSpec(0.5, 0.25, 0.25)


def settings_in(storage: Path, data: Path, name: str = "s") -> SearchSettings:
    space = replace(get_space("tiny"), backbones=("test_resnet",), modes=("stress",))
    return SearchSettings(space=space, data=data, name=name, storage=str(storage),
                          split=SPLIT)  # fmt: skip


def recorded(settings: SearchSettings, dataset=None) -> Path:
    row = {"search": settings.name, "status": "interrupted",
           "data_fingerprint": dataset.fingerprint if dataset else None}  # fmt: skip
    write_settings(settings, settings.experiment, row, dataset, new=True)
    return Path(settings.experiment)


def test_a_moved_search_is_read_with_the_storage_it_is_in_now(manifest, tmp_path, monkeypatch):
    first = recorded(settings_in(tmp_path / "a" / "runs", manifest))
    shutil.copytree(first.parent, tmp_path / "b" / "runs")
    elsewhere = tmp_path / "c"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(os.path.join("..", "b", "runs", "s"))
    assert settings.storage == str(tmp_path / "b" / "runs")
    assert settings.results == str(tmp_path / "b" / "runs" / "results")
    assert settings.name == "s" and settings.data == manifest


def test_search_run_records_absolute_paths_given_relative_ones(manifest, monkeypatch):
    from search.cli import build_parser
    from search.commands.search import settings_from_args

    monkeypatch.chdir(manifest.parent)
    args = build_parser().parse_args(
        ["search", "run", "--data", "manifest.csv", "--space", "tiny", "--storage", "runs",
         "--cache", "c"]
    )  # fmt: skip
    settings = settings_from_args(args)
    assert settings.data == manifest and settings.storage == str(manifest.parent / "runs")
    assert settings.cache == manifest.parent / "c"


def test_a_renamed_folder_or_none_at_all_is_refused_saying_why(manifest, tmp_path):
    experiment = recorded(settings_in(tmp_path / "runs", manifest))
    renamed = experiment.rename(experiment.with_name("other"))
    with pytest.raises(SearchStateError, match=r"holds search 's'.*rename the folder back"):
        load_settings(renamed)
    with pytest.raises(SearchStateError, match="no search there"):
        load_settings(tmp_path / "runs" / "nothing")
    (tmp_path / "runs" / "early").mkdir()  # killed before it saved its settings
    with pytest.raises(SearchStateError, match="stopped before it saved its settings"):
        load_settings(tmp_path / "runs" / "early")
    (renamed / "polarmap-search.json").write_text('{"settings": {"na')  # cut short
    with pytest.raises(SearchStateError, match=r"polarmap-search\.json: damaged"):
        load_settings(renamed)


def claim_at_once(settings: SearchSettings, drivers: int) -> list[str]:
    """`drivers` threads claiming the search's name at the same moment: what each got."""
    outcomes: list[str] = []
    go = threading.Barrier(drivers)

    def claim():
        go.wait()
        try:
            recorded(settings)
            outcomes.append("won")
        except SearchStateError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=claim) for _ in range(drivers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_drivers_claiming_one_name_at_once_one_wins(manifest, tmp_path):
    for attempt in range(10):
        outcomes = claim_at_once(settings_in(tmp_path / "runs", manifest, f"race-{attempt}"), 4)
        assert len(outcomes) == 4 and outcomes.count("won") == 1, outcomes
        assert all("already exists" in o for o in outcomes if o != "won")


def test_a_changed_data_set_is_named_patient_by_patient(manifest, edit_manifest, tmp_path):
    settings = settings_in(tmp_path / "runs", manifest)
    before = check_dataset(manifest, split=SPLIT).dataset
    experiment = recorded(settings, before)
    check_same_data(experiment, before, None)  # the same data: nothing to say

    def change(rows):
        rows[1][-2] = "Normal" if rows[1][-2] != "Normal" else "Ischemia"  # P001 relabelled
        del rows[5]  # P005 removed

    edit_manifest(change)
    after = check_dataset(manifest, split=SPLIT).dataset
    with pytest.raises(SearchStateError) as refused:
        check_same_data(experiment, after, None)
    message = str(refused.value)
    assert "1 patient removed (P005)" in message
    assert "1 patient with another label (P001: Infarction -> " in message
    assert "start a new search" in message


def test_resume_refuses_changed_data_before_any_compute(
    manifest, edit_manifest, tmp_path, monkeypatch, capsys
):
    from search.commands import search as search_command

    experiment = recorded(
        settings_in(tmp_path / "runs", manifest), check_dataset(manifest, split=SPLIT).dataset
    )
    edit_manifest(lambda rows: rows.pop())  # the last patient gone

    def cleaning(*args, **kwargs):
        raise AssertionError("maps cleaned for a search that cannot go on")

    monkeypatch.setattr(search_command, "prepare_search", cleaning)
    with pytest.raises(SystemExit) as exited:
        main(["search", "resume", str(experiment)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "data set has changed since search 's' started: 1 patient removed (P040)" in err


def test_resume_names_data_that_moved_and_takes_its_new_place(manifest, tmp_path, capsys):
    experiment = recorded(settings_in(tmp_path / "runs", manifest))
    shutil.move(manifest.parent, tmp_path / "moved")
    with pytest.raises(SystemExit) as exited:
        main(["search", "resume", str(experiment)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"data {manifest}, as the search started, is not there" in err and "--data" in err


def test_search_run_refuses_a_name_its_storage_holds_before_any_compute(
    manifest, tmp_path, monkeypatch, capsys
):
    from search.commands import search as search_command

    recorded(settings_in(tmp_path / "runs", manifest, name="dup"))
    monkeypatch.setattr(search_command, "check_search", lambda *a, **k: pytest.fail("checked"))
    args = ["search", "run", "--data", str(manifest), "--space", "tiny", "--name", "dup",
            "--storage", str(tmp_path / "runs")]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "a search named 'dup' already exists" in err and "(interrupted)" not in err
    assert f"polarmap search resume {tmp_path / 'runs' / 'dup'}" in err
