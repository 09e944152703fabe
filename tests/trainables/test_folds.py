"""A cross-validated trial: k fold models trained side by side from one frozen pass, its
epochs chosen on the fold-mean curve, paused and resumed exactly, its out-of-fold
predictions kept."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trainables.config import HeadSpec, TrialConfig
from trainables.frozen_store import FrozenWorkStore
from trainables.metrics import METRICS, classification_metrics
from trainables.protocol import FoldedData, TrialData, run_protocol

CONFIG = TrialConfig(
    "test_resnet",
    views=("rest", "stress"),
    head=HeadSpec((16,), (0.2,)),
    a=2.5,
    unfreeze=2,
    warmup_epochs=3,
    finetune_epochs=2,
    batch_size=8,
    seed=3,
)
K = 3


def without_timing(history):
    return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in history]


@pytest.fixture(scope="module")
def data() -> FoldedData:
    """Two-view maps whose second view carries the class, dealt into 3 folds twice."""
    generator = torch.Generator().manual_seed(1)
    n = 36
    y = torch.arange(n) % 3
    x = torch.randn(n, 2, 3, 48, 48, generator=generator) * 0.5
    x[:, 1, :, 8:40, 8:40] += y.view(-1, 1, 1, 1).float()
    assignment = np.stack([np.arange(n) // 3 % K, np.arange(n) // 2 % K])  # 2 repeats
    ids = tuple(f"P{i:02d}" for i in range(n))
    return FoldedData(x, y, ids, assignment, ("A", "B", "C"))


@pytest.fixture(scope="module")
def uninterrupted(data):
    states = []
    result = run_protocol(CONFIG, data, lambda record, state: states.append(state))
    return result, states


def predictions(model, x: torch.Tensor) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(x), dim=1).numpy()


def test_a_trial_reports_fold_means_of_what_its_fold_models_predict(data, uninterrupted):
    result, _ = uninterrupted
    assert len(result.models) == 2 * K
    figures = []
    for fold, model in zip(data.pool.folds, result.models, strict=True):
        rows = fold.val_rows
        macro, _ = classification_metrics(data.y[rows].numpy(), predictions(model, data.x[rows]))
        figures.append(macro)
    best = result.best
    for name in METRICS:
        mean = np.nanmean([f[name] for f in figures])
        assert best[f"val_{name}"] == pytest.approx(mean, abs=1e-5), name
        assert best[f"val_{name}_sd"] == pytest.approx(
            np.std([f[name] for f in figures], ddof=1), abs=1e-5
        )
    record = next(r for r in result.history if r["epoch"] == best["epoch"])
    assert record["folds"] == K and record["repeats"] == 2
    assert record["fold_1_2/val_loss"] > 0


def test_the_kept_epoch_is_the_best_of_the_mean_curve_for_every_fold(uninterrupted):
    result, _ = uninterrupted
    curve = [(r["val_balanced_accuracy"], -r["val_loss"]) for r in result.history]
    assert result.best["epoch"] == 1 + curve.index(max(curve))
    assert result.history[-1]["best_selection"] == max(c[0] for c in curve)


def test_out_of_fold_predictions_cover_every_patient_once_per_repeat(data, uninterrupted):
    result, _ = uninterrupted
    kept = json.loads(result.predictions)
    assert kept["epoch"] == result.best["epoch"]
    pairs = sorted(zip(kept["patient"], kept["repeat"], strict=True))
    assert pairs == sorted((pid, r) for pid in data.ids for r in (0, 1))
    for pid, repeat, fold, label in zip(
        kept["patient"], kept["repeat"], kept["fold"], kept["label"], strict=True
    ):
        row = data.ids.index(pid)
        assert data.assignment[repeat, row] == fold and int(data.y[row]) == label
    # the pooled figure is the one of these predictions, averaged over the repeats
    pooled = []
    for repeat in (0, 1):
        keep = [i for i, r in enumerate(kept["repeat"]) if r == repeat]
        labels = np.array(kept["label"])[keep]
        pooled.append(classification_metrics(labels, np.array(kept["p"])[keep])[0])
    mean = np.mean([p["balanced_accuracy"] for p in pooled])
    assert result.best["oof_balanced_accuracy"] == pytest.approx(mean, abs=1e-5)


def test_a_paused_cross_validated_trial_resumes_exactly(data, uninterrupted):
    result, states = uninterrupted
    for stop in (2, 4):  # in warm-up, and in fine-tune
        resumed = run_protocol(CONFIG, data, resume=states[stop - 1])
        assert without_timing(resumed.history) == without_timing(result.history)
        assert resumed.predictions == result.predictions
        for a, b in zip(resumed.models, result.models, strict=True):
            for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
                assert torch.equal(p, q), name


def test_one_frozen_pass_serves_every_fold(data, tmp_path):
    store = FrozenWorkStore(tmp_path)
    run_protocol(CONFIG, data, store=store)
    # prefix and pooled features of all maps, per view: the same as for one split
    assert len(list(store.root.rglob("*.pt"))) == 2 * 2


def test_one_split_is_the_one_fold_case(data):
    """A split's trial reports what it did before folds: no fold figures, and held-out
    predictions for its validation patients only."""
    pool = data.pool
    fold = pool.folds[0]
    split = TrialData(
        data.x[fold.train_rows], data.y[fold.train_rows], data.x[fold.val_rows],
        data.y[fold.val_rows], data.class_names,
        tuple(data.ids[i] for i in fold.train_rows), tuple(data.ids[i] for i in fold.val_rows),
    )  # fmt: skip
    result = run_protocol(CONFIG, split)
    assert not any(k.startswith(("fold_", "oof_")) or k.endswith("_sd") for k in result.best)
    kept = json.loads(result.predictions)
    assert sorted(kept["patient"]) == sorted(split.val_ids)
