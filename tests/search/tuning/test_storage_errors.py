"""A storage that takes no more: its errors told from others, wherever the search meets
them (our writes, a trial's checkpoint copy, Ray's own writes, logged or raised), in one
line; Ray's tracebacks of them kept off the screen."""

from __future__ import annotations

import errno
import logging
import pickle

import pytest

from search.errors import StorageError
from search.tuning.storage_errors import StorageWatch, drop_cut_error_files, storage_errno

# pyarrow's words for a write that found the disk full, as Ray's traceback of a trial has them
PYARROW_FULL = (
    "OSError: [Errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device"
)
TRIAL_TRACEBACK = (
    'Traceback (most recent call last):\n  File ".../ray/train/_internal/storage.py", line '
    "568, in persist_current_checkpoint\n    _pyarrow_fs_copy_files(\n" + PYARROW_FULL
)


def ray_record(name: str, message: str, error: BaseException | None = None, level=logging.ERROR):
    exc_info = (type(error), error, None) if error else None
    return logging.LogRecord(name, level, __file__, 1, message, (), exc_info)


def test_storage_errors_are_told_from_others():
    assert storage_errno(OSError(errno.ENOSPC, "No space left on device")) == errno.ENOSPC
    assert storage_errno(OSError(errno.EDQUOT, "Disk quota exceeded")) == errno.EDQUOT
    assert storage_errno(PYARROW_FULL) == errno.ENOSPC  # a traceback's text
    try:  # a cause deep in a chain, as Ray's TuneError wraps it
        try:
            raise OSError(errno.EROFS, "Read-only file system")
        except OSError as inner:
            raise RuntimeError("Trials did not complete") from inner
    except RuntimeError as outer:
        assert storage_errno(outer) == errno.EROFS
    assert storage_errno(FileNotFoundError(errno.ENOENT, "gone")) is None
    assert storage_errno(ValueError("bad json")) is None


def test_one_line_names_the_storage_what_was_written_and_the_way_on():
    watch = StorageWatch("/x/runs", "/x/runs/s1")
    assert not watch.note(ValueError("a bug"), "writing the trial rows of trial t1", ours=True)
    assert watch.note(OSError(errno.ENOSPC, "x"), "writing the trial rows of trial t1", ours=True)
    assert watch.note(OSError(errno.EROFS, "x"), "writing the trial rows of trial t2", ours=True)
    assert watch.problem == (
        "storage /x/runs is full (No space left on device) while writing the trial rows of "
        "trial t1; the search stops: free space, then polarmap search resume /x/runs/s1"
    )  # the first one: the rest follow from it


def test_object_storage_errors_count_where_we_write():
    watch = StorageWatch("s3://bucket/runs", "s3://bucket/runs/s1")
    refused = OSError("When uploading 'runs/results/x': AWS Error ACCESS_DENIED: Access Denied")
    assert watch.note(refused, "writing the trial rows of trial t1", ours=True)
    assert watch.problem.startswith(
        "storage s3://bucket/runs refuses writes (When uploading 'runs/results/x': AWS Error"
    )
    assert "check the bucket and its credentials, then polarmap search resume" in watch.problem


def test_a_trial_failing_to_copy_its_checkpoint_is_noted_and_its_traceback_hidden():
    watch = StorageWatch("/x/runs", "/x/runs/s1")
    error = RuntimeError(TRIAL_TRACEBACK)
    record = ray_record(
        "ray.tune.execution.tune_controller",
        "Trial task failed for trial polarmap_trainable_ab12cd34",
        error,
    )
    assert watch.filter(record) is False
    assert watch.problem == (
        "storage /x/runs is full (No space left on device) while trial ab12cd34 saved its "
        "checkpoint; the search stops: free space, then polarmap search resume /x/runs/s1"
    )
    # after the stop: Tune's account of it goes too, anything else of Ray's stays
    assert not watch.filter(ray_record("ray.tune.tune", "Trials did not complete: [...]"))
    assert not watch.filter(ray_record("ray.train._internal.syncer", "failed:\n" + PYARROW_FULL))
    assert watch.filter(ray_record("ray.worker", "Started a local Ray instance.", level=20))


def test_a_trial_failing_for_its_own_reasons_is_left_to_ray():
    watch = StorageWatch("/x/runs", "/x/runs/s1")
    own = ray_record(
        "ray.tune.execution.tune_controller",
        "Trial task failed for trial polarmap_trainable_ab12cd34",
        RuntimeError("Traceback ...\n  in save_state\nOSError: [Errno 28] No space left"),
    )  # its node's own disk: not the storage, and Ray's retries may work elsewhere
    assert watch.filter(own) is True and watch.problem is None
    assert watch.filter(ray_record("ray.tune.tune", "CUDA out of memory")) is True


def test_rays_failed_saves_of_its_state_are_noted():
    watch = StorageWatch("/x/runs", "/x/runs/s1")
    record = ray_record(
        "ray.tune.execution.experiment_state",
        "Saving experiment state to storage at '/x/runs/s1' failed with exception: ",
        OSError(errno.EDQUOT, "Disk quota exceeded"),
    )
    assert watch.filter(record) is False
    assert "is over its quota (Disk quota exceeded) while Ray Tune saved the search's state" in (
        watch.problem
    )


def test_the_watch_turns_what_ray_raised_into_the_one_line(tmp_path):
    watch = StorageWatch(str(tmp_path), str(tmp_path / "s1"))
    with pytest.raises(StorageError) as stopped, watch:
        raise RuntimeError("Ray's step failed") from OSError(errno.ENOSPC, "No space left")
    assert str(stopped.value).startswith(
        f"storage {tmp_path} or Ray's temporary folder "
    )  # Ray writes there first: which of the two is full, the error does not say
    assert "while Ray Tune wrote the search's files" in str(stopped.value)
    with pytest.raises(ValueError), StorageWatch(str(tmp_path), str(tmp_path / "s2")):
        raise ValueError("a bug stays a bug")
    with pytest.raises(KeyboardInterrupt), StorageWatch(str(tmp_path), str(tmp_path / "s3")):
        raise KeyboardInterrupt  # a stop stays a stop


def test_the_watch_is_kept_with_the_tuner():
    """The recorder holding it is pickled into Ray's tuner.pkl."""
    watch = StorageWatch("/x/runs", "/x/runs/s1")
    watch.note(OSError(errno.ENOSPC, "x"), "writing", ours=True)
    assert pickle.loads(pickle.dumps(watch)).problem == watch.problem


def test_error_pickles_cut_short_are_dropped(tmp_path):
    """Ray reads the pickled error of every trial not done when it returns; an empty one
    (a copy into a full storage) ended the run, and every resume of it, in EOFError."""
    experiment = tmp_path / "s1"
    for name, data in {"a": b"", "b": pickle.dumps(ValueError("x"))[:10], "c": None}.items():
        folder = experiment / f"trainable_{name}_0"
        folder.mkdir(parents=True)
        (folder / "params.json").write_text("{}")
        if data is not None:
            (folder / "error.pkl").write_bytes(data)
    whole = experiment / "trainable_d_0"
    whole.mkdir()
    (whole / "params.json").write_text("{}")
    (whole / "error.pkl").write_bytes(pickle.dumps(ValueError("kept")))
    drop_cut_error_files(str(experiment))
    assert sorted(p.parent.name for p in experiment.glob("*/error.pkl")) == ["trainable_d_0"]
