"""`polarmap train` as a user runs it: one small trial on the example data set, its printed
epochs and its record; usage errors and a bad data set stop it before any training."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from search.cli import main
from search.data import SplitSpec, load_dataset, parse_mode, split_patients
from search.provenance import TRACKED_LIBRARIES
from trainables.config import TrialConfig

SMALL = [
    "--backbone", "test_resnet",
    "--warmup-epochs", "2",
    "--finetune-epochs", "1",
    "--batch-size", "16",
    "--width", "8",
    "--threads", "1",
    "--split", "50/25/25",
    "--mode", "stress",
]  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """The example maps are the same bytes in every test: clean them once (160 px)."""
    return tmp_path_factory.mktemp("maps")


def train(manifest: Path, cache: Path, out: Path | None, *extra: str) -> int:
    args = ["train", "--data", str(manifest), *SMALL, "--cache", str(cache), *extra]
    return main([*args, "--out", str(out)] if out else args)


def without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in history]


def test_a_trial_prints_its_epochs_and_writes_its_record(manifest, cache, tmp_path, capsys):
    out = tmp_path / "runs" / "trial.json"
    assert train(manifest, cache, out) == 0
    printed = capsys.readouterr().out

    epochs = [line for line in printed.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 3
    assert epochs[0].startswith("epoch    1 warmup ")
    assert epochs[1].startswith("epoch    2 warmup ")
    assert epochs[2].startswith("epoch    3 finetune ")
    for line in epochs:
        assert re.search(r"train loss \d+\.\d{4}  val loss \d+\.\d{4}  bal acc \d\.\d{3}", line)

    dataset = load_dataset(manifest, mode=parse_mode("stress"))
    split = split_patients(dataset.labels, SplitSpec.parse("50/25/25"), dataset.class_set.names)
    assert (
        f"test_resnet (160 px), mode stress: {len(split.train)} train / {len(split.val)} "
        "validation patients" in printed
    )
    assert f"wrote {out}" in printed

    record = json.loads(out.read_text())
    assert record["format"] == "polarmap-trial/1"
    config = record["config"]
    assert config["backbone"] == "test_resnet" and config["views"] == ["stress"]
    assert (config["head_widths"], config["head_dropouts"]) == ([8], [0.3])
    assert (config["warmup_epochs"], config["finetune_epochs"]) == (2, 1)
    assert (config["batch_size"], config["threads"], config["seed"]) == (16, 1, 0)
    assert config["selection"] == "balanced_accuracy" and config["a"] == 3.5
    assert TrialConfig.from_flat(config).to_flat() == config  # the record rebuilds the trial

    history = record["history"]
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert [r["stage"] for r in history] == ["warmup", "warmup", "finetune"]
    for r in history:
        assert 0 <= r["val_balanced_accuracy"] <= 1 and r["train_loss"] > 0
        assert "val_sensitivity/Infarction" in r and "epoch_seconds" in r

    best = record["best"]
    assert best["epoch"] in (1, 2, 3) and best["warmup_epoch"] in (1, 2)
    assert best["finetune_epoch"] in (None, 3)
    assert best["epoch"] == history[-1]["best_epoch"]
    chosen = history[best["epoch"] - 1]
    assert best["val_balanced_accuracy"] == chosen["val_balanced_accuracy"]
    assert best["val_balanced_accuracy"] == max(r["val_balanced_accuracy"] for r in history)
    finetune = best["finetune_epoch"] or "- (none beat warm-up)"
    assert f"best warm-up epoch {best['warmup_epoch']}, best fine-tune epoch {finetune}" in printed

    unfreezing = record["unfreezing"]
    assert unfreezing["requested"] == 3
    assert 0 < unfreezing["effective"] <= 3
    assert len(unfreezing["layers"]) == unfreezing["effective"]
    assert (
        f"unfreeze requested 3, effective {unfreezing['effective']} "
        f"(allowed {unfreezing['allowed']}," in printed
    )

    assert record["data_fingerprint"] == dataset.fingerprint
    assert record["test_fingerprint"] == split.test_fingerprint
    assert re.fullmatch(r"[0-9a-f]{64}", record["test_fingerprint"])
    assert set(TRACKED_LIBRARIES) <= set(record["libraries"])
    assert record["libraries"]["torch"] and record["libraries"]["timm"]
    assert "git_revision" in record


def test_a_fold_trains_on_the_other_folds(manifest, cache, tmp_path, capsys):
    out = tmp_path / "fold.json"
    folds = ["--split", "75/0/25", "--folds", "3", "--fold", "1", "--finetune-epochs", "0"]
    assert train(manifest, cache, out, *folds, "--class-weighted") == 0
    printed = capsys.readouterr().out
    dataset = load_dataset(manifest, mode=parse_mode("stress"))
    spec = SplitSpec.parse("75/0/25", folds=3)
    split = split_patients(dataset.labels, spec, dataset.class_set.names).fold(1)
    assert f"{len(split.train)} train / {len(split.val)} validation patients" in printed
    record = json.loads(out.read_text())
    assert record["config"]["class_weighted"] is True
    assert [r["stage"] for r in record["history"]] == ["warmup", "warmup"]
    assert record["test_fingerprint"] == split.test_fingerprint
    # the test split does not move with k-fold
    plain = split_patients(dataset.labels, SplitSpec.parse("50/25/25"), dataset.class_set.names)
    assert record["test_fingerprint"] == plain.test_fingerprint


def test_the_same_seeds_give_the_same_history(manifest, cache, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # documented for the CPU
    runs = {}
    for name, seed in (("first", "3"), ("again", "3"), ("other", "4")):
        out = tmp_path / f"{name}.json"
        extra = ["--trial-seed", seed, "--augment", "hflip+rotate10"]
        assert train(manifest, cache, out, *extra) == 0
        runs[name] = json.loads(out.read_text())
    assert without_timing(runs["first"]["history"]) == without_timing(runs["again"]["history"])
    assert runs["first"]["best"] == runs["again"]["best"]
    assert runs["first"]["unfreezing"] == runs["again"]["unfreezing"]
    assert runs["first"]["config"]["augment"] == "hflip+rotate10"
    # the comparison can fail: another training seed gives other losses
    first = [r["train_loss"] for r in runs["first"]["history"]]
    assert first != [r["train_loss"] for r in runs["other"]["history"]]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--backbone", "no_such_net"], "unknown timm backbone 'no_such_net'"),
        (["--augment", "mirror"], "augmentation 'mirror': expected 'none' or parts joined"),
        (["--selection", "auc"], "selection metric 'auc': expected one of balanced_accuracy"),
        (["--folds", "3"], "--folds needs --fold N to say which fold validates"),
        (["--folds", "3", "--fold", "3"], "--fold 3: expected 0 to 2 with --folds"),
        (["--threads", "0"], "argument --threads: expected an integer of at least 1, got 0"),
        (["--warmup-epochs", "0"], "--warmup-epochs: expected an integer of at least 1, got 0"),
        (["--dropout", "1.5"], "--dropout: expected a number from 0 up to (not including) 1"),
    ],
)
def test_usage_errors_exit_2_before_anything_runs(manifest, tmp_path, capsys, options, message):
    out = tmp_path / "trial.json"
    cache = tmp_path / "cache"
    with pytest.raises(SystemExit) as exited:
        train(manifest, cache, out, *options)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "usage: polarmap train" in captured.err
    assert "epoch" not in captured.out
    assert not out.exists()
    assert not list(cache.rglob("*.npy"))


def test_a_bad_data_set_exits_1_before_training(edit_manifest, tmp_path, capsys):
    path = edit_manifest(lambda rows: rows[4].__setitem__(2, "images/missing.png"))
    out = tmp_path / "trial.json"
    cache = tmp_path / "cache"
    assert train(path, cache, out) == 1
    printed = capsys.readouterr().out
    assert "row 5, stress_path" in printed
    assert "FAILED: 1 error(s)" in printed
    assert "epoch" not in printed
    assert not out.exists()
    assert not list(cache.rglob("*.npy"))


def test_a_fold_without_folds_says_that_folds_are_missing(manifest, tmp_path, capsys):
    """`--fold 0` alone is refused; the message must say --folds is missing, not that 0 is
    outside "0 to 0"."""
    with pytest.raises(SystemExit) as exited:
        train(manifest, tmp_path / "cache", tmp_path / "trial.json", "--fold", "0")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--fold" in err and "--folds" in err
    assert "expected 0 to 0" not in err, f"self-contradicting message: {err.splitlines()[-1]}"


def test_the_data_checks_warnings_are_shown_and_the_trial_runs(edit_manifest, cache, capsys):
    """Two patients sharing one byte-identical image: a leak across splits the user must
    see, though the trial may go on."""
    manifest = edit_manifest(lambda rows: rows[12].__setitem__(2, rows[11][2]))  # stress
    assert train(manifest, cache, None) == 0
    err = capsys.readouterr().err
    assert "warning: data: " in err and "row 13: the 'stress' image is byte-identical" in err
