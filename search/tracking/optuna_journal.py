"""Each (backbone, input mode) pair's Optuna study, mirrored into one Optuna journal file
for `optuna-dashboard`: its history, its parameter importances.

The search's own studies live in memory inside Ray's searcher (`search.tuning.searcher`)
and stay the searcher's state: a resume restores those, never this journal. This tracker
keeps a mirror, written by the driver as each trial ends, into `EXPERIMENT/optuna.journal`
(Optuna's `JournalStorage` on a `JournalFileBackend`): one study per pair, named by the
pair's key "backbone/mode", told each trial as the searcher tells its study: complete
with its best selection when it ran every epoch, pruned when the scheduler stopped it,
failed when it errored (or reported no score). Its score at each epoch is the trial's
intermediate values. A trial cut off by an interrupted search is left out: a resume goes
on with it, and it ends later.

A trial's Optuna parameters and their distributions are rebuilt from its flat config by
replaying the space's draw (`spaces.suggest_config`) through a suggester that answers
with the config's values and records each range, so the searcher hands nothing over.

A trial is written once: its id (a user attribute) is looked up in the journal on first
use in a process, so a resumed search ending a trial again, or a second process, adds no
duplicate. The journal needs a local file with locks: on object storage it is kept in a
local temporary file (the stored one downloaded first) and put whole after each trial.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from results.records import TrialStatus
from results.rows import TrialRows
from search.files import join_location, open_location, read_file, write_file
from search.tracking.base import Tracker
from search.tracking.viewers import JOURNAL_FILE
from spaces import Ranges, suggest_config
from trainables.config import PAIR_KEY

__all__ = ["StudyJournal", "journal_path"]

log = logging.getLogger(__name__)

# the state of the journal's trial for each status the trials table gives; an interrupted
# trial is not written (a resume goes on with it)
_STATES = {
    TrialStatus.COMPLETED: TrialState.COMPLETE,
    TrialStatus.STOPPED: TrialState.PRUNED,
    TrialStatus.ERRORED: TrialState.FAIL,
}


def journal_path(experiment: str | os.PathLike[str]) -> str:
    """Where the journal of the search in `experiment` (a local folder, or a URI such as
    s3://bucket/runs/name?endpoint_override=...) is: an absolute path, or a URI."""
    experiment = str(experiment)
    if "://" in experiment:
        return join_location(experiment, JOURNAL_FILE)
    return os.path.join(os.path.abspath(os.path.expanduser(experiment)), JOURNAL_FILE)


class StudyJournal(Tracker):
    """Writes each ended trial into its pair's study of the search's Optuna journal.

    Args:
        experiment: the search's experiment folder, local or a URI.
        ranges: the search space's ranges (`SearchSpace.ranges`).
        max_unfreeze: backbone -> the largest unfreeze depth, as `suggest_config` takes it.
        max_epochs: a trial's full epoch count (a study attribute, shown by the dashboard).
        direction: "maximize" or "minimize", as the searcher's studies.
    """

    name = "optuna journal"

    def __init__(
        self,
        experiment: str,
        ranges: Ranges,
        max_unfreeze: dict[str, int],
        max_epochs: int,
        direction: str = "maximize",
    ):
        if direction not in ("maximize", "minimize"):
            raise ValueError(f"direction {direction!r}: expected maximize or minimize")
        self.experiment, self.ranges = str(experiment), ranges
        self.max_unfreeze, self.max_epochs = dict(max_unfreeze), max_epochs
        self.direction = direction
        self._forget_store()

    def trial_ended(self, trial_id: str, config: dict[str, Any], rows: TrialRows) -> None:
        status = TrialStatus(rows.trial["status"])
        if status not in _STATES:
            return
        self._open()
        if trial_id in self._written:
            return
        study = self._study(_pair(config))
        study.add_trial(self._frozen_trial(trial_id, config, rows, _STATES[status]))
        self._written.add(trial_id)
        self._upload()

    def close(self) -> None:
        if self._temporary is not None:
            self._temporary.cleanup()
        self._forget_store()

    def __getstate__(self) -> dict[str, Any]:
        kept = ("experiment", "ranges", "max_unfreeze", "max_epochs", "direction")
        return {key: self.__dict__[key] for key in kept}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._forget_store()

    # -- the journal file and its storage

    def _forget_store(self) -> None:
        self._storage: JournalStorage | None = None
        self._studies: dict[str, optuna.Study] = {}
        self._written: set[str] = set()  # trial ids the journal holds
        self._temporary: tempfile.TemporaryDirectory | None = None  # object storage only
        self._remote: tuple[Any, str] | None = None  # (file system, path) of the object
        self._local = ""

    def _open(self) -> None:
        """Open the journal on first use in this process and learn which trials it holds."""
        if self._storage is not None:
            return
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # as the searcher: no chatter
        self._local = self._local_file()
        self._storage = JournalStorage(JournalFileBackend(self._local))
        self._written = _written_trials(self._storage)

    def _local_file(self) -> str:
        """The journal's local file: itself on a local disk; else a temporary copy of the
        stored object (empty when there is none yet), which `_upload` puts back."""
        import pyarrow.fs as pafs

        fs, path = open_location(journal_path(self.experiment))
        if isinstance(fs, pafs.LocalFileSystem):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            return path
        self._remote = (fs, path)
        self._temporary = tempfile.TemporaryDirectory(prefix="polarmap-optuna-journal-")
        local = Path(self._temporary.name) / JOURNAL_FILE
        stored = fs.get_file_info(path).type == pafs.FileType.File
        local.write_bytes(read_file(fs, path) if stored else b"")
        return str(local)

    def _upload(self) -> None:
        """Put the whole journal back on object storage (nothing to do on a local disk)."""
        if self._remote is not None:
            fs, path = self._remote
            write_file(fs, path, Path(self._local).read_bytes())

    def _study(self, pair: str) -> optuna.Study:
        """The pair's study, created (with the trials' full epoch count) when missing."""
        if pair not in self._studies:
            known = {study.study_name for study in self._storage.get_all_studies()}
            study = optuna.create_study(
                study_name=pair,
                storage=self._storage,
                direction=self.direction,
                load_if_exists=True,
            )
            if pair not in known:
                study.set_user_attr("max_epochs", self.max_epochs)
            self._studies[pair] = study
        return self._studies[pair]

    # -- one trial as Optuna's

    def _frozen_trial(
        self, trial_id: str, config: dict[str, Any], rows: TrialRows, state: TrialState
    ) -> FrozenTrial:
        replay = _Replay(config, trial_id)
        suggest_config(replay, self.ranges, self.max_unfreeze[config["backbone"]])
        value = _finite(rows.trial.get("best_selection"))
        if value is None:
            state = TrialState.FAIL  # as the searcher tells a trial that reported no score
        return optuna.trial.create_trial(
            state=state,
            value=value if state is TrialState.COMPLETE else None,
            params=replay.params,
            distributions=replay.distributions,
            intermediate_values=_epoch_scores(rows.epochs),
            user_attrs={
                "trial_id": trial_id,
                "status": str(rows.trial["status"]),
                "epochs_run": rows.trial.get("epochs_run"),
            },
        )


class _Replay:
    """A `spaces.Suggester` that answers each draw with the trial's config value and
    records it with its range as Optuna's distribution. A value the range does not hold
    (or a name the config lacks) is left out of the parameters, with a warning."""

    def __init__(self, config: dict[str, Any], trial_id: str):
        self.config, self.trial_id = config, trial_id
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, BaseDistribution] = {}

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return self._record(name, IntDistribution(low, high))

    def suggest_float(self, name: str, low: float, high: float) -> float:
        return self._record(name, FloatDistribution(low, high))

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._record(name, CategoricalDistribution(choices))

    def _record(self, name: str, distribution: BaseDistribution) -> Any:
        value = self.config.get(name)
        if name in self.config and _holds(distribution, value):
            self.params[name], self.distributions[name] = value, distribution
        else:
            log.warning(
                "optuna journal: trial %s's %s=%r is not in its range (%s); left out of "
                "its parameters there",
                self.trial_id,
                name,
                value,
                distribution,
            )
        return value


def _holds(distribution: BaseDistribution, value: Any) -> bool:
    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(distribution, IntDistribution) and value != int(value):
        return False
    return distribution.low <= value <= distribution.high


def _pair(config: dict[str, Any]) -> str:
    """The pair's key, "backbone/mode": its study's name."""
    return config.get(PAIR_KEY) or f"{config['backbone']}/{config['mode']}"


def _epoch_scores(epochs: list[dict[str, Any]]) -> dict[int, float]:
    """epoch -> the best selection so far, for the epochs that reported one."""
    scores = {}
    for row in epochs:
        score = _finite(row.get("best_selection"))
        if row.get("epoch") is not None and score is not None:
            scores[int(row["epoch"])] = score
    return scores


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _written_trials(storage: JournalStorage) -> set[str]:
    """The trial ids (user attribute) of every trial the journal holds."""
    return {
        str(trial.user_attrs["trial_id"])
        for study in storage.get_all_studies()
        for trial in storage.get_all_trials(
            storage.get_study_id_from_name(study.study_name), deepcopy=False
        )
        if "trial_id" in trial.user_attrs
    }
