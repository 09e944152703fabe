"""The Optuna journal tracker: each pair's study as the searcher tells it, read back with
Optuna, by a resumed process, over optuna-dashboard's HTTP API, and on object storage.

`serve_dashboard` and `dashboard_studies` are for other tests to reuse (an end-to-end
demo, say): the real `optuna-dashboard` server on a journal, and its studies over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from results.rows import TrialRows, trial_rows
from search.files import open_location, read_file
from search.tracking.optuna_journal import StudyJournal, journal_path
from search.tracking.viewers import JOURNAL_FILE
from spaces import get_space

SPACE = get_space("tiny")  # width 16|32|64, depth 1..2, dropout 0..0.5, a 1..2, unfreeze 8..
MAX_UNFREEZE = {"test_resnet": 12, "test_efficientnet": 20}
MAX_EPOCHS = 3  # 1 warm-up + 2 fine-tune epochs, as the configs below say
DRAWN = ("width", "depth", "dropout", "a", "unfreeze")  # the tiny space's searched ranges
STRESS, DUAL = "test_resnet/stress", "test_efficientnet/dual"


def trial_config(pair: str, width: int, depth: int, dropout: float, a: float, unfreeze: int):
    """A trial's flat config as the search draws it from the tiny space."""
    backbone, mode = pair.split("/")
    return {
        "backbone": backbone, "mode": mode, "pair": pair, "width": width, "depth": depth,
        "dropout": dropout, "a": a, "unfreeze": unfreeze, "batch_size": 16,
        "augment": "none", "warmup_epochs": 1, "finetune_epochs": 2, "seed": 0,
    }  # fmt: skip


def ended(trial_id: str, config: dict, scores: list[float], **how) -> tuple[dict, TrialRows]:
    """A trial's config and rows after reporting `scores` (best selection so far), one an
    epoch; `how`: `error=` or `interrupted=True`, as `trial_rows` takes them."""
    records = [{"epoch": e, "best_selection": s} for e, s in enumerate(scores, start=1)]
    return config, trial_rows("my-search", trial_id, config, records, **how)


# trial id -> (config, rows): two pairs, a trial of each way to end
TRIALS = {
    "t1": ended("t1", trial_config(STRESS, 32, 1, 0.25, 1.5, 9), [0.4, 0.5, 0.6]),
    "t2": ended("t2", trial_config(STRESS, 16, 2, 0.1, 1.2, 12), [0.3]),
    "t3": ended("t3", trial_config(DUAL, 64, 1, 0.4, 1.9, 8), [0.2], error="Boom"),
    "t4": ended("t4", trial_config(DUAL, 32, 2, 0.0, 1.0, 20), [0.5, 0.55], interrupted=True),
    "t5": ended("t5", trial_config(DUAL, 16, 1, 0.5, 2.0, 15), [0.45, 0.7, 0.7]),
}


def tracker_of(experiment) -> StudyJournal:
    return StudyJournal(str(experiment), SPACE.ranges, MAX_UNFREEZE, MAX_EPOCHS)


def end_trials(tracker: StudyJournal, ids) -> None:
    for trial_id in ids:
        config, rows = TRIALS[trial_id]
        tracker.trial_ended(trial_id, config, rows)


def load(journal, pair: str) -> optuna.Study:
    storage = JournalStorage(JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=pair, storage=storage)


def by_trial_id(study: optuna.Study) -> dict[str, optuna.trial.FrozenTrial]:
    return {t.user_attrs["trial_id"]: t for t in study.get_trials()}


def trial_ids(journal, pair: str) -> list[str]:
    """The ids of the pair's trials in the journal, in order, a duplicate included."""
    return [t.user_attrs["trial_id"] for t in load(journal, pair).get_trials()]


def test_each_pair_has_its_study_told_as_the_searcher_tells_it(tmp_path):
    experiment = tmp_path / "runs" / "my-search"
    tracker = tracker_of(experiment)
    end_trials(tracker, TRIALS)
    tracker.close()

    journal = experiment / JOURNAL_FILE
    assert journal_path(str(experiment)) == str(journal)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    assert sorted(optuna.get_all_study_names(storage)) == [DUAL, STRESS]
    assert trial_ids(journal, STRESS) == ["t1", "t2"]
    assert trial_ids(journal, DUAL) == ["t3", "t5"]  # t4 was interrupted: a resume goes on
    stress, dual = by_trial_id(load(journal, STRESS)), by_trial_id(load(journal, DUAL))

    assert stress["t1"].state == TrialState.COMPLETE and stress["t1"].value == 0.6
    assert stress["t2"].state == TrialState.PRUNED and stress["t2"].value is None
    assert dual["t3"].state == TrialState.FAIL and dual["t3"].value is None
    assert dual["t5"].state == TrialState.COMPLETE and dual["t5"].value == 0.7

    assert stress["t1"].intermediate_values == {1: 0.4, 2: 0.5, 3: 0.6}
    assert stress["t2"].intermediate_values == {1: 0.3}
    assert dual["t3"].intermediate_values == {1: 0.2}
    for trial_id, trial in {**stress, **dual}.items():
        config, rows = TRIALS[trial_id]
        assert trial.params == {name: config[name] for name in DRAWN}
        assert trial.user_attrs == {
            "trial_id": trial_id,
            "status": rows.trial["status"],
            "epochs_run": rows.trial["epochs_run"],
        }
    assert stress["t2"].user_attrs["status"] == "stopped"
    assert stress["t2"].user_attrs["epochs_run"] == 1

    assert stress["t1"].distributions == {
        "width": CategoricalDistribution([16, 32, 64]),
        "depth": IntDistribution(1, 2),
        "dropout": FloatDistribution(0.0, 0.5),
        "a": FloatDistribution(1.0, 2.0),
        "unfreeze": IntDistribution(8, 12),  # up to the backbone's largest depth
    }
    assert dual["t5"].distributions["unfreeze"] == IntDistribution(8, 20)

    study = load(journal, STRESS)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.user_attrs == {"max_epochs": MAX_EPOCHS}
    assert study.best_trial.user_attrs["trial_id"] == "t1"


