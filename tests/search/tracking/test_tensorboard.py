"""TensorBoard event files of a search: read back by TensorBoard's own readers, one run per
trial grouped by pair, each epoch once across a resume, on a local disk and on S3."""

from __future__ import annotations

import os
import pickle
from collections import Counter
from pathlib import Path

import pytest

from results.rows import TrialRows, epoch_figures
from search.files import open_location, read_file
from search.tracking.tensorboard import TensorBoardTracker

FIGURES = ("train_loss", "val_loss", "val_roc_auc", "val_roc_auc_sd")
ACROSS_STAGES = ("best_selection", "epoch_seconds")
RESNET = {"backbone": "resnet18", "mode": "finetune"}
VIT = {"backbone": "vit_tiny", "mode": "frozen"}


def report(epoch: int, trial: int = 0, stage: str | None = None) -> dict:
    """An epoch's report (or row): warmup for epochs 1-2, finetune after; its figures
    tell apart the trial, the epoch and the figure."""
    base = trial + epoch / 100
    return {
        "epoch": epoch,
        "stage": stage or ("warmup" if epoch <= 2 else "finetune"),
        "train_loss": 1 + base,
        "val_loss": 2 + base,
        "val_roc_auc": 3 + base,
        "val_roc_auc_sd": 4 + base,
        "best_selection": 5 + base,
        "epoch_seconds": 6 + base,
    }


def rows(epochs: range, trial: int = 0) -> TrialRows:
    return TrialRows(trial={}, epochs=[report(e, trial) for e in epochs], class_metrics=[])


def run_folder(experiment: Path | str, config: dict, trial_id: str) -> Path:
    return Path(experiment) / "tensorboard" / f"{config['backbone']}-{config['mode']}" / trial_id


def scalars(folder: Path) -> dict[str, dict[int, float]]:
    """Tag -> {step: value}, as TensorBoard shows the run in `folder`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return {
        tag: {event.step: event.value for event in accumulator.Scalars(tag)}
        for tag in accumulator.Tags()["scalars"]
    }


def written_steps(folder: Path) -> Counter:
    """(tag, step) -> how often the event files in `folder` hold it, all files together."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    counts: Counter = Counter()
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                counts[value.tag, event.step] += 1
    return counts


def expected_tags(epochs: range) -> set[str]:
    stages = {report(epoch)["stage"] for epoch in epochs}
    return {f"{s}/{f}" for s in stages for f in FIGURES} | {f"all/{f}" for f in ACROSS_STAGES}


def assert_each_epoch_once(folder: Path, epochs: range) -> None:
    counts = written_steps(folder)
    assert {tag for tag, _ in counts} == expected_tags(epochs)
    for epoch in epochs:
        stage = report(epoch)["stage"]
        for tag in [f"{stage}/{f}" for f in FIGURES] + [f"all/{f}" for f in ACROSS_STAGES]:
            assert counts[tag, epoch] == 1, (tag, epoch)
    assert sum(counts.values()) == len(epochs) * (len(FIGURES) + len(ACROSS_STAGES))


def test_report_keys_are_the_figures_shown():
    assert set(epoch_figures(report(1))) == {*FIGURES, *ACROSS_STAGES}


def test_each_trial_is_a_run_of_its_pair_with_every_figure(tmp_path: Path):
    tracker = TensorBoardTracker(str(tmp_path))
    for epoch in range(1, 5):
        tracker.trial_epoch("t1", RESNET, report(epoch, trial=1))
        tracker.trial_epoch("t2", VIT, report(epoch, trial=2))
    tracker.close()

    for trial, (trial_id, config) in enumerate([("t1", RESNET), ("t2", VIT)], start=1):
        shown = scalars(run_folder(tmp_path, config, trial_id))
        assert set(shown) == expected_tags(range(1, 5))
        assert "warmup/val_roc_auc_sd" in shown and "finetune/val_roc_auc_sd" in shown
        for epoch in range(1, 5):
            figures = report(epoch, trial)
            for name in FIGURES:
                tag = f"{figures['stage']}/{name}"
                assert shown[tag][epoch] == pytest.approx(figures[name], rel=1e-6)
            for name in ACROSS_STAGES:
                assert shown[f"all/{name}"][epoch] == pytest.approx(figures[name], rel=1e-6)
        assert set(shown["warmup/val_loss"]) == {1, 2}
        assert set(shown["finetune/val_loss"]) == {3, 4}
        assert set(shown["all/best_selection"]) == {1, 2, 3, 4}


def test_files_are_named_for_tensorboard_and_follow_the_umask(tmp_path: Path):
    tracker = TensorBoardTracker(str(tmp_path))
    old = os.umask(0o027)
    try:
        tracker.trial_epoch("t1", RESNET, report(1))
    finally:
        os.umask(old)
        tracker.close()
    (path,) = run_folder(tmp_path, RESNET, "t1").iterdir()
    assert path.name.startswith("events.out.tfevents.") and path.name.endswith(".polarmap")
    assert path.stat().st_mode & 0o777 == 0o640


def test_live_steps_are_on_disk_before_close(tmp_path: Path):
    tracker = TensorBoardTracker(str(tmp_path))
    tracker.trial_epoch("t1", RESNET, report(1))
    tracker.trial_epoch("t1", RESNET, report(2))
    assert set(scalars(run_folder(tmp_path, RESNET, "t1"))["warmup/val_loss"]) == {1, 2}
    tracker.close()


