"""Before Ray restores an interrupted search: mend what it saved, so that every trial ends
exactly once.

Ray saves the trials (experiment state), the search algorithm's counter and our
searcher's studies side by side, then copies them to the storage one file after another.
A driver killed in between leaves them disagreeing: a state that knows one trial beside
a searcher that has made all six, and the five others would never run. The trials Ray
knows are the truth; the searcher and the counter are set to them. A trial the result
tables hold as ended is marked ended (it ended in the moments before Ray saved).
"""

from __future__ import annotations

import logging
import pickle

import pyarrow.fs as pafs

from results.records import TrialStatus
from results.store import ResultStore
from search.files import open_location, read_file, write_file
from search.layout import SEARCH_RECORD
from search.tuning.ray_folders import mark_trials_ended, newest_file, trials_per_pair
from search.tuning.searcher import PairSearcher
from search.tuning.settings import SearchSettings

__all__ = ["clear_unsaved_start", "mark_recorded_ends", "mend_saved_state"]

log = logging.getLogger(__name__)

GENERATOR_STATE = "search_gen_state-"  # Ray's search algorithm: its trial counter
SEARCHER_STATE = "searcher-state-"  # PairSearcher.save


def mend_saved_state(settings: SearchSettings, store: ResultStore) -> None:
    """Mend the search's saved state in place (its newest files) before Ray restores it."""
    mark_recorded_ends(settings, store)
    made = trials_per_pair(settings.experiment)
    if made is None:  # no saved state yet: Ray cannot restore, and says so
        return
    fs, _ = open_location(settings.experiment)
    searcher = newest_file(settings.experiment, SEARCHER_STATE)
    if searcher:
        state = pickle.loads(read_file(fs, searcher))
        if PairSearcher.reconcile(state, made, settings.space.samples):
            log.info("note: the searcher had made trials Ray never saved; they are made again")
            write_file(fs, searcher, pickle.dumps(state))
    generator = newest_file(settings.experiment, GENERATOR_STATE)
    if generator:
        from ray import cloudpickle

        state = cloudpickle.loads(read_file(fs, generator))
        count = sum(len(ids) for ids in made.values())
        if state.get("counter") != count or state.get("finished"):
            state.update(counter=count, finished=False)  # the searcher says when it is done
            write_file(fs, generator, cloudpickle.dumps(state))


def clear_unsaved_start(settings: SearchSettings, store: ResultStore) -> bool:
    """True when the search was stopped before Ray saved any readable experiment state (a
    kill while it wrote its first one leaves it empty) and no trial reached the tables:
    there is nothing to resume, and Ray, left to it, restarts with the searcher's saved
    count of trials it made and makes no more. Ray's files and the trial folders of that
    start are then deleted (the search's own record stays), so the search starts anew."""
    if trials_per_pair(settings.experiment) is not None:
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


def mark_recorded_ends(settings: SearchSettings, store: ResultStore) -> None:
    """Every trial the result tables hold as ended, marked ended in the newest saved
    experiment state. Also after a search that ran to its end: Ray 2.60 can save a trial
    that Hyperband stopped while it was paused as still PAUSED (it stops it after its
    last save of that trial), and readers of the state would take it for one cut off."""
    mark_trials_ended(settings.experiment, _recorded_ends(store, settings.name))


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
