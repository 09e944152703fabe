"""Faithfulness checks of Grad-CAMs (CPU, tiny timm networks at 64 px): ROAD against random
attributions on a model whose evidence is known, the disc-only removal, and the model
randomisation check with its flag, its sample and an untouched original."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search.data.segments import segment_map
from search.explanation import faithfulness
from search.explanation.cams import grad_cams
from search.explanation.faithfulness import (
    ATTRIBUTIONS,
    CORRELATION_THRESHOLD,
    ORDERS,
    RandomisationResult,
    _impute,
    _ViewScorer,
    randomisation_check,
    removal_mask,
    road_curves,
)
from tests.search.explanation.test_explain import SIZE, lit_territory, make_monotone, make_net
from trainables.ensemble import ModelEnsemble
from trainables.model import PolarMapNet

TERRITORY_ORDER = ("LAD", "RCA", "LCx", "LAD", "RCA", "LCx")


def evidence_net(seed: int = 0) -> PolarMapNet:
    """Class 0's logit grows with every pooled feature and the others' shrink: its
    probability rises with the lit area, and its CAM is hot where the map is lit."""
    net = make_monotone(make_net(seed=seed))
    with torch.no_grad():
        net.head[-1].weight.mul_(5.0)
        net.head[-1].weight[1:].neg_()
    return net


def lit_patients() -> torch.Tensor:
    return torch.stack([lit_territory(t) for t in TERRITORY_ORDER])


def random_maps(patients: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(patients, 2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in model.state_dict().items()}


# -- ROAD ----------------------------------------------------------------------------------


def test_grad_cam_beats_random_attributions_and_reversed_cams_lose():
    net = evidence_net()
    x = lit_patients()
    targets = [0] * len(x)
    cams = grad_cams(net, x, targets)

    result = road_curves(net, x, cams, targets, max_patients=len(x))
    reversed_ = road_curves(net, x, 1 - cams, targets, max_patients=len(x))

    assert result.morf_margin > 0.005
    assert result.lerf_margin > 0.005
    assert result.drop("grad_cam", "morf") > result.drop("grad_cam", "lerf")
    # The same check fails a CAM that ranks the evidence last.
    assert reversed_.morf_margin < -0.005
    assert reversed_.lerf_margin < -0.005
    # Random attributions do not depend on the CAMs passed.
    for order in ORDERS:
        np.testing.assert_allclose(
            reversed_.drop("random", order), result.drop("random", order), atol=1e-6
        )


def test_curves_hold_every_patient_view_and_percentile():
    net = evidence_net()
    x = lit_patients()[:3]
    result = road_curves(net, x, targets=[0, 1, 2], percentiles=(15, 40))

    assert result.percentiles == (15.0, 40.0)
    assert result.patients == (0, 1, 2)
    assert result.num_patients == 3
    assert set(result.curves) == {(a, o) for a in ATTRIBUTIONS for o in ORDERS}
    expected = torch.softmax(net(x), dim=1)[[0, 1, 2], [0, 1, 2]].detach().numpy()
    for curve in result.curves.values():
        assert curve.probabilities.shape == (3, 2, 2)
        assert ((curve.probabilities >= 0) & (curve.probabilities <= 1)).all()
        np.testing.assert_allclose(curve.unperturbed, expected, rtol=1e-5)
        assert curve.mean_probabilities.shape == (2,)
        assert curve.patient_drops.shape == (3,)
        assert curve.drop == pytest.approx(curve.patient_drops.mean())
    assert result.seconds > 0


def test_road_is_seeded_and_leaves_modes_and_random_state_alone():
    net = evidence_net().train()
    x = lit_patients()[:2]
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)

    first = road_curves(net, x, targets=[0, 0], percentiles=(20,), seed=3)

    assert torch.rand(1) == before
    assert net.training and net.head.training
    second = road_curves(net, x, targets=[0, 0], percentiles=(20,), seed=3)
    for key, curve in first.curves.items():
        np.testing.assert_array_equal(curve.probabilities, second.curves[key].probabilities)


def test_view_scorer_gives_the_models_own_probabilities():
    x = random_maps(3)
    for model in (make_net(seed=1), ModelEnsemble([make_net(seed=1), make_net(seed=2)])):
        model.eval()
        with torch.no_grad():
            expected = torch.softmax(model(x), dim=1)
            scorer = _ViewScorer(model, x)
            for view in range(2):
                got = scorer(view, x[[2, 0], view], np.array([2, 0]))
                torch.testing.assert_close(got, expected[[2, 0]], rtol=1e-4, atol=1e-6)


def test_an_ensemble_is_checked_on_its_mean_probability():
    ensemble = ModelEnsemble([evidence_net(seed=0), evidence_net(seed=1)])
    x = lit_patients()[:2]
    result = road_curves(ensemble, x, targets=[0, 0], percentiles=(20,))
    expected = torch.softmax(ensemble(x), dim=1)[:, 0].detach().numpy()
    np.testing.assert_allclose(result.curves["grad_cam", "morf"].unperturbed, expected, rtol=1e-5)


# -- removal inside the disc ---------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("percentile", [10, 50, 90])
def test_removal_never_reaches_outside_the_disc(order, percentile):
    inside = segment_map(SIZE) > 0
    rng = np.random.default_rng(0)
    cam = np.where(inside, rng.random((SIZE, SIZE)), 5.0)  # outside hottest of all
    cam = cam if order == "morf" else np.where(inside, cam, -5.0)  # ... or coldest

    removed = removal_mask(cam, percentile, order)

    assert not removed[~inside].any()
    assert removed.sum() == round(percentile / 100 * inside.sum())
    image = torch.from_numpy(rng.random((3, SIZE, SIZE), dtype=np.float32))
    imputed = _impute(faithfulness.NoisyLinearImputer(), image, removed)
    torch.testing.assert_close(imputed[:, ~torch.from_numpy(removed)], image[:, ~removed])
    assert not torch.equal(imputed, image)


def test_removal_follows_the_ranking_and_breaks_ties_by_the_tiebreak():
    inside = segment_map(SIZE) > 0
    cam = np.zeros((SIZE, SIZE))
    cam[: SIZE // 2] = 1.0  # top half hot, bottom half a tie
    morf = removal_mask(cam, 30, "morf")
    lerf = removal_mask(cam, 30, "lerf")
    assert (cam[morf] == 1).all()
    assert (cam[lerf] == 0).all()

    count = int(inside.sum())
    reverse = removal_mask(cam, 30, "lerf", tiebreak=-np.arange(count))
    assert (cam[reverse] == 0).all()
    assert not np.array_equal(reverse, lerf)  # the other end of the tied half


# -- randomisation check -------------------------------------------------------------------


def test_cams_change_when_the_top_stage_and_head_are_reinitialised():
    net = evidence_net()
    net.train()
    x = random_maps(6)
    targets = [0] * 6
    original = weights(net)

    result = randomisation_check(net, x, targets, seed=0)

    assert result.correlations.shape == (6, 2)
    assert np.isfinite(result.correlations).all()
    assert result.mean < CORRELATION_THRESHOLD
    assert not result.flagged
    assert result.layers == ("head", "backbone.layer4")
    assert result.seconds > 0
    after = weights(net)
    assert after.keys() == original.keys()
    for name, value in original.items():
        assert torch.equal(after[name], value), name
    assert net.training  # mode restored too


def test_cams_that_ignore_the_weights_are_flagged(monkeypatch):
    def edge_map(model, x, targets=None):  # depends on the input alone
        return x.abs().mean(dim=2).numpy()

    monkeypatch.setattr(faithfulness, "grad_cams", edge_map)
    result = randomisation_check(make_net(seed=1), random_maps(3), [0, 1, 2])

    np.testing.assert_allclose(result.correlations, 1.0)
    assert result.flagged


def test_constant_cams_compare_as_nothing_or_as_changed(monkeypatch):
    net = make_net(seed=1)
    x = random_maps(3)

    def original_flat(model, x, targets=None):
        cams = x.abs().mean(dim=2).numpy()
        return np.zeros_like(cams) if model is net else cams

    def randomised_flat(model, x, targets=None):
        cams = x.abs().mean(dim=2).numpy()
        return cams if model is net else np.full_like(cams, 0.3)

    monkeypatch.setattr(faithfulness, "grad_cams", original_flat)
    nothing = randomisation_check(net, x, [0, 1, 2])
    monkeypatch.setattr(faithfulness, "grad_cams", randomised_flat)
    changed = randomisation_check(net, x, [0, 1, 2])

    assert np.isnan(nothing.correlations).all()
    assert nothing.compared == 0
    assert nothing.flagged
    np.testing.assert_array_equal(changed.correlations, 0.0)
    assert changed.compared == 6
    assert not changed.flagged


def test_flag_threshold_and_constant_cams():
    def result(correlations):
        return RandomisationResult(np.array(correlations, dtype=float), (0,), ("head",), 0.1)

    assert result([[0.2, 0.9]]).mean == pytest.approx(0.55)
    assert result([[0.2, 0.9]]).flagged
    assert result([[0.5]]).flagged  # at the threshold
    assert not result([[0.49]]).flagged
    assert not result([[np.nan, 0.1], [0.3, np.nan]]).flagged  # constant CAMs left out
    assert result([[np.nan, 0.1], [0.3, np.nan]]).compared == 2
    assert result([[np.nan, 0.1], [0.3, np.nan]]).mean == pytest.approx(0.2)
    assert np.isnan(result([[np.nan, np.nan]]).mean)
    assert result([[np.nan, np.nan]]).flagged  # nothing shows the CAMs depend on the model


def test_ensemble_members_are_each_reinitialised_and_left_untouched():
    members = [evidence_net(seed=0), evidence_net(seed=1)]
    ensemble = ModelEnsemble(members)
    original = weights(ensemble)

    result = randomisation_check(ensemble, random_maps(2), [0, 0])

    assert result.correlations.shape == (2, 2)
    for name, value in weights(ensemble).items():
        assert torch.equal(value, original[name]), name
    copy, _ = faithfulness._randomised_copy(ensemble, seed=0)
    for member, changed in zip(members, copy.members, strict=True):
        assert not torch.equal(member.head[-1].weight, changed.head[-1].weight)
        assert not torch.equal(
            member.backbone.layer4[0].conv1.weight, changed.backbone.layer4[0].conv1.weight
        )
        assert torch.equal(
            member.backbone.layer3[0].conv1.weight, changed.backbone.layer3[0].conv1.weight
        )


# -- sampling ------------------------------------------------------------------------------


def test_both_checks_sample_the_same_seeded_patients():
    net = evidence_net()
    x = random_maps(7)
    targets = [0, 1, 2, 0, 1, 2, 0]

    road = road_curves(net, x, targets=targets, percentiles=(20,), seed=5, max_patients=3)
    again = road_curves(net, x, targets=targets, percentiles=(20,), seed=5, max_patients=3)
    check = randomisation_check(net, x, targets, seed=5, max_patients=3)
    other = randomisation_check(net, x, targets, seed=6, max_patients=3)

    assert road.num_patients == check.num_patients == 3
    assert road.patients == again.patients == check.patients
    assert list(road.patients) == sorted(set(road.patients))
    assert other.patients != check.patients
    assert check.correlations.shape == (3, 2)
    expected = torch.softmax(net(x[list(road.patients)]), dim=1)
    chosen = expected[torch.arange(3), torch.tensor(targets)[list(road.patients)]]
    np.testing.assert_allclose(
        road.curves["grad_cam", "morf"].unperturbed, chosen.detach().numpy(), rtol=1e-5
    )


def test_cams_for_all_patients_are_sampled_with_them():
    net = evidence_net()
    x = lit_patients()
    cams = grad_cams(net, x, [0] * 6)
    given = road_curves(net, x, cams, [0] * 6, percentiles=(20,), max_patients=2)
    computed = road_curves(net, x, None, [0] * 6, percentiles=(20,), max_patients=2)
    for key, curve in given.curves.items():
        np.testing.assert_allclose(curve.probabilities, computed.curves[key].probabilities)

    given = randomisation_check(net, x, [0] * 6, max_patients=2, cams=cams)
    computed = randomisation_check(net, x, [0] * 6, max_patients=2)
    assert given.patients == computed.patients
    np.testing.assert_allclose(given.correlations, computed.correlations, rtol=1e-5)


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda net, x: road_curves(net, x[:, :1], targets=[0] * 2), r"\(N, 2, 3, S, S\)"),
        (lambda net, x: road_curves(net, x[..., :-1], targets=[0] * 2), r"\(N, 2, 3, S, S\)"),
        (lambda net, x: road_curves(net, x, targets=[0]), r"expected 2 targets"),
        (lambda net, x: road_curves(net, x, targets=[0, 3]), r"targets in \[0, 3\)"),
        (lambda net, x: road_curves(net, x, targets=[-1, 0]), r"targets in \[0, 3\)"),
        (
            lambda net, x: road_curves(net, x, np.zeros((2, 2, 32, 32)), [0, 0]),
            r"expected \(N, V, H, W\) = \(2, 2, 64, 64\) cams",
        ),
        (lambda net, x: road_curves(net, x, targets=[0, 0], percentiles=(0,)), r"\(0, 100\)"),
        (lambda net, x: road_curves(net, x, targets=[0, 0], percentiles=()), r"\(0, 100\)"),
        (lambda net, x: road_curves(net, x, targets=[0, 0], max_patients=0), "max_patients"),
        (lambda net, x: randomisation_check(net, x[:, :1], [0, 0]), r"\(N, 2, 3, S, S\)"),
        (lambda net, x: randomisation_check(net, x, [0, 1, 2]), r"expected 2 targets"),
        (lambda net, x: randomisation_check(net, x, [0, 5]), r"targets in \[0, 3\)"),
        (
            lambda net, x: randomisation_check(net, x, [0, 0], cams=np.zeros((2, 2, 64))),
            r"expected \(N, V, H, W\) = \(2, 2, 64, 64\) cams",
        ),
        (lambda net, x: removal_mask(np.zeros((4, 5)), 10, "morf"), r"square \(S, S\) cam"),
        (lambda net, x: removal_mask(np.zeros((4, 4)), 10, "up"), r"order in \('morf'"),
    ],
)
def test_bad_input_names_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call(make_net(), random_maps(2))


def test_randomised_layers_keep_their_scale_and_their_batchnorm_statistics():
    """A fresh initialisation resets BatchNorm's running statistics, and an ImageNet
    EfficientNet-Lite's top stage then saturates (ReLU6): every input gives one output and
    the CAMs vanish, which would 'pass' the check. Each learned tensor is redrawn at its
    own mean and SD instead, and the running statistics stay."""
    net = make_net(seed=2)
    stage = faithfulness.target_layer(net)
    with torch.no_grad():  # statistics and weights unlike any fresh initialisation
        for module in stage.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(1.0, 2.0)
                module.running_var.uniform_(3.0, 4.0)
    copy, _ = faithfulness._randomised_copy(net, seed=0)
    changed = faithfulness.target_layer(copy)
    for (name, before), after in zip(stage.named_buffers(), changed.buffers(), strict=True):
        assert torch.equal(before, after), name
    for (name, before), after in zip(stage.named_parameters(), changed.parameters(), strict=True):
        if before.numel() > 1 and before.std() > 0:  # a constant tensor stays as it is
            assert not torch.equal(before, after), name
        if before.numel() > 50:
            assert after.mean().item() == pytest.approx(
                before.mean().item(), abs=0.1 * before.std().item()
            )
            assert after.std().item() == pytest.approx(before.std().item(), rel=0.2), name
