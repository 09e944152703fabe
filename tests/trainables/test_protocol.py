"""The two-stage protocol, run without Ray: learning rates, greedy selection, resume."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainables.config import HeadSpec, TrialConfig
from trainables.protocol import TrialData, run_protocol

CONFIG = TrialConfig(
    "test_resnet",
    views=("rest", "stress"),
    head=HeadSpec((16,), (0.2,)),
    a=2.5,
    unfreeze=2,
    warmup_epochs=3,
    finetune_epochs=3,
    batch_size=8,
    seed=7,
)


def without_timing(history):
    return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in history]


@pytest.fixture(scope="module")
def data() -> TrialData:
    """Small two-view maps whose second view carries the class: something to learn."""
    generator = torch.Generator().manual_seed(0)

    def make(n):
        y = torch.randint(0, 3, (n,), generator=generator)
        x = torch.randn(n, 2, 3, 48, 48, generator=generator) * 0.5
        x[:, 1, :, 8:40, 8:40] += y.view(-1, 1, 1, 1).float()
        return x, y

    (train_x, train_y), (val_x, val_y) = make(40), make(24)
    return TrialData(train_x, train_y, val_x, val_y, ("A", "B", "C"))


@pytest.fixture(scope="module")
def uninterrupted(data):
    states = []
    result = run_protocol(CONFIG, data, lambda record, state: states.append(state))
    return result, states


def test_epochs_run_one_to_n_across_both_stages(uninterrupted):
    result, states = uninterrupted
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4, 5, 6]
    assert [r["stage"] for r in result.history] == ["warmup"] * 3 + ["finetune"] * 3
    assert [r["stage_epoch"] for r in result.history] == [1, 2, 3, 1, 2, 3]
    assert len(states) == 6


def test_learning_rates_are_ten_to_minus_a_then_minus_a_plus_two(uninterrupted):
    _, states = uninterrupted
    warmup_lr = {g["lr"] for s in states[:3] for g in s["folds"][0]["optimizer"]["param_groups"]}
    finetune_lr = {g["lr"] for s in states[3:] for g in s["folds"][0]["optimizer"]["param_groups"]}
    assert len(warmup_lr) == 1 and warmup_lr.pop() == pytest.approx(10**-2.5)
    assert len(finetune_lr) == 1 and finetune_lr.pop() == pytest.approx(10**-4.5)


def test_reports_carry_the_metrics_and_the_best_so_far(uninterrupted, data):
    result, _ = uninterrupted
    best = float("-inf")
    for record in result.history:
        best = max(best, record["val_balanced_accuracy"])
        assert record["best_selection"] == best
        for name in ("val_loss", "train_loss", "val_roc_auc", "val_f1", "val_sensitivity/B"):
            assert name in record
        # the share of training maps the batches classified right as they trained
        assert record["train_accuracy"] * len(data.train_y) == pytest.approx(
            round(record["train_accuracy"] * len(data.train_y))
        )
        assert 0 <= record["train_accuracy"] <= 1


def test_the_best_epoch_is_really_restored(uninterrupted, data):
    result, _ = uninterrupted
    model = result.model.eval()
    with torch.no_grad():
        logits = model(data.val_x)
    best = next(r for r in result.history if r["epoch"] == result.best["epoch"])
    assert F.cross_entropy(logits, data.val_y).item() == pytest.approx(best["val_loss"], 1e-5)
    assert result.best["val_balanced_accuracy"] == max(
        r["val_balanced_accuracy"] for r in result.history
    )


def test_the_unfreezing_is_recorded(uninterrupted):
    result, _ = uninterrupted
    assert result.unfreezing["requested"] == 2 and result.unfreezing["effective"] == 2
    assert len(result.unfreezing["layers"]) == 2
    assert 0 < result.unfreezing["trainable_share"] < 1 / 3


@pytest.mark.parametrize("paused_after", [2, 3, 4])  # mid-warm-up, at the switch, mid-fine-tune
def test_a_resumed_trial_ends_exactly_like_an_uninterrupted_one(uninterrupted, data, paused_after):
    result, states = uninterrupted
    resumed = run_protocol(CONFIG, data, resume=states[paused_after - 1])
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert without_timing(resumed.history) == without_timing(result.history)
    for (name, a), (_, b) in zip(
        result.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_the_state_is_small_and_loads_with_weights_only(uninterrupted, tmp_path):
    _, states = uninterrupted
    path = tmp_path / "state.pt"
    torch.save(states[-1], path)
    loaded = torch.load(path, weights_only=True)
    assert loaded["epoch"] == 6
    backbone_keys = [k for k in loaded["folds"][0]["weights"] if k.startswith("backbone.")]
    assert backbone_keys and all(
        any(k.startswith(f"backbone.{name}.") for name in loaded["unfreezing"]["layers"])
        for k in backbone_keys
    )


def test_a_state_of_another_configuration_is_refused(uninterrupted, data):
    _, states = uninterrupted
    other = TrialConfig("test_resnet", views=("rest", "stress"), warmup_epochs=3, a=3.0)
    with pytest.raises(ValueError, match="another configuration"):
        run_protocol(other, data, resume=states[0])


def test_bad_settings_are_refused_before_training():
    with pytest.raises(ValueError, match="selection metric 'auc'"):
        TrialConfig("test_resnet", selection="auc")
    with pytest.raises(ValueError, match="warm-up epochs >= 1"):
        TrialConfig("test_resnet", warmup_epochs=0)
