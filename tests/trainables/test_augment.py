"""Augmentation of (batch, views, channels, H, W) map tensors: flips and small rotations."""

from __future__ import annotations

import math

import pytest
import torch

from trainables.augment import augment
from trainables.config import AugmentSpec

SIZE = 32
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_maps(batch: int = 16, views: int = 2, seed: int = 0) -> torch.Tensor:
    """Noise without any symmetry: every flip and rotation shows."""
    return torch.randn(batch, views, 3, SIZE, SIZE, generator=seeded(seed))


def normalized(pixels: torch.Tensor) -> torch.Tensor:
    """[0, 1] pixels (B, V, 3, H, W) -> ImageNet-normalized, as the backbone gets them:
    black is (0 - mean) / std, negative and different per channel."""
    return (pixels - MEAN) / STD


def radius() -> torch.Tensor:
    """Distance of each pixel centre from the image centre, in pixels."""
    centre = (SIZE - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    return torch.hypot(ys - centre, xs - centre)


def bullseye(batch: int, views: int = 2) -> torch.Tensor:
    """A centred disc on black, bright at the centre and smoothly fading to the rim."""
    r = radius()
    disc = (torch.cos(r / (SIZE / 2 - 2) * math.pi / 2).clamp(min=0) * (r < SIZE / 2 - 2)) * 0.9
    return normalized(disc.expand(batch, views, 3, SIZE, SIZE).clone())


# -- the spec -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("none", AugmentSpec()),
        ("", AugmentSpec()),
        ("hflip+rotate10", AugmentSpec(hflip=True, rotate=10.0)),
        ("vflip", AugmentSpec(vflip=True)),
        ("rotate2.5", AugmentSpec(rotate=2.5)),
        ("rotate10+vflip+hflip", AugmentSpec(hflip=True, vflip=True, rotate=10.0)),
    ],
)
def test_parse(text, spec):
    assert AugmentSpec.parse(text) == spec


@pytest.mark.parametrize(
    "text", ["mirror", "hflip+", "hflip,vflip", "rotate", "rotate-5", "rotatex", "HFLIP", "flip"]
)
def test_bad_text_names_the_expected_form(text):
    with pytest.raises(ValueError) as raised:
        AugmentSpec.parse(text)
    message = str(raised.value)
    assert f"augmentation {text!r}" in message
    assert "'none' or parts joined by '+'" in message
    assert "hflip, vflip, rotate<degrees>" in message


@pytest.mark.parametrize(
    "spec",
    [
        AugmentSpec(),
        AugmentSpec(hflip=True),
        AugmentSpec(vflip=True, rotate=10.0),
        AugmentSpec(hflip=True, vflip=True, rotate=7.5),
    ],
)
def test_str_round_trip(spec):
    assert AugmentSpec.parse(str(spec)) == spec


def test_str_is_the_documented_form():
    assert str(AugmentSpec()) == "none"
    assert str(AugmentSpec(hflip=True, rotate=10.0)) == "hflip+rotate10"
    assert str(AugmentSpec(vflip=True, hflip=True)) == "hflip+vflip"


def test_active_only_when_something_is_on():
    assert not AugmentSpec().active
    assert not AugmentSpec.parse("rotate0").active
    assert AugmentSpec(hflip=True).active
    assert AugmentSpec(vflip=True).active
    assert AugmentSpec(rotate=0.5).active


# -- augment --------------------------------------------------------------------------------


def test_an_inactive_spec_returns_the_input_unchanged():
    x = random_maps()
    generator = seeded(0)
    state = generator.get_state()
    out = augment(x, AugmentSpec(), generator)
    assert torch.equal(out, x)
    assert torch.equal(generator.get_state(), state)  # no draw spent either


