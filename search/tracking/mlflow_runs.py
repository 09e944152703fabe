"""A search in MLflow: one run per search, a nested run per (backbone, input mode) pair and
one per trial under its pair, written by the driver from what the result recorder
receives (trials on cluster workers never reach the tracking server).

Ray Tune's own MLflow callback does not serve here: inside trials it ignores the
tracking URI (ray#36257), records nothing without extra calls (ray#45456) and nests
nothing (ray#19978). So the driver writes through an `MlflowClient` of its own, in a
background thread: a slow or unreachable server never holds the search up, and its
first error is one warning, after which this run of the search writes no more to it
(the result tables keep every figure).

Runs are found again by their tags (`polarmap.search`, `polarmap.key`), so a resumed
search goes on in the same runs; each trial run records the last epoch it holds
(`polarmap.epochs_logged`, written with that epoch's figures in one batch), so an epoch
run again after a restore is not logged twice.

MLflow is imported only when a search asks for it (`--mlflow`)."""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from results.rows import TrialRows, epoch_figures
from search.errors import SettingsError
from search.tracking.base import Tracker
from trainables.config import PAIR_KEY

__all__ = [
    "DEFAULT_EXPERIMENT",
    "KEY_TAG",
    "LOGGED_TAG",
    "SEARCH_TAG",
    "MlflowRuns",
    "MlflowTracker",
    "check_mlflow",
    "tracking_uri",
]

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "polarmap-search"  # unless $MLFLOW_EXPERIMENT_NAME names another
SEARCH_TAG = "polarmap.search"  # the search a run belongs to
KEY_TAG = "polarmap.key"  # which run of it: search, pair:B/M, trial:ID, final:...
LOGGED_TAG = "polarmap.epochs_logged"  # a trial run's last epoch logged
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own nesting
CLOSE_WAIT_S = 60.0  # what the end of a search waits for MLflow to take the rest
# the searches row's fields that are a search run's params (the rest are tags or times)
SEARCH_PARAMS = (
    "space", "space_digest", "scheduler", "reduction_factor", "sampler", "samples_per_pair",
    "max_epochs", "split", "split_seed", "classes", "cpus_per_trial", "gpus_per_trial",
    "outer_fold", "outer_folds",
)  # fmt: skip
SEARCH_TAGS = ("data_fingerprint", "test_fingerprint", "git_revision", "nested_in")
END_STATUS = {"completed": "FINISHED", "stopped": "FINISHED", "errored": "FAILED"}
SEARCH_END_STATUS = {"completed": "FINISHED", "stopped by the time budget": "FINISHED"}


def tracking_uri(where: str) -> str:
    """The MLflow tracking URI for `--mlflow WHERE`: a server (http://, https://,
    databricks) as given; a folder, made absolute, becomes an SQLite store inside it
    (`FOLDER/mlflow.db`, MLflow's file store being retired); a relative `sqlite:///`
    path is made absolute, so a resume from another working directory writes to the
    same store."""
    if where.startswith("sqlite:///") and not where.startswith("sqlite:////"):
        return "sqlite:///" + os.path.abspath(where.removeprefix("sqlite:///"))
    if where.startswith("file://"):
        where = where.removeprefix("file://")
    if "://" in where or where.startswith("databricks"):
        return where
    folder = Path(where).expanduser().resolve()
    return f"sqlite:///{folder / 'mlflow.db'}"


def check_mlflow(where: str) -> str:
    """The tracking URI for `--mlflow WHERE`, checked before any compute: MLflow is
    installed, the URI holds no password, and a local store opens (made when new). A
    server is not asked: one that does not answer is a warning once the search runs.

    Raises:
        SettingsError: MLflow is missing, the URI holds a password, or a local store
            cannot be made or opened.
    """
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        raise SettingsError(
            f"--mlflow {where}: MLflow is not installed; install it with: "
            "pip install 'polarmap-search[tracking]'"
        ) from exc
    uri = tracking_uri(where)
    if urlsplit(uri).password:
        raise SettingsError(
            "--mlflow: the URI holds a password; give it in MLFLOW_TRACKING_PASSWORD (and "
            "the user in MLFLOW_TRACKING_USERNAME) instead: the URI is saved with the search, "
            "on a disk others read"
        )
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(f"--mlflow {where}: cannot make {folder} ({exc})") from exc
        _open_store(where, uri)
    return uri


