"""Winners come from the trials table in the leaderboard's order: the best per backbone
and mode by default, per backbone, per mode, or the top K; errored trials never win."""

from __future__ import annotations

import pandas as pd
import pytest

from search.finalize.winners import select_winners


@pytest.fixture
def trials() -> pd.DataFrame:
    rows = [  # trial, backbone, mode, best_selection, best_val_loss, status
        ("a", "resnet18", "stress", 0.80, 0.5, "completed"),
        ("b", "resnet18", "stress", 0.85, 0.6, "stopped"),
        ("c", "resnet18", "dual", 0.85, 0.4, "completed"),  # ties b, lower loss
        ("d", "vgg16", "stress", 0.70, 0.5, "completed"),
        ("e", "vgg16", "dual", 0.99, 0.1, "errored"),
        ("f", "vgg16", "dual", 0.60, 0.9, "completed"),
        ("g", "vgg16", "dual", None, None, "stopped"),
    ]
    columns = ["trial_id", "backbone", "mode", "best_selection", "best_val_loss", "status"]
    return pd.DataFrame(rows, columns=columns).assign(search="s")


def test_the_best_of_each_backbone_and_mode_best_first(trials):
    assert list(select_winners(trials)["trial_id"]) == ["c", "b", "d", "f"]


def test_per_backbone_per_mode_or_the_top_k(trials):
    assert list(select_winners(trials, per=("backbone",))["trial_id"]) == ["c", "d"]
    assert list(select_winners(trials, per=("mode",))["trial_id"]) == ["c", "b"]
    assert list(select_winners(trials, top=3)["trial_id"]) == ["c", "b", "a"]


def test_bad_choices_and_unscored_searches_are_refused(trials):
    with pytest.raises(ValueError, match="expected backbone, mode or both"):
        select_winners(trials, per=("width",))
    with pytest.raises(ValueError, match="need at least 1"):
        select_winners(trials, top=0)
    with pytest.raises(ValueError, match="no trial of the search has a validation score"):
        select_winners(trials[trials["trial_id"].isin(["e", "g"])])


def test_finalize_writes_beside_local_tables_and_into_the_current_folder_for_s3():
    from pathlib import Path

    from search.layout import StorageLayout

    assert StorageLayout.of_results("runs/results").finals("s1") == Path("runs/finals/s1")
    assert StorageLayout.of_results("s3://bucket/runs/results").finals("s1") == Path("finals/s1")
