"""The Ray Tune adapter: the protocol as a function trainable that pauses and resumes.

One `tune.report` per epoch, with one epoch counter across both stages (the scheduler's
resource) and a checkpoint holding the trial's whole state (and the log of every report
so far, `trainables.report_log`): HyperBand pauses trials and Ray resumes a paused trial
only from the last checkpoint it was given. This is one of
the few modules that import Ray.
"""

from __future__ import annotations

import gc
import io
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from search.files import write_atomic
from trainables.config import TrialConfig
from trainables.data import SearchData
from trainables.epoch_keys import compute_path_key, frozen_key
from trainables.frozen_store import FrozenWorkStore
from trainables.protocol import TrialData, run_protocol
from trainables.report_log import load_reports, save_reports

__all__ = ["STATE_FILE", "load_state", "polarmap_trainable", "save_state"]

STATE_FILE = "trial_state.pt"


def save_state(state: dict[str, Any], folder: Path) -> Path:
    """Write the state into `folder` under a temporary name, then rename."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return write_atomic(folder / STATE_FILE, buffer.getvalue())


def load_state(folder: Path) -> dict[str, Any]:
    """Read a state written by `save_state`; tensors and plain values only."""
    return torch.load(folder / STATE_FILE, weights_only=True)


def polarmap_trainable(
    config: dict[str, Any], data: TrialData | SearchData, frozen_store: str | None = None
) -> None:
    """Run one trial from Ray's sampled `config` (flat, see `TrialConfig.from_flat`) on
    `data`, put in the object store once with `tune.with_parameters`: a trial's tensors,
    or a search's maps from which each trial takes its backbone's and mode's. Trials on
    one node share their frozen work through the `frozen_store` folder."""
    trial = TrialConfig.from_flat(config)
    if isinstance(data, SearchData):
        data = data.for_trial(trial.backbone, trial.views)
    resume, reports = None, []
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume = load_state(Path(folder))
            reports = load_reports(folder)  # every report before this run
    resumed_at = resume["epoch"] if resume else 0

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    node_id = ray.get_runtime_context().get_node_id()

    def report(record: dict[str, Any], state: dict[str, Any]) -> None:
        metrics = {k: v for k, v in record.items() if v is not None}
        unfreezing = state["unfreezing"]
        metrics["requested_unfreeze"] = unfreezing.get("requested", trial.unfreeze)
        metrics["effective_unfreeze"] = unfreezing.get("effective", 0)
        metrics["trainable_share"] = unfreezing.get("trainable_share", 0.0)
        metrics["best_warmup_epoch"] = state["best_epoch"]["warmup"]
        metrics["best_finetune_epoch"] = state["best_epoch"]["finetune"]
        for stage, path in state["compute_path"].items():
            metrics[compute_path_key(stage)] = path
        for what, count in state["frozen_store"].items():  # the store's hits and misses
            metrics[frozen_key(what)] = count
        metrics["device"] = device
        metrics["node_id"] = node_id  # the Ray node: hosts may run several
        metrics["reported_at"] = time.time()  # Ray's own timestamp has whole seconds
        metrics["batch_size"] = trial.batch_size  # as the trial ran them, defaults included
        metrics["augment"] = str(trial.augment)
        metrics["resumed_at_epoch"] = resumed_at  # 0: this run started the trial afresh
        if "held_out_predictions" in metrics:  # the log keeps the kept epoch's only
            for earlier in reports:
                earlier.pop("held_out_predictions", None)
        reports.append(metrics)
        with tempfile.TemporaryDirectory() as folder:
            save_state(state, Path(folder))
            save_reports(reports, folder)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    store = FrozenWorkStore(frozen_store) if frozen_store else None
    result = run_protocol(trial, data, report=report, resume=resume, store=store)
    del result  # the model: free its GPU memory before Ray reuses this worker
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
