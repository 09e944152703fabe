"""The search on Ray Tune: one Tuner whose scheduler keeps a Hyperband per (backbone,
input mode) pair and whose searcher keeps an Optuna study per pair; started here or on a
running cluster, and resumed after an interruption. With `trainables.tune` and the
scheduler, searcher and progress modules, one of the few places that import Ray."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow.fs as pafs
import ray
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback
from ray.tune.schedulers import AsyncHyperBandScheduler

from results.records import SearchStatus
from results.store import ResultStore
from search.errors import StorageError, Terminated
from search.layout import frozen_store_dir
from search.provenance import provenance
from search.tuning.prepare import PreparedSearch
from search.tuning.progress import SearchProgress
from search.tuning.ray_folders import SavedState
from search.tuning.record import write_settings
from search.tuning.recorder import ResultsRecorder
from search.tuning.resume import clear_unsaved_start, mark_recorded_ends, mend_saved_state
from search.tuning.scheduler import PairHyperBand, PairScheduler
from search.tuning.searcher import PairSearcher
from search.tuning.settings import SearchSettings, pair_brackets
from search.tuning.suggest import shared_config, suggest_trial
from search.tuning.trackers import search_trackers
from trainables.tune import polarmap_trainable

__all__ = [
    "METRIC",
    "RAY_DEFAULTS",
    "SearchRun",
    "StopSignals",
    "final_status",
    "run_search",
    "search_record",
    "start_ray",
    "term_grace_s",
    "tolerate_deleted_checkpoints",
    "trainable_name",
]

METRIC = "best_selection"  # the best-so-far validation selection metric, every epoch

RAY_DEFAULTS = {  # how this project runs Ray Tune
    "RAY_CHDIR_TO_TRIAL_DIR": "0",  # relative data paths keep working
    # one state snapshot per checkpoint is what keeping one checkpoint per trial costs
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # Ray's own experiment box and TensorBoard hint, printed whatever `verbose` says by
    # its newer output engine; the progress view is the search's own
    "RAY_AIR_NEW_OUTPUT": "0",
}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchRun:
    """What a run of the search gives: Ray's results and how it ended (the status of its
    searches row: completed, interrupted, or stopped by the time budget)."""

    results: tune.ResultGrid
    status: SearchStatus
    stopped_by: str | None = None  # the signal that stopped it: SIGINT, SIGTERM

    @property
    def interrupted(self) -> bool:
        return self.status == SearchStatus.INTERRUPTED


def run_search(
    settings: SearchSettings,
    prepared: PreparedSearch,
    resume: bool = False,
    quiet: bool = False,
    trainable: Any = polarmap_trainable,
) -> SearchRun:
    """Run (or, with `resume`, continue) the search; returns Ray's results and how the
    search ended.

    `trainable` is for tests: a function of (config, data, frozen_store) like
    `polarmap_trainable`."""
    started_here = start_ray(settings)
    try:
        return _tune(settings, prepared, resume, quiet, trainable)
    finally:
        if started_here:
            ray.shutdown()


def _tune(settings, prepared, resume, quiet, trainable) -> SearchRun:
    if settings.address and not _a_node_fits(settings):
        log.info(
            "note: no node of the cluster has %g CPUs and %g GPUs free for a trial now; "
            "trials wait until the autoscaler adds one (see cluster.yaml)",
            settings.cpus_per_trial,
            settings.gpus_per_trial,
        )
    _fill_brackets_up_front(settings)
    store = ResultStore(settings.results)
    saved = SavedState.read(settings.experiment) if resume else None  # read once, passed on
    anew = resume and clear_unsaved_start(settings, store, saved)
    if anew:
        log.warning("note: the search was stopped before Ray saved its state; it starts anew")
    search_row = _starting_search_row(settings, prepared, store, keep_started=resume)
    if anew or not resume:  # a new search's record claims its name before its row
        write_settings(settings, settings.experiment, search_row, prepared.dataset, new=not anew)
    resume = resume and not anew
    store.write_search(search_row)
    progress = SearchProgress(settings, quiet=quiet)
    trackers = search_trackers(settings, prepared, search_row)
    recorder = ResultsRecorder(settings.results, settings.name, trackers)
    callbacks = [progress, recorder, *_ray_loggers()]
    wrapped = tune.with_resources(
        tune.with_parameters(trainable, data=prepared.data, frozen_store=str(frozen_store_dir())),
        {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
    )
    wrapped.__name__ = trainable_name(settings, trainable)
    tolerate_deleted_checkpoints()
    if resume:
        mend_saved_state(settings, store, saved)
        tuner = tune.Tuner.restore(settings.experiment, trainable=wrapped, resume_unfinished=True)
        _use_callbacks(tuner, callbacks)
    else:
        tuner = _new_tuner(settings, prepared, wrapped, callbacks)
    try:
        # the recorder's watch: StorageError at the first error of a storage that
        # takes no more, Ray's retries stopped (search.tuning.storage_errors)
        with StopSignals(then=_graceful_tune_stop) as stop, recorder.watch:
            results = tuner.fit()
    except BaseException as exc:  # the tables say the search did not finish; resume can go on
        _end_trackers(trackers, SearchStatus.INTERRUPTED)
        search_row.update(ended=datetime.now(UTC), status=SearchStatus.INTERRUPTED)
        try:
            store.write_search(search_row)
        except OSError:
            if not isinstance(exc, StorageError):
                raise
            # a full storage may not take the row either: it says running, until resumed
        raise
    progress.finish()
    status = _record_the_end(settings, results, store, search_row, stop.received is not None)
    _end_trackers(trackers, status)
    return SearchRun(results, status, stop.received)


def _ray_loggers() -> list:
    """Ray's loggers the search keeps: result.json per trial (which the result recorder
    and `results ingest` read) and progress.csv; not its TensorBoard one."""
    return [CSVLoggerCallback(), JsonLoggerCallback(), _NoRawTensorBoardFiles()]


class _NoRawTensorBoardFiles(TBXLoggerCallback):
    """In place of Ray's TensorBoard logger, which Ray adds when no callback is one:
    its files of every raw report (per fold, per class) would sit beside the search's own
    curves (`search.tracking.tensorboard`) and say the same less clearly. Writes nothing."""

    def __init__(self):  # needs no tensorboardX writer
        self._trial_writer, self._trial_result = {}, {}

    def log_trial_start(self, trial) -> None:
        pass

    def log_trial_result(self, iteration: int, trial, result) -> None:
        pass

    def log_trial_end(self, trial, failed: bool = False) -> None:
        pass


def _end_trackers(trackers, status: SearchStatus) -> None:
    trackers.search_ended(str(status))
    trackers.close()


def tolerate_deleted_checkpoints() -> None:
    """Let Ray pass over a checkpoint that is already gone when it deletes a trial's older
    ones. A driver killed while Ray deleted one leaves a state that still lists it; on
    resume Ray deleted it again, failed (FileNotFoundError, a traceback "Error handling
    checkpoint") and skipped the rest of that trial's bookkeeping (its checkpoint index,
    its saved JSON). The newest checkpoint is registered first, so it is kept and used
    either way. Ray's deleting function is wrapped once, in the driver, where Tune's
    checkpoint managers run; `check_ray_internals` checks it still exists."""
    from ray.train._internal import checkpoint_manager

    delete = checkpoint_manager._delete_fs_path
    if getattr(delete, "passes_over_missing", False):
        return

    def delete_if_there(fs, fs_path: str) -> None:
        if fs.get_file_info(fs_path).type == pafs.FileType.NotFound:
            log.debug("checkpoint %s was already deleted", fs_path)
            return
        delete(fs, fs_path)

    delete_if_there.passes_over_missing = True  # type: ignore[attr-defined]
    checkpoint_manager._delete_fs_path = delete_if_there


def _use_callbacks(tuner: tune.Tuner, callbacks: list) -> None:
    """Give a restored Tuner this run's callbacks instead of those Ray pickled when the
    search started: theirs hold the storage of that time, and a search moved or copied
    elsewhere would go on writing its trials into the old location's tables."""
    local = getattr(tuner, "_local_tuner", None)
    if local is not None:
        local.get_run_config().callbacks = callbacks
        return
    remote = tuner._remote_tuner  # Ray Client: the Tuner lives on the cluster
    run_config = ray.get(remote.get_run_config.remote())
    run_config.callbacks = callbacks
    ray.get(remote.set_run_config_and_remote_string_queue.remote(run_config, None))


