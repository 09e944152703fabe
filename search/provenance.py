"""What produced a result: library versions and the git revision of this code.

Recorded with every result so that a figure can be traced back to the exact code and
libraries that made it.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["git_revision", "library_versions", "provenance"]

TRACKED_LIBRARIES = (
    "polarmap-search",
    "torch",
    "torchvision",
    "timm",
    "ray",
    "optuna",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "pillow",
)


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape results (None when absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision(repo: Path | None = None) -> str | None:
    """The commit of the code in use, with a `-dirty` suffix for uncommitted changes.

    None when the code does not run from a git checkout (an installed wheel, say).
    """
    repo = repo or Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head


def provenance() -> dict[str, object]:
    """Versions and revision in one JSON-ready mapping."""
    return {"libraries": library_versions(), "git_revision": git_revision()}
