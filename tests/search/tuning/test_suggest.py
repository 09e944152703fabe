"""A trial's flat config as the searcher hands it to Ray: the search's shared settings,
the space's draw and the pair, one schema with the trainable and the result tables."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from results.rows import trial_rows
from search.tuning.settings import SearchSettings
from search.tuning.suggest import shared_config, suggest_trial
from spaces import FloatRange, Ranges, get_space
from trainables.config import TrialConfig


def settings(**space_changes) -> SearchSettings:
    space = replace(get_space("tiny"), **space_changes)
    return SearchSettings(space=space, data=Path("m.csv"), name="s", storage="runs", seed=4,
                          threads=2, cpus_per_trial=2.0, gpus_per_trial=0.5)  # fmt: skip


def test_the_trainable_and_the_tables_read_what_the_searcher_suggests():
    chosen = settings()
    trial = optuna.trial.FixedTrial(
        {"width": 32, "depth": 2, "dropout": 0.25, "a": 1.5, "unfreeze": 3}
    )
    flat = suggest_trial(trial, "test_resnet", "dual", shared=shared_config(chosen),
                         settings=chosen, max_unfreeze={"test_resnet": 3})  # fmt: skip
    config = TrialConfig.from_flat(flat)
    assert config.views == ("rest", "stress") and config.unfreeze == 3
    assert config.head.widths == (32, 32) and config.head.dropouts == (0.25, 0.25)
    assert (config.seed, config.threads) == (4, 2)
    assert config.epochs == chosen.space.max_epochs
    row = trial_rows("s", "t1", flat, []).trial
    assert (row["width"], row["depth"], row["dropout"], row["a"]) == (32, 2, 0.25, 1.5)
    assert row["warmup_lr"] == pytest.approx(config.warmup_lr)  # 10^-a, through TrialConfig
    assert row["finetune_lr"] == pytest.approx(config.finetune_lr)
    assert (row["mode"], row["cpus"], row["gpus"]) == ("dual", 2.0, 0.5)


def test_a_range_the_trainable_would_not_read_is_refused_before_any_trial_runs():
    chosen = settings()
    misspelt = replace(chosen, space=replace(chosen.space, ranges=Ranges()))
    object.__setattr__(misspelt.space.ranges, "droput", FloatRange(0.1, 0.2))  # a typo in a space
    drawn = {"width": 64, "dropout": 0.25, "a": 3.5, "unfreeze": 2, "droput": 0.15}
    trial = optuna.trial.FixedTrial(drawn)
    with pytest.raises(ValueError, match="unknown keys droput"):
        suggest_trial(trial, "test_resnet", "stress", shared=shared_config(misspelt),
                      settings=misspelt, max_unfreeze={"test_resnet": 3})  # fmt: skip
