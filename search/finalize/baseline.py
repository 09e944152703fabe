"""The baseline every report carries: logistic regression on the 17-segment means of each
view's map, trained on the same training patients as the winners and tested once on the
same held-out patients, so a reader sees what the deep models add over the summary a
reader of polar maps already uses (segmental uptake).

The maps are colour-coded, in whatever colour scale the exports used; the baseline reads
each segment's mean colour (red, green and blue) rather than decoding one scale back to
uptake, so it works with any scale (on a grey scale the three are the mean uptake itself).
Features are standardized, the regression is L2-penalized with balanced class weights,
and a binary threshold is chosen, as for the fold ensembles, on cross-validated
predictions of the training patients, never on the test patients."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from search.data.segments import segment_map
from search.inference.evaluate import choose_threshold, predict_classes
from search.records import BaselineModel

__all__ = [
    "fit_baseline",
    "fit_search_baseline",
    "segment_features",
]

SEGMENTS = 17
MAX_FOLDS = 5


def segment_features(maps: np.ndarray) -> np.ndarray:
    """(patients, views, H, W, 3) uint8 maps to (patients, views * 17 * 3) features: the
    mean red, green and blue of each AHA segment of each view, in [0, 1]."""
    n, views, height, width, channels = maps.shape
    if height != width:
        raise ValueError(f"maps of {height} x {width} pixels: expected square bullseyes")
    segments = segment_map(height).reshape(-1)
    members = np.stack([segments == s for s in range(1, SEGMENTS + 1)]).astype(np.float32)
    members /= members.sum(axis=1, keepdims=True)
    pixels = maps.reshape(n, views, height * width, channels).astype(np.float32) / 255
    means = np.einsum("sp,nvpc->nvsc", members, pixels)
    return means.reshape(n, views * SEGMENTS * channels)


def fit_baseline(
    train_maps: np.ndarray,
    train_labels: np.ndarray,
    test_maps: np.ndarray,
    views: tuple[str, ...],
    train_ids: tuple[str, ...],
    test_ids: tuple[str, ...],
    classes: int,
    seed: int = 0,
) -> BaselineModel:
    """Fit on the training patients' maps, predict the test patients once.

    Raises:
        ValueError: a class has fewer than two training patients (nothing to
            cross-validate the threshold on).
    """
    train_labels = np.asarray(train_labels, dtype=np.int64)
    counts = np.bincount(train_labels, minlength=classes)
    if counts.min() < 2:
        raise ValueError(
            f"the baseline needs at least 2 training patients of every class; counts {counts}"
        )
    x_train, x_test = segment_features(train_maps), segment_features(test_maps)
    folds = int(min(MAX_FOLDS, counts.min()))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    oof = cross_val_predict(_model(seed), x_train, train_labels, cv=splitter,
                            method="predict_proba")  # fmt: skip
    threshold = choose_threshold(train_labels, oof) if classes == 2 else None
    model = _model(seed).fit(x_train, train_labels)
    test_probabilities = model.predict_proba(x_test)
    return BaselineModel(
        views=views,
        threshold=threshold,
        train_ids=tuple(train_ids),
        train_labels=train_labels,
        train_probabilities=oof,
        test_ids=tuple(test_ids),
        test_probabilities=test_probabilities,
        test_predicted=predict_classes(test_probabilities, threshold),
        folds=folds,
    )


def _model(seed: int):
    return make_pipeline(
        StandardScaler(),
        LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000, random_state=seed),
    )


def fit_search_baseline(data, views: tuple[str, ...], seed: int = 0) -> BaselineModel:
    """The baseline on a search's data (`trainables.data.SearchData`): trained on its train
    and validation patients (all of them: it has no hyperparameters to select), tested on
    its test split, on the cleaned maps of the smallest input size the search made."""
    cleaned = data.maps[min(data.maps)]
    row = cleaned.index()
    maps = cleaned.maps[:, [cleaned.views.index(v) for v in views]]
    train_ids = tuple(sorted(data.split.train + data.split.val))
    test_ids = tuple(data.split.test)
    labels = np.asarray([data.labels[i] for i in train_ids], dtype=np.int64)
    return fit_baseline(
        maps[[row[i] for i in train_ids]], labels, maps[[row[i] for i in test_ids]], views,
        train_ids, test_ids, len(data.class_names), seed,
    )  # fmt: skip
