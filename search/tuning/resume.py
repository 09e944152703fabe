"""Before Ray restores an interrupted search: mend what it saved, so that every trial ends
exactly once.

Ray saves the trials (experiment state), the search algorithm's counter and our
searcher's studies side by side, then copies them to the storage one file after another.
A driver killed in between leaves them disagreeing: a state that knows one trial beside
a searcher that has made all six, and the five others would never run. The trials Ray
knows are the truth; the searcher and the counter are set to them. A trial the result
tables hold as ended is marked ended (it ended in the moments before Ray saved).

The same copying, killed, can leave the searcher's file or the counter's cut short (Ray
writes them in place), and Ray could not restore them: they are restored from the copy
`PairSearcher.save` keeps beside them, checked by its digest, else from an earlier
session's save; a searcher with nothing readable left is rebuilt from the trials Ray saved.
"""

from __future__ import annotations

import logging
import pickle
import posixpath
from collections.abc import Callable
from typing import Any

import pyarrow.fs as pafs

from results.records import TrialStatus
from results.store import ResultStore
from search.errors import SearchStateError
from search.files import open_location, read_file, write_file
from search.layout import SEARCH_RECORD
from search.tuning.ray_folders import (
    GENERATOR_STATE,
    SEARCHER_COPY,
    SEARCHER_STATE,
    SavedState,
    session_of,
)
from search.tuning.searcher import PairSearcher, read_copy
from search.tuning.settings import SearchSettings

__all__ = ["clear_unsaved_start", "mark_recorded_ends", "mend_saved_state"]

log = logging.getLogger(__name__)

# (session, searcher's pickled state, counter's pickled state or None), newest first
Copies = list[tuple[str, bytes, bytes | None]]


def mend_saved_state(
    settings: SearchSettings, store: ResultStore, saved: SavedState | None = None
) -> None:
    """Mend the search's saved state in place (its newest files) before Ray restores it,
    from `saved`, one reading of the folder (read here when not given).

    Raises:
        SearchStateError: Ray's trial counter is damaged and nothing readable is left to
            restore it from.
    """
    saved = saved or SavedState.read(settings.experiment)
    if saved.damaged and saved.state is not None:
        names = ", ".join(saved.set_damaged_aside())
        log.warning("Ray's newest saved state (%s) was cut short; the one before it is used", names)
    mark_recorded_ends(settings, store, saved)
    made = saved.trials_per_pair()
    if made is None:  # no saved state yet: Ray cannot restore, and says so
        return
    copies = _copies(saved)
    _mend_searcher(saved, settings, made, copies)
    _mend_counter(saved, settings.experiment, made, copies)


def _mend_searcher(saved: SavedState, settings: SearchSettings, made, copies: Copies) -> None:
    """The searcher's newest saved state, set to the trials Ray saved; restored first
    where it is damaged, or missing beside Ray's counter (Ray would fail to find it)."""
    fs = saved.fs
    path = saved.newest_file(SEARCHER_STATE)
    counter = saved.newest_file(GENERATOR_STATE)
    if path is None and counter is None:
        return  # Ray saved no search state: it restores none
    data = None
    if path is None:
        name = f"{SEARCHER_STATE}{session_of(counter, GENERATOR_STATE)}.pkl"
        path = posixpath.join(posixpath.dirname(counter), name)
    else:
        data = read_file(fs, path)
    state = _loaded(data, pickle.loads, "_live")
    samples = settings.space.samples
    if state is None:
        state, how = _earlier_state(
            saved, SEARCHER_STATE, path,
            [(session, searcher) for session, searcher, _ in copies], pickle.loads, "_live",
        )  # fmt: skip
        if state is None:
            state = PairSearcher.rebuilt_state(settings.pairs, made, samples)
            count = sum(len(ids) for ids in made.values())
            how = f"rebuilt from the {count} trials Ray saved; the samplers start learning anew"
        log.warning("the searcher's saved state %s was %s; %s", _name(path), _why(data), how)
        PairSearcher.reconcile(state, made, samples)
        write_file(fs, path, pickle.dumps(state))
    elif PairSearcher.reconcile(state, made, samples):
        log.info("note: the searcher had made trials Ray never saved; they are made again")
        write_file(fs, path, pickle.dumps(state))


def _mend_counter(saved: SavedState, experiment: str, made, copies: Copies) -> None:
    """Ray's trial counter (its search algorithm's state) set to the trials Ray saved;
    restored first where it is damaged."""
    from ray import cloudpickle

    fs = saved.fs
    path = saved.newest_file(GENERATOR_STATE)
    if path is None:
        return
    data = read_file(fs, path)
    state = _loaded(data, cloudpickle.loads, "counter")
    repaired = state is None
    if repaired:
        state, how = _earlier_state(
            saved, GENERATOR_STATE, path,
            [(session, counter) for session, _, counter in copies], cloudpickle.loads, "counter",
        )  # fmt: skip
        if state is None:
            raise SearchStateError(
                f"cannot resume {experiment}: Ray's saved trial counter {_name(path)} is "
                f"{_why(data)} (cut short as the search was stopped) and no readable copy "
                "of it is left. The trials that ended stay in the result tables; run the "
                "search again under a new --name"
            )
        log.warning("Ray's saved trial counter %s was %s; %s", _name(path), _why(data), how)
    count = sum(len(ids) for ids in made.values())
    if repaired or state.get("counter") != count or state.get("finished"):
        state.update(counter=count, finished=False)  # the searcher says when it is done
        write_file(fs, path, cloudpickle.dumps(state))


