"""Storage errors during a search: a full disk (ENOSPC), a quota (EDQUOT), a read-only
(EROFS) or failing (EIO) file system, object storage refusing writes. No retry fixes
them, so the first one the search meets stops it as Ctrl-C does (Ray Tune saves what it
still can and returns), and the user reads one line naming the storage, what was being
written and how to go on, rather than minutes of Ray's retries and tracebacks.

They show in three places, all in the driver: the recorder's own writes (a trial's
rows); trials failing in their workers, where Ray copies each epoch's checkpoint to the
storage (each retry would fail again); and Ray's own writes (its experiment state, its
copies of the trial folders), which Ray logs with a traceback and retries every few
seconds. `StorageWatch` notes the first of them: the recorder hands it its own errors
and the trials', and, while the search runs, it reads Ray's log records too (keeping
those of the storage's errors off the screen; `--verbose` shows them).
"""

from __future__ import annotations

import errno
import logging
import os
import pickle
import re
import signal
import tempfile
import threading
import traceback

import pyarrow.fs as pafs

from search.errors import StorageError
from search.files import read_file
from search.tuning.ray_folders import trial_folders

__all__ = [
    "STORAGE_ERRNOS",
    "StorageWatch",
    "drop_cut_error_files",
    "stop_tune",
    "storage_errno",
]

# errno -> what the storage is, and what to do before resuming
STORAGE_ERRNOS = {
    errno.ENOSPC: ("is full", "free space"),
    errno.EDQUOT: ("is over its quota", "free space or raise the quota"),
    errno.EROFS: ("is read-only", "make it writable"),
    errno.EIO: ("fails to write", "check the disk"),
    errno.EACCES: ("refuses writes", "make it writable again"),
}
REMOTE = ("refuses writes", "check the bucket and its credentials")  # object storage
_ERRNO_TEXT = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)  # in pyarrow's and Ray's texts
_TRIAL_FAILED = "Trial task failed for trial "  # Ray's record of a trial's failure
_CHECKPOINT_COPY = "persist_current_checkpoint"  # Ray copying a checkpoint to the storage
_RAY_WROTE = "Ray Tune wrote the search's files"
ERROR_PICKLE = "error.pkl"  # Ray's pickled last error of a trial, beside its error.txt


def storage_errno(error: BaseException | str | None) -> int | None:
    """The storage error's number in `error` (an exception, its causes and context, or
    the text of a traceback, such as Ray's of a failed trial); None when it holds none."""
    text, seen = "", set()
    while isinstance(error, BaseException) and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
            return error.errno
        text += f"\n{error}"
        error = error.__cause__ or error.__context__
    if isinstance(error, str):
        text += f"\n{error}"
    for match in _ERRNO_TEXT.finditer(text):
        if int(match.group(1)) in STORAGE_ERRNOS:
            return int(match.group(1))
    return None


def stop_tune() -> bool:
    """Stop the Ray Tune run of this thread as Ctrl-C does: Tune's own SIGUSR1 handler,
    on which it saves its state once more and returns. False when there is none: Tune
    installs it only when it runs in the main thread."""
    handler = signal.getsignal(signal.SIGUSR1)
    if threading.current_thread() is not threading.main_thread() or not callable(handler):
        return False
    handler(signal.SIGUSR1, None)
    return True