def _fill_brackets_up_front(settings: SearchSettings) -> None:
    """Ray asks a custom searcher for one trial at a time, each once the last one has
    started; a synchronous Hyperband then halves brackets that hold only the trials that
    happened to exist, and with one trial at a time it never stops any. Let the searcher
    fill every pair's largest bracket up front instead."""
    if settings.scheduler != "hyperband":
        return
    space = settings.space
    brackets = pair_brackets(space.samples, space.max_epochs, settings.reduction_factor)
    largest = max(b.trials for b in brackets)
    pending = min(settings.trials, largest * len(settings.pairs))
    os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(pending)


def _starting_search_row(settings, prepared, store: ResultStore, keep_started: bool):
    """The searches row as the search (re)starts; a resumed search keeps its first start
    (also one that starts anew, as nothing of its first start was saved)."""
    search_row = search_record(settings, prepared)
    if keep_started:
        for before in store.table("searches", search=settings.name).to_pylist():
            search_row["started"] = before["started"]
    return search_row


def _new_tuner(settings: SearchSettings, prepared: PreparedSearch, wrapped, callbacks):
    space = settings.space
    suggest = functools.partial(
        suggest_trial, shared=shared_config(settings), settings=settings,
        max_unfreeze=prepared.max_unfreeze,
    )  # fmt: skip
    searcher = PairSearcher(
        settings.pairs, space.samples, suggest, METRIC, "max", space.max_epochs,
        settings.sampler, settings.seed,
    )  # fmt: skip
    return tune.Tuner(
        wrapped,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            scheduler=PairScheduler(functools.partial(_pair_scheduler, settings)),
            search_alg=searcher,
            num_samples=settings.trials,
            max_concurrent_trials=settings.max_concurrent,
            time_budget_s=settings.time_budget_s,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=settings.name,
            storage_path=settings.layout.storage,
            # two: a driver killed between deleting a trial's older checkpoint and saving
            # the experiment state must find the one that state names
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            callbacks=callbacks,
            verbose=0,
        ),
    )


