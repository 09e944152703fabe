"""The search on Ray Tune: one Tuner whose scheduler keeps a Hyperband per (backbone,
input mode) pair and whose searcher keeps an Optuna study per pair; started here or on a
running cluster, and resumed after an interruption. With `trainables.tune` and the
scheduler, searcher and progress modules, one of the few places that import Ray."""

from __future__ import annotations

import functools
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import AsyncHyperBandScheduler, HyperBandScheduler

from results.store import ResultStore
from search.data import parse_mode
from search.files import join_location, open_location, read_file, write_file
from search.provenance import provenance
from search.tuning.prepare import PreparedSearch
from search.tuning.progress import SearchProgress
from search.tuning.record import SETTINGS_FILE, write_settings
from search.tuning.recorder import ResultsRecorder
from search.tuning.scheduler import PairScheduler
from search.tuning.searcher import PairSearcher
from search.tuning.settings import SearchSettings, hyperband_brackets
from spaces import SearchSpace, suggest_config
from trainables.frozen_store import default_store_dir
from trainables.tune import polarmap_trainable

__all__ = [
    "METRIC",
    "SETTINGS_FILE",
    "experiment_path",
    "final_status",
    "results_root",
    "run_search",
]

METRIC = "best_selection"  # the best-so-far validation selection metric, every epoch


def experiment_path(settings: SearchSettings) -> str:
    """STORAGE/NAME, with a URI's query string (such as ?endpoint_override=...) kept last."""
    return join_location(_storage(settings), settings.name)


def _storage(settings: SearchSettings) -> str:
    """A URI as given, a local folder made absolute (Ray needs one)."""
    if "://" in settings.storage:
        return settings.storage
    return str(Path(settings.storage).expanduser().resolve())


def run_search(
    settings: SearchSettings,
    prepared: PreparedSearch,
    resume: bool = False,
    quiet: bool = False,
    trainable: Any = polarmap_trainable,
) -> tune.ResultGrid:
    """Run (or, with `resume`, continue) the search; returns Ray's results.

    `trainable` is for tests: a function of (config, data, frozen_store) like
    `polarmap_trainable`."""
    started_here = _start_ray(settings)
    try:
        return _tune(settings, prepared, resume, quiet, trainable)
    finally:
        if started_here:
            ray.shutdown()


