"""The held-out test split is never used before finalize: a real search on a data set and
on a copy whose every test-split image and label was replaced gives the same trials.

How the replacement keeps the split. `split_patients` stratifies: each class's patients
are ordered by a seeded hash of their id and the first `round(n * test)` go to test, the
next `round(n * val)` to validation. A patient's split so depends on its label in two
ways: relabelling moves it into another class's order (where it stays in test only if
its hash comes before that class's first non-test patient), and each class's size sets
how many of its patients each split takes. Non-test labels cannot change (that would
change what the search trains on), so every class must keep its size: the new test
labels are a permutation of the old ones. Among those permutations the test takes one
under which `split_patients` itself gives the very same train, validation and test ids,
and that changes every test patient's label. Such a permutation needs the test split's
largest class to hold no more than half of it: the shared example data set (8
Infarction, 10 Ischemia, 22 Normal) split 50/25/25 tests 6 Normal of 11, so one would
keep its label; 60/20/20 tests 2 + 2 + 4, and at seed 0 every label can change.

What it cannot see: anything that depends only on the per-class test counts, which the
class sizes and the split fractions already fix (the same for any relabelling that keeps
the split).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import shutil
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from results.read import load_class_metrics, load_epochs, load_searches, load_table, load_trials
from results.schema import MACRO_METRICS
from search.data import (
    Dataset,
    InputMode,
    Split,
    SplitSpec,
    check_dataset,
    parse_class_set,
    split_patients,
)
from tests.conftest import read_rows, write_example_dataset, write_rows

pytestmark = pytest.mark.slow

SEED, NAME = 0, "isolation"
# One validation split, and cross-validation over the same train + validation patients:
# both hold out the same 20 % test split.
SPLITS = {"one split": ("60/20/20", None), "2-fold": ("80/0/20", 2)}
VIEWS = ("rest", "stress")

# Columns that must differ between two runs of one search, and why; every other column
# of the trials table must be equal (both searches have one name, in their own storage
# folders, so even `search` is compared).
TRIAL_COLUMNS_THAT_DIFFER = {
    "trial_id": "Ray draws a fresh id for each trial",
    "started": "wall clock",
    "ended": "wall clock",
    "wall_seconds": "wall clock",
    "node_id": "each run starts its own Ray, whose node gets a fresh id",
}
EPOCH_COLUMNS_THAT_DIFFER = {
    "trial_id": "as above",
    "epoch_seconds": "wall clock",
    "node_id": "as above",
}


def search_args(manifest: Path, storage: Path, spec: SplitSpec) -> list[str]:
    """One pair (test_resnet, dual: both views), 2 trials of 1 + 1 epochs, one trial at a
    time (so Ray starts, pauses and ends them in one order) on one thread."""
    folds = ["--folds", str(spec.folds)] if spec.folds else []
    return [
        "search", "run", "--data", str(manifest), "--space", "tiny", "--backbones",
        "test_resnet", "--modes", "dual", "--split", spec.percentages(), *folds,
        "--seed", str(SEED),
        "--samples", "2", "--warmup-epochs", "1", "--finetune-epochs", "1",
        "--max-concurrent", "1", "--threads", "1", "--cpus-per-trial", "1",
        "--storage", str(storage), "--name", NAME, "--quiet",
    ]  # fmt: skip


def run_search(root: Path, manifest: Path, monkeypatch, spec: SplitSpec) -> Path:
    """Run the search with its own map cache and frozen-work store (nothing a first run
    computed can reach the second); returns its result tables' folder."""
    from search.cli import main

    monkeypatch.setenv("POLARMAP_CACHE", str(root / "map-cache"))
    monkeypatch.setenv("POLARMAP_FROZEN", str(root / "frozen"))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(search_args(manifest, root / "runs", spec)) == 0
    return root / "runs" / "results"


def checked(manifest: Path, spec: SplitSpec) -> Dataset:
    """The data set as `search run` checks it (the demo space's triad, both views)."""
    report = check_dataset(
        manifest, class_set=parse_class_set("triad"), mode=InputMode("search", VIEWS), split=spec
    )
    assert report.dataset is not None, report.errors
    return report.dataset


def search_split(dataset: Dataset, spec: SplitSpec) -> Split:
    """The split exactly as `prepare_search` makes it."""
    return split_patients(dataset.labels, spec, dataset.class_set.names)


def same_split_relabelling(dataset: Dataset, spec: SplitSpec) -> dict[str, str]:
    """New class names for the test patients, every one changed, under which
    `split_patients` gives the same split (the module's docstring says why it must be a
    permutation of their labels)."""
    labels, names = dataset.labels, dataset.class_set.names
    split = search_split(dataset, spec)
    test = list(split.test)
    for permuted in sorted(set(itertools.permutations([labels[p] for p in test]))):
        new = dict(zip(test, permuted, strict=True))
        if any(new[p] == labels[p] for p in test):
            continue
        if split_patients({**labels, **new}, spec, names) == split:
            return {p: names[label] for p, label in new.items()}
    raise AssertionError(f"no relabelling changes every test label and keeps the {spec} split")


