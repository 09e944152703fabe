"""Diagnostics go through `logging` to stderr at the level the command line asks for;
what the user asked to see stays on stdout."""

from __future__ import annotations

import logging

import pytest

from search.cli import main
from search.logs import PACKAGES, configure_logging, level_for


def test_levels_follow_verbose_and_quiet():
    assert level_for() == logging.INFO
    assert level_for(verbose=1) == level_for(verbose=2) == logging.DEBUG
    assert level_for(quiet=True) == logging.WARNING


def test_records_reach_stderr_as_polarmap_shows_them(capsys):
    configure_logging(logging.INFO)
    log = logging.getLogger("search.tuning.runner")
    log.debug("hidden detail")
    log.info("note: a note")
    log.warning("trial %s could not be written", "t1")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == ["note: a note", "warning: trial t1 could not be written"]
    configure_logging(logging.DEBUG)
    configure_logging(logging.DEBUG)  # again: one handler, not two
    logging.getLogger("trainables.frozen_store").debug("a detail")
    assert capsys.readouterr().err == "debug: trainables.frozen_store: a detail\n"


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["spaces", "list"], logging.INFO),
        (["-v", "spaces", "list"], logging.DEBUG),
        (["--verbose", "spaces", "list"], logging.DEBUG),
    ],
)
def test_the_command_line_sets_the_level_of_every_package(argv, level, capsys):
    assert main(argv) == 0
    assert "demo" in capsys.readouterr().out  # the listing itself is on stdout
    assert {logging.getLogger(name).level for name in PACKAGES} == {level}


def test_a_commands_quiet_shows_warnings_only(monkeypatch):
    from search.commands import search as search_command

    levels = []

    def run(settings, **options):
        levels.append(logging.getLogger("search").level)
        return 0

    monkeypatch.setattr(search_command, "settings_from_args", lambda args: None)
    monkeypatch.setattr(search_command, "run_settings", run)
    assert main(["search", "run", "--data", "m.csv", "--space", "tiny", "--quiet"]) == 0
    assert main(["search", "run", "--data", "m.csv", "--space", "tiny"]) == 0
    assert levels == [logging.WARNING, logging.INFO]
