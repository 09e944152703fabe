"""Shared fixtures: small, valid data sets written to a temporary folder."""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from results.rows import trial_rows
from results.store import ResultStore
from search.data.manifest import manifest_text
from search.data.segments import TERRITORIES, segment_map
from search.files import write_atomic
from search.logs import configure_logging

# Files take the process's umask; the tests that check file modes expect the usual one.
os.umask(0o022)

EXAMPLE_COUNTS = {"Infarction": 8, "Ischemia": 10, "Normal": 22}


def write_example_dataset(
    out: Path,
    size: int = 96,
    seed: int = 0,
    counts: dict[str, int] | None = None,
    sites: int | None = None,
) -> Path:
    """Plain grey bullseyes, one uptake per segment: a fast, valid triad data set
    (`counts` patients per class, default EXAMPLE_COUNTS); with `sites`, a `site` column
    (S1, S2, ...) dealt round each class's patients.

    Ischemia lowers part of a territory at stress, infarction at rest and stress.
    """
    rng = np.random.default_rng(seed)
    segments = segment_map(size)
    rows, number = [], 0
    for label, count in (counts or EXAMPLE_COUNTS).items():
        for within in range(count):
            number += 1
            pid = f"P{number:03d}"
            rest = np.clip(rng.normal(0.85, 0.05, 18), 0.65, 1.0)
            stress = rest.copy()
            if label != "Normal":
                territory = TERRITORIES[str(rng.choice(list(TERRITORIES)))]
                hit = rng.choice(territory, size=2, replace=False)
                stress[hit] -= 0.35
                if label == "Infarction":
                    rest[hit] -= 0.3
            row = {"patient_id": pid}
            for view, uptake in (("rest", rest), ("stress", stress)):
                pixels = uptake[segments] + rng.normal(0, 0.02, segments.shape)
                pixels[segments == 0] = 0
                buffer = io.BytesIO()
                Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(
                    buffer, format="PNG"
                )
                write_atomic(out / f"images/{pid}_{view}.png", buffer.getvalue())
                row[f"{view}_path"] = f"images/{pid}_{view}.png"
            row["label"] = label
            row["sex"] = str(rng.choice(["F", "M"]))
            if sites:
                row["site"] = f"S{within % sites + 1}"
            rows.append(row)
    return write_atomic(out / "manifest.csv", manifest_text(rows))


@pytest.fixture(autouse=True)
def logging_as_the_command_shows_it():
    """Log records reach stderr as `polarmap` shows them (`warning: ...`), also where a
    test calls a module directly instead of through the command line."""
    configure_logging(logging.INFO)


@pytest.fixture(autouse=True)
def private_map_cache(tmp_path_factory, monkeypatch):
    """Commands that fall back to the default map cache and frozen-work store write to
    temporary ones, never to the user's ~/.cache."""
    monkeypatch.setenv("POLARMAP_CACHE", str(tmp_path_factory.mktemp("map-cache")))
    monkeypatch.setenv("POLARMAP_FROZEN", str(tmp_path_factory.mktemp("frozen")))


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """A valid dual-view triad manifest: 8 Infarction, 10 Ischemia, 22 Normal, 96 px maps."""
    return write_example_dataset(tmp_path / "data")


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.fixture
def edit_manifest(manifest: Path):
    """Rewrite the manifest through a function of its rows (row 1 is the header, as in
    the check's messages: `rows[4]` is row 5)."""

    def edit(change) -> Path:
        rows = read_rows(manifest)
        change(rows)
        return write_rows(manifest, rows)

    return edit


@dataclass
class FinishedSearch:
    """A real search's folders: `storage` holds its experiment (`storage/name`) and the
    result tables (`results`); `out` is what it printed."""

    root: Path
    storage: Path
    name: str
    out: str

    @property
    def results(self) -> Path:
        return self.storage / "results"

    @property
    def experiment(self) -> Path:
        return self.storage / self.name

    @property
    def mlflow(self) -> str:
        return f"sqlite:///{self.root / 'mlflow' / 'mlflow.db'}"


@pytest.fixture(scope="session")
def finished_search(tmp_path_factory) -> FinishedSearch:
    """A real search on Ray, run once per session for the tests that read what a search
    leaves: test_resnet, stress and dual, 3 trials a pair, 1 + 2 epochs, in the default
    storage folder (`polarmap-runs`) under `root`, named `my-search`, shown in MLflow (an
    SQLite store in `root/mlflow`)."""
    from search.cli import main

    root = tmp_path_factory.mktemp("finished-search")
    manifest = write_example_dataset(root / "data")
    storage = root / "polarmap-runs"
    args = [
        "search", "run", "--data", str(manifest), "--space", "tiny", "--backbones",
        "test_resnet", "--modes", "stress,dual", "--split", "50/25/25", "--samples", "3",
        "--warmup-epochs", "1", "--finetune-epochs", "2", "--storage", str(storage),
        "--name", "my-search", "--quiet", "--mlflow", str(root / "mlflow"),
    ]  # fmt: skip
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(printed):
        env.setenv("POLARMAP_CACHE", str(root / "map-cache"))  # session-wide: no autouse
        env.setenv("POLARMAP_FROZEN", str(root / "frozen"))
        assert main(args) == 0
    return FinishedSearch(root, storage, "my-search", printed.getvalue())


# -- result tables: a trial's reports as the trainable makes them, a store of known trials


