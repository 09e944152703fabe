"""What showing a search in TensorBoard, optuna-dashboard and MLflow costs: `polarmap demo`
run twice in this process, without any tracker and then with all three (`--mlflow`, a
local SQLite store), each with its own caches; and the time spent inside the trackers
(the driver's calls, and MLflow's writer thread, which runs beside the search).

    .venv/bin/python bench/tracking_cost.py [--patients 160] [--samples N]

The goal (issue 32): tracking adds under 5 % to the demo's time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path
from unittest import mock

from search.cli import main as polarmap
from search.finalize import tracking as finalize_tracking
from search.tracking import Trackers
from search.tracking.mlflow_runs import MlflowTracker


class Stopwatch:
    """Seconds spent in the wrapped calls (a call inside another counted once)."""

    def __init__(self):
        self.seconds, self._depth = 0.0, 0

    def wrap(self, function):
        def timed(*args, **kwargs):
            self._depth += 1
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - started

        return timed


def demo(out: Path, patients: int, samples: int | None, tracked: bool) -> float:
    """One `polarmap demo` into `out` with caches of its own; its wall time."""
    args = ["demo", "--out", str(out / "run"), "--cache", str(out / "maps"), "--quiet"]
    args += ["--patients", str(patients)] + (["--samples", str(samples)] if samples else [])
    if tracked:
        args += ["--mlflow", str(out / "mlflow")]
    os.environ["POLARMAP_FROZEN"] = str(out / "frozen")
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        if tracked:
            code = polarmap(args)
        else:
            with mock.patch("search.tuning.runner.search_trackers", lambda *a: Trackers()):
                code = polarmap(args)
    assert code == 0, f"demo failed ({code})"
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=160, help="(default 160, as make demo)")
    parser.add_argument("--samples", type=int, default=None, help="trials per pair")
    options = parser.parse_args()
    driver, writer, finals = Stopwatch(), Stopwatch(), Stopwatch()
    with tempfile.TemporaryDirectory() as root:
        plain = demo(Path(root, "plain"), options.patients, options.samples, tracked=False)
        with (
            mock.patch.object(Trackers, "_tell", driver.wrap(Trackers._tell)),
            mock.patch.object(MlflowTracker, "_end", writer.wrap(MlflowTracker._end)),
            mock.patch.object(MlflowTracker, "_log_epochs", writer.wrap(MlflowTracker._log_epochs)),
            mock.patch(
                "search.finalize.pipeline.log_finals",
                finals.wrap(finalize_tracking.log_finals),
            ),
        ):
            tracked = demo(Path(root, "tracked"), options.patients, options.samples, True)
    print(f"demo without trackers:            {plain:7.1f} s")
    print(f"demo with all three (--mlflow):   {tracked:7.1f} s   ratio {tracked / plain:.3f}")
    print(f"  driver, inside the trackers:    {driver.seconds:7.2f} s")
    print(f"  MLflow writer thread, busy:     {writer.seconds:7.2f} s (beside the search)")
    print(f"  finalize's MLflow runs:         {finals.seconds:7.2f} s")


if __name__ == "__main__":
    main()
