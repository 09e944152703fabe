"""Figures of a test evaluation: what each one draws is what `EvaluationFigures` says, and
the three PNGs written together."""

from __future__ import annotations

import numpy as np
from matplotlib.collections import PathCollection

from search.inference.evaluate import evaluate_predictions
from search.reporting.plots import (
    EVALUATION_PLOTS,
    calibration_figure,
    confusion_figure,
    roc_figure,
    save_evaluation_plots,
)

CLASSES = ("Normal", "Ischemia", "Infarction")
PNG = b"\x89PNG\r\n\x1a\n"


def figures_of(count: int = 40, classes=CLASSES, seed: int = 0, labels=None):
    rng = np.random.default_rng(seed)
    if labels is None:
        labels = rng.integers(0, len(classes), count)
    labels = np.asarray(labels)
    probabilities = rng.dirichlet(np.ones(len(classes)), len(labels))
    probabilities[np.arange(len(labels)), labels] += rng.uniform(0, 1, len(labels))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return evaluate_predictions(labels, probabilities, classes, bootstrap=20, seed=seed)


def test_roc_draws_each_class_curve_with_its_auc_and_chance():
    figures = figures_of()
    assert set(figures.roc) == set(CLASSES)
    ax = roc_figure(figures).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}

    assert len(lines) == len(CLASSES) + 1
    chance = lines["chance"]
    assert list(chance.get_xdata()) == [0, 1] and list(chance.get_ydata()) == [0, 1]
    for c, name in enumerate(CLASSES):
        auc = figures.per_class["roc_auc"][c]
        line = lines[f"{name} (AUC {auc:.2f})"]
        np.testing.assert_allclose(line.get_xdata(), figures.roc[name]["fpr"])
        np.testing.assert_allclose(line.get_ydata(), figures.roc[name]["tpr"])
        assert line.get_drawstyle() == "steps-post"
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert sorted(legend) == sorted(lines)
    assert ax.get_title() == f"ROC, {figures.count} test patients"
    assert roc_figure(figures, title="model A").axes[0].get_title() == "model A"


def test_roc_leaves_out_a_class_absent_from_the_labels():
    figures = figures_of(labels=[0, 1] * 10 + [1, 1])  # no Infarction
    assert set(figures.roc) == {"Normal", "Ischemia"}
    labels = [line.get_label() for line in roc_figure(figures).axes[0].get_lines()]
    assert len(labels) == 3
    assert not any(label.startswith("Infarction") for label in labels)
    auc = figures.per_class["roc_auc"][1]
    assert f"Ischemia (AUC {auc:.2f})" in labels


def test_calibration_marks_every_reliability_bin():
    figures = figures_of(count=60, seed=1)
    bins = figures.reliability
    assert len(bins) >= 3
    ax = calibration_figure(figures).axes[0]

    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    expected = [(b["confidence"], b["accuracy"]) for b in bins]
    np.testing.assert_allclose(points.get_offsets(), expected)
    counts = [b["count"] for b in bins]
    sizes = points.get_sizes()
    assert len(sizes) == len(bins)
    assert np.argmax(sizes) == np.argmax(counts)  # the fullest bin has the largest marker
    assert [t.get_text() for t in ax.texts] == [str(n) for n in counts]
    np.testing.assert_allclose([t.xy for t in ax.texts], expected)
    assert ax.get_title() == f"calibration, ECE {figures.ece:.3f}"


def test_confusion_writes_every_count_in_its_cell():
    figures = figures_of(count=30, seed=2)
    counts = np.asarray(figures.confusion)
    assert counts.sum() == 30 and np.count_nonzero(counts) > 3
    ax = confusion_figure(figures).axes[0]

    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
    assert len(cells) == counts.size
    for (row, col), value in np.ndenumerate(counts):
        assert cells[(row, col)].get_text() == str(value)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASSES)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(CLASSES)
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), counts)


def test_confusion_of_a_binary_threshold_counts_the_thresholded_decisions():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.65, 0.35], [0.8, 0.2],
                              [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])  # fmt: skip
    figures = evaluate_predictions(labels, probabilities, ("no", "yes"), 0.3, bootstrap=0)
    texts = [t.get_text() for t in confusion_figure(figures).axes[0].texts]
    assert texts == ["2", "1", "0", "3"]


def test_save_evaluation_plots_writes_the_three_pngs_and_nothing_else(tmp_path):
    figures = figures_of(count=25, seed=3)
    folder = tmp_path / "model" / "figures"
    paths = save_evaluation_plots(figures, str(folder))

    assert paths == [folder / "roc.png", folder / "calibration.png", folder / "confusion.png"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "calibration.png", "confusion.png", "roc.png",
    ]  # fmt: skip
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 1000
    assert set(EVALUATION_PLOTS) == {"roc", "calibration", "confusion"}
