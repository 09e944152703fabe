"""Grad-CAMs of PolarMapNet, their 17-segment statistics and figures (CPU, tiny timm models)."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from matplotlib import colormaps
from matplotlib.image import AxesImage
from matplotlib.patches import Wedge
from pytorch_grad_cam.utils.image import scale_cam_image

from search.data.segments import TERRITORIES, segment_map
from search.explanation.cams import grad_cams, target_layer
from search.explanation.overlays import cam_panel_figure
from search.explanation.segments import (
    TERRITORY_NAMES,
    bullseye_figure,
    hottest_territory,
    segment_means,
    territory_match,
    territory_means,
)
from trainables.config import HeadSpec
from trainables.model import PolarMapNet


def make_net(backbone: str = "test_resnet", views: int = 2, seed: int = 0) -> PolarMapNet:
    torch.manual_seed(seed)
    model = timm.create_model(backbone, pretrained=False, num_classes=0)
    return PolarMapNet(model, views, 3, HeadSpec.uniform(16, 1, 0.0))


def make_monotone(net: PolarMapNet) -> PolarMapNet:
    """Logit 0 grows with every pooled feature and the head is linear on ResNet's
    non-negative features: class 0's CAM is non-zero wherever the last stage is active,
    and a view's CAM cannot depend on the other views."""
    with torch.no_grad():
        first, last = net.head[0], net.head[-1]
        first.weight.abs_()
        first.bias.zero_()
        last.weight.abs_()
    return net


def maps(patients: int, views: int, height: int = 96, width: int = 96, seed: int = 0):
    return torch.rand(
        patients, views, 3, height, width, generator=torch.Generator().manual_seed(seed)
    )


def hand_grad_cams(net: PolarMapNet, x: torch.Tensor, classes: list[int]) -> np.ndarray:
    """Grad-CAM on the whole model, views folded as in training, with the library's
    scaling (per layer, then once more after aggregating layers)."""
    net.eval()
    saved = {}
    hook = target_layer(net).register_forward_hook(lambda m, i, out: saved.update(a=out))
    logits = net(x.clone().requires_grad_(True))
    hook.remove()
    activations = saved["a"]
    chosen = logits[torch.arange(len(classes)), torch.tensor(classes)].sum()
    (grads,) = torch.autograd.grad(chosen, activations)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cams = torch.relu((weights * activations).sum(dim=1)).detach().numpy()
    size = (x.shape[-1], x.shape[-2])
    return scale_cam_image(scale_cam_image(cams, size)).reshape(*x.shape[:2], *x.shape[-2:])


# -- grad_cams ---------------------------------------------------------------------------


@pytest.mark.parametrize("backbone", ["test_resnet", "test_efficientnet"])
@pytest.mark.parametrize("views", [1, 2], ids=["stress", "dual"])
def test_one_cam_per_patient_and_view_at_input_resolution(backbone, views):
    net = make_net(backbone, views)
    cams = grad_cams(net, maps(3, views, height=64, width=96))
    assert cams.shape == (3, views, 64, 96)
    assert cams.dtype == np.float32
    assert np.isfinite(cams).all()
    assert cams.min() >= 0 and cams.max() <= 1


def test_target_layer_is_the_last_feature_stage():
    net = make_net("test_efficientnet")
    assert target_layer(net) is net.backbone.blocks[4]
    net = make_net("test_resnet")
    assert target_layer(net) is net.backbone.layer4


def test_matches_grad_cam_on_the_whole_dual_model():
    """One view at a time through the wrapper gives what Grad-CAM on the whole model gives:
    the view's features sit where PolarMapNet puts them."""
    net = make_net("test_efficientnet", views=2)
    x, classes = maps(4, 2), [0, 1, 2, 0]
    expected = hand_grad_cams(net, x, classes)
    assert (expected.reshape(8, -1).max(axis=1) > 0.5).sum() >= 6  # a non-trivial check
    np.testing.assert_allclose(grad_cams(net, x, classes), expected, atol=1e-4)


def test_frozen_last_stage_still_gets_gradients_and_nothing_changes():
    net = make_monotone(make_net("test_resnet", views=2))
    assert not any(p.requires_grad for p in net.backbone.parameters())  # frozen at warm-up
    net.train()
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    modes = {name: m.training for name, m in net.named_modules()}
    flags = {name: p.requires_grad for name, p in net.named_parameters()}

    cams = grad_cams(net, maps(3, 2), targets=[0, 0, 0])

    assert (cams.reshape(6, -1).max(axis=1) > 0.99).all()  # every map non-zero, scaled to 1
    assert (cams.reshape(6, -1).std(axis=1) > 0.05).all()
    assert all(torch.equal(weights[k], v) for k, v in net.state_dict().items())
    assert {name: m.training for name, m in net.named_modules()} == modes
    assert {name: p.requires_grad for name, p in net.named_parameters()} == flags
    assert all(p.grad is None for p in net.parameters())


