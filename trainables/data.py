"""Assembling a trial's tensors from cleaned maps and a patient-level split.

The maps are decoded and cleaned once (the map cache); here they only become normalized
tensors for the backbone. The test split is never touched: `trial_data` and `folded_data`
take training and validation ids only; `trial_data` refuses a split whose validation part
is empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from search.data.normalize import BackboneInput, backbone_input, normalize_maps
from search.data.preprocess import CleanedMaps
from search.data.splits import Split
from trainables.pool import UNSEEN, FoldedData, TrialData

__all__ = ["SearchData", "folded_data", "select_views", "trial_data"]


def select_views(cleaned: CleanedMaps, views: tuple[str, ...]) -> np.ndarray:
    """(patients, len(views), H, W, 3) maps of `views`, in the order asked for.

    Raises:
        ValueError: a view is not among the cleaned ones.
    """
    missing = [v for v in views if v not in cleaned.views]
    if missing:
        raise ValueError(
            f"view(s) {', '.join(missing)} not cleaned; the maps hold {', '.join(cleaned.views)}"
        )
    return cleaned.maps[:, [cleaned.views.index(v) for v in views]]


def trial_data(
    cleaned: CleanedMaps,
    labels: dict[str, int],
    split: Split,
    views: tuple[str, ...],
    backbone: BackboneInput,
    class_names: tuple[str, ...],
    fold: int | None = None,
) -> TrialData:
    """Normalized (N, views, 3, H, W) train and validation tensors with their labels."""
    if fold is not None:
        split = split.fold(fold)
    if not split.val:
        raise ValueError("the split has no validation patients: give a validation share or a fold")
    maps = select_views(cleaned, views)
    train_x, train_y = _tensors(maps, cleaned, labels, split.train, backbone)
    val_x, val_y = _tensors(maps, cleaned, labels, split.val, backbone)
    return TrialData(train_x, train_y, val_x, val_y, class_names, split.train, split.val)


def folded_data(
    cleaned: CleanedMaps,
    labels: dict[str, int],
    split: Split,
    views: tuple[str, ...],
    backbone: BackboneInput,
    class_names: tuple[str, ...],
) -> FoldedData:
    """Every train + validation patient's normalized maps once, with the fold that
    validates each patient in each repeat of the split's k-fold.

    Nested (outer folds), the pool holds every patient, so the frozen work is the same
    for every outer fold; the outer test patients are in no fold (`UNSEEN`) and their
    labels are not passed on."""
    if not split.folds:
        raise ValueError("the split has no folds")
    ids = tuple(sorted(split.train + split.test)) if split.spec.nested else tuple(split.train)
    position = {pid: i for i, pid in enumerate(ids)}
    assignment = np.full((len(split.partitions), len(ids)), UNSEEN, dtype=np.int64)
    for repeat, folds in enumerate(split.partitions):
        for index, fold in enumerate(folds):
            assignment[repeat, [position[pid] for pid in fold]] = index
    seen = {pid: UNSEEN for pid in ids} | {pid: labels[pid] for pid in split.train}
    x, y = _tensors(select_views(cleaned, views), cleaned, seen, ids, backbone)
    return FoldedData(x, y, ids, assignment, class_names)


def _tensors(maps: np.ndarray, cleaned: CleanedMaps, labels, ids: tuple[str, ...], backbone):
    """Normalized (N, views, 3, H, W) maps (of `maps`, the views' uint8 maps in `cleaned`'s
    row order) and (N,) labels of the patients `ids`."""
    row = cleaned.index()
    x = normalize_maps(maps[[row[i] for i in ids]], backbone)
    return x, torch.tensor([labels[i] for i in ids], dtype=torch.long)


@dataclass(frozen=True)
class SearchData:
    """What every trial of a search reads, put in Ray's object store once: the cleaned
    maps (uint8) at each input size the search's backbones take, the labels, the split and
    the class names. Each trial normalizes the maps its backbone and mode need."""

    maps: dict[int, CleanedMaps]
    labels: dict[str, int]
    split: Split
    class_names: tuple[str, ...]
    fold: int | None = None

    def for_trial(self, backbone: str, views: tuple[str, ...]) -> TrialData | FoldedData:
        """The train and validation tensors for `backbone` (its size and normalization)
        and the views of the trial's input mode: the folds of a k-fold split (all of
        them, unless `fold` picks one), else its one train / validation split."""
        inputs = backbone_input(backbone)
        if self.split.folds and self.fold is None:
            maps = self.maps[inputs.size]
            return folded_data(maps, self.labels, self.split, views, inputs, self.class_names)
        return trial_data(
            self.maps[inputs.size], self.labels, self.split, views, inputs, self.class_names,
            self.fold,
        )  # fmt: skip
