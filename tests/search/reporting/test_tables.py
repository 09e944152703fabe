"""Tables of the finalized models: figures over seeds, the backbone x mode table and the
figures within metadata subgroups, checked against the metrics computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from search.inference.evaluate import predict_classes
from search.reporting.tables import (
    TABLE_METRICS,
    backbone_mode_table,
    over_seeds,
    subgroup_rows,
)
from trainables.metrics import METRICS, classification_metrics


def final_row(search, trial, backbone, mode, seed, rng, patients=30) -> dict:
    """One row of `finals` as the pipeline writes it: every test figure with its interval."""
    row = {"search": search, "trial_id": trial, "backbone": backbone, "mode": mode,
           "seed": seed, "test_patients": patients,
           "test_ece": float(rng.uniform(0, 0.2))}  # fmt: skip
    for metric in METRICS:
        value = float(rng.uniform(0.4, 0.9))
        row.update({f"test_{metric}": value,
                    f"test_{metric}_low": value - float(rng.uniform(0.05, 0.2)),
                    f"test_{metric}_high": value + float(rng.uniform(0.05, 0.2))})  # fmt: skip
    return row


def finals_frame() -> pd.DataFrame:
    """Winner (s1, t7) with three seeds, interleaved with winner (s1, t3) with one seed."""
    rng = np.random.default_rng(0)
    rows = [
        final_row("s1", "t7", "resnet18", "fine-tune", 0, rng),
        final_row("s1", "t3", "efficientnet_b0", "frozen", 0, rng, patients=28),
        final_row("s1", "t7", "resnet18", "fine-tune", 1, rng),
        final_row("s1", "t7", "resnet18", "fine-tune", 2, rng),
    ]
    return pd.DataFrame(rows)


# -- over_seeds --------------------------------------------------------------------------


def test_over_seeds_gives_mean_sample_sd_and_widest_interval_per_winner():
    finals = finals_frame()
    summary = over_seeds(finals)

    assert list(summary["trial_id"]) == ["t7", "t3"]  # in order of first appearance
    assert list(summary["seeds"]) == [3, 1]
    assert list(summary["test_patients"]) == [30, 28]
    three = finals[finals["trial_id"] == "t7"]
    first = summary.iloc[0]
    assert (first["backbone"], first["mode"], first["search"]) == ("resnet18", "fine-tune", "s1")
    for metric in [f"test_{m}" for m in METRICS] + ["test_ece"]:
        values = three[metric].to_numpy()
        assert first[f"{metric}_mean"] == pytest.approx(values.mean())
        assert first[f"{metric}_sd"] == pytest.approx(np.std(values, ddof=1))
        assert first[f"{metric}_sd"] != pytest.approx(np.std(values, ddof=0))
    for metric in [f"test_{m}" for m in METRICS]:
        assert first[f"{metric}_low_min"] == pytest.approx(three[f"{metric}_low"].min())
        assert first[f"{metric}_high_max"] == pytest.approx(three[f"{metric}_high"].max())
    assert "test_ece_low_min" not in summary  # no interval for calibration


def test_over_seeds_leaves_the_spread_of_one_seed_undefined():
    finals = finals_frame()
    single = over_seeds(finals).iloc[1]
    only = finals[finals["trial_id"] == "t3"].iloc[0]
    for metric in [f"test_{m}" for m in METRICS] + ["test_ece"]:
        assert single[f"{metric}_mean"] == pytest.approx(only[metric])
        assert math.isnan(single[f"{metric}_sd"])
    assert single["test_accuracy_low_min"] == pytest.approx(only["test_accuracy_low"])
    assert single["test_accuracy_high_max"] == pytest.approx(only["test_accuracy_high"])


def test_over_seeds_keeps_winners_of_different_searches_apart():
    rng = np.random.default_rng(1)
    finals = pd.DataFrame(
        [final_row("s1", "t1", "resnet18", "frozen", 0, rng),
         final_row("s2", "t1", "resnet18", "frozen", 0, rng)]
    )  # fmt: skip
    summary = over_seeds(finals)
    assert list(summary["search"]) == ["s1", "s2"]
    assert list(summary["seeds"]) == [1, 1]


# -- backbone_mode_table -----------------------------------------------------------------


def summary_frame() -> pd.DataFrame:
    """Three winners; the one with the best balanced accuracy is listed last."""
    rows = []
    for backbone, mode, seeds, balanced in (
        ("resnet18", "frozen", 3, 0.61),
        ("resnet18", "fine-tune", 1, 0.55),
        ("efficientnet_b0", "fine-tune", 2, 0.7349),
    ):
        row = {"backbone": backbone, "mode": mode, "seeds": seeds, "test_patients": 40}
        for i, metric in enumerate([*TABLE_METRICS, "ece"]):
            row[f"test_{metric}_mean"] = 0.5 + 0.01 * i
            row[f"test_{metric}_sd"] = 0.0123 if seeds > 1 else float("nan")
        row["test_balanced_accuracy_mean"] = balanced
        rows.append(row)
    return pd.DataFrame(rows)


def test_backbone_mode_table_orders_by_balanced_accuracy_and_writes_mean_and_sd():
    table = backbone_mode_table(summary_frame())

    assert list(table["backbone"]) == ["efficientnet_b0", "resnet18", "resnet18"]
    assert list(table["mode"]) == ["fine-tune", "frozen", "fine-tune"]
    assert list(table.index) == [0, 1, 2]
    assert list(table.columns) == [
        "backbone", "mode", "seeds", "test_patients", "accuracy", "balanced accuracy",
        "sensitivity", "specificity", "precision", "f1", "roc auc", "ece",
    ]  # fmt: skip
    assert list(table["balanced accuracy"]) == [
        "0.735\u00a0±\u00a00.012",
        "0.610\u00a0±\u00a00.012",
        "0.550",
    ]
    assert list(table["seeds"]) == [2, 3, 1]
    assert table.loc[0, "accuracy"] == "0.500\u00a0±\u00a00.012"
    assert table.loc[2, "ece"] == "0.570"  # one seed: the mean alone


def test_backbone_mode_table_marks_an_undefined_figure_and_takes_chosen_metrics():
    summary = summary_frame()
    summary.loc[1, "test_roc_auc_mean"] = float("nan")
    table = backbone_mode_table(summary, metrics=("accuracy", "roc_auc"))
    assert list(table.columns) == [
        "backbone", "mode", "seeds", "test_patients", "accuracy", "roc auc", "ece",
    ]  # fmt: skip
    assert list(table["roc auc"]) == ["0.560\u00a0±\u00a00.012", "0.560\u00a0±\u00a00.012", "n/a"]


def test_over_seeds_feeds_backbone_mode_table():
    table = backbone_mode_table(over_seeds(finals_frame()))
    assert sorted(table["seeds"]) == [1, 3]
    assert all("±" in cell for cell in table.loc[table["seeds"] == 3].iloc[0, 4:])
    assert not any("±" in cell for cell in table.loc[table["seeds"] == 1].iloc[0, 4:])


# -- subgroup_rows -----------------------------------------------------------------------


def predictions(count: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, count)
    probabilities = rng.dirichlet(np.ones(classes), count)
    probabilities[np.arange(count), labels] += rng.uniform(0, 0.8, count)
    return labels, probabilities / probabilities.sum(axis=1, keepdims=True)


def by_group(rows: list[dict]) -> dict[tuple[str, str], dict]:
    grouped: dict[tuple[str, str], dict] = {}
    for row in rows:
        entry = grouped.setdefault((row["attribute"], row["group"]), {})
        entry["patients"] = row["patients"]
        entry[row["metric"]] = row["value"]
    return grouped


def test_subgroup_figures_are_those_of_each_group_alone():
    labels, probabilities = predictions(24, 3)
    sex = ["F", "M"] * 12
    scanner = ["A"] * 10 + ["B"] * 10 + [""] * 4
    rows = subgroup_rows(labels, probabilities, {"sex": sex, "scanner": scanner})

    assert {tuple(sorted(r)) for r in rows} == {
        ("attribute", "group", "metric", "patients", "value")
    }
    groups = by_group(rows)
    assert list(groups) == [("sex", "F"), ("sex", "M"), ("scanner", "(blank)"),
                            ("scanner", "A"), ("scanner", "B")]  # fmt: skip
    assert len(rows) == 5 * len(METRICS)
    for attribute, values in (("sex", sex), ("scanner", scanner)):
        values = np.asarray([v or "(blank)" for v in values])
        for group in set(values):
            inside = values == group
            expected, _ = classification_metrics(labels[inside], probabilities[inside])
            found = groups[(attribute, group)]
            assert found["patients"] == inside.sum()
            for metric in METRICS:
                assert found[metric] == pytest.approx(expected[metric], nan_ok=True)
    # the groups' figures really differ from the whole set's
    whole, _ = classification_metrics(labels, probabilities)
    assert any(groups[key]["accuracy"] != pytest.approx(whole["accuracy"]) for key in groups)


def test_subgroup_figures_use_the_binary_threshold():
    labels, probabilities = predictions(30, 2, seed=3)
    site = ["north"] * 15 + ["south"] * 15
    threshold = 0.3
    groups = by_group(subgroup_rows(labels, probabilities, {"site": site}, threshold))
    argmax = by_group(subgroup_rows(labels, probabilities, {"site": site}))
    differs = False
    for group, inside in (("north", slice(0, 15)), ("south", slice(15, 30))):
        y, p = labels[inside], probabilities[inside]
        expected, _ = classification_metrics(y, p, predict_classes(p, threshold))
        for metric in METRICS:
            assert groups[("site", group)][metric] == pytest.approx(expected[metric])
        differs |= groups[("site", group)]["accuracy"] != argmax[("site", group)]["accuracy"]
    assert differs  # the threshold changed some decision


def test_a_group_with_one_class_keeps_its_row_with_undefined_auc():
    labels = np.array([0, 1, 2, 1, 1, 1])
    probabilities = np.eye(3)[[0, 1, 2, 1, 2, 1]] * 0.7 + 0.1
    cohort = ["x", "x", "x", "y", "y", "y"]  # group "y" holds class 1 only
    rows = subgroup_rows(labels, probabilities, {"cohort": cohort})

    y_rows = {r["metric"]: r for r in rows if r["group"] == "y"}
    assert set(y_rows) == set(METRICS)
    assert all(r["patients"] == 3 for r in y_rows.values())
    assert math.isnan(y_rows["roc_auc"]["value"])
    assert y_rows["accuracy"]["value"] == pytest.approx(2 / 3)
    assert y_rows["balanced_accuracy"]["value"] == pytest.approx(2 / 3)
    x_auc = next(r["value"] for r in rows if r["group"] == "x" and r["metric"] == "roc_auc")
    assert x_auc == pytest.approx(1.0)


def test_wrong_length_metadata_names_the_attribute():
    labels, probabilities = predictions(6, 3)
    with pytest.raises(ValueError, match="scanner"):
        subgroup_rows(labels, probabilities, {"sex": ["F"] * 6, "scanner": ["A"] * 5})
