"""A small real search on Ray Tune, run as its own process so that a test can interrupt
it (SIGINT, or SIGKILL of it and its Ray) and then resume it: `python
interrupted_search.py FOLDER run|resume`. Trials are stubs that sleep per epoch and
checkpoint like the real trainable; the driver writes every trial's status after each
step to FOLDER/statuses.json, so the test can pick its moment (trials paused at a rung,
say)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from ray.tune import Callback

from search.tuning import PreparedSearch, SearchSettings
from search.tuning.record import load_settings
from spaces import get_space
from trainables.report_log import load_reports, save_reports

EPOCH_SECONDS = 0.1


def stub_trainable(config, data=None, frozen_store=None):
    """One report a epoch with a checkpoint and the report log, as the real adapter
    (`trainables.tune`) makes them, resuming from it; scores by width."""
    from ray import tune

    start, reports = 0, []
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = json.loads((Path(folder) / "state.json").read_text())["epoch"]
            reports = load_reports(folder)
    total = config["warmup_epochs"] + config["finetune_epochs"]
    for epoch in range(start + 1, total + 1):
        time.sleep(EPOCH_SECONDS)
        metrics = {"epoch": epoch, "best_selection": config["width"] / 1000,
                   "reported_at": time.time(), "epoch_seconds": EPOCH_SECONDS}  # fmt: skip
        reports.append(metrics)
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "state.json").write_text(json.dumps({"epoch": epoch}))
            save_reports(reports, folder)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


class StatusFile(Callback):
    """Every trial's status after each step of the search loop, for the test to watch."""

    def __init__(self, path: Path):
        self.path = path

    def on_step_end(self, iteration, trials, **info):
        statuses = {t.trial_id: t.status for t in trials}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(statuses))
        os.replace(tmp, self.path)


def settings_for(folder: Path) -> SearchSettings:
    """One pair, six trials of nine epochs, one at a time (Ray has one CPU): the pair's
    Hyperband is one bracket of six (max_t 9, eta 3): each trial pauses at the rung of 3
    epochs until all six reach it, then the best two go on to 9, the other four stop."""
    space = replace(
        get_space("tiny"), backbones=("good",), modes=("stress",), samples=6,
        warmup_epochs=6, finetune_epochs=3,
    )  # fmt: skip
    return SearchSettings(space=space, data=folder, name="s", storage=str(folder / "runs"))


def main(folder: Path, action: str) -> int:
    from search.tuning import runner

    class Progress(runner.SearchProgress):  # the live view, plus the status file
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._statuses = StatusFile(folder / "statuses.json")

        def on_step_end(self, iteration, trials, **info):
            super().on_step_end(iteration, trials, **info)
            self._statuses.on_step_end(iteration, trials)

    runner.SearchProgress = Progress
    settings = settings_for(folder)
    if action == "resume":
        settings = load_settings(settings.experiment)
    prepared = PreparedSearch(dataset=None, split=None, data=None, max_unfreeze={"good": 3})
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        runner.run_search(
            settings, prepared, resume=action == "resume", quiet=True, trainable=stub_trainable
        )
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