def _open_store(where: str, uri: str) -> None:
    """Open a local store now, making its tables when new: before the search, not in
    its first moments, where a driver killed meanwhile would leave them half made."""
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its store set-up chatter
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:
        raise SettingsError(
            f"--mlflow {where}: the store {uri} cannot be opened ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc


class MlflowRuns:
    """One search's runs in one MLflow store, found by their tags and made when missing.
    Synchronous: `MlflowTracker` calls it from its thread, `finalize` directly."""

    def __init__(self, uri: str, search: str, experiment: str | None = None):
        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # its store set-up chatter
        self.uri, self.search = uri, search
        self.client = MlflowClient(tracking_uri=uri)
        self.experiment_id = self._experiment(experiment or _experiment_name())
        self.runs: dict[str, Any] = {}  # key -> mlflow Run, as found or made
        self._find_runs()

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        artifacts = None  # a server's own artifact store; beside a local SQLite store
        if self.uri.startswith("sqlite:///"):
            artifacts = Path(self.uri.removeprefix("sqlite:///")).parent.joinpath("artifacts")
            artifacts = artifacts.as_uri()
        return self.client.create_experiment(name, artifact_location=artifacts)

    def _find_runs(self) -> None:
        query = f"tags.`{SEARCH_TAG}` = '{_quoted(self.search)}'"
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], query, max_results=1000, page_token=token
            )
            for run in page:
                key = run.data.tags.get(KEY_TAG)
                if key and key not in self.runs:
                    self.runs[key] = run
            token = page.token
            if not token:
                return

    def run_id(
        self,
        key: str,
        name: str,
        parent: str | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        reopen: bool = True,
        started: datetime | None = None,
    ) -> str:
        """The run of `key`, made (named `name`, under the run of `parent`, with
        `params` and `tags`, started at `started` or now) when the store has none; a
        finished run found again is marked running when `reopen` (a resumed search)."""
        run = self.runs.get(key)
        if run is not None:
            if reopen and run.info.status != "RUNNING":
                self.client.update_run(run.info.run_id, status="RUNNING")
                self.runs[key] = self.client.get_run(run.info.run_id)
            return run.info.run_id
        all_tags = {SEARCH_TAG: self.search, KEY_TAG: key, **(tags or {})}
        if parent is not None:
            all_tags[PARENT_TAG] = self.runs[parent].info.run_id
        start = int(started.timestamp() * 1000) if started else None
        run = self.client.create_run(
            self.experiment_id, start_time=start, run_name=name, tags=all_tags
        )
        if params:
            self.log(run.info.run_id, params=params)
        self.runs[key] = self.client.get_run(run.info.run_id)
        return run.info.run_id

    def tag(self, key: str, name: str) -> str | None:
        """A tag of the run of `key` as found in the store (None: no run, or no tag)."""
        run = self.runs.get(key)
        return run.data.tags.get(name) if run is not None else None

    def log(
        self,
        run_id: str,
        metrics: dict[str, float] | None = None,
        step: int = 0,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
    ) -> None:
        """One batch: written together, or (the server refusing it) not at all. Metrics
        that are missing or not finite are left out; so are params and tags that are None."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        figures = {k: float(v) for k, v in (metrics or {}).items() if _finite(v)}
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, step) for k, v in figures.items()],
            params=[Param(k, _text(v)) for k, v in (params or {}).items() if v is not None],
            tags=[RunTag(k, _text(v)) for k, v in (tags or {}).items() if v is not None],
        )

    def end(self, key: str, status: str) -> None:
        run = self.runs.get(key)
        if run is not None:
            self.client.set_terminated(run.info.run_id, status=status)

    def search_run(self, search_row: dict[str, Any] | None, reopen: bool = True) -> str:
        """The search's run (made with its settings, from its searches row, when new;
        started when the search started)."""
        row = search_row or {}
        started = row.get("started")
        return self.run_id(
            "search",
            self.search,
            params={k: row.get(k) for k in SEARCH_PARAMS},
            tags={f"polarmap.{k}": row.get(k) for k in SEARCH_TAGS},
            reopen=reopen,
            started=started if isinstance(started, datetime) else None,
        )


class MlflowTracker(Tracker):
    """Shows a running search in MLflow (see the module's docstring). `search_row` is its
    row of the searches table (its settings, as params of the search run); `places` says
    where its experiment folder and tables are (tags of the search run). Without
    `background`, each call writes at once and raises what MLflow raises."""

    name = "MLflow"

    def __init__(
        self,
        uri: str,
        search_row: dict[str, Any],
        places: dict[str, str] | None = None,
        experiment: str | None = None,
        background: bool = True,
    ):
        self.uri, self.experiment, self.background = uri, experiment, background
        self.search = search_row["search"]
        kept = (*SEARCH_PARAMS, *SEARCH_TAGS, "started")
        self.search_row = {k: v for k, v in search_row.items() if k in kept}
        self.places = dict(places or {})
        self._reset()

    def _reset(self) -> None:
        self._runs: MlflowRuns | None = None
        self._logged: dict[str, int] = {}  # trial id -> its last epoch in MLflow
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._failed = False

    def __getstate__(self) -> dict[str, Any]:  # pickled with the recorder: settings only
        kept = ("uri", "experiment", "search", "search_row", "places", "background")
        return {k: self.__dict__[k] for k in kept}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    # -- what the recorder tells it; done in the writer's thread, in order

    def trial_epoch(self, trial_id: str, config: dict[str, Any], report: dict[str, Any]) -> None:
        self._later(self._log_epochs, trial_id, config, [dict(report)])

    def trial_ended(self, trial_id: str, config: dict[str, Any], rows: TrialRows) -> None:
        self._later(self._end, trial_id, config, rows)

    def search_ended(self, status: str) -> None:
        self._later(self._end_search, status)

    def close(self) -> None:
        """Wait (up to `CLOSE_WAIT_S`) for the writer to take what is queued."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(CLOSE_WAIT_S)
        if self._thread.is_alive() and not self._failed:
            log.warning(
                "MLflow at %s did not take the search's last figures within %g s; the "
                "result tables hold them",
                self.uri,
                CLOSE_WAIT_S,
            )
        self._thread = self._queue = None

    def _later(self, do: Callable[..., None], *args: Any) -> None:
        if not self.background:  # `show_in_mlflow`: at once, its errors the caller's
            do(*args)
            return
        if self._failed:
            return
        if self._thread is None:
            self._queue = queue.Queue()
            self._thread = threading.Thread(
                target=self._write, args=(self._queue,), name="mlflow-writer", daemon=True
            )
            self._thread.start()
        self._queue.put((do, args))

    def _write(self, tasks: queue.Queue) -> None:
        while True:
            item = tasks.get()
            if item is None:
                return
            if self._failed:
                continue
            do, args = item
            try:
                do(*args)
            except Exception as exc:
                self._failed = True
                log.warning(
                    "MLflow at %s took no more of this search (%s: %s); the search goes "
                    "on, and its result tables keep every figure",
                    self.uri,
                    type(exc).__name__,
                    exc,
                )

    # -- the writer's work

    def _store(self) -> MlflowRuns:
        if self._runs is None:
            # a server that does not answer costs seconds, not MLflow's minutes of retries
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
            self._runs = MlflowRuns(self.uri, self.search, self.experiment)
            search_run = self._runs.search_run(self.search_row)
            self._runs.log(search_run, tags={f"polarmap.{k}": v for k, v in self.places.items()})
        return self._runs

    def _trial_run(self, trial_id: str, config: dict[str, Any]) -> str:
        runs = self._store()
        pair = str(config.get(PAIR_KEY) or f"{config.get('backbone')}/{config.get('mode')}")
        runs.run_id(f"pair:{pair}", pair, parent="search", tags={"polarmap.pair": pair})
        key = f"trial:{trial_id}"
        run_id = runs.run_id(
            key, trial_id, parent=f"pair:{pair}", params=_flat_params(config),
            tags={"polarmap.trial_id": trial_id, "polarmap.pair": pair},
        )  # fmt: skip
        if trial_id not in self._logged:
            self._logged[trial_id] = int(runs.tag(key, LOGGED_TAG) or 0)
        return run_id

    def _log_epochs(self, trial_id: str, config: dict[str, Any], reports: list[dict]) -> None:
        run_id = self._trial_run(trial_id, config)
        for report in sorted(reports, key=lambda r: r.get("epoch") or 0):
            epoch = int(report.get("epoch") or 0)
            if epoch <= self._logged[trial_id]:
                continue  # logged before: an epoch run again after a restore
            self._store().log(
                run_id, epoch_figures(report), step=epoch,
                tags={LOGGED_TAG: epoch, "polarmap.stage": report.get("stage")},
            )  # fmt: skip
            self._logged[trial_id] = epoch

    def _end(self, trial_id: str, config: dict[str, Any], rows: TrialRows) -> None:
        """Every epoch the run lacks, then its end; nothing for a run that holds them
        and this end already (a resumed search tells every ended trial again)."""
        found = self._store().runs.get(f"trial:{trial_id}")
        last = max((int(r.get("epoch") or 0) for r in rows.epochs), default=0)
        if (
            found is not None
            and found.info.status != "RUNNING"
            and found.data.tags.get("polarmap.status") == str(rows.trial.get("status"))
            and int(found.data.tags.get(LOGGED_TAG) or 0) >= last
        ):
            return
        self._log_epochs(trial_id, config, rows.epochs)
        self._end_trial(trial_id, rows.trial)

    def _end_trial(self, trial_id: str, trial: dict[str, Any]) -> None:
        runs, status = self._store(), str(trial.get("status"))
        key = f"trial:{trial_id}"
        # what it kept; best_selection is an epoch's figure, logged per epoch
        summary = {
            k: v for k, v in trial.items() if k.startswith("best_") and k != "best_selection"
        }
        runs.log(
            runs.runs[key].info.run_id,
            metrics=summary,
            step=int(trial.get("epochs_run") or 0),
            tags={
                "polarmap.status": status,
                "polarmap.stop_rung": trial.get("epochs_run") if status == "stopped" else None,
                "polarmap.epochs_run": trial.get("epochs_run"),
                "polarmap.compute_path_warmup": trial.get("compute_path_warmup"),
                "polarmap.compute_path_finetune": trial.get("compute_path_finetune"),
                "polarmap.error": trial.get("error"),
            },
        )
        runs.end(key, END_STATUS.get(status, "KILLED"))

    def _end_search(self, status: str) -> None:
        runs = self._store()
        ended = SEARCH_END_STATUS.get(status, "KILLED")
        runs.log(runs.runs["search"].info.run_id, tags={"polarmap.status": status})
        for key in [k for k in runs.runs if k.startswith("pair:")]:
            runs.end(key, ended)
        runs.end("search", ended)


def _experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


def _flat_params(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(config.items()) if v is not None}


def _text(value: Any) -> str:
    """A param's or tag's value as MLflow keeps it (params hold up to 6000 characters)."""
    return str(value)[:6000]


def _finite(value: Any) -> bool:
    """A number MLflow should keep as a metric: not missing, not a flag, finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _quoted(text: str) -> str:
    return text.replace("'", "\\'")