class StorageWatch(logging.Filter):
    """The first storage error of a search: noted (`problem`, the line to show), then the
    search stops. Used as a context manager around the Tune run: it reads Ray's log
    records meanwhile, and on leaving raises `StorageError` with the line when one was
    noted, whatever Ray did after it (a return, a crash on a file cut short)."""

    def __init__(self, storage: str, experiment: str):
        super().__init__()
        self.storage, self.experiment = storage, experiment
        self.remote = "://" in storage
        self.problem: str | None = None
        self.stopping = False  # Ray Tune was asked to stop
        self.verbose = False  # show Ray's records of the storage's errors all the same

    # -- noting -------------------------------------------------------------------------
    def note(self, error: BaseException | str, doing: str, ours: bool = False) -> bool:
        """Note `error` if it is a storage error met while `doing` (as "writing the trial
        rows of trial ab12"); True when it is one (only the first is kept). `ours`: our
        own write into the storage, where object storage's errors (pyarrow's OSErrors,
        with no errno) count too; elsewhere those count when they name Amazon's S3."""
        code = storage_errno(error)
        refused = self.remote and (
            isinstance(error, OSError) if ours else "AWS Error" in str(error)
        )
        if code is None and not refused:
            return False
        if self.problem is None:
            self.problem = self._line(code, error, doing)
        return True

    def note_failed_trial(self, trial_id: str, error: str) -> bool:
        """Note the failure of trial `trial_id` (Ray's text of it) if it failed copying its
        checkpoint into the storage; a trial failing for its own reasons, or writing to
        its node's own disk, is left to Ray's retries."""
        if _CHECKPOINT_COPY not in error:
            return False
        return self.note(error, f"trial {trial_id} saved its checkpoint")

    def stop_if_noted(self) -> None:
        """Stop the search once a problem is noted: Tune's graceful stop, else (Tune runs
        outside the main thread) `StorageError` out of the Tune run."""
        if self.problem is None or self.stopping:
            return
        self.stopping = True
        if not stop_tune():
            raise StorageError(self.problem)

    def _line(self, code: int | None, error: BaseException | str, doing: str) -> str:
        state, remedy = STORAGE_ERRNOS[code] if code else REMOTE
        reason = os.strerror(code) if code else _last_line(error)
        where = f"storage {self.storage}"
        if doing == _RAY_WROTE and not self.remote:  # Ray writes first into its own folder
            where += f" or Ray's temporary folder {_ray_temp_dir()}"
        return (
            f"{where} {state} ({reason}) while {doing}; the search stops: {remedy}, then "
            f"polarmap search resume {self.experiment}"
        )

    # -- Ray's log records ----------------------------------------------------------------
    def filter(self, record: logging.LogRecord) -> bool:
        """Whether Ray's handler shows `record`: not one of a storage error met writing
        into the storage (noted instead), nor, once the search stops for one, Tune's
        account of stopping (its failed last save, its hint to resume with Ray's own
        API, its note that it wrote everything). `--verbose` shows them all."""
        message = record.getMessage()
        text = message
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + "".join(traceback.format_exception(record.exc_info[1]))
        if message.startswith(_TRIAL_FAILED):
            trial = message.removeprefix(_TRIAL_FAILED).rsplit("_", 1)[-1]
            noted = self.note_failed_trial(trial, text)
        elif record.name.endswith("experiment_state") or "experiment state" in message.lower():
            noted = self.note(text, "Ray Tune saved the search's state")
        elif record.name.endswith("syncer"):
            noted = self.note(text, "Ray Tune copied the search's files there")
        else:
            noted = False
        after = self.problem is not None and (
            record.name.startswith("ray.tune") or storage_errno(text) is not None
        )
        return self.verbose or not (noted or after)

    def __enter__(self) -> StorageWatch:
        self.verbose = logging.getLogger("search").isEnabledFor(logging.DEBUG)  # --verbose
        for handler in logging.getLogger("ray").handlers:
            handler.addFilter(self)
        return self

    def __exit__(self, kind, error, trace) -> None:
        for handler in logging.getLogger("ray").handlers:
            handler.removeFilter(self)
        if error is not None and not isinstance(error, Exception):
            return  # a second Ctrl-C, SIGTERM: a stop, as asked
        if isinstance(error, StorageError):  # raised where Tune runs outside the main thread
            self.problem = self.problem or str(error)
        elif error is not None:  # a write of Ray's own in the driver, raised out of the run
            self.note(error, _RAY_WROTE)
        if self.problem is not None:
            if not self.remote:  # object storage puts files whole or not at all
                drop_cut_error_files(self.experiment)
            raise StorageError(self.problem) from error


def drop_cut_error_files(experiment: str) -> None:
    """Delete the trials' pickled errors (error.pkl) that Ray's copy into a full storage
    cut short. Ray reads that of every trial not done when it returns, a resume's
    included, and an empty one ends the run in EOFError; without it Ray reads the error's
    text (error.txt) instead. Deleting takes no space."""
    fs = pafs.LocalFileSystem()
    try:
        for folder in trial_folders(experiment):
            path = f"{folder.path}/{ERROR_PICKLE}"
            if fs.get_file_info(path).type == pafs.FileType.File and not _unpickles(
                read_file(fs, path)
            ):
                fs.delete_file(path)
    except OSError:  # the storage cannot even be read: nothing to mend now
        pass


def _unpickles(data: bytes) -> bool:
    try:
        pickle.loads(data)
    except Exception:  # cut short: EOFError, UnpicklingError, ...
        return False
    return True


def _last_line(error: BaseException | str) -> str:
    """The last line of an error's text (a traceback's: the exception), shortened."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    line = lines[-1] if lines else type(error).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _ray_temp_dir() -> str:
    """Where Ray keeps its session files, the driver's copies of the trial folders
    among them: $RAY_TMPDIR, else $TMPDIR, else /tmp, then ray."""
    base = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or tempfile.gettempdir()
    return os.path.join(base, "ray")
