"""The layers of docs/architecture.md hold: the light packages import nothing heavy, and
the import-linter contract in pyproject.toml fails when an import runs the wrong way."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("search", "trainables", "spaces", "results")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def imported_after(statement: str) -> set[str]:
    """Top-level modules loaded by `statement` in a fresh interpreter."""
    shown = "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    code = f"{statement}\nimport sys\n{shown}"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return set(out.split())


def test_the_result_tables_load_without_torch_or_ray():
    loaded = imported_after("import results; from results import load_trials, leaderboard")
    assert "results" in loaded and "pyarrow" in loaded
    assert not loaded & {"torch", "ray", "timm", "torchvision"}


def test_the_trainables_load_without_ray():
    loaded = imported_after("import trainables; from trainables import TrialConfig, run_protocol")
    assert "torch" in loaded  # the protocol itself is torch
    assert "ray" not in loaded


@pytest.mark.parametrize(
    "statement",
    [
        "import spaces",
        "import search.data",
        "import search.tuning",
        "import search.tracking.tensorboard, search.tracking.optuna_journal",
    ],
)
def test_the_ray_free_layers_stay_ray_free(statement):
    assert "ray" not in imported_after(statement)


def test_mlflow_is_imported_only_when_a_command_asks_for_it():
    loaded = imported_after(
        "import search.cli, search.tuning.runner, search.tuning.trackers, "
        "search.tracking.mlflow_runs, search.finalize.pipeline, search.finalize.tracking"
    )
    assert "ray" in loaded and "search" in loaded  # the whole search, loaded
    assert "mlflow" not in loaded


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], capture_output=True, text=True, cwd=tree
    )


@pytest.fixture(scope="module")
def copy_of_the_code(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / "pyproject.toml", tree)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tree


def test_the_contract_holds_for_the_code_as_it_is(copy_of_the_code):
    run = lint_imports(copy_of_the_code)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "Contracts: 6 kept, 0 broken" in run.stdout


# Each of the tangles the layers removed, put back: the contract must break, naming it.
@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        (
            "search/tuning/prepare.py",
            "from search.commands.report import print_report",
            "search.tuning is not allowed to import search.commands",
        ),
        (
            "search/inference/external.py",
            "from search.commands.report import print_report",
            "search.inference is not allowed to import search.commands",
        ),
        (
            "search/inference/external.py",
            "from search.tuning.prepare import prepare_search",
            "search.inference is not allowed to import search.tuning",
        ),
        (
            "search/reporting/report.py",
            "from trainables.protocol import run_protocol",
            "search.reporting is not allowed to import trainables.protocol",
        ),
        (
            "results/store.py",
            "from search.tuning.ray_folders import trial_folders",
            "results is not allowed to import search.tuning",
        ),
        (
            "trainables/weight_files.py",
            "from trainables.weights import create_backbone",
            "No cycles are allowed in trainables",
        ),
        ("results/schema.py", "import torch", "results is not allowed to import torch"),
        ("search/data/check.py", "import ray", "search.data is not allowed to import ray"),
        (
            "trainables/protocol.py",
            "from trainables.tune import polarmap_trainable",
            "Illegal imports of protected package trainables.tune",
        ),
    ],
)
def test_an_import_the_wrong_way_breaks_the_contract(
    copy_of_the_code, tmp_path, module, line, broken
):
    tree = tmp_path / "tree"
    shutil.copytree(copy_of_the_code, tree)
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # put back\n")
    run = lint_imports(tree)
    assert run.returncode != 0
    assert broken in run.stdout, run.stdout[-3000:]