def test_a_resumed_process_writes_each_epoch_once_and_fills_the_rest(tmp_path: Path):
    first = TensorBoardTracker(str(tmp_path))
    for epoch in range(1, 4):
        first.trial_epoch("t1", RESNET, report(epoch))  # then the process is stopped

    resumed = TensorBoardTracker(str(tmp_path))
    for epoch in range(2, 6):  # restored from epoch 1's checkpoint: 2 and 3 run again
        resumed.trial_epoch("t1", RESNET, report(epoch, trial=7))
    resumed.trial_ended("t1", RESNET, rows(range(1, 8)))
    resumed.close()
    first.close()

    folder = run_folder(tmp_path, RESNET, "t1")
    assert len(list(folder.glob("events.out.tfevents.*"))) == 2
    assert_each_epoch_once(folder, range(1, 8))
    shown = scalars(folder)["all/best_selection"]
    assert shown[3] == pytest.approx(report(3)["best_selection"])  # the first process's
    assert shown[4] == pytest.approx(report(4, trial=7)["best_selection"])


def test_ended_trial_unseen_while_running_is_written_whole(tmp_path: Path):
    tracker = TensorBoardTracker(str(tmp_path))
    tracker.trial_ended("t1", VIT, rows(range(1, 5)))
    tracker.trial_ended("t1", VIT, rows(range(1, 5)))  # told twice: written once
    tracker.close()
    assert_each_epoch_once(run_folder(tmp_path, VIT, "t1"), range(1, 5))


def test_a_torn_last_record_is_written_again(tmp_path: Path):
    first = TensorBoardTracker(str(tmp_path))
    for epoch in range(1, 4):
        first.trial_epoch("t1", RESNET, report(epoch))
    first.close()
    folder = run_folder(tmp_path, RESNET, "t1")
    (path,) = folder.iterdir()
    path.write_bytes(path.read_bytes()[:-5])  # stopped in mid-write of epoch 3

    resumed = TensorBoardTracker(str(tmp_path))
    resumed.trial_ended("t1", RESNET, rows(range(1, 4)))
    resumed.close()
    assert_each_epoch_once(folder, range(1, 4))


def test_pickled_after_use_it_keeps_writing_without_duplicates(tmp_path: Path):
    tracker = TensorBoardTracker(str(tmp_path))
    tracker.trial_epoch("t1", RESNET, report(1))
    tracker.trial_epoch("t1", RESNET, report(2))

    state = pickle.dumps(tracker)
    loaded = pickle.loads(state)
    assert loaded.__getstate__() == {"experiment": str(tmp_path)}
    for epoch in range(2, 5):
        loaded.trial_epoch("t1", RESNET, report(epoch))
    loaded.trial_ended("t1", RESNET, rows(range(1, 6)))
    loaded.close()
    tracker.close()

    assert_each_epoch_once(run_folder(tmp_path, RESNET, "t1"), range(1, 6))


def test_object_storage_holds_whole_event_files(s3_storage: str, tmp_path: Path):
    base, _, query = s3_storage.partition("?")
    experiment = f"{base}/search-1?{query}"
    tracker = TensorBoardTracker(experiment)
    for epoch in range(1, 3):
        tracker.trial_epoch("t1", RESNET, report(epoch))
    tracker.trial_ended("t1", RESNET, rows(range(1, 4)))
    tracker.trial_epoch("t2", VIT, report(1))
    tracker.close()

    resumed = TensorBoardTracker(experiment)  # reads what the object holds
    resumed.trial_ended("t1", RESNET, rows(range(1, 5)))
    resumed.trial_ended("t2", VIT, rows(range(1, 3)))
    resumed.close()

    downloaded = download(experiment, tmp_path / "copy")
    assert_each_epoch_once(run_folder(downloaded, RESNET, "t1"), range(1, 5))
    assert_each_epoch_once(run_folder(downloaded, VIT, "t2"), range(1, 3))
    shown = scalars(run_folder(downloaded, RESNET, "t1"))
    assert shown["finetune/val_roc_auc"][4] == pytest.approx(report(4)["val_roc_auc"])


def test_tensorboard_reads_the_curves_from_s3_itself(s3_storage: str, monkeypatch):
    """`tensorboard --logdir s3://...` as docs/tracking.md says: its own S3 reader, the
    endpoint in $S3_ENDPOINT."""
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    base, _, query = s3_storage.partition("?")
    tracker = TensorBoardTracker(f"{base}/search-1?{query}")
    tracker.trial_ended("t1", RESNET, rows(range(1, 4)))
    tracker.close()
    endpoint = dict(part.split("=") for part in query.split("&"))["endpoint_override"]
    monkeypatch.setenv("S3_ENDPOINT", f"http://{endpoint}")
    from tensorboard.compat.tensorflow_stub.io import gfile

    # TensorBoard reads $S3_ENDPOINT as it starts; this process started it already
    monkeypatch.setattr(gfile.get_filesystem("s3://runs"), "_s3_endpoint", f"http://{endpoint}")
    shown = EventMultiplexer()
    shown.AddRunsFromDirectory(f"{base}/search-1")
    shown.Reload()
    assert list(shown.Runs()) == ["tensorboard/resnet18-finetune/t1"]
    curve = shown.Scalars("tensorboard/resnet18-finetune/t1", "finetune/val_roc_auc")
    assert [e.step for e in curve] == [3]
    assert curve[0].value == pytest.approx(report(3)["val_roc_auc"])


def download(experiment: str, target: Path) -> Path:
    """The experiment's objects, copied into `target` as files."""
    import pyarrow.fs as pafs

    fs, root = open_location(experiment)
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        if info.type == pafs.FileType.File:
            local = target / info.path[len(root) + 1 :]
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(read_file(fs, info.path))
    return target