def trainable_name(settings: SearchSettings, trainable: Any = polarmap_trainable) -> str:
    """The name Ray Tune registers the search's trainable under, with its data. Ray keeps
    one registry per job, keyed by this name: the outer searches of a nested run, Tuners
    running at once in one job, each need their own, or a trial of one would find another's
    data (its outer fold's patients). A plain search keeps the function's name, so a search
    started by an earlier version resumes."""
    if settings.nested_in is None:
        return trainable.__name__
    return f"{trainable.__name__}-{settings.name}"


STOP_SIGNALS = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}
TERM_GRACE_S = 20.0  # Slurm and Kubernetes send SIGKILL 30 s after SIGTERM by default


def term_grace_s() -> float:
    """How long a graceful stop after SIGTERM may take before the search stops at once:
    $POLARMAP_TERM_GRACE seconds, else `TERM_GRACE_S`."""
    try:
        return float(os.environ.get("POLARMAP_TERM_GRACE", TERM_GRACE_S))
    except ValueError:
        return TERM_GRACE_S


class StopSignals:
    """Ctrl-C (SIGINT) or SIGTERM (preemption, scancel, kubectl delete) while a block
    runs, noted in `received` ("SIGINT" / "SIGTERM", and in `StopSignals.last` for the
    command that ran it), then handed to `then` (the search
    passes Ray Tune its own graceful stop: SIGUSR1, on which Tune saves the experiment
    state once more and returns as if done, so the note is how the search knows it was
    interrupted). A second signal stops at once (KeyboardInterrupt; `Terminated` for
    SIGTERM), and so does a graceful stop after SIGTERM that takes longer than
    `term_grace_s()`. Only the main thread can catch signals."""

    last: str | None = None  # the signal that stopped the latest block, in this process

    def __init__(self, then: Callable[[], None] | None = None):
        self.then = then

    def __enter__(self) -> StopSignals:
        self.received: str | None = None
        self._before: dict[int, Any] = {}
        self._timer: threading.Timer | None = None
        if threading.current_thread() is threading.main_thread():
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ray leaves SIGINT to us
            for number in STOP_SIGNALS:
                self._before[number] = signal.signal(number, self._stop)
        return self

    def _stop(self, signum, frame) -> None:
        if self.received is not None:  # the second: at once
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        self.received = StopSignals.last = STOP_SIGNALS[signum]
        if signum == signal.SIGTERM:
            self._timer = threading.Timer(term_grace_s(), self._grace_over)
            self._timer.daemon = True
            self._timer.start()
        if self.then is not None:
            self.then()

    def _grace_over(self) -> None:
        log.warning("the search did not stop within %g s of SIGTERM; stopping now", term_grace_s())
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for number, before in self._before.items():
            signal.signal(number, before)


def _graceful_tune_stop() -> None:
    os.kill(os.getpid(), signal.SIGUSR1)


def _record_the_end(settings, results, store: ResultStore, search_row: dict, signalled: bool):
    """The searches row's end and status, returned; the resume command when it was
    interrupted."""
    now = datetime.now(UTC)
    spent = (now - search_row["started"]).total_seconds()
    status = final_status(results, settings.trials, spent, settings.time_budget_s, signalled)
    if status == SearchStatus.INTERRUPTED:
        log.warning("interrupted; go on with: polarmap search resume %s", settings.experiment)
    else:  # every trial that reported has ended: each should have its rows
        _warn_of_unrecorded_trials(results, store, settings.name, settings.experiment)
        mark_recorded_ends(settings, store)
    search_row.update(ended=now, status=status)
    store.write_search(search_row)
    return status


