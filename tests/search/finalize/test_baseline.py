"""The baseline: segment features are the segments' mean colours, and the regression
learns a segmental defect from them, with its threshold chosen without the test patients."""

import numpy as np
import pytest

from search.data.segments import segment_map
from search.finalize.baseline import fit_baseline, segment_features
from trainables.metrics import classification_metrics

SIZE = 32


def painted(values: np.ndarray) -> np.ndarray:
    """(views, 17) values in 0-255 painted into their segments, as (views, H, W, 3)."""
    segments = segment_map(SIZE)
    maps = np.zeros((len(values), SIZE, SIZE, 3), dtype=np.uint8)
    for v, per_segment in enumerate(values):
        for s in range(1, 18):
            maps[v][segments == s] = (per_segment[s - 1], 255 - per_segment[s - 1], 7)
    return maps


def test_features_are_each_segments_mean_colour():
    values = np.array([np.arange(17) * 10, np.arange(17)[::-1] * 12])
    features = segment_features(painted(values)[None]).reshape(2, 17, 3)
    np.testing.assert_allclose(features[..., 0], values / 255, atol=1e-6)
    np.testing.assert_allclose(features[..., 1], (255 - values) / 255, atol=1e-6)
    np.testing.assert_allclose(features[..., 2], 7 / 255, atol=1e-6)


def cohort(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Normal maps near full uptake; class 1 with an inferior defect (segments 4, 10, 15)."""
    labels = rng.permutation(np.arange(n) % 2)
    values = rng.normal(200, 15, size=(n, 2, 17))
    values[np.ix_(labels == 1, [1], [3, 9, 14])] -= 90
    maps = np.stack([painted(np.clip(v, 0, 255).astype(np.uint8)) for v in values])
    return maps, labels


def test_learns_a_segmental_defect_and_tests_once():
    rng = np.random.default_rng(0)
    train_maps, train_labels = cohort(40, rng)
    test_maps, test_labels = cohort(20, rng)
    ids = tuple(f"p{i}" for i in range(40)), tuple(f"t{i}" for i in range(20))
    model = fit_baseline(train_maps, train_labels, test_maps, ("rest", "stress"), *ids, 2)
    macro, _ = classification_metrics(test_labels, model.test_probabilities,
                                      model.test_predicted)  # fmt: skip
    assert macro["roc_auc"] == 1.0 and macro["balanced_accuracy"] >= 0.9
    assert model.train_probabilities.shape == (40, 2) and model.folds == 5
    # seeded: the same fit twice
    again = fit_baseline(train_maps, train_labels, test_maps, ("rest", "stress"), *ids, 2)
    np.testing.assert_array_equal(again.test_probabilities, model.test_probabilities)
    assert 0 < model.threshold < 1


def test_refuses_a_class_without_two_training_patients():
    rng = np.random.default_rng(1)
    maps, labels = cohort(6, rng)
    labels = np.array([0, 0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="at least 2 training patients"):
        fit_baseline(maps, labels, maps, ("rest", "stress"), (), (), 2)