@pytest.mark.parametrize(("name", "dim"), [("hflip", -1), ("vflip", -2)])
def test_a_flip_flips_whole_samples_all_views_alike(name, dim):
    x = random_maps(batch=32, views=3)
    out = augment(x, AugmentSpec.parse(name), seeded(1))
    assert out.shape == x.shape
    flipped = []
    for sample, result in zip(x, out, strict=True):
        same = [torch.equal(r, v) for r, v in zip(result, sample, strict=True)]
        mirrored = [torch.equal(r, v.flip(dim)) for r, v in zip(result, sample, strict=True)]
        assert all(same) or all(mirrored), "views of one patient got different flips"
        assert not (all(same) and all(mirrored))  # noise is not symmetric
        flipped.append(all(mirrored))
    assert 0 < sum(flipped) < len(flipped)  # probability one half: some of each in 32


def test_hflip_is_left_right_not_top_bottom():
    x = torch.zeros(64, 1, 3, SIZE, SIZE)
    x[..., 0, :] = 1.0  # the top row lit
    x[..., :, 0] = 2.0  # the left column lit (the corner too)
    out = augment(x, AugmentSpec(hflip=True), seeded(0))
    changed = [not torch.equal(o, s) for o, s in zip(out, x, strict=True)]
    assert any(changed)
    for o, s, c in zip(out, x, changed, strict=True):
        if c:
            assert torch.equal(o[..., :, -1], s[..., :, 0])  # left column moved right
            assert torch.equal(o[..., 0, 1:], s[..., 0, :-1].flip(-1))  # top row stays top