def _tune(settings, prepared, resume, quiet, trainable) -> tune.ResultGrid:
    space = settings.space
    if settings.address and not _a_node_fits(settings):
        print(
            f"note: no node of the cluster has {settings.cpus_per_trial:g} CPUs and "
            f"{settings.gpus_per_trial:g} GPUs free for a trial now; trials wait until the "
            "autoscaler adds one (see cluster.yaml)"
        )
    wrapped = tune.with_resources(
        tune.with_parameters(trainable, data=prepared.data, frozen_store=str(default_store_dir())),
        {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
    )
    path = experiment_path(settings)
    progress = SearchProgress(settings, quiet=quiet)
    if settings.scheduler == "hyperband":
        # Ray asks a custom searcher for one trial at a time, each once the last one has
        # started; a synchronous Hyperband then halves brackets that hold only the trials
        # that happened to exist, and with one trial at a time it never stops any. Let the
        # searcher fill every pair's largest bracket up front instead.
        largest = max(
            b.trials for b in hyperband_brackets(space.max_epochs, settings.reduction_factor)
        )
        pending = min(settings.trials, largest * len(settings.pairs))
        os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(pending)
    store = ResultStore(results_root(settings))
    search_row = search_record(settings, prepared)
    if resume:  # a resumed search keeps its start
        for before in store.table("searches", search=settings.name).to_pylist():
            search_row["started"] = before["started"]
    store.write_search(search_row)
    if resume:
        _mark_recorded_trials_ended(path, store, settings.name)
        tuner = tune.Tuner.restore(path, trainable=wrapped, resume_unfinished=True)
    else:
        write_settings(settings, path, search_row)
        suggest = functools.partial(
            _suggest, space=space, fixed=_fixed_config(settings),
            max_unfreeze=prepared.max_unfreeze,
        )  # fmt: skip
        tuner = tune.Tuner(
            wrapped,
            tune_config=tune.TuneConfig(
                metric=METRIC,
                mode="max",
                scheduler=PairScheduler(functools.partial(_pair_scheduler, settings)),
                search_alg=PairSearcher(
                    settings.pairs,
                    space.samples,
                    suggest,
                    METRIC,
                    "max",
                    space.max_epochs,
                    settings.sampler,
                    settings.seed,
                ),
                num_samples=settings.trials,
                max_concurrent_trials=settings.max_concurrent,
                time_budget_s=settings.time_budget_s,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=settings.name,
                storage_path=_storage(settings),
                # two: a driver killed between deleting a trial's older checkpoint and
                # saving the experiment state must find the one that state names
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                failure_config=tune.FailureConfig(max_failures=settings.max_failures),
                callbacks=[progress, ResultsRecorder(results_root(settings), settings.name)],
                verbose=0,
            ),
        )
    try:
        results = tuner.fit()
    except BaseException:  # the tables say the search did not finish; resume can go on
        search_row.update(ended=datetime.now(UTC), status="interrupted")
        store.write_search(search_row)
        raise
    progress.finish()
    now = datetime.now(UTC)
    budget = settings.time_budget_s
    spent = (now - search_row["started"]).total_seconds()
    status = final_status(results, settings.trials, spent, budget)
    if status == "interrupted":
        print(f"interrupted; go on with: polarmap search resume {path}", file=sys.stderr)
    else:  # every trial that reported has ended: each should have its rows
        _warn_of_unrecorded_trials(results, store, settings.name, path)
    search_row.update(ended=now, status=status)
    store.write_search(search_row)
    return results


def final_status(results, trials: int, spent_s: float, budget_s: float | None) -> str:
    """How the search ended, for its searches row: `interrupted` when Ray returned before
    all `trials` were made and ended (Ctrl-C stops Tune gracefully and it returns as if
    done)."""
    if budget_s and spent_s >= budget_s:
        return "stopped by the time budget"
    ended = results.num_terminated + results.num_errors
    if len(results) < trials or ended < len(results):
        return "interrupted"
    return "completed"


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
        print(
            f"warning: {len(reported - recorded)} trials are missing from the result tables"
            f"{reason}; rebuild them with: polarmap results ingest {path}",
            file=sys.stderr,
        )


def _start_ray(settings: SearchSettings) -> bool:
    """Start or join Ray unless this process already has; True when started here."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # relative data paths keep working
    # one state snapshot per checkpoint is what keeping one checkpoint per trial costs
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if settings.address:
        ray.init(address=settings.address, log_to_driver=False)
    else:  # a private Ray for this process: no dashboard, nothing listening beyond localhost
        ray.init(include_dashboard=False, log_to_driver=False)
    return True


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
    return HyperBandScheduler(
        time_attr="epoch", max_t=max_t, reduction_factor=settings.reduction_factor
    )


def _fixed_config(settings: SearchSettings) -> dict[str, Any]:
    """What every trial of the search shares."""
    space = settings.space
    return {
        "warmup_epochs": space.warmup_epochs,
        "finetune_epochs": space.finetune_epochs,
        "pretrained": space.pretrained,
        "weights": settings.weights,
        "seed": settings.seed,
        "threads": settings.threads,
        "cpus": settings.cpus_per_trial,  # the trial's Ray resources, for compute hours
        "gpus": settings.gpus_per_trial,
        "max_layer_share": space.max_layer_share,
        "max_param_share": space.max_param_share,
        "class_weighted": space.class_weighted,
    }


def _suggest(
    trial, backbone: str, mode: str, *, space: SearchSpace, fixed: dict, max_unfreeze: dict
) -> dict[str, Any]:
    drawn = suggest_config(trial, space.ranges, max_unfreeze[backbone])
    views = list(parse_mode(mode).views)
    return {**fixed, **drawn, "backbone": backbone, "mode": mode, "views": views}


def _mark_recorded_trials_ended(path: str, store: ResultStore, search: str) -> None:
    """A trial can end, and land in the result tables, in the moments before Ray next saves
    its experiment state; killed then, Ray would resume it. Mark such trials ended in the
    latest saved state (Ray 2.60's format), so every trial ends exactly once."""
    import pyarrow.fs as pafs

    ended = {
        row["trial_id"]: "ERROR" if row["status"] == "errored" else "TERMINATED"
        for row in store.table("trials", search=search).to_pylist()
    }
    fs, root = open_location(path)
    states = sorted(
        info.path
        for info in fs.get_file_info(pafs.FileSelector(root))
        if info.base_name.startswith("experiment_state-") and info.base_name.endswith(".json")
    )
    if not ended or not states:
        return
    state = json.loads(read_file(fs, states[-1]))
    changed = False
    for entry in state["trial_data"]:
        trial = json.loads(entry[0])
        status = ended.get(trial.get("trial_id"))
        if status and trial.get("status") != status:
            trial["status"] = status
            entry[0], changed = json.dumps(trial), True
    if changed:
        write_file(fs, states[-1], json.dumps(state))


def results_root(settings: SearchSettings) -> str:
    """Where the result tables go: STORAGE/results, beside the searches' own folders."""
    return join_location(_storage(settings), "results")


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
        "status": "running",
    }