def test_restores_partly_unfrozen_flags_and_existing_gradients():
    net = make_net("test_resnet", views=1)
    net.unfreeze_top(2)
    net.train()
    flags = {name: p.requires_grad for name, p in net.named_parameters()}
    assert any(flags.values()) and not all(flags.values())
    modes = {name: m.training for name, m in net.named_modules()}
    gradient = torch.full_like(net.head[0].weight, 0.5)
    net.head[0].weight.grad = gradient

    grad_cams(net, maps(2, 1))

    assert {name: p.requires_grad for name, p in net.named_parameters()} == flags
    assert {name: m.training for name, m in net.named_modules()} == modes
    assert net.head[0].weight.grad is gradient and torch.all(gradient == 0.5)
    assert all(p.grad is None for name, p in net.named_parameters() if name != "head.0.weight")


def test_cam_of_a_view_follows_that_view_only():
    net = make_monotone(make_net("test_resnet", views=2))
    x = maps(2, 2, seed=1)
    changed = x.clone()
    changed[:, 1] = maps(2, 1, seed=2)[:, 0]
    before = grad_cams(net, x, targets=[0, 0])
    after = grad_cams(net, changed, targets=[0, 0])
    np.testing.assert_allclose(after[:, 0], before[:, 0], atol=1e-5)
    assert np.abs(after[:, 1] - before[:, 1]).max() > 0.1
    assert np.abs(before[:, 0] - before[:, 1]).max() > 0.1


def test_default_target_is_the_predicted_class():
    net = make_net("test_efficientnet", views=2, seed=3)
    x = maps(4, 2, seed=3)
    with torch.no_grad():
        predicted = net.eval()(x).argmax(dim=1)
    np.testing.assert_array_equal(grad_cams(net, x), grad_cams(net, x, targets=predicted))


def test_rejects_bad_targets_and_shapes():
    net = make_net("test_resnet", views=2)
    with pytest.raises(ValueError, match="targets"):
        grad_cams(net, maps(2, 2), targets=[0])
    with pytest.raises(ValueError, match="outside"):
        grad_cams(net, maps(2, 2), targets=[0, 3])
    with pytest.raises(ValueError, match="expected"):
        grad_cams(net, maps(2, 1))


# -- 17-segment statistics ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "territory"), [(1, "LAD"), (3, "RCA"), (12, "LCx"), (16, "LCx"), (17, "LAD")]
)
def test_a_cam_on_one_segment_lands_in_that_segment_and_territory(segment, territory):
    segments = segment_map(64)
    cam = np.where(segments == segment, 1.0, 0.1)[None]
    means = segment_means(cam)
    assert means.shape == (1, 17)
    assert means[0].argmax() == segment - 1
    assert means[0, segment - 1] == pytest.approx(1.0)
    assert hottest_territory(territory_means(means)).tolist() == [territory]


def test_segment_columns_follow_segment_numbers():
    size = 80
    cams = np.stack([segment_map(size) / 17, 1 - segment_map(size) / 17])
    expected = np.arange(1, 18) / 17
    np.testing.assert_allclose(segment_means(cams), np.stack([expected, 1 - expected]))


def test_territory_values_are_means_of_their_segments():
    uniform = segment_means(np.full((2, 64, 64), 0.3))
    np.testing.assert_allclose(territory_means(uniform), 0.3)
    lad_only = np.zeros((1, 17))
    lad_only[0, [s - 1 for s in TERRITORIES["LAD"]]] = 1.0
    lad_only[0, 2] = 0.5  # one RCA segment of five
    assert TERRITORY_NAMES == ("LAD", "RCA", "LCx")
    np.testing.assert_allclose(territory_means(lad_only), [[1.0, 0.1, 0.0]])


def test_segment_means_rejects_maps_too_small_for_17_segments():
    with pytest.raises(ValueError, match="too small"):
        segment_means(np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="square"):
        segment_means(np.zeros((1, 32, 40)))


