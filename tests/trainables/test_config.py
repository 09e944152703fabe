"""A trial's configuration and its flat form: what Ray Tune samples and result tables store."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from spaces import Ranges
from trainables.config import (
    PAIR_KEY,
    SEARCH_KEYS,
    SELECTABLE,
    AugmentSpec,
    HeadSpec,
    TrialConfig,
    UnfreezeRule,
    check_flat,
    flat_keys,
)

EVERYTHING_SET = TrialConfig(
    "resnet18",
    views=("stress", "rest"),
    head=HeadSpec((512, 256), (0.5, 0.25)),
    a=4.25,
    unfreeze=5,
    warmup_epochs=7,
    finetune_epochs=0,
    batch_size=12,
    augment=AugmentSpec(hflip=True, vflip=True, rotate=7.5),
    class_weighted=True,
    selection="roc_auc",
    seed=11,
    threads=3,
    pretrained=True,
    weights="/weights/resnet18.safetensors",
    rule=UnfreezeRule(0.25, 0.2),
)


def test_every_field_survives_a_round_trip_through_the_flat_form():
    flat = EVERYTHING_SET.to_flat()
    assert TrialConfig.from_flat(flat) == EVERYTHING_SET
    assert flat["head_widths"] == [512, 256] and flat["head_dropouts"] == [0.5, 0.25]
    assert flat["augment"] == "hflip+vflip+rotate7.5"
    assert flat["views"] == ["stress", "rest"]
    assert flat["max_layer_share"] == 0.25 and flat["max_param_share"] == 0.2


def test_the_flat_form_survives_json_as_a_result_table_would_store_it():
    flat = json.loads(json.dumps(EVERYTHING_SET.to_flat()))
    assert TrialConfig.from_flat(flat) == EVERYTHING_SET


def test_flat_values_are_plain_json_types():
    def plain(value) -> bool:
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or type(value) in (str, int, float, bool)

    for config in (EVERYTHING_SET, TrialConfig("test_resnet")):
        flat = config.to_flat()
        assert all(isinstance(k, str) for k in flat)
        bad = {k: type(v).__name__ for k, v in flat.items() if not plain(v)}
        assert not bad, f"not plain JSON values: {bad}"
        assert json.loads(json.dumps(flat)) == flat


def test_a_sampled_uniform_head_is_width_depth_dropout():
    sampled = {"backbone": "resnet18", "width": 128, "depth": 3, "dropout": 0.4, "a": 3.0}
    config = TrialConfig.from_flat(sampled)
    assert config.head == HeadSpec((128, 128, 128), (0.4, 0.4, 0.4))
    assert config.a == 3.0
    round_trip = TrialConfig.from_flat(config.to_flat())
    assert round_trip == config
    assert round_trip.head.widths == (128, 128, 128)


def test_depth_defaults_to_one_hidden_layer():
    config = TrialConfig.from_flat({"backbone": "resnet18", "width": 64, "dropout": 0.1})
    assert config.head == HeadSpec((64,), (0.1,))


def test_missing_keys_take_the_defaults():
    assert TrialConfig.from_flat({"backbone": "resnet18"}) == TrialConfig("resnet18")
    default = TrialConfig("resnet18")
    assert default.views == ("rest", "stress")
    assert default.rule == UnfreezeRule(1 / 3, 1 / 3)
    assert default.augment == AugmentSpec() and not default.augment.active


def test_unknown_keys_are_ignored():
    flat = {
        **EVERYTHING_SET.to_flat(),
        "trial_id": "abc123",
        "search_space": "small",
        "__fraction": 0.5,
    }
    assert TrialConfig.from_flat(flat) == EVERYTHING_SET


def test_the_flat_dict_given_is_not_changed():
    flat = EVERYTHING_SET.to_flat()
    before = json.dumps(flat)
    TrialConfig.from_flat(flat)
    assert json.dumps(flat) == before


@pytest.mark.parametrize("a", [2.0, 3.5, 4.25])
def test_learning_rates_are_ten_to_minus_a_then_minus_a_plus_two(a):
    config = TrialConfig("resnet18", a=a)
    assert config.warmup_lr == pytest.approx(10**-a, rel=1e-12)
    assert config.finetune_lr == pytest.approx(10 ** -(a + 2), rel=1e-12)
    assert config.finetune_lr == pytest.approx(config.warmup_lr / 100, rel=1e-12)


def test_epochs_count_both_stages():
    assert TrialConfig("resnet18", warmup_epochs=7, finetune_epochs=4).epochs == 11
    assert TrialConfig("resnet18", warmup_epochs=7, finetune_epochs=0).epochs == 7


@pytest.mark.parametrize("metric", SELECTABLE)
def test_every_selectable_metric_is_accepted(metric):
    assert TrialConfig("resnet18", selection=metric).selection == metric


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"selection": "auc"}, "selection metric 'auc': expected one of balanced_accuracy, "),
        ({"selection": "val_accuracy"}, "roc_auc, sensitivity, specificity"),
        ({"warmup_epochs": 0}, "warm-up epochs >= 1"),
        ({"finetune_epochs": -1}, "fine-tune epochs >= 0"),
        ({"batch_size": 0}, "batch size >= 1"),
        ({"threads": 0}, "threads must be at least 1, got 0"),
    ],
)
def test_bad_values_are_refused_with_what_was_expected(options, message):
    with pytest.raises(ValueError) as raised:
        TrialConfig("resnet18", **options)
    assert message in str(raised.value)


def test_bad_values_from_a_flat_dict_are_refused_too():
    with pytest.raises(ValueError, match="selection metric 'f2'"):
        TrialConfig.from_flat({"backbone": "resnet18", "selection": "f2"})
    with pytest.raises(ValueError, match="threads must be at least 1, got -2"):
        TrialConfig.from_flat({"backbone": "resnet18", "threads": -2})
    with pytest.raises(ValueError, match="augmentation 'mirror'"):
        TrialConfig.from_flat({"backbone": "resnet18", "augment": "mirror"})
    with pytest.raises(ValueError, match="head: 2 widths but 1 dropouts"):
        TrialConfig.from_flat(
            {"backbone": "resnet18", "head_widths": [8, 8], "head_dropouts": [0.1]}
        )
    with pytest.raises(ValueError, match="dropouts in"):
        TrialConfig.from_flat({"backbone": "resnet18", "width": 8, "dropout": 1.0})


def test_one_flat_schema_holds_what_every_reader_reads():
    keys = flat_keys()
    assert set(EVERYTHING_SET.to_flat()) <= keys  # what the trainable writes and reads
    assert set(SEARCH_KEYS) <= keys and PAIR_KEY in SEARCH_KEYS  # what a search adds
    assert {"width", "depth", "dropout"} <= keys  # a uniform head, as a search draws it
    assert {f.name for f in fields(Ranges)} <= keys  # every range a space draws


def test_a_search_config_with_a_key_nobody_reads_is_refused_with_the_key_named():
    flat = {"backbone": "resnet18", "width": 64, "dropout": 0.2, "mode": "dual", "cpus": 1}
    assert check_flat(flat) == TrialConfig.from_flat(flat)
    with pytest.raises(ValueError, match=r"unknown keys droput; a flat config holds .*dropout"):
        check_flat({**flat, "droput": 0.3})
    with pytest.raises(ValueError, match="head: widths must be >= 1"):
        check_flat({**flat, "width": 0})
