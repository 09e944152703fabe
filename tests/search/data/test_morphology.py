"""OpenCV's morphology gives scipy.ndimage's answers pixel for pixel, the image's edges
included (cleaning's output must not change with the library that computes it)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from search.data import morphology


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def speckled(rng, shape, dtype=np.uint8):
    """Smooth blobs plus speckle, so that openings and closings have work at every scale."""
    base = ndimage.uniform_filter(rng.integers(0, 256, shape).astype(float), size=5)
    noisy = base + rng.normal(0, 40, shape)
    info = np.iinfo(dtype)
    return np.clip(noisy, max(info.min, -300), min(info.max, 300)).astype(dtype)


@pytest.mark.parametrize("size", [3, 5, 9])
def test_grey_opening_and_closing_per_channel(rng, size):
    rgb = speckled(rng, (37, 53, 3))
    window = (size, size, 1)
    assert np.array_equal(
        morphology.grey_opening(rgb, size), ndimage.grey_opening(rgb, size=window)
    )
    assert np.array_equal(
        morphology.grey_closing(rgb, size), ndimage.grey_closing(rgb, size=window)
    )


@pytest.mark.parametrize("size", [3, 7])
def test_grey_morphology_of_a_signed_image(rng, size):
    luma = speckled(rng, (41, 29), dtype=np.int16) - 120  # negative values too
    assert np.array_equal(morphology.grey_opening(luma, size), ndimage.grey_opening(luma, size))
    assert np.array_equal(morphology.grey_closing(luma, size), ndimage.grey_closing(luma, size))
    assert np.array_equal(morphology.grey_dilation(luma, size), ndimage.grey_dilation(luma, size))


@pytest.mark.parametrize("size", [3, 11])
def test_minimum_filter_of_a_mask_repeats_the_edge(rng, size):
    mask = rng.random((30, 45)) < 0.9
    mask[:, :3] = True  # a set edge stays set: the edge is repeated, not cleared
    found = morphology.minimum_filter(mask, size)
    assert found.dtype == bool
    assert np.array_equal(found, ndimage.minimum_filter(mask, size=size))


@pytest.mark.parametrize("width", [3, 13, 19])
def test_row_max(rng, width):
    mask = rng.random((20, 60)) < 0.05
    expected = ndimage.maximum_filter1d(mask.view(np.uint8), width, axis=1)
    assert np.array_equal(morphology.row_max(mask, width), expected)


@pytest.mark.parametrize("radius", [1, 2, 4])
def test_binary_dilation_and_opening_set_nothing_beyond_the_image(rng, radius):
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    diamond, disc = np.abs(x) + np.abs(y) <= radius, np.hypot(x, y) <= radius
    mask = ndimage.binary_dilation(rng.random((33, 47)) < 0.08, iterations=radius)
    mask[0, :] = True  # an edge row: opening clears it, nothing beyond holds it up
    for structure in (diamond, disc):
        assert np.array_equal(
            morphology.dilate(mask, structure), ndimage.binary_dilation(mask, structure)
        )
        opened = morphology.opening(mask, structure)
        assert opened.dtype == bool
        assert np.array_equal(opened, ndimage.binary_opening(mask, structure))
    assert not morphology.opening(mask, disc)[0].all()


def test_a_strided_mask_is_read_as_it_looks(rng):
    mask = rng.random((40, 40)) < 0.5
    view = mask[::2, ::2]  # not contiguous
    disc = np.ones((3, 3), bool)
    assert np.array_equal(morphology.opening(view, disc), ndimage.binary_opening(view, disc))


@pytest.mark.parametrize("radius", [1, 2])
def test_binary_closing_joins_nothing_across_the_image_edge(rng, radius):
    # As scipy's closing of the mask padded with nothing set, cut back to the image: a
    # gap at the edge is not closed by what lies beyond.
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    disc = np.hypot(x, y) <= radius
    mask = rng.random((31, 45)) < 0.3
    pad = 2 * radius + 1
    expected = ndimage.binary_closing(np.pad(mask, pad), disc)[pad:-pad, pad:-pad]
    closed = morphology.closing(mask, disc)
    assert closed.dtype == bool and np.array_equal(closed, expected)