def test_territory_match_rate_and_majority_baseline():
    rate, baseline = territory_match(
        ["LAD", "RCA", "LAD", "LCx", "LCx"], ["LAD", "LAD", "LAD", "LCx", "RCA"]
    )
    assert rate == pytest.approx(3 / 5)
    assert baseline == pytest.approx(3 / 5)
    assert territory_match(["RCA", "LCx"], ["RCA", "LCx"]) == (1.0, 0.5)
    with pytest.raises(ValueError):
        territory_match(["LAD"], ["LAD", "RCA"])


# -- figures -----------------------------------------------------------------------------


def segment_labels(figure) -> dict[int, tuple[float, float]]:
    """Segment number -> position of its label."""
    ax = figure.axes[0]
    return {int(t.get_text().split("\n")[0]): t.get_position() for t in ax.texts}


def test_bullseye_labels_every_segment_where_the_segment_map_has_it():
    values = np.linspace(0, 1, 17)
    figure = bullseye_figure(values, title="CAM")
    labels = segment_labels(figure)
    assert sorted(labels) == list(range(1, 18))
    x, y = labels[1]
    assert abs(x) < 1e-9 and y > 0.8  # anterior at the top
    x, y = labels[4]
    assert abs(x) < 1e-9 and y < -0.8  # inferior at the bottom
    assert labels[14][0] < -0.2 and labels[16][0] > 0.2  # septal left, lateral right
    assert labels[17] == (0, 0)
    size = 200
    segments = segment_map(size)
    for number, (x, y) in labels.items():
        row, col = round((size - 1) / 2 - y * size / 2), round((size - 1) / 2 + x * size / 2)
        assert segments[row, col] == number
    assert "0.50" in {t.get_text().split("\n")[1] for t in figure.axes[0].texts}
    assert len(figure.axes) == 2  # the bullseye and its colour bar
    assert figure.axes[0].get_title() == "CAM"


def test_bullseye_wedges_are_filled_by_value_in_their_places():
    values = np.zeros(17)
    values[0] = 1.0  # segment 1 at the top is the hot one
    figure = bullseye_figure(values, cmap="inferno")
    wedges = {p.get_label(): p for p in figure.axes[0].patches if isinstance(p, Wedge)}
    assert len(wedges) == 17
    top = wedges["segment 1"]
    assert top.theta1 == 60 and top.theta2 == 120 and top.r == 1.0
    centre = top.get_path().vertices.mean(axis=0)
    assert centre[1] > 0.5 and abs(centre[0]) < 0.1
    hot, cold = top.get_facecolor(), wedges["segment 2"].get_facecolor()
    np.testing.assert_allclose(hot, colormaps["inferno"](1.0), atol=1e-6)
    assert not np.allclose(hot, cold)


def test_cam_panel_has_one_overlaid_map_per_view_and_the_decision_in_its_title():
    size = 48
    polar_maps = np.full((2, size, size, 3), 120, dtype=np.uint8)
    cams = np.random.default_rng(0).random((2, size, size))
    figure = cam_panel_figure(
        polar_maps, cams, ["rest", "stress"], "Ischemia", 0.873, truth="Normal", patient="P007"
    )
    plain = [ax for ax in figure.axes if len(ax.get_images()) == 1]
    assert [ax.get_title() for ax in plain] == ["rest map", "stress map"]  # the map alone
    image_axes = [ax for ax in figure.axes if len(ax.get_images()) == 2]
    assert [ax.get_title() for ax in image_axes] == ["rest", "stress"]
    for ax in image_axes:
        _map, overlay = ax.get_images()
        assert isinstance(overlay, AxesImage) and 0 < overlay.get_alpha() < 1
        assert overlay.get_array().mask[0, 0] and not overlay.get_array().mask[size // 2, size // 2]
    # every map the same size, each view's two maps in one column, the CAM row below
    boxes = [ax.get_position().bounds for ax in plain + image_axes]
    assert len({(round(w, 6), round(h, 6)) for _, _, w, h in boxes}) == 1
    assert [round(b[0], 6) for b in boxes[:2]] == [round(b[0], 6) for b in boxes[2:]]
    assert all(b[1] < a[1] for a, b in zip(boxes[:2], boxes[2:], strict=True))
    assert all(min(x, y) >= 0 and max(x + w, y + h) <= 1 for x, y, w, h in boxes)
    title = figure.get_suptitle()
    assert "Ischemia" in title and "87%" in title and "Normal" in title and "P007" in title
    assert (
        "true" not in cam_panel_figure(polar_maps, cams, ["a", "b"], "Normal", 0.5).get_suptitle()
    )