def replace_test_patients(data: Path, copy: Path, donors: Path, new_labels: dict[str, str]):
    """Copy `data` to `copy`, giving each test patient its new label and the images and
    metadata of a patient of that class from another data set (`donors`: same recipe,
    another seed, so the maps are as valid and no byte-identical to any of `data`)."""
    shutil.copytree(data, copy)
    rows = read_rows(copy / "manifest.csv")
    header, donor_rows = rows[0], read_rows(donors / "manifest.csv")[1:]
    column = {name: i for i, name in enumerate(header)}
    for row in rows[1:]:
        pid = row[column["patient_id"]]
        if pid not in new_labels:
            continue
        label = new_labels[pid]
        donor = next(r for r in donor_rows if r[column["label"]] == label)
        donor_rows.remove(donor)
        row[column["label"]] = label
        row[column["sex"]] = donor[column["sex"]]
        for view in VIEWS:
            path = column[f"{view}_path"]
            shutil.copyfile(donors / donor[path], copy / row[path])
    write_rows(copy / "manifest.csv", rows)


def content_digest(manifest: Path, ids) -> str:
    """SHA-256 over the patients' labels and image bytes (what the split's own
    `test_fingerprint`, over ids alone, does not cover)."""
    digest = hashlib.sha256()
    with manifest.open(newline="") as handle:
        rows = {row["patient_id"]: row for row in csv.DictReader(handle)}
    for pid in sorted(ids):
        digest.update(f"{pid}:{rows[pid]['label']}".encode())
        for view in VIEWS:
            digest.update((manifest.parent / rows[pid][f"{view}_path"]).read_bytes())
    return digest.hexdigest()