def test_the_same_seed_gives_the_same_draw_and_another_seed_another():
    x = random_maps(batch=32)
    spec = AugmentSpec(hflip=True, vflip=True, rotate=10.0)
    first = augment(x, spec, seeded(5))
    again = augment(x, spec, seeded(5))
    other = augment(x, spec, seeded(6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_the_input_tensor_is_not_changed_in_place():
    x = random_maps()
    before = x.clone()
    augment(x, AugmentSpec(hflip=True, vflip=True, rotate=10.0), seeded(0))
    assert torch.equal(x, before)


def test_rotation_keeps_the_shape_and_dtype():
    x = random_maps(batch=5, views=3)
    out = augment(x, AugmentSpec(rotate=10.0), seeded(0))
    assert out.shape == x.shape and out.dtype == x.dtype


def test_rotation_keeps_a_centred_disc_centred():
    x = bullseye(batch=8)
    out = augment(x, AugmentSpec(rotate=10.0), seeded(3))
    # radially symmetric: rotation about the centre changes it by interpolation only
    assert (out - x).abs().max() < 0.05 * (x.max() - x.min())
    # the brightest pixels stay in the middle
    bright = out[:, :, 0] > out[:, :, 0].amax(dim=(-2, -1), keepdim=True) - 0.05
    assert radius()[bright.nonzero()[:, -2:].unbind(-1)].max() < 3


def test_rotated_corners_get_the_black_value_not_zero():
    x = bullseye(batch=8)
    black = normalized(torch.zeros(1, 1, 3, 1, 1)).flatten()
    assert torch.all(black < -1.5)  # normalized black is far below zero
    assert torch.allclose(x.amin(dim=(0, 1, 3, 4)), black)  # the batch minimum per channel
    out = augment(x, AugmentSpec(rotate=10.0), seeded(0))
    for corner in (out[..., 0, 0], out[..., 0, -1], out[..., -1, 0], out[..., -1, -1]):
        # (batch, views, channels): every corner is that channel's black, within rounding
        assert torch.allclose(corner, black.expand_as(corner), atol=1e-5)


def test_pixels_rotated_in_from_outside_get_the_black_value():
    """A map filling the whole square: what rotation brings in from outside its edges is
    black, the batch minimum of each view and channel, not zero (grey after normalization)."""
    x = normalized(torch.full((8, 2, 3, SIZE, SIZE), 0.6))
    x[0, :, :, 5, 5] = normalized(torch.zeros(1, 1, 3, 1, 1)).flatten()  # a black pixel a view
    out = augment(x, AugmentSpec(rotate=10.0), seeded(0))
    black = x.amin(dim=(0, 1, 3, 4))
    grey = x[1, 0, :, 0, 0]
    for sample in out[1:]:
        corner = sample[..., 0, 0]
        assert torch.all(corner < grey.view(1, 3) - 0.1), "corner not darkened"
        assert torch.all(corner >= black.view(1, 3) - 1e-5)
    assert torch.allclose(out[1:, :, :, SIZE // 2, SIZE // 2], grey.expand(7, 2, 3))


def bar_orientation(image: torch.Tensor) -> tuple[float, float, float]:
    """Angle of an image's long axis from the vertical, in degrees, and its centroid (y, x),
    from the second moments of its brightness above black."""
    weight = (image - image.min()).double()
    ys, xs = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float64), torch.arange(SIZE, dtype=torch.float64),
        indexing="ij",
    )  # fmt: skip
    total = weight.sum()
    cy, cx = (weight * ys).sum() / total, (weight * xs).sum() / total
    myy = (weight * (ys - cy) ** 2).sum()
    mxx = (weight * (xs - cx) ** 2).sum()
    mxy = (weight * (xs - cx) * (ys - cy)).sum()
    return math.degrees(0.5 * math.atan2(2 * mxy, myy - mxx)), cy.item(), cx.item()


def upright_bars(batch: int, views: int) -> torch.Tensor:
    x = normalized(torch.zeros(batch, views, 3, SIZE, SIZE))
    x[..., 4:28, 14:18] = normalized(torch.ones(1, 1, 3, 1, 1)).view(3, 1, 1)
    return x


def test_rotation_turns_an_asymmetric_pattern():
    x = upright_bars(batch=8, views=2)
    assert bar_orientation(x[0, 0, 0])[0] == pytest.approx(0, abs=1e-9)
    out = augment(x, AugmentSpec(rotate=10.0), seeded(2))
    for sample, before in zip(out, x, strict=True):
        assert (sample - before).abs().max() > 0.05  # every sample's pixels changed
    angles = [bar_orientation(sample[0, 0])[0] for sample in out]
    assert all(abs(a) > 0.05 for a in angles)
    assert len({round(a, 3) for a in angles}) == len(angles)  # an angle per sample
    # both views of a sample get the same angle
    assert torch.allclose(out[:, 0], out[:, 1])


def test_rotation_is_about_the_centre_within_the_angle_asked_for():
    x = upright_bars(batch=64, views=1)
    out = augment(x, AugmentSpec(rotate=10.0), seeded(4))
    measured = [bar_orientation(sample[0, c]) for sample in out for c in range(3)]
    angles = [angle for angle, _, _ in measured]
    assert max(abs(a) for a in angles) <= 10.1
    assert min(angles) < -7 and max(angles) > 7  # uniform over +-10: both ways, near 10
    centre = (SIZE - 1) / 2
    for _, cy, cx in measured:
        assert cy == pytest.approx(centre, abs=0.05) and cx == pytest.approx(centre, abs=0.05)


@pytest.mark.parametrize("degrees", [2.0, 30.0])
def test_the_angle_range_follows_the_spec(degrees):
    out = augment(upright_bars(batch=64, views=1), AugmentSpec(rotate=degrees), seeded(4))
    angles = [abs(bar_orientation(sample[0, 0])[0]) for sample in out]
    assert max(angles) <= degrees * 1.01 + 0.02
    assert max(angles) > degrees * 0.7


def test_a_views_augmented_copy_does_not_depend_on_the_other_views():
    """So a view's frozen work on a copy is shared between dual and single-view searches."""
    x = bullseye(batch=6)
    x[:, 1] = x[:, 1].flip(-1) * 0.5 + 0.3  # the views differ, minimum included
    spec = AugmentSpec(hflip=True, vflip=True, rotate=10.0)
    both = augment(x, spec, seeded(3))
    for view in range(2):
        alone = augment(x[:, view : view + 1], spec, seeded(3))
        assert torch.allclose(both[:, view], alone[:, 0], atol=1e-6)