def test_a_trial_without_a_score_fails_and_an_unheld_value_is_left_out(tmp_path):
    tracker = tracker_of(tmp_path)
    silent = ended("t6", trial_config(STRESS, 32, 1, 0.2, 1.5, 9), [])  # stopped, no report
    tracker.trial_ended("t6", *silent)
    odd = ended("t7", trial_config(STRESS, 48, 1, 0.2, 1.5, 9), [0.3, 0.4, 0.5])  # width 48?
    tracker.trial_ended("t7", *odd)

    trials = by_trial_id(load(tmp_path / JOURNAL_FILE, STRESS))
    assert trials["t6"].state == TrialState.FAIL
    assert trials["t7"].state == TrialState.COMPLETE
    assert "width" not in trials["t7"].params and trials["t7"].params["depth"] == 1


def test_a_resumed_search_adds_each_trial_once(tmp_path):
    first = tracker_of(tmp_path)
    end_trials(first, ["t1", "t2", "t3"])
    end_trials(first, ["t1"])  # told twice in one process
    copy = pickle.loads(pickle.dumps(first))  # as Ray saves it with the recorder
    assert copy._storage is None and copy.experiment == str(tmp_path)
    end_trials(copy, ["t2", "t4"])

    resumed = tracker_of(tmp_path)  # a new process: learns what the journal holds
    end_trials(resumed, TRIALS)
    resumed.close()

    journal = tmp_path / JOURNAL_FILE
    assert trial_ids(journal, STRESS) == ["t1", "t2"]
    assert trial_ids(journal, DUAL) == ["t3", "t5"]


def test_optuna_dashboard_shows_each_pair_s_study(tmp_path):
    tracker = tracker_of(tmp_path)
    end_trials(tracker, TRIALS)
    tracker.close()

    with serve_dashboard(tmp_path / JOURNAL_FILE) as url:
        studies = {s["study_name"]: s for s in dashboard_studies(url)}

    assert sorted(studies) == [DUAL, STRESS]
    assert [t["state"] for t in studies[STRESS]["trials"]] == ["Complete", "Pruned"]
    assert [t["state"] for t in studies[DUAL]["trials"]] == ["Fail", "Complete"]
    assert studies[STRESS]["directions"] == ["maximize"]
    t1 = studies[STRESS]["trials"][0]
    assert {p["name"]: p["param_external_value"] for p in t1["params"]}["width"] == "32"


def test_a_journal_on_object_storage_is_put_after_each_trial(s3_storage, tmp_path):
    base, _, query = s3_storage.partition("?")
    experiment = f"{base}/my-search?{query}"
    tracker = tracker_of(experiment)
    end_trials(tracker, ["t1", "t2", "t3"])
    assert "my-search/optuna.journal?" in journal_path(experiment)

    resumed = tracker_of(experiment)  # downloads what is stored, then adds to it
    end_trials(resumed, TRIALS)
    local = Path(resumed._local)
    resumed.close()
    tracker.close()
    assert not local.exists()  # the temporary copy is gone

    fs, path = open_location(journal_path(experiment))
    journal = tmp_path / "downloaded.journal"
    journal.write_bytes(read_file(fs, path))
    assert trial_ids(journal, STRESS) == ["t1", "t2"]
    assert trial_ids(journal, DUAL) == ["t3", "t5"]
    assert load(journal, DUAL).best_value == 0.7


# -- optuna-dashboard, served and read over HTTP (reusable by other tests)


@contextlib.contextmanager
def serve_dashboard(journal, timeout: float = 30.0) -> Iterator[str]:
    """The real `optuna-dashboard` server on the Optuna journal file `journal`, on a free
    port of 127.0.0.1, while the block runs: yields its base URL ("http://127.0.0.1:N")
    once it answers; stopped afterwards."""
    port = _free_port()
    command = [
        _dashboard_command(), "--storage-class", "JournalFileStorage", "--host", "127.0.0.1",
        "--port", str(port), "--server", "wsgiref", "--quiet", str(journal),
    ]  # fmt: skip
    with tempfile.TemporaryFile() as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_answering(url, server, output, timeout)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def dashboard_studies(base_url: str) -> list[dict]:
    """The dashboard's studies (`GET /api/studies`: study_id, study_name, directions,
    user_attrs), each with its trials from its detail (`GET /api/studies/<study_id>`:
    number, state "Complete" | "Pruned" | "Fail" | ..., values, params,
    intermediate_values, user_attrs)."""
    summaries = _get_json(f"{base_url}/api/studies")["study_summaries"]
    studies = []
    for summary in summaries:
        detail = _get_json(f"{base_url}/api/studies/{summary['study_id']}")
        studies.append({**summary, "trials": detail["trials"]})
    return studies


def _dashboard_command() -> str:
    beside = Path(sys.executable).parent / "optuna-dashboard"
    found = str(beside) if beside.exists() else shutil.which("optuna-dashboard")
    if found is None:
        raise AssertionError("optuna-dashboard is not installed: `make setup` installs it")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_answering(url: str, server: subprocess.Popen, output, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output.seek(0)
            raise RuntimeError(f"optuna-dashboard exited: {output.read().decode(errors='replace')}")
        with contextlib.suppress(OSError):
            _get_json(f"{url}/api/meta")
            return
        time.sleep(0.2)
    raise TimeoutError(f"optuna-dashboard did not answer at {url} within {timeout:g} s")


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())