def final_status(
    results, trials: int, spent_s: float, budget_s: float | None, ctrl_c: bool = False
) -> SearchStatus:
    """How the search ended, for its searches row: `interrupted` after Ctrl-C (Ray Tune
    stops gracefully and returns as if done, marking the trials it cut off as ended), or
    when Ray returned before all `trials` were made and ended (its own stop signal)."""
    if budget_s and spent_s >= budget_s:
        return SearchStatus.STOPPED_BY_TIME_BUDGET
    ended = results.num_terminated + results.num_errors
    if ctrl_c or len(results) < trials or ended < len(results):
        return SearchStatus.INTERRUPTED
    return SearchStatus.COMPLETED


def _warn_of_unrecorded_trials(results, store: ResultStore, search: str, path: str) -> None:
    """Say how to rebuild the tables if the recorder could not write every trial that
    reported (it warned as it went, and the search went on)."""
    try:
        recorded = set(store.table("trials", search=search)["trial_id"].to_pylist())
    except Exception as exc:
        recorded, reason = set(), f" ({type(exc).__name__}: {exc})"
    else:
        reason = ""
    reported = {r.metrics["trial_id"] for r in results if r.metrics and "trial_id" in r.metrics}
    if reported - recorded:
        log.warning(
            "%d trials are missing from the result tables%s; rebuild them with: "
            "polarmap results ingest %s",
            len(reported - recorded),
            reason,
            path,
        )


def start_ray(settings: SearchSettings) -> bool:
    """Start or join Ray unless this process already has; True when started here."""
    _ray_defaults()
    if ray.is_initialized():
        return False
    if settings.address:
        log.debug("joining the Ray cluster at %s", settings.address)
        ray.init(address=settings.address, log_to_driver=False)
    else:  # a private Ray for this process: no dashboard, nothing listening beyond localhost
        ray.init(include_dashboard=False, log_to_driver=False)
    return True


def _ray_defaults() -> None:
    """Set `RAY_DEFAULTS` unless the user's environment says otherwise: in the process
    that runs a search (and so in the Ray it starts)."""
    for name, value in RAY_DEFAULTS.items():
        os.environ.setdefault(name, value)


def _a_node_fits(settings: SearchSettings) -> bool:
    for node in ray.nodes():
        resources = node.get("Resources", {}) if node.get("Alive") else {}
        if (
            resources.get("CPU", 0) >= settings.cpus_per_trial
            and resources.get("GPU", 0) >= settings.gpus_per_trial
        ):
            return True
    return False


def _pair_scheduler(settings: SearchSettings):
    max_t = settings.space.max_epochs
    if settings.scheduler == "asha":
        return AsyncHyperBandScheduler(
            time_attr="epoch", max_t=max_t, grace_period=1,
            reduction_factor=settings.reduction_factor,
        )  # fmt: skip
    return PairHyperBand(
        settings.space.samples, time_attr="epoch", max_t=max_t,
        reduction_factor=settings.reduction_factor,
    )  # fmt: skip


def search_record(settings: SearchSettings, prepared: PreparedSearch) -> dict[str, Any]:
    """The search's row of the `searches` table, as it starts."""
    space, dataset, split, origin = settings.space, prepared.dataset, prepared.split, provenance()
    return {
        "search": settings.name,
        "space": space.name,
        "space_digest": space.digest(),
        "data_fingerprint": dataset.fingerprint if dataset else None,
        "split_seed": settings.split.seed,
        "split": settings.split.short(),
        "test_fingerprint": split.test_fingerprint if split else None,
        "classes": ",".join(dataset.class_set.names) if dataset else None,
        "class_mapping": dataset.class_set.mapping if dataset else None,
        "scheduler": settings.scheduler,
        "reduction_factor": settings.reduction_factor,
        "sampler": settings.sampler,
        "samples_per_pair": space.samples,
        "max_epochs": space.max_epochs,
        "cpus_per_trial": settings.cpus_per_trial,
        "gpus_per_trial": settings.gpus_per_trial,
        "library_versions": json.dumps(origin["libraries"], sort_keys=True),
        "git_revision": origin["git_revision"],
        "started": datetime.now(UTC),
        "ended": None,
        "status": SearchStatus.RUNNING,
        "nested_in": settings.nested_in,
        "outer_fold": settings.split.outer if settings.nested_in else None,
        "outer_folds": split.outer_count if split and settings.split.nested else None,
    }
