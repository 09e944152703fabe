"""One error family: every error the packages raise for a user to act on derives from
`search.errors.PolarmapError` (and every guard against the code's own mistakes from
`InternalError`), and the command line shows those as messages, while any other
exception (a bug) shows its traceback, never the usage text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from search.cli import main

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter: importing every module imports Ray (and its gRPC), which is
# not safe to fork after, and the data layer's cleaning pools fork later in this process.
SCAN = """
import importlib, inspect, json, pkgutil
from search.errors import InternalError, PolarmapError
found = []
for package in ("search", "trainables", "spaces", "results"):
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if info.name == "trainables.tune" or info.name.endswith("__main__"):
            continue  # Ray's adapter holds no exception class; __main__ runs the command
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == info.name:
                # a stop the user asked for (SIGTERM) is a KeyboardInterrupt, as Ctrl-C's
                user = issubclass(cls, (PolarmapError, KeyboardInterrupt))
                found.append([cls.__qualname__, user,
                              issubclass(cls, InternalError)])
print(json.dumps(found))
"""


def defined_exceptions() -> list[tuple[str, bool, bool]]:
    """Every exception class the packages define: its name, whether it is a
    PolarmapError, whether an InternalError."""
    run = subprocess.run([sys.executable, "-c", SCAN], capture_output=True, text=True,
                         cwd=ROOT, check=True)  # fmt: skip
    return [tuple(row) for row in json.loads(run.stdout.splitlines()[-1])]


def test_every_exception_class_of_the_packages_is_in_the_family():
    classes = defined_exceptions()
    assert len(classes) >= 10
    assert [name for name, user, internal in classes if not (user or internal)] == []
    assert [name for name, user, internal in classes if user and internal] == []


def test_a_bug_during_finalize_shows_its_traceback_not_the_usage(monkeypatch, capsys):
    import search.finalize.nested

    def broken(settings):
        raise ValueError("a slip deep in a retrain")

    monkeypatch.setattr(search.finalize.nested, "finalize_any", broken)
    assert main(["finalize", "anywhere"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "a slip deep in a retrain" in err
    assert "a bug rather than a problem with its input" in err
    assert "usage:" not in err


def test_a_users_problem_is_its_message_with_its_exit_status(monkeypatch, capsys):
    import search.finalize.nested
    from search.errors import DataError, SearchStateError

    def unfinished(settings):
        raise SearchStateError("search s has not finished")

    monkeypatch.setattr(search.finalize.nested, "finalize_any", unfinished)
    with pytest.raises(SystemExit) as exited:
        main(["finalize", "anywhere"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "search s has not finished" in err and "Traceback" not in err

    def bad_data(settings):
        raise DataError("manifest.csv, row 3: no such image")

    monkeypatch.setattr(search.finalize.nested, "finalize_any", bad_data)
    assert main(["finalize", "anywhere"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "manifest.csv, row 3: no such image"