@pytest.fixture
def config() -> dict:
    """A trial's configuration as a search samples it."""
    return {
        "backbone": "resnet18", "mode": "dual", "width": 64, "depth": 1, "dropout": 0.2,
        "a": 3.5, "unfreeze": 3, "warmup_epochs": 2, "finetune_epochs": 1, "batch_size": 32,
        "augment": "none", "seed": 0, "threads": 2, "cpus": 2.0, "gpus": 0.5,
    }  # fmt: skip


@pytest.fixture
def make_records():
    """`make_records(epochs, best=2, seconds=2.0)`: one report per epoch, 2 warm-up epochs
    then fine-tune, the selection metric improving up to epoch `best`, each epoch taking
    `seconds`."""

    def make(epochs: int, best: int = 2, seconds: float = 2.0) -> list[dict]:
        return [
            {
                "epoch": e, "stage": "warmup" if e <= 2 else "finetune",
                "stage_epoch": e if e <= 2 else e - 2, "train_loss": 1.0 / e,
                "train_accuracy": 0.3 + e / 10, "val_loss": 1.1 / e,
                "val_accuracy": 0.5 + e / 10, "val_balanced_accuracy": 0.4 + e / 10,
                "val_roc_auc": 0.6, "val_sensitivity/Normal": 0.7,
                "val_sensitivity/Ischemia": 0.3, "best_selection": 0.4 + min(e, best) / 10,
                "best_epoch": min(e, best), "selection_metric": "balanced_accuracy",
                "effective_unfreeze": 3, "requested_unfreeze": 3, "trainable_share": 0.21,
                "best_warmup_epoch": min(e, 2), "best_finetune_epoch": 0,
                "compute_path_warmup": "pooled-features",
                "compute_path_finetune": "cached-prefix:layer4.1", "device": "NVIDIA H100",
                "time_total_s": seconds * e, "time_this_iter_s": seconds,
                "timestamp": 1_800_000_000 + seconds * e, "hostname": "node-1",
                "epoch_seconds": seconds,
            }
            for e in range(1, epochs + 1)
        ]  # fmt: skip

    return make


@pytest.fixture
def example_store(tmp_path, config, make_records) -> Path:
    """Two searches' tables. s1: t1 resnet18/dual completed (3 epochs of 600 s, best 0.6),
    t2 resnet18/stress stopped (2 epochs, best 0.5), t3 resnet18/dual errored after 1;
    s2: t9 vgg16/dual completed (3 epochs, best 0.7). Every trial held 0.5 GPU, 2 CPUs."""
    store = ResultStore(tmp_path / "results")
    stress, vgg = {**config, "mode": "stress"}, {**config, "backbone": "vgg16"}
    for search, trial_id, trial_config, records, error in (
        ("s1", "t1", config, make_records(3, seconds=600.0), None),
        ("s1", "t2", stress, make_records(2, best=1), None),
        ("s1", "t3", config, make_records(1), "RuntimeError: CUDA out of memory"),
        ("s2", "t9", vgg, make_records(3, best=3), None),
    ):
        store.write_trial(trial_rows(search, trial_id, trial_config, records, error))
    return tmp_path / "results"


@pytest.fixture
def s3_storage(monkeypatch):
    """An empty bucket on a local S3-compatible server (moto) on 127.0.0.1, stopped
    afterwards; the URI carries the endpoint as pyarrow reads it. moto keeps its buckets
    per process, not per server: they are reset first, so no other test's objects remain."""
    import urllib.request

    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    reset = urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=30).close()
    for key, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):  # fmt: skip
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=f"http://{host}:{port}").create_bucket(Bucket="runs")
    yield f"s3://runs/searches?endpoint_override={host}:{port}&scheme=http"
    server.stop()


# -- the model hub, faked: timm "downloads" seeded weights of its test models


@dataclass
class FakeHub:
    """What timm's hub download (`load_state_dict_from_hf`) gives: `weights(name)` is the
    full checkpoint (classifier included) of a tiny timm model, fixed by a seed and unlike
    any fresh initialisation; `calls` counts downloads; backbones in `unreachable` fail as
    huggingface_hub fails offline."""

    calls: list[str]
    unreachable: set[str]

    @staticmethod
    def weights(name: str) -> dict:
        import timm
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(123)
            model = timm.create_model(name.split(".")[0], pretrained=False)
        with torch.no_grad():
            return {
                k: (v + 1 if v.is_floating_point() else v) for k, v in model.state_dict().items()
            }


@pytest.fixture
def fake_hub(monkeypatch) -> FakeHub:
    import timm.models._builder as builder
    from huggingface_hub.errors import LocalEntryNotFoundError

    hub = FakeHub(calls=[], unreachable=set())

    def download(model_id, filename=None, weights_only=False, cache_dir=None):
        name = model_id.split("/")[-1]
        if name.split(".")[0] in hub.unreachable:
            raise LocalEntryNotFoundError(
                "An error happened while trying to locate the file on the Hub and we cannot "
                "find the requested files in the local cache."
            )
        hub.calls.append(name)
        return hub.weights(name)

    def no_url(*args, **kwargs):
        raise OSError("no network in tests")

    monkeypatch.setattr(builder, "load_state_dict_from_hf", download)
    monkeypatch.setattr(builder, "load_state_dict_from_url", no_url)
    return hub
