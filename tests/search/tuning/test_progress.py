"""The live view: one row per pair with trials by status, best so far, epochs of budget."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from ray.tune.experiment import Trial

from search.tuning import SearchSettings
from search.tuning.progress import SearchProgress
from spaces import get_space


def fake(pair: str, status: str, epoch: int | None, best: float | None):
    result = {} if epoch is None else {"epoch": epoch, "best_selection": best}
    return SimpleNamespace(config={"pair": pair}, status=status, last_result=result)


def test_the_view_counts_each_pairs_trials():
    space = replace(get_space("tiny"), backbones=("test_resnet",), modes=("stress", "dual"))
    settings = SearchSettings(space=space, data=Path("."), name="v", storage="r")
    progress = SearchProgress(settings, out=io.StringIO())
    trials = [
        fake("test_resnet/stress", Trial.RUNNING, 2, 0.5),
        fake("test_resnet/stress", Trial.PAUSED, 3, 0.7),
        fake("test_resnet/stress", Trial.TERMINATED, 27, 0.9),
        fake("test_resnet/dual", Trial.ERROR, 1, 0.4),
        fake("test_resnet/dual", Trial.PENDING, None, None),
    ]
    rows = progress.view(trials).splitlines()
    stress = next(r for r in rows if "test_resnet/stress" in r).split()
    dual = next(r for r in rows if "test_resnet/dual" in r).split()
    assert stress[1:6] == ["1", "1", "1", "0", "0.900"] and stress[6:8] == ["32", "/"]
    assert dual[1:6] == ["0", "0", "0", "1", "0.400"] and dual[6] == "1"
    assert stress[8] == "60"  # the pair's epoch budget under Hyperband: 6 x 6 + 2 x 12


def test_quiet_progress_prints_a_line_per_finished_trial():
    space = replace(get_space("tiny"), backbones=("test_resnet",), modes=("stress",))
    out = io.StringIO()
    settings = SearchSettings(space=space, data=Path("."), name="v", storage="r")
    progress = SearchProgress(settings, quiet=True, out=out)
    trial = fake("test_resnet/stress", Trial.TERMINATED, 9, 0.8)
    trial.trial_id = "abc"
    progress.on_trial_complete(0, [trial], trial)
    progress.on_step_end(1, [trial])
    assert out.getvalue().count("\n") == 1
    assert "test_resnet/stress abc done: 9 epochs, best 0.800" in out.getvalue()


def test_a_pair_with_no_started_trial_shows_no_best_not_nan():
    """After Ctrl-C a pair may hold only trials that never reported: "-", not "nan"; and
    a pending trial listed first does not hide the best of those that did report."""
    space = replace(get_space("tiny"), backbones=("test_resnet",), modes=("stress", "dual"))
    settings = SearchSettings(space=space, data=Path("."), name="v", storage="r")
    progress = SearchProgress(settings, out=io.StringIO())
    trials = [
        fake("test_resnet/stress", Trial.PENDING, None, None),
        fake("test_resnet/stress", Trial.PAUSED, 2, 0.6),
        fake("test_resnet/dual", Trial.PENDING, None, None),
        fake("test_resnet/dual", Trial.PAUSED, None, None),
    ]
    rows = progress.view(trials).splitlines()
    stress = next(r for r in rows if "test_resnet/stress" in r).split()
    dual = next(r for r in rows if "test_resnet/dual" in r).split()
    assert stress[5] == "0.600"
    assert dual[5] == "-" and dual[6] == "0"
    assert "nan" not in progress.view(trials)