def by_config(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials in the order of what they drew (never the trial id)."""
    return trials.sort_values(["config"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("split", SPLITS)
def test_replacing_the_test_split_leaves_the_search_unchanged(tmp_path, monkeypatch, split):
    shares, folds = SPLITS[split]
    spec = SplitSpec.parse(shares, folds=folds, seed=SEED)
    data = write_example_dataset(tmp_path / "data").parent
    donors = write_example_dataset(tmp_path / "donors", seed=1).parent
    original = checked(data / "manifest.csv", spec)
    split = search_split(original, spec)
    altered = tmp_path / "altered"
    replace_test_patients(data, altered, donors, same_split_relabelling(original, spec))

    # the copy passes the check: same patients, class sizes and image sizes; every test
    # patient relabelled and given other images; nothing else touched; the same split
    copy = checked(altered / "manifest.csv", spec)
    labels, altered_labels = original.labels, copy.labels
    assert len(copy) == len(original) == 40 and copy.class_counts() == original.class_counts()
    assert altered_labels.keys() == labels.keys()
    assert {p for p in labels if altered_labels[p] != labels[p]} == set(split.test)
    for pid in labels:
        for view in VIEWS:
            before = (data / f"images/{pid}_{view}.png").read_bytes()
            after = (altered / f"images/{pid}_{view}.png").read_bytes()
            assert (before != after) == (pid in split.test), (pid, view)
            assert Image.open(io.BytesIO(before)).size == Image.open(io.BytesIO(after)).size
    altered_split = search_split(copy, spec)
    assert altered_split == split
    assert (altered_split.train, altered_split.val) == (split.train, split.val)
    assert altered_split.test == split.test and len(split.test) == 8
    assert content_digest(data / "manifest.csv", split.test) != content_digest(
        altered / "manifest.csv", split.test
    )
    assert content_digest(data / "manifest.csv", split.train + split.val) == content_digest(
        altered / "manifest.csv", split.train + split.val
    )

    first = run_search(tmp_path / "first", data / "manifest.csv", monkeypatch, spec)
    second = run_search(tmp_path / "second", altered / "manifest.csv", monkeypatch, spec)

    # the searches saw different data sets with the same split, of the same size
    searches = [load_searches(root, NAME).iloc[0] for root in (first, second)]
    assert [s["data_fingerprint"] for s in searches] == [original.fingerprint, copy.fingerprint]
    assert original.fingerprint != copy.fingerprint
    # the searches row's test fingerprint covers the test ids only (the split it proves
    # held), so it is the same; the labels and images behind it are not (content_digest)
    assert searches[0]["test_fingerprint"] == searches[1]["test_fingerprint"]
    assert searches[0]["test_fingerprint"] == split.test_fingerprint
    assert [s["status"] for s in searches] == ["completed", "completed"]

    # ... and ran the same trials, to the same figures
    assert_same_trials(first, second, NAME, spec)


def assert_same_trials(first: Path, second: Path, name: str, spec: SplitSpec) -> None:
    """The two result folders hold the same trials of search `name`, to the same figures:
    every column of trials, epochs, per-class figures, held-out predictions (and fold
    rows) but those that must differ (wall clock, Ray's ids)."""
    trials = [by_config(load_trials(root, name)) for root in (first, second)]
    columns = list(trials[0].columns)
    kept = [c for c in columns if c not in TRIAL_COLUMNS_THAT_DIFFER]
    assert set(TRIAL_COLUMNS_THAT_DIFFER) <= set(columns)
    assert len(TRIAL_COLUMNS_THAT_DIFFER) <= 5 and len(kept) >= len(columns) - 5
    metrics = ["best_selection", "best_val_loss", *[f"best_val_{m}" for m in MACRO_METRICS]]
    assert {"config", "status", "epochs_run", "best_epoch", *metrics} <= set(kept)
    assert len(trials[0]) == 2 and trials[0]["best_selection"].notna().all()
    assert trials[0]["config"].is_unique  # the sort key names each trial
    pd.testing.assert_frame_equal(trials[0][kept], trials[1][kept], check_exact=True)

    # the epochs and per-class figures of each trial, matched by its configuration
    configs = [dict(zip(t["trial_id"], t["config"], strict=True)) for t in trials]
    loads = [
        (load_epochs, EPOCH_COLUMNS_THAT_DIFFER),
        (load_class_metrics, {"trial_id": "as above"}),
        (partial(load_table, table="predictions"), {"trial_id": "as above"}),
    ]
    if spec.folds:
        loads.append((partial(load_table, table="fold_epochs"), {"trial_id": "as above"}))
    for load, differ in loads:
        tables = []
        for root, config in zip((first, second), configs, strict=True):
            table = load(root, search=name)
            table.insert(0, "config", table["trial_id"].map(config))
            if "probabilities" in table:  # arrays: compared as tuples
                table["probabilities"] = table["probabilities"].map(tuple)
            compared = [c for c in table.columns if c not in differ]
            keys = [k for k in ("class", "metric", "repeat", "fold", "patient_id") if k in compared]
            order = ["config", "epoch", *keys]
            tables.append(table[compared].sort_values(order).reset_index(drop=True))
        assert len(tables[0]) > len(trials[0]) and tables[0]["config"].notna().all()
        if load is load_epochs:
            figures = {"train_loss", "val_loss", *[f"val_{m}" for m in MACRO_METRICS]}
            assert figures <= set(compared)
        pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)


def test_replacing_an_outer_folds_maps_leaves_its_search_unchanged(tmp_path, monkeypatch):
    """Nested: outer fold 1's search pools every patient's maps (the frozen work is shared
    by the outer searches), its own outer fold in no fold and without labels. Giving that
    outer fold's patients other maps (labels unchanged, so the same outer folds) leaves
    its search's trials exactly as they were: nothing of them reaches the search."""
    from search.cli import build_parser
    from search.commands.search import run_settings, settings_from_args
    from search.tuning.nested import outer_settings

    spec = SplitSpec(folds=2, outer_folds=3, outer=1, seed=SEED)
    data = write_example_dataset(tmp_path / "data").parent
    donors = write_example_dataset(tmp_path / "donors", seed=1).parent
    original = checked(data / "manifest.csv", spec)
    split = search_split(original, spec)
    assert len(split.test) >= 12 and not set(split.test) & set(split.train)
    altered = tmp_path / "altered"
    keep = {pid: original.class_set.names[original.labels[pid]] for pid in split.test}
    replace_test_patients(data, altered, donors, keep)  # same labels, the donors' maps
    copy = checked(altered / "manifest.csv", spec)
    assert copy.labels == original.labels and copy.fingerprint != original.fingerprint
    assert search_split(copy, spec) == split

    roots = []
    for source, root in ((data, tmp_path / "first"), (altered, tmp_path / "second")):
        args = search_args(source / "manifest.csv", root / "runs", SplitSpec(folds=2))
        args += ["--outer-folds", "3"]
        settings = outer_settings(settings_from_args(build_parser().parse_args(args)), 1)
        monkeypatch.setenv("POLARMAP_CACHE", str(root / "map-cache"))
        monkeypatch.setenv("POLARMAP_FROZEN", str(root / "frozen"))
        with contextlib.redirect_stdout(io.StringIO()):
            assert run_settings(settings) == 0
        roots.append(root / "runs" / "results")
    outer = f"{NAME}-outer-1"
    searches = [load_searches(root, outer).iloc[0] for root in roots]
    assert [s["outer_fold"] for s in searches] == [1, 1]
    assert searches[0]["test_fingerprint"] == searches[1]["test_fingerprint"]
    assert_same_trials(roots[0], roots[1], outer, spec)
