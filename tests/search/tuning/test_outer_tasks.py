"""Outer searches at once under one driver, with stand-ins for the searches: at most N
run at a time and each outer fold's status comes back; Ctrl-C stops the running ones
cleanly (their searches see SIGINT, as Ray Tune's clean stop needs) and starts no more."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from search.tuning import SearchSettings, outer_tasks
from search.tuning.outer_tasks import OuterJob, run_outer_searches
from spaces import get_space

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def stand_in_search(settings, dataset, resume) -> str:
    """Notes its start and end in its storage folder. A `quick` one ends once two searches
    have started (`alone` if none joins it within a minute), so the test does not depend
    on how fast a loaded machine starts Ray's workers; a `slow` one runs two minutes. Either
    ends at once as `interrupted` when SIGINT reaches it (the search's own Ctrl-C handling)."""
    folder = Path(settings.storage)
    (folder / f"{settings.name}.started").write_text(repr(time.time()))
    pressed = []
    signal.signal(signal.SIGINT, lambda *_: pressed.append(True))
    quick = "quick" in settings.name
    deadline = time.time() + (60.0 if quick else 120.0)
    joined = False
    while time.time() < deadline and not pressed and not joined:
        joined = quick and len(list(folder.glob("quick-outer-*.started"))) >= 2
        time.sleep(0.05)
    (folder / f"{settings.name}.ended").write_text(repr(time.time()))
    return "interrupted" if pressed else "completed" if joined or not quick else "alone"


def jobs(tmp_path: Path, name: str, count: int = 3) -> list[OuterJob]:
    base = SearchSettings(space=get_space("tiny"), data=tmp_path, name=name,
                          storage=str(tmp_path))  # fmt: skip
    return [OuterJob(m, replace(base, name=f"{name}-outer-{m}"), False) for m in range(count)]


def times(tmp_path: Path, name: str, what: str) -> dict[int, float]:
    found = tmp_path.glob(f"{name}-outer-*.{what}")
    return {int(p.stem.rsplit("-", 1)[1]): float(p.read_text()) for p in found}


def test_at_most_n_outer_searches_run_at_once(ray_session, tmp_path, monkeypatch):
    monkeypatch.setattr(outer_tasks, "_search_task", stand_in_search)
    said = []
    statuses = run_outer_searches(jobs(tmp_path, "quick"), None, 2, 3, say=said.append)
    assert statuses == {0: "completed", 1: "completed", 2: "completed"}
    started, ended = times(tmp_path, "quick", "started"), times(tmp_path, "quick", "ended")
    assert max(started[0], started[1]) < min(ended[0], ended[1])  # two at once
    assert started[2] >= min(ended[0], ended[1])  # the third waited for a free place
    assert sum("started" in line for line in said) == 3
    assert sum("completed" in line for line in said) == 3


def test_ctrl_c_stops_the_running_outer_searches_and_starts_no_more(
    ray_session, tmp_path, monkeypatch
):
    monkeypatch.setattr(outer_tasks, "_search_task", stand_in_search)

    def press_ctrl_c_once_two_run():
        while len(times(tmp_path, "slow", "started")) < 2:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c_once_two_run, daemon=True).start()
    said = []
    began = time.monotonic()
    statuses = run_outer_searches(jobs(tmp_path, "slow"), None, 2, 3, say=said.append)
    assert time.monotonic() - began < 60  # not the searches' 120 s
    assert statuses == {0: "interrupted", 1: "interrupted", 2: "not started"}
    assert set(times(tmp_path, "slow", "ended")) == {0, 1}  # each ended its own way
    assert any("stopping the running outer searches cleanly" in line for line in said)
