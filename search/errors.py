"""The errors polarmap-search raises for problems a user can act on, one family.

Every such error derives from `PolarmapError`. The command line (`search.cli`) shows its
message and exits with its `exit_status`, never with a traceback: 1 for what is wrong with
the data (as a failed data check), 2 for options, settings or a search's state that do not
fit (with the command's usage, as argparse does). Any other exception is a bug: the
command line prints its traceback and exits with status 1, so a bug never looks like a
usage mistake.

A storage that takes no more of a search's files (full, over quota, read-only, failing)
raises `StorageError`: status 1 as well, a problem with the environment that no retry
fixes, not a stop the user or a scheduler asked for (130, 143), so a script that requeues
stopped searches does not loop into a full disk.

SIGTERM raises `Terminated`, a KeyboardInterrupt as Ctrl-C's: a stop, not an error (exit
status 143, as shells report a process ended by SIGTERM).

Guards against the code's own mistakes (a misspelt column) derive from `InternalError`
instead: they are bugs, and show their traceback.

The domain errors that were `ValueError`s before keep `ValueError` as a second base, so
code that catches `ValueError` around them still does.
"""

from __future__ import annotations

__all__ = [
    "DamagedTable",
    "DataError",
    "FinalizeError",
    "InternalError",
    "PolarmapError",
    "SearchStateError",
    "SettingsError",
    "StorageError",
    "Terminated",
    "UsageError",
]


class PolarmapError(Exception):
    """A problem the user can act on; `exit_status` is the command line's exit status."""

    exit_status = 2


class UsageError(PolarmapError):
    """Options that are each valid but do not fit together."""


class SettingsError(PolarmapError, ValueError):
    """Settings a job cannot run with (a search's, a trial's, finalize's), found before
    any compute."""


class SearchStateError(PolarmapError, ValueError):
    """A search that is missing, unfinished, changed or damaged for what was asked of it."""


class DamagedTable(SearchStateError):
    """Result-table files that cannot be read (cut short, overwritten): named, with the
    repair, rather than skipped, since a table read without them misleads (a pair ranked
    without its best trial). `files` lists them."""

    def __init__(self, message: str, files: tuple[str, ...] = ()):
        super().__init__(message)
        self.files = tuple(files)

    def __reduce__(self):  # pickled whole, `files` too (an error crossing processes)
        return type(self), (str(self), self.files)


class FinalizeError(PolarmapError, ValueError):
    """What finalize, predict or evaluate cannot do with the search or model given."""


class DataError(PolarmapError):
    """What is wrong with the data set (a manifest, its images); exit status 1."""

    exit_status = 1


class StorageError(PolarmapError):
    """The storage stopped taking a search's files (a full disk, a quota, a read-only or
    failing file system, object storage refusing writes): the search stopped at the first
    such error, and the message names the storage, what was being written and how to go
    on; exit status 1."""

    exit_status = 1


class InternalError(Exception):
    """A promise broken inside the code, not by the user's input (a misspelt column, a
    status nobody defined): a bug, so the command line shows its traceback."""


class Terminated(KeyboardInterrupt):
    """The process was told to stop by SIGTERM (preemption, scancel, kubectl delete): a
    stop, as Ctrl-C's KeyboardInterrupt is, not an error; the command line exits with
    status 143."""
