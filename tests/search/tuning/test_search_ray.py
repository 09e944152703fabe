"""The search on Ray Tune with stub trainables: each pair has its own Hyperband, pairs run
side by side, trials pause and resume without gaps, failing trials end as errored."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from search.layout import frozen_store_dir
from search.tuning import PreparedSearch, SearchSettings
from spaces import get_space

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def search_settings(tmp_path: Path, backbones=("good", "bad"), samples=6, **changes):
    space = replace(
        get_space("tiny"), backbones=backbones, modes=("stress",), samples=samples,
        warmup_epochs=6, finetune_epochs=3,
    )  # fmt: skip
    return SearchSettings(
        space=space, data=tmp_path, name="s", storage=str(tmp_path / "runs"), **changes
    )


def prepared(settings: SearchSettings) -> PreparedSearch:
    limits = dict.fromkeys(settings.space.backbones, 3)
    return PreparedSearch(dataset=None, split=None, data=None, max_unfreeze=limits)


def stub_trainable(config, data=None, frozen_store=None):
    """Reports a fixed score per backbone ('good' 0.9, others 0.1, a little noise by
    width so ranks are defined), one epoch a report, with a checkpoint, resuming from it;
    'failing' raises at epoch 2 and leaves a file for each attempt; with the option
    'watch' it reports how many trials the result tables there hold; with 'signal_driver'
    the first trial stops the search as Ray's own stop signal does (with
    'signal_at_epoch', the first trial to reach that epoch presses Ctrl-C: SIGINT to
    'signal_driver_at'). Its options come from stub.json in the folder the runner names
    as the frozen-work store (a test's own)."""
    from ray import tune

    scratch = Path(frozen_store)
    options = json.loads((scratch / "stub.json").read_text())
    failing = config["backbone"] == "failing"
    if options.get("fail_first"):  # the first trial to start fails, in every attempt
        claim = scratch / "first-trial"
        try:
            with open(claim, "x") as handle:
                handle.write(tune.get_context().get_trial_id())
        except FileExistsError:
            pass
        failing = claim.read_text() == tune.get_context().get_trial_id()
    trial_id = tune.get_context().get_trial_id()
    if failing:
        (scratch / "attempts").mkdir(exist_ok=True)
        (scratch / "attempts" / f"{time.time_ns()}").touch()
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = json.loads((Path(folder) / "state.json").read_text())["epoch"]
    if options.get("signal_driver") and not (scratch / "signalled").exists():
        (scratch / "signalled").touch()  # once: as a user pressing Ctrl-C (SIGUSR1 here)
        os.kill(options["signal_driver"], signal.SIGUSR1)
    seen = {}
    if options.get("watch"):  # how many trials the result tables hold as this one starts
        seen["rows_seen"] = len(list(Path(options["watch"]).glob("trials/*/*.parquet")))
    score = (0.9 if config["backbone"] == "good" else 0.1) + config["width"] / 1e4
    total = config["warmup_epochs"] + config["finetune_epochs"]
    for epoch in range(start + 1, total + 1):
        if epoch == options.get("fail_at", 2) and (failing or fails_once(scratch, options)):
            (scratch / f"failed-once-{trial_id}").touch()
            raise RuntimeError(f"this trial fails at epoch {epoch}")
        if epoch == options.get("signal_at_epoch"):  # once, by the first trial to get here
            with contextlib.suppress(FileExistsError), open(scratch / "signalled", "x"):
                stop = getattr(signal, options.get("signal_name", "SIGINT"))  # Ctrl-C
                os.kill(options["signal_driver_at"], stop)
        started = time.time()
        time.sleep(options.get("fail_sleep" if failing else "sleep", options.get("sleep", 0.0)))
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report(
                {"epoch": epoch, "best_selection": score, "started": started,
                 "ended": time.time(), **seen},
                checkpoint=tune.Checkpoint.from_directory(folder),
            )  # fmt: skip


def fails_once(scratch: Path, options: dict) -> bool:
    """Whether this trial is one of the first `fail_once` to reach `fail_at` (so the
    trials that fail are ones a bracket keeps that far) and has not failed before."""
    from ray import tune

    trial_id = tune.get_context().get_trial_id()
    if (scratch / f"failed-once-{trial_id}").exists():
        return False
    for n in range(options.get("fail_once", 0)):
        claim = scratch / f"fails-once-{n}"
        with contextlib.suppress(FileExistsError), open(claim, "x") as handle:
            handle.write(trial_id)
        if claim.read_text() == trial_id:
            return True
    return False


def run(settings, resume=False, **options):
    from search.tuning.runner import run_search

    (frozen_store_dir() / "stub.json").write_text(json.dumps(options))
    return run_search(
        settings, prepared(settings), resume=resume, quiet=True, trainable=stub_trainable
    ).results


def epochs_per_pair(results) -> dict[str, list[int]]:
    runs: dict[str, list[int]] = {}
    for result in results:
        runs.setdefault(result.config["pair"], []).append(int(result.metrics["epoch"]))
    return {pair: sorted(epochs) for pair, epochs in runs.items()}


def test_each_pair_stops_trials_early_in_a_bracket_sized_to_it(ray_session, tmp_path):
    results = run(search_settings(tmp_path))
    runs = epochs_per_pair(results)
    # max_t 9, eta 3, 6 trials a pair: too few for a Hyperband round (17), so one bracket
    # of 6: all run to the rung at 3 epochs, ceil(6 / 3) = 2 go on to 9, 4 stop early.
    # A single Hyperband over both pairs would stop the 0.1 pair's trials in favour of
    # the 0.9 pair's.
    assert runs == {"good/stress": [3, 3, 3, 3, 9, 9], "bad/stress": [3, 3, 3, 3, 9, 9]}


def test_trials_of_both_pairs_run_at_the_same_time(ray_session, tmp_path):
    settings = search_settings(tmp_path, samples=3, scheduler="asha")
    results = run(settings, sleep=0.3)
    spans = {
        pair: [
            (r.metrics_dataframe["started"].min(), r.metrics_dataframe["ended"].max())
            for r in results if r.config["pair"] == pair
        ]
        for pair in ("good/stress", "bad/stress")
    }  # fmt: skip
    overlaps = [
        (a, b) for a in spans["good/stress"] for b in spans["bad/stress"]
        if a[0] < b[1] and b[0] < a[1]
    ]  # fmt: skip
    assert overlaps


def test_paused_trials_continue_without_gaps_or_repeats(ray_session, tmp_path):
    results = run(search_settings(tmp_path, backbones=("good",), samples=9))
    paused = 0
    for result in results:
        epochs = list(result.metrics_dataframe["epoch"])
        assert epochs == list(range(1, len(epochs) + 1)), epochs
        assert epochs[-1] <= 9
        paused += epochs[-1] > 3  # went past a rung, so it was paused and resumed there
    assert paused >= 1


def test_an_always_failing_trial_is_retried_then_errored_and_the_search_ends(ray_session, tmp_path):
    settings = search_settings(tmp_path, backbones=("good", "failing"), samples=1)
    settings = replace(settings, max_failures=2)
    results = run(settings)
    errored = [r for r in results if r.error is not None]
    assert len(errored) == 1 and errored[0].config["backbone"] == "failing"
    assert "fails at epoch 2" in str(errored[0].error)
    attempts = frozen_store_dir() / "attempts"
    assert len(list(attempts.iterdir())) == 3  # the first run and 2 retries
    good = [r for r in results if r.config["backbone"] == "good"]
    assert good[0].metrics["epoch"] == 9


def test_the_time_budget_stops_the_search_cleanly(ray_session, tmp_path):
    settings = replace(search_settings(tmp_path, samples=6), time_budget_s=4.0)
    started = time.monotonic()
    results = run(settings, sleep=0.5)  # 9 epochs of 0.5 s: no trial can finish in time
    assert time.monotonic() - started < 60
    assert not results.errors
    assert all(r.metrics.get("epoch", 0) < 9 for r in results)


def test_a_trial_failing_beside_paused_ones_does_not_stall_the_search(ray_session, tmp_path):
    """Three trials in the pair's bracket: two reach the rung at 3 epochs and pause for
    the third, which fails; the bracket goes on without it (one of the two to the end)."""
    from results import load_searches

    settings = replace(
        search_settings(tmp_path, backbones=("good",), samples=3),
        max_failures=0, time_budget_s=240.0,  # a stalled search would end only here
    )  # fmt: skip
    results = run(settings, fail_first=True, sleep=0.1, fail_sleep=3.0)
    # ended by its trials, not by the budget (its wall time depends on the machine's load:
    # a 60 s budget was once reached on a loaded CI machine with the search not stalled)
    (row,) = load_searches(tmp_path / "runs" / "results").to_dict("records")
    assert row["status"] == "completed"
    assert sorted(r.error is None for r in results) == [False, True, True]
    assert sorted(r.metrics.get("epoch") for r in results if r.error is None) == [3, 9]


def test_a_trial_retried_after_a_failure_keeps_its_place_in_its_bracket(ray_session, tmp_path):
    """Trials that fail once (as two on a lost node) and are restarted from their
    checkpoints go on in their own Hyperband bracket. Ray re-adds them as new trials,
    which put them in a fresh bracket where they waited for each other: the search
    stalled to its time budget."""
    from results import load_searches

    settings = replace(
        search_settings(tmp_path, backbones=("good",), samples=4),
        max_failures=1, time_budget_s=240.0,  # a stalled search would end only here
    )  # fmt: skip
    results = run(settings, fail_once=2, fail_at=5, sleep=0.1)  # as two on a lost node
    # ended by its trials, not by the budget (its wall time depends on the machine's load)
    (row,) = load_searches(tmp_path / "runs" / "results").to_dict("records")
    assert row["status"] == "completed"
    assert not results.errors
    # the bracket of 4 keeps 2 after its rung at 3: those two failed once at epoch 5
    assert sorted(r.metrics["epoch"] for r in results) == [3, 3, 9, 9]
    for result in results:  # the retried trials went on from their checkpoints: no repeat
        epochs = list(result.metrics_dataframe["epoch"])
        # (Ray's own record can lose the line of an epoch reported just before a pause)
        assert epochs == sorted(set(epochs)) and epochs[-1] == result.metrics["epoch"], epochs
    # the two trials the bracket kept past 3 failed once at 5, were retried and ran to 9
    failed = {p.name.removeprefix("failed-once-") for p in frozen_store_dir().glob("failed-once-*")}
    assert failed == {r.metrics["trial_id"] for r in results if r.metrics["epoch"] == 9}


def test_trials_land_in_the_tables_while_the_search_runs(ray_session, tmp_path):
    settings = search_settings(
        tmp_path, backbones=("good",), samples=3, scheduler="asha", max_concurrent=1
    )
    results = run(settings, watch=str(tmp_path / "runs" / "results"))
    seen = sorted(r.metrics_dataframe["rows_seen"].iloc[0] for r in results)
    # one trial at a time: each found every trial that ended before it in the tables
    assert seen == [0, 1, 2]


def test_a_search_stopped_by_the_user_says_so_in_its_searches_row(ray_session, tmp_path, capsys):
    from results import load_searches, load_trials

    settings = search_settings(
        tmp_path, backbones=("good",), samples=3, scheduler="asha", max_concurrent=1
    )
    run(settings, signal_driver=os.getpid(), sleep=0.5)
    (row,) = load_searches(tmp_path / "runs" / "results").to_dict("records")
    assert row["status"] == "interrupted" and row["ended"] is not None
    assert f"polarmap search resume {tmp_path / 'runs' / 's'}" in capsys.readouterr().err
    run(settings, resume=True)  # as `polarmap search resume` does: the rest of the trials
    (row,) = load_searches(tmp_path / "runs" / "results").to_dict("records")
    trials = load_trials(tmp_path / "runs" / "results")
    assert row["status"] == "completed" and len(trials) == 3


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_ctrl_c_while_every_trial_runs_is_an_interruption_not_an_end(
    ray_session, tmp_path, stop, capsys
):
    """Every trial made and running when the user stops the search: Ray stops them as
    it returns, as if they had ended. Their searches row said `completed`, and a rebuilt
    trials table called them `stopped` (the scheduler's word), ready for finalize.
    SIGTERM (preemption, scancel) is Ctrl-C's graceful stop too (it ended in Ray's crash
    dump, status 134)."""
    from results import load_searches, load_trials
    from search.finalize.pipeline import FinalizeSettings, finalize
    from search.tuning.ingest import ingest_experiment
    from search.tuning.runner import run_search

    # one trial: a pair's bracket stops none of it, and it runs when Ctrl-C comes
    settings = search_settings(tmp_path, backbones=("good",), samples=1)
    options = dict(signal_at_epoch=4, signal_driver_at=os.getpid(), sleep=0.3, signal_name=stop)
    (frozen_store_dir() / "stub.json").write_text(json.dumps(options))
    ran = run_search(settings, prepared(settings), quiet=True, trainable=stub_trainable)
    assert ran.interrupted and ran.stopped_by == stop
    assert f"go on with: polarmap search resume {tmp_path / 'runs' / 's'}" in (
        capsys.readouterr().err
    )
    results = tmp_path / "runs" / "results"
    (row,) = load_searches(results).to_dict("records")
    assert row["status"] == "interrupted"
    assert ingest_experiment(tmp_path / "runs" / "s") == 1
    assert set(load_trials(results)["status"]) == {"interrupted"}
    with pytest.raises(ValueError, match=r"has not finished.*polarmap search resume"):
        finalize(FinalizeSettings(results=str(results), search="s"))


def test_a_resume_makes_the_trials_a_killed_driver_never_saved(ray_session, tmp_path):
    """Ray saves the trials and the searcher side by side and copies them to the storage
    one after the other: a driver killed in between left a state knowing one trial beside
    a searcher that had made all six, and a resume ran one trial and ended."""
    from results import load_searches, load_trials

    settings = search_settings(tmp_path, backbones=("good",), samples=6)
    run(settings, signal_driver=os.getpid(), sleep=0.3)  # stopped as the first trial starts
    experiment = tmp_path / "runs" / "s"
    state_path = max(experiment.glob("experiment_state-*.json"))
    state = json.loads(state_path.read_text())
    state["trial_data"] = state["trial_data"][:1]  # as a copy cut short by the kill
    state_path.write_text(json.dumps(state))

    results = run(settings, resume=True)
    assert len(results) == 6 and not results.errors
    (row,) = load_searches(tmp_path / "runs" / "results").to_dict("records")
    assert row["status"] == "completed"
    assert len(load_trials(tmp_path / "runs" / "results")) == 6


def test_a_stop_that_takes_longer_than_the_grace_after_sigterm_ends_at_once(monkeypatch):
    """Slurm and Kubernetes kill 30 s after SIGTERM: a graceful stop that hangs gives way
    to an immediate one (as a second SIGTERM does) before that."""
    from search.errors import Terminated
    from search.tuning.runner import StopSignals

    monkeypatch.setenv("POLARMAP_TERM_GRACE", "0.3")
    asked = []
    started = time.monotonic()
    with pytest.raises(Terminated), StopSignals(then=lambda: asked.append(1)) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # a graceful stop that never comes
    assert stop.received == "SIGTERM" and asked == [1]
    assert time.monotonic() - started < 5
    with pytest.raises(KeyboardInterrupt), StopSignals() as stop:  # Ctrl-C twice: at once
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(10)
