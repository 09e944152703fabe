"""TensorBoard event files of a search's trials, so that `tensorboard --logdir EXPERIMENT`
shows each trial's curves while the search runs and after it.

One run per trial, grouped by pair: `EXPERIMENT/tensorboard/<backbone>-<mode>/<trial_id>/`.
Each epoch's figures are scalars at step = the global epoch, tagged per stage
(`warmup/val_roc_auc`, `finetune/val_roc_auc_sd`, ...), but the best selection so far and
the epoch's seconds, which span stages, under `all/`.

The files are written here, not by tensorboardX's writer, because the experiment may lie
on object storage (read through pyarrow like every other file of a search), which cannot
append: there a trial's file is kept in memory and put whole after each batch of events.
On a local disk the file is appended to in place and flushed, so a live TensorBoard sees
new steps. Each process starts its own file per trial (TensorBoard merges the files of a
run folder) and first reads the highest step the folder holds, so a resumed search, which
runs epochs again from an older checkpoint, writes no step twice.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable, Iterator
from typing import Any

from results.rows import TrialRows, epoch_figures
from search.files import open_location, read_file, write_file
from search.tracking.base import Tracker
from search.tracking.viewers import TENSORBOARD_FOLDER

__all__ = ["TensorBoardTracker"]

_EVENT_FILE_PREFIX = "events.out.tfevents."
_ACROSS_STAGES = ("best_selection", "epoch_seconds")  # figures tagged `all/<figure>`
_NO_STEP = 0  # epochs are 1-based: a folder without events holds no step above this


class TensorBoardTracker(Tracker):
    """A search's trials as TensorBoard runs under `EXPERIMENT/tensorboard/`; `experiment`
    is the search's experiment folder, a local path or a URI such as s3://bucket/runs/NAME."""

    name = "TensorBoard"

    def __init__(self, experiment: str):
        self.experiment = str(experiment)
        self._storage: tuple[Any, str] | None = None  # (pyarrow file system, root path)
        self._trials: dict[str, _TrialEventFile] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Only the experiment's location: the file system and open files are reopened
        where the tracker is loaded, and the event files themselves say what is written."""
        return {"experiment": self.experiment}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["experiment"])

    def trial_epoch(self, trial_id: str, config: dict[str, Any], report: dict[str, Any]) -> None:
        self._trial(trial_id, config).write([report])

    def trial_ended(self, trial_id: str, config: dict[str, Any], rows: TrialRows) -> None:
        trial = self._trial(trial_id, config)
        trial.write(sorted(rows.epochs, key=lambda row: _epoch(row) or 0))
        trial.release()

    def close(self) -> None:
        for trial in self._trials.values():
            trial.release()
        self._trials.clear()
        self._storage = None

    def _trial(self, trial_id: str, config: dict[str, Any]) -> _TrialEventFile:
        """The trial's event file of this process, its folder read on first sight."""
        if trial_id not in self._trials:
            fs, root = self._open_storage()
            pair = _folder_name(f"{config['backbone']}-{config['mode']}")
            folder = f"{root}/{TENSORBOARD_FOLDER}/{pair}/{_folder_name(trial_id)}"
            self._trials[trial_id] = _TrialEventFile.beside_earlier_ones(fs, folder)
        return self._trials[trial_id]

    def _open_storage(self) -> tuple[Any, str]:
        if self._storage is None:
            self._storage = open_location(self.experiment)
        return self._storage