def _copies(saved: SavedState) -> Copies:
    """The readable copies `PairSearcher.save` left, newest first; a torn one (its
    digest does not hold) is passed over."""
    copies = []
    for path in saved.saved_files(SEARCHER_COPY):
        try:
            copy = read_copy(read_file(saved.fs, path))
        except Exception:  # whole, yet unreadable: as good as torn
            copy = None
        if copy is not None:
            copies.append((session_of(path, SEARCHER_COPY), *copy))
    return copies


def _earlier_state(
    saved: SavedState,
    prefix: str,
    damaged: str,
    copies: list[tuple[str, bytes | None]],
    loads: Callable[[bytes], Any],
    key: str,
) -> tuple[dict[str, Any] | None, str]:
    """The newest readable state to put in place of Ray's `damaged` file (named
    `prefix`SESSION), and where it came from: of our `copies` (session, pickled state)
    and Ray's other files, the newest run's first, a copy before Ray's file of the same
    run; (None, "") when none is readable."""
    session = session_of(damaged, prefix)
    found = []  # (session, 1 for a copy (first of a session), its bytes or Ray's path, source)
    for s, data in copies:
        found.append((s, 1, data, "its copy" if s == session else f"its copy of the run of {s}"))
    for path in saved.saved_files(prefix):
        if path != damaged:
            s = session_of(path, prefix)
            found.append((s, 0, path, f"the one of the run of {s}"))
    for _, is_copy, where, source in sorted(found, key=lambda f: f[:2], reverse=True):
        state = _loaded(where if is_copy else read_file(saved.fs, where), loads, key)
        if state is not None:
            return state, f"restored from {source}"
    return None, ""


def _loaded(data: bytes | None, loads: Callable[[bytes], Any], key: str) -> dict | None:
    """The state pickled in `data`, a dict holding `key`; None when there is none, or
    it is cut short or garbled."""
    if not data:
        return None
    try:
        state = loads(data)
    except Exception:  # a torn pickle raises almost anything (EOFError, KeyError, ...)
        return None
    return state if isinstance(state, dict) and key in state else None


def _why(data: bytes | None) -> str:
    if data is None:
        return "missing"
    return "empty" if not data else "cut short or garbled"


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def clear_unsaved_start(
    settings: SearchSettings, store: ResultStore, saved: SavedState | None = None
) -> bool:
    """True when the search was stopped before Ray saved any readable experiment state (a
    kill while it wrote its first one leaves it empty) and no trial reached the tables:
    there is nothing to resume, and Ray, left to it, restarts with the searcher's saved
    count of trials it made and makes no more. Ray's files and the trial folders of that
    start are then deleted (the search's own record stays), so the search starts anew.
    `saved` is one reading of the folder (read here when not given)."""
    saved = saved or SavedState.read(settings.experiment)
    if saved.state is not None:
        return False
    if store.table("trials", search=settings.name).num_rows:
        return False  # trials ended and recorded: not a start to throw away
    fs, root = open_location(settings.experiment)
    for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True)):
        if info.base_name == SEARCH_RECORD:
            continue
        if info.type == pafs.FileType.Directory:
            fs.delete_dir(info.path)
        else:
            fs.delete_file(info.path)
    return True


def mark_recorded_ends(
    settings: SearchSettings, store: ResultStore, saved: SavedState | None = None
) -> None:
    """Every trial the result tables hold as ended, marked ended in the newest saved
    experiment state. Also after a search that ran to its end: Ray 2.60 can save a trial
    that Hyperband stopped while it was paused as still PAUSED (it stops it after its
    last save of that trial), and readers of the state would take it for one cut off."""
    ended = _recorded_ends(store, settings.name)
    if ended:
        (saved or SavedState.read(settings.experiment)).mark_trials_ended(ended)


def _recorded_ends(store: ResultStore, search: str) -> dict[str, str]:
    """Trials already in the result tables, as Ray names their end. A trial can end, and
    land in the tables, in the moments before Ray next saves its experiment state; killed
    then, Ray would resume it: marking it ended in that state makes every trial end
    exactly once."""
    return {
        row["trial_id"]: "ERROR" if row["status"] == TrialStatus.ERRORED else "TERMINATED"
        for row in store.table("trials", search=search).to_pylist()
        if row["status"] != TrialStatus.INTERRUPTED  # cut off (a rebuilt table says so): goes on
    }
