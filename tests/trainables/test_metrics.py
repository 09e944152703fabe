"""Metrics agree with scikit-learn on fixed predictions, two and three classes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from trainables.metrics import classification_metrics, confusion_matrix


@pytest.mark.parametrize(("classes", "seed"), [(2, 0), (3, 1), (3, 2), (4, 3)])
def test_every_figure_matches_scikit_learn(classes, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, 60)
    probabilities = rng.dirichlet(np.ones(classes), 60)
    probabilities[labels == 0, 0] += 0.3  # some skill, so figures are not all near chance
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)
    macro, per_class = classification_metrics(labels, probabilities)
    everyone = list(range(classes))

    assert macro["accuracy"] == pytest.approx(sk.accuracy_score(labels, predicted))
    assert macro["balanced_accuracy"] == pytest.approx(
        sk.balanced_accuracy_score(labels, predicted)
    )
    recall = sk.recall_score(labels, predicted, average=None, labels=everyone)
    precision = sk.precision_score(
        labels, predicted, average=None, labels=everyone, zero_division=0
    )
    f1 = sk.f1_score(labels, predicted, average=None, labels=everyone, zero_division=0)
    np.testing.assert_allclose(per_class["sensitivity"], recall)
    np.testing.assert_allclose(per_class["precision"], precision)
    np.testing.assert_allclose(per_class["f1"], f1, atol=1e-12)
    matrix = sk.confusion_matrix(labels, predicted, labels=everyone)
    specificity = [
        (matrix.sum() - matrix[c].sum() - matrix[:, c].sum() + matrix[c, c])
        / (matrix.sum() - matrix[c].sum())
        for c in everyone
    ]
    np.testing.assert_allclose(per_class["specificity"], specificity)
    np.testing.assert_array_equal(confusion_matrix(labels, predicted, classes), matrix)
    auc = [sk.roc_auc_score(labels == c, probabilities[:, c]) for c in everyone]
    np.testing.assert_allclose(per_class["roc_auc"], auc)
    if classes > 2:
        assert macro["roc_auc"] == pytest.approx(
            sk.roc_auc_score(labels, probabilities, multi_class="ovr", average="macro")
        )
    else:
        assert macro["roc_auc"] == pytest.approx(sk.roc_auc_score(labels, probabilities[:, 1]))
    assert macro["f1"] == pytest.approx(sk.f1_score(labels, predicted, average="macro"))


def test_ties_in_scores_count_half_as_in_scikit_learn():
    labels = np.array([0, 1, 1, 0, 1, 0])
    probabilities = np.array([[0.5, 0.5]] * 3 + [[0.8, 0.2], [0.2, 0.8], [0.5, 0.5]])
    _, per_class = classification_metrics(labels, probabilities)
    assert per_class["roc_auc"][1] == pytest.approx(sk.roc_auc_score(labels, probabilities[:, 1]))


def test_a_class_missing_from_the_labels_leaves_its_auc_out():
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]])
    macro, per_class = classification_metrics(labels, probabilities)
    assert np.isnan(per_class["roc_auc"][2])
    assert macro["roc_auc"] == 1.0
    assert macro["balanced_accuracy"] == 1.0  # mean recall over the classes present
    assert per_class["precision"][2] == 0.0 and per_class["sensitivity"][2] == 0.0


def test_macro_figures_skip_a_class_neither_present_nor_predicted_as_scikit_learn_does():
    labels = np.array([0, 0, 1, 1, 1])
    probabilities = np.array([[0.8, 0.1, 0.1]] * 2 + [[0.1, 0.8, 0.1]] * 2 + [[0.6, 0.3, 0.1]])
    predicted = probabilities.argmax(axis=1)
    macro, _ = classification_metrics(labels, probabilities)
    for name, score in (("sensitivity", sk.recall_score), ("precision", sk.precision_score),
                        ("f1", sk.f1_score)):  # fmt: skip
        assert macro[name] == pytest.approx(score(labels, predicted, average="macro")), name
    assert macro["sensitivity"] == pytest.approx((1 + 2 / 3) / 2)  # class 2 is not a 0
    perfect, _ = classification_metrics(labels, np.eye(3)[labels])
    assert perfect["sensitivity"] == perfect["f1"] == perfect["specificity"] == 1.0
