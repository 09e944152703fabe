"""A trial's tensors from cleaned maps and a patient-level split: shapes, normalization,
labels, views, folds; the test split never enters."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from search.data import SplitSpec, load_dataset, split_patients
from search.data.map_cache import MapCache
from search.data.normalize import BackboneInput
from search.data.preprocess import PreprocessSpec, preprocess_dataset
from trainables.data import SearchData, select_views, trial_data
from trainables.pool import UNSEEN, FoldedData

SIZE = 32
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
INPUTS = BackboneInput(SIZE, MEAN, STD)
SPEC = SplitSpec(0.5, 0.25, 0.25)
TRIAD_NAMES = ("Infarction", "Ischemia", "Normal")


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> MapCache:
    """The example maps are the same bytes in every test: clean them once."""
    return MapCache(tmp_path_factory.mktemp("maps"))


@pytest.fixture
def cleaned_set(manifest, shared_cache):
    dataset = load_dataset(manifest)
    cleaned = preprocess_dataset(dataset, PreprocessSpec(SIZE), shared_cache, workers=1)
    return dataset, cleaned


def make(cleaned_set, split, views=("rest", "stress"), fold=None):
    dataset, cleaned = cleaned_set
    return trial_data(cleaned, dataset.labels, split, views, INPUTS, dataset.class_set.names, fold)


def as_input(maps: np.ndarray) -> torch.Tensor:
    """(views, H, W, 3) uint8 -> (views, 3, H, W), normalized as the backbone wants it."""
    pixels = torch.from_numpy(maps).permute(0, 3, 1, 2).float() / 255
    return (pixels - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)


def rows_of(cleaned, ids):
    index = cleaned.index()
    return [index[i] for i in ids]


def test_shapes_dtypes_and_class_names(cleaned_set):
    dataset, _ = cleaned_set
    split = split_patients(dataset.labels, SPEC, dataset.class_set.names)
    data = make(cleaned_set, split)
    assert data.train_x.shape == (len(split.train), 2, 3, SIZE, SIZE)
    assert data.val_x.shape == (len(split.val), 2, 3, SIZE, SIZE)
    assert data.train_x.dtype == data.val_x.dtype == torch.float32
    assert data.train_y.shape == (len(split.train),) and data.train_y.dtype == torch.long
    assert data.val_y.shape == (len(split.val),) and data.val_y.dtype == torch.long
    assert data.class_names == ("Infarction", "Ischemia", "Normal")


def test_maps_are_normalized_with_the_backbones_mean_and_std(cleaned_set):
    dataset, cleaned = cleaned_set
    split = split_patients(dataset.labels, SPEC, dataset.class_set.names)
    data = make(cleaned_set, split)
    assert np.all(cleaned.maps[:, :, 0, 0] == 0)  # the cleaned maps' corners are black
    black = torch.tensor([(0 - m) / s for m, s in zip(MEAN, STD, strict=True)])
    for x in (data.train_x, data.val_x):
        assert torch.allclose(x[:, :, :, 0, 0], black.expand(len(x), 2, 3), atol=1e-6)
        assert torch.allclose(x.amin(dim=(0, 1, 3, 4)), black, atol=1e-6)
    # every pixel: (value / 255 - mean) / std, in the split's patient order
    expected = cleaned.maps[rows_of(cleaned, split.val)].astype(np.float32) / 255
    expected = (expected - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    got = data.val_x.permute(0, 1, 3, 4, 2).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_labels_follow_the_split_ids(cleaned_set):
    dataset, cleaned = cleaned_set
    split = split_patients(dataset.labels, SPEC, dataset.class_set.names)
    data = make(cleaned_set, split)
    assert data.train_y.tolist() == [dataset.labels[i] for i in split.train]
    assert data.val_y.tolist() == [dataset.labels[i] for i in split.val]
    # and each row holds that patient's own maps
    train_rows = rows_of(cleaned, split.train)
    for k in (0, len(split.train) // 2, len(split.train) - 1):
        assert torch.allclose(data.train_x[k], as_input(cleaned.maps[train_rows[k]]), atol=1e-6)


def test_only_train_and_validation_patients_enter(cleaned_set):
    dataset, cleaned = cleaned_set
    split = split_patients(dataset.labels, SPEC, dataset.class_set.names)
    assert split.test  # there is a test split to keep out
    data = make(cleaned_set, split)
    assert len(data.train_y) + len(data.val_y) == len(split.train) + len(split.val)
    assert len(data.train_y) + len(data.val_y) < len(dataset)
    # no tensor row equals a test patient's maps
    test_maps = cleaned.maps[rows_of(cleaned, split.test)]
    seen = np.concatenate(
        [
            cleaned.maps[rows_of(cleaned, split.train)],
            cleaned.maps[rows_of(cleaned, split.val)],
        ]
    )
    normalized = torch.cat([data.train_x, data.val_x])
    assert len(seen) == len(normalized)
    for maps in test_maps:
        assert not any(np.array_equal(maps, s) for s in seen)  # the maps themselves differ
        assert not any(torch.allclose(as_input(maps), x, atol=1e-6) for x in normalized)


def test_views_come_in_the_order_asked_for(cleaned_set):
    dataset, cleaned = cleaned_set
    assert cleaned.views == ("rest", "stress")
    assert np.array_equal(select_views(cleaned, ("rest", "stress")), cleaned.maps)
    swapped = select_views(cleaned, ("stress", "rest"))
    assert np.array_equal(swapped[:, 0], cleaned.maps[:, 1])
    assert np.array_equal(swapped[:, 1], cleaned.maps[:, 0])
    assert not np.array_equal(swapped, cleaned.maps)  # rest and stress maps differ
    stress = select_views(cleaned, ("stress",))
    assert stress.shape == (len(dataset), 1, SIZE, SIZE, 3)
    assert np.array_equal(stress[:, 0], cleaned.maps[:, 1])

    split = split_patients(dataset.labels, SPEC, dataset.class_set.names)
    ordered = make(cleaned_set, split, ("rest", "stress"))
    reversed_ = make(cleaned_set, split, ("stress", "rest"))
    assert torch.equal(reversed_.train_x[:, 0], ordered.train_x[:, 1])
    assert torch.equal(reversed_.train_x[:, 1], ordered.train_x[:, 0])
    single = make(cleaned_set, split, ("stress",))
    assert single.val_x.shape == (len(split.val), 1, 3, SIZE, SIZE)
    assert torch.equal(single.val_x[:, 0], ordered.val_x[:, 1])


def test_an_unknown_view_names_the_cleaned_views(cleaned_set):
    _, cleaned = cleaned_set
    with pytest.raises(ValueError) as raised:
        select_views(cleaned, ("rest", "apical"))
    assert str(raised.value) == "view(s) apical not cleaned; the maps hold rest, stress"
    dataset, _ = cleaned_set
    split = split_patients(dataset.labels, SPEC, dataset.class_set.names)
    with pytest.raises(ValueError, match="view\\(s\\) rest_nac, apical not cleaned"):
        make(cleaned_set, split, ("rest_nac", "stress", "apical"))


def test_a_fold_validates_on_its_own_patients(cleaned_set):
    dataset, _ = cleaned_set
    split = split_patients(dataset.labels, SplitSpec(0.75, 0, 0.25, folds=3), TRIAD_NAMES)
    assert split.folds is not None and len(split.folds) == 3
    together = set(split.train)
    seen_val: list[str] = []
    for i, fold in enumerate(split.folds):
        data = make(cleaned_set, split, fold=i)
        assert data.val_y.tolist() == [dataset.labels[p] for p in fold]
        train_ids = [p for p in split.train if p not in set(fold)]
        assert data.train_y.tolist() == [dataset.labels[p] for p in train_ids]
        assert len(data.train_y) + len(data.val_y) == len(together)
        assert len(data.val_y) == len(fold) > 0
        seen_val += fold
    assert sorted(seen_val) == sorted(together)  # each patient validates exactly once
    assert not set(seen_val) & set(split.test)
    assert split.folds[0] != split.folds[1]


def test_a_split_without_validation_patients_is_refused(cleaned_set):
    dataset, _ = cleaned_set
    split = split_patients(dataset.labels, SplitSpec(0.75, 0, 0.25, folds=3), TRIAD_NAMES)
    assert split.val == ()
    with pytest.raises(ValueError, match="the split has no validation patients"):
        make(cleaned_set, split)  # k-fold without saying which fold


def test_a_fold_of_a_split_without_folds_is_refused(cleaned_set):
    dataset, _ = cleaned_set
    split = split_patients(dataset.labels, SPEC, TRIAD_NAMES)
    with pytest.raises(ValueError, match="no folds"):
        make(cleaned_set, split, fold=0)


def test_maps_of_the_wrong_size_for_the_backbone_are_refused(cleaned_set):
    dataset, cleaned = cleaned_set
    split = split_patients(dataset.labels, SPEC, TRIAD_NAMES)
    with pytest.raises(
        ValueError, match=re.escape("expected uint8 maps of shape (..., 64, 64, 3)")
    ):
        trial_data(
            cleaned,
            dataset.labels,
            split,
            ("rest", "stress"),
            BackboneInput(64, MEAN, STD),
            TRIAD_NAMES,
        )


def test_a_kfold_search_gives_each_trial_every_fold_over_train_and_validation(
    cleaned_set, monkeypatch
):
    monkeypatch.setattr("trainables.data.backbone_input", lambda backbone: INPUTS)
    dataset, cleaned = cleaned_set
    spec = SplitSpec(0.75, 0.0, 0.25, folds=3, repeats=2)
    split = split_patients(dataset.labels, spec, dataset.class_set.names)
    search = SearchData({SIZE: cleaned}, dataset.labels, split, dataset.class_set.names)
    data = search.for_trial("test_resnet", ("rest", "stress"))
    assert isinstance(data, FoldedData)
    assert data.ids == split.train and not set(data.ids) & set(split.test)  # test never enters
    assert data.assignment.shape == (2, len(split.train))
    for repeat, folds in enumerate(split.partitions):
        for index, fold in enumerate(folds):
            held = [data.ids[i] for i in np.flatnonzero(data.assignment[repeat] == index)]
            assert held == list(fold)
    rows = rows_of(cleaned, data.ids)
    expected = torch.stack([as_input(m) for m in cleaned.maps[rows]])
    assert torch.allclose(data.x, expected, atol=1e-6)
    assert data.y.tolist() == [dataset.labels[i] for i in data.ids]
    assert len(data.pool.folds) == 6  # one model per fold and repeat


def test_a_nested_trial_pools_every_patient_and_reads_nothing_of_its_outer_fold(
    cleaned_set, monkeypatch
):
    """The frozen work is the same for every outer fold (the same maps, in the same order)
    while no fold model trains or validates on its outer fold, whose labels are not even
    passed on: poisoning them changes nothing the trial receives."""
    monkeypatch.setattr("trainables.data.backbone_input", lambda backbone: INPUTS)
    dataset, cleaned = cleaned_set
    names = dataset.class_set.names
    spec = SplitSpec(folds=2, outer_folds=3)
    pools = []
    for outer in range(3):
        split = split_patients(dataset.labels, replace(spec, outer=outer), names)
        poisoned = dict(dataset.labels) | {pid: 99 for pid in split.test}
        search = SearchData({SIZE: cleaned}, poisoned, split, names)
        data = search.for_trial("test_resnet", ("rest", "stress"))
        assert data.ids == tuple(sorted(dataset.labels))  # every patient's maps
        outer_rows = [data.ids.index(pid) for pid in split.test]
        assert (data.assignment[:, outer_rows] == UNSEEN).all()
        assert (data.y[outer_rows] == UNSEEN).all() and 99 not in data.y.tolist()
        for fold in data.pool.folds:
            read = set(fold.train_rows.tolist()) | set(fold.val_rows.tolist())
            assert not read & set(outer_rows)
            assert len(read) == len(split.train)  # every other patient, once
        (refit,) = data.everyone().pool.folds  # finalize --refit: all but the outer fold
        assert set(refit.train_rows.tolist()) == set(range(len(data.ids))) - set(outer_rows)
        assert refit.val_rows.tolist() == refit.train_rows.tolist()
        assert data.everyone().pool.digests == data.pool.digests  # its frozen work too
        pools.append(data.pool)
    assert pools[0].digests == pools[1].digests == pools[2].digests  # one frozen entry
