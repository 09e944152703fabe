"""Provenance: library versions and the git revision of the code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from search.provenance import git_revision, library_versions, provenance

REVISION = re.compile(r"^[0-9a-f]{40}(-dirty)?$")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def isolated_git(monkeypatch, tmp_path: Path):
    """Keep git from finding a repository above tmp_path or reading user config."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))


@pytest.fixture
def repo(tmp_path: Path, isolated_git) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "code.py").write_text("x = 1\n")
    git(root, "add", "code.py")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_library_versions_include_python_and_torch():
    versions = library_versions()
    assert re.match(r"^\d+\.\d+\.\d+", versions["python"])
    assert isinstance(versions["torch"], str)
    assert re.match(r"^\d+\.\d+", versions["torch"])


def test_library_versions_mark_missing_libraries_as_none(monkeypatch):
    monkeypatch.setattr(
        "search.provenance.TRACKED_LIBRARIES", ("torch", "surely-not-installed-lib")
    )
    versions = library_versions()
    assert versions["surely-not-installed-lib"] is None
    assert versions["torch"] is not None


def test_git_revision_is_none_outside_a_repository(tmp_path: Path, isolated_git):
    assert git_revision(tmp_path) is None


def test_git_revision_is_none_for_a_missing_folder(tmp_path: Path, isolated_git):
    assert git_revision(tmp_path / "missing") is None


def test_git_revision_of_a_clean_checkout_is_head(repo: Path):
    revision = git_revision(repo)
    assert revision is not None
    assert REVISION.match(revision)
    assert revision == git(repo, "rev-parse", "HEAD")


def test_git_revision_marks_uncommitted_changes_dirty(repo: Path):
    head = git(repo, "rev-parse", "HEAD")
    (repo / "code.py").write_text("x = 2\n")
    assert git_revision(repo) == f"{head}-dirty"


def test_untracked_files_do_not_make_the_revision_dirty(repo: Path):
    (repo / "notes.txt").write_text("scratch\n")
    assert git_revision(repo) == git(repo, "rev-parse", "HEAD")


def test_provenance_bundles_versions_and_revision():
    record = provenance()
    assert set(record) == {"libraries", "git_revision"}
    assert record["libraries"]["python"]
    assert record["git_revision"] is None or REVISION.match(record["git_revision"])