class _TrialEventFile:
    """The event file one process writes for one trial, and the highest step that trial's
    folder holds in all its files: epochs at or below it are not written again."""

    def __init__(self, fs, path: str, highest_step: int):
        import pyarrow.fs as pafs

        self.fs, self.path, self.highest_step = fs, path, highest_step
        self.local = isinstance(fs, pafs.LocalFileSystem)
        self.started = False  # the file holds its version event
        self._handle = None  # local disk: the file, open for appending
        self._content: bytes | None = None  # object storage: the object's bytes

    @classmethod
    def beside_earlier_ones(cls, fs, folder: str) -> _TrialEventFile:
        """A new file in `folder`, named apart from the files earlier processes left."""
        names, highest_step = _existing_events(fs, folder)
        fs.create_dir(folder, recursive=True)
        return cls(fs, f"{folder}/{_new_file_name(names)}", highest_step)

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        """The epochs of reports or rows above the highest step written, as one batch."""
        events = []
        for record in records:
            step = _epoch(record)
            if step is None or step <= self.highest_step:
                continue
            tags = _tagged_figures(record)
            if tags:
                events.append(_scalars_event(step, tags))
            self.highest_step = step
        if events:
            self._append(b"".join(_framed(event) for event in events))

    def release(self) -> None:
        """Let go of the open file or the object's bytes; a later write takes them up again."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._content = None

    def _append(self, data: bytes) -> None:
        if not self.started:
            data, self.started = _framed(_version_event()) + data, True
        if self.local:
            self._append_local(data)
        else:
            self._append_object(data)

    def _append_local(self, data: bytes) -> None:
        if self._handle is None:
            self._handle = open(self.path, "ab")  # noqa: SIM115 (kept open across batches)
        self._handle.write(data)
        self._handle.flush()

    def _append_object(self, data: bytes) -> None:
        if self._content is None:
            self._content = _read_if_there(self.fs, self.path)
        self._content += data
        write_file(self.fs, self.path, self._content)


def _tagged_figures(record: dict[str, Any]) -> dict[str, float]:
    """An epoch's figures by tag: `<stage>/<figure>`, or `all/<figure>` for those that span
    stages."""
    stage = record.get("stage") or "all"
    return {
        f"{'all' if name in _ACROSS_STAGES else stage}/{name}": value
        for name, value in epoch_figures(record).items()
    }


def _epoch(record: dict[str, Any]) -> int | None:
    epoch = record.get("epoch")
    return None if epoch is None else int(epoch)


def _folder_name(name: str) -> str:
    """`name` as one folder, never a path of several."""
    return str(name).replace("/", "_").replace("\\", "_")


def _new_file_name(taken: set[str]) -> str:
    """`events.out.tfevents.<unix seconds>.<host>.polarmap`, its seconds moved on past
    any file of that name already there (so no earlier process's file is overwritten)."""
    host, seconds = socket.gethostname(), int(time.time())
    while (name := f"{_EVENT_FILE_PREFIX}{seconds}.{host}.polarmap") in taken:
        seconds += 1
    return name


def _existing_events(fs, folder: str) -> tuple[set[str], int]:
    """The event files' names in `folder` and the highest step of a scalar they hold."""
    import pyarrow.fs as pafs

    found = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    files = [
        info for info in found
        if info.type == pafs.FileType.File and info.base_name.startswith(_EVENT_FILE_PREFIX)
    ]  # fmt: skip
    steps = [_highest_step(read_file(fs, info.path)) for info in files]
    return {info.base_name for info in files}, max(steps, default=_NO_STEP)


def _highest_step(content: bytes) -> int:
    """The highest step of an event carrying figures in one event file's bytes."""
    from google.protobuf.message import DecodeError
    from tensorboardX.proto import event_pb2

    highest = _NO_STEP
    for data in _records(content):
        event = event_pb2.Event()
        try:
            event.ParseFromString(data)
        except DecodeError:
            break  # a damaged tail: what came before it still counts
        if event.HasField("summary"):
            highest = max(highest, event.step)
    return highest


def _read_if_there(fs, path: str) -> bytes:
    import pyarrow.fs as pafs

    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return b""
    return read_file(fs, path)


# -- TFRecord framing: length, its masked CRC32C, the data, the data's masked CRC32C


def _framed(data: bytes) -> bytes:
    """One record as TensorBoard reads it."""
    from tensorboardX.record_writer import masked_crc32c

    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def _records(content: bytes) -> Iterator[bytes]:
    """The records' data in a file's bytes, up to the first incomplete or damaged one
    (a process stopped in mid-write leaves one at the end)."""
    from tensorboardX.record_writer import masked_crc32c

    offset = 0
    while offset + 12 <= len(content):
        length_bytes = content[offset : offset + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        (length_crc,) = struct.unpack("<I", content[offset + 8 : offset + 12])
        end = offset + 12 + length + 4
        if length_crc != masked_crc32c(length_bytes) or end > len(content):
            return
        yield content[offset + 12 : end - 4]
        offset = end


def _version_event() -> bytes:
    """The event that opens every event file."""
    from tensorboardX.proto import event_pb2

    return event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()


def _scalars_event(step: int, tags: dict[str, float]) -> bytes:
    """One epoch's figures as one event of scalars."""
    from tensorboardX.proto import event_pb2, summary_pb2

    summary = summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(tag=tag, simple_value=value) for tag, value in tags.items()
        ]
    )
    return event_pb2.Event(wall_time=time.time(), step=step, summary=summary).SerializeToString()
