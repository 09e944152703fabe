"""A search whose saved searcher state a kill cut short still resumes: Ray's files in the
experiment folder are damaged (a kill while Ray copies them to the storage writes them in
place), and the one resume restores them from the searcher's own copy and finishes every
trial once. The search is `interrupted_search.py` (see test_interruptions.py)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from results.store import ResultStore
from tests.search.tuning.test_interruptions import TRIALS, driver, mid_bracket

pytestmark = [pytest.mark.slow, pytest.mark.alone]


def newest(folder: Path, prefix: str) -> Path:
    return sorted(folder.glob(f"{prefix}*"))[-1]


def test_a_resume_repairs_state_files_a_kill_cut_short(tmp_path):
    run = driver(tmp_path, "run")
    deadline = time.monotonic() + 150
    while not mid_bracket(tmp_path):
        assert run.poll() is None and time.monotonic() < deadline, (
            tmp_path / "run.log"
        ).read_text()[-3000:]
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    run.wait(timeout=60)
    experiment = tmp_path / "runs" / "s"
    searcher = newest(experiment, "searcher-state-")
    searcher.write_bytes(searcher.read_bytes()[: searcher.stat().st_size // 2])  # cut short
    newest(experiment, "search_gen_state-").write_bytes(b"")  # cut before its first byte

    resume = driver(tmp_path, "resume")
    try:
        assert resume.wait(timeout=180) == 0, (tmp_path / "resume.log").read_text()[-3000:]
    except subprocess.TimeoutExpired:
        resume.kill()
        raise
    log = (tmp_path / "resume.log").read_text()
    assert "restored from its copy" in log

    store = ResultStore(tmp_path / "runs" / "results")
    trials = store.table("trials", search="s").to_pandas()
    assert sorted(trials["trial_id"]) == sorted(set(trials["trial_id"])) and len(trials) == TRIALS
    assert len(list(experiment.glob("*/params.json"))) == TRIALS
    assert set(trials["status"]) <= {"completed", "stopped"}
    (row,) = store.table("searches", search="s").to_pylist()
    assert row["status"] == "completed"
