"""What each backbone expects, and cleaned maps turned into that."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from search.data.normalize import BackboneInput, backbone_input, normalize_maps

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


@pytest.mark.parametrize(
    ("name", "size", "mean_std"),
    [
        ("resnet18", 224, IMAGENET),
        ("resnetv2_50", 224, HALF),
        ("test_resnet", 160, None),
        ("inception_v3", 299, None),
        ("convnext_tiny", 224, IMAGENET),
        ("convnext_tiny.fb_in22k_ft_in1k_384", 384, IMAGENET),  # a tag picks the variant
    ],
)
def test_backbone_input_comes_from_the_pretrained_config(name, size, mean_std):
    spec = backbone_input(name)
    assert spec.size == size
    assert len(spec.mean) == len(spec.std) == 3
    assert all(0 <= m <= 1 for m in spec.mean) and all(0 < s <= 1 for s in spec.std)
    if mean_std is not None:
        assert spec.mean == pytest.approx(mean_std[0]) and spec.std == pytest.approx(mean_std[1])


@pytest.mark.parametrize("name", ["no_such_backbone", "resnet18.nosuchtag", "nosuchnet.in1k"])
def test_unknown_backbone_is_refused_by_name(name):
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        backbone_input(name)


def corner_maps(size: int) -> np.ndarray:
    """Two maps: black with a white top-left pixel, and pure red with a black pixel."""
    maps = np.zeros((2, size, size, 3), dtype=np.uint8)
    maps[0, 0, 0] = 255
    maps[1, ..., 0] = 255
    maps[1, 1, 2] = 0
    return maps


@pytest.mark.parametrize("name", ["resnet18", "resnetv2_50"])
def test_normalized_values_are_the_scaled_pixels(name):
    spec = backbone_input(name)
    maps = corner_maps(spec.size)
    out = normalize_maps(maps, spec)
    assert out.dtype == torch.float32 and out.shape == (2, 3, spec.size, spec.size)
    mean, std = np.array(spec.mean), np.array(spec.std)
    black, white = (0 - mean) / std, (1 - mean) / std
    for channel in range(3):
        assert out[0, channel, 0, 0].item() == pytest.approx(white[channel], abs=1e-6)
        assert out[0, channel, 5, 7].item() == pytest.approx(black[channel], abs=1e-6)
    # Red stays channel 0, and rows and columns keep their places.
    assert out[1, 0, 3, 3].item() == pytest.approx(white[0], abs=1e-6)
    assert out[1, 1, 3, 3].item() == pytest.approx(black[1], abs=1e-6)
    assert out[1, 2, 3, 3].item() == pytest.approx(black[2], abs=1e-6)
    assert out[1, 0, 1, 2].item() == pytest.approx(black[0], abs=1e-6)
    assert out[1, 0, 2, 1].item() == pytest.approx(white[0], abs=1e-6)


def test_half_mean_and_std_scale_to_exactly_minus_one_to_one():
    spec = backbone_input("resnetv2_50")
    maps = np.random.default_rng(0).integers(0, 256, (3, spec.size, spec.size, 3), dtype=np.uint8)
    maps[0, 0, 0], maps[0, 0, 1] = 0, 255
    out = normalize_maps(maps, spec)
    assert out.min().item() == -1.0 and out.max().item() == 1.0


def test_every_pixel_matches_a_reference_computation():
    spec = BackboneInput(8, (0.1, 0.5, 0.9), (0.2, 0.3, 0.4))
    maps = np.random.default_rng(1).integers(0, 256, (2, 3, 8, 8, 3), dtype=np.uint8)
    expected = (maps / 255 - np.array(spec.mean)) / np.array(spec.std)
    out = normalize_maps(maps, spec)
    assert out.shape == (2, 3, 3, 8, 8) and out.dtype == torch.float32
    assert np.allclose(out.numpy(), np.moveaxis(expected, -1, -3), atol=1e-5)


def test_single_map_and_non_contiguous_input():
    spec = BackboneInput(8, (0.1, 0.5, 0.9), (0.2, 0.3, 0.4))
    maps = np.random.default_rng(2).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    original = maps.copy()
    flipped = maps[:, ::-1, :, ::-1]  # a strided view: rows and channels reversed
    single = normalize_maps(maps[0], spec)
    assert single.shape == (3, 8, 8)
    assert torch.equal(single, normalize_maps(maps, spec)[0])
    expected = (np.ascontiguousarray(flipped) / 255 - np.array(spec.mean)) / np.array(spec.std)
    out = normalize_maps(flipped, spec)
    assert np.allclose(out.numpy(), np.moveaxis(expected, -1, -3), atol=1e-5)
    assert np.array_equal(maps, original)  # the input is left alone


@pytest.mark.parametrize(
    "maps",
    [
        np.zeros((8, 8, 3), dtype=np.float32),
        np.zeros((8, 8, 3), dtype=np.uint16),
        np.zeros((8, 8, 3), dtype=np.int64),
        np.zeros((7, 8, 3), dtype=np.uint8),
        np.zeros((2, 9, 9, 3), dtype=np.uint8),
        np.zeros((8, 8, 4), dtype=np.uint8),
        np.zeros((8, 8), dtype=np.uint8),
        np.zeros((3, 8, 8), dtype=np.uint8),
    ],
    ids=["float32", "uint16", "int64", "7x8", "9x9", "rgba", "grey", "channels-first"],
)
def test_wrong_dtype_or_size_is_refused(maps):
    spec = BackboneInput(8, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match=r"expected uint8 maps of shape \(\.\.\., 8, 8, 3\)"):
        normalize_maps(maps, spec)
