"""Search spaces: presets as the seeds define them, drawn define-by-run without Ray."""

from __future__ import annotations

import optuna
import pytest
import timm

from spaces import PRESETS, Choice, FloatRange, IntRange, Ranges, get_space, suggest_config


def test_the_presets_name_real_timm_backbones_and_the_seeds_budgets():
    assert set(PRESETS) == {"paper-binary", "paper-triad", "demo", "tiny"}
    binary = get_space("paper-binary")
    assert len(binary.backbones) == 15 and len(set(binary.backbones)) == 15
    assert binary.modes == ("stress",) and binary.classes == "binary"
    assert (binary.warmup_epochs, binary.finetune_epochs) == (100, 30)
    triad = get_space("paper-triad")
    assert triad.backbones == ("resnet18",) and set(triad.modes) == {"stress", "rest", "dual"}
    for space in PRESETS.values():
        assert space.ranges.a == FloatRange(3.0, 4.0) or space.name == "tiny"
        for backbone in space.backbones:
            assert timm.is_model(backbone), backbone


def test_the_demo_is_the_seeds_protocol_on_real_imagenet_weights():
    demo = get_space("demo")
    assert demo.backbones == ("efficientnet_lite0",) and demo.pretrained
    assert demo.ranges.a == FloatRange(3.0, 4.0)
    assert (demo.max_layer_share, demo.max_param_share) == (1 / 3, 1 / 3)  # the seed's rule
    assert demo.warmup_epochs > 0 and demo.finetune_epochs > 0 and not demo.class_weighted


def test_an_unknown_space_names_the_known_ones():
    with pytest.raises(KeyError, match=r"demo.*paper-binary.*paper-triad"):
        get_space("paper")


def test_a_fixed_trial_draws_exactly_the_given_values():
    ranges = get_space("paper-triad").ranges
    fixed = {"width": 128, "dropout": 0.25, "a": 3.3, "unfreeze": 2}
    drawn = suggest_config(optuna.trial.FixedTrial(fixed), ranges, max_unfreeze=3)
    assert {k: drawn[k] for k in fixed} == fixed
    assert drawn["depth"] == 1 and drawn["batch_size"] == 32 and drawn["augment"] == "none"


def test_the_unfreeze_range_follows_the_backbones_limit():
    ranges = Ranges(unfreeze=IntRange(1, None))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for limit in (1, 3, 12):
        values = {suggest_config(study.ask(), ranges, limit)["unfreeze"] for _ in range(40)}
        assert values <= set(range(1, limit + 1)) and max(values) == limit
    # a backbone that allows nothing fine-tunes nothing
    assert suggest_config(study.ask(), ranges, 0)["unfreeze"] == 0


def test_every_draw_stays_in_its_range():
    ranges = Ranges(
        width=Choice((16, 32)), depth=IntRange(1, 3), dropout=FloatRange(0.1, 0.2),
        augment=Choice(("none", "hflip")),
    )  # fmt: skip
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        drawn = suggest_config(study.ask(), ranges, 4)
        assert drawn["width"] in (16, 32) and 1 <= drawn["depth"] <= 3
        assert 0.1 <= drawn["dropout"] <= 0.2 and 3.0 <= drawn["a"] <= 4.0
        assert drawn["augment"] in ("none", "hflip")


def test_the_digest_changes_with_the_definition():
    space = get_space("tiny")
    from dataclasses import replace

    assert space.digest() == get_space("tiny").digest()
    assert replace(space, samples=7).digest() != space.digest()
    assert replace(space, ranges=Ranges(a=FloatRange(3.0, 3.5))).digest() != space.digest()
