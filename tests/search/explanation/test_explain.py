"""Where a finalized model looked: the synthetic truth sidecars read back, and the files and
findings of `explain_model` on a tiny timm network (CPU), the territory check against
inputs whose answer is known and against Grad-CAMs of the true class taken by hand."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import timm
import torch

from search.data.segments import TERRITORIES, segment_map
from search.explanation.cams import grad_cams
from search.explanation.explain import (
    SEGMENT_COLUMNS,
    explain_model,
    read_defect_territories,
)
from search.explanation.explain import (
    TestPatients as HeldOutPatients,  # aliased: pytest would try to collect Test*
)
from search.explanation.segments import (
    TERRITORY_NAMES,
    hottest_territory,
    segment_means,
    territory_match,
    territory_means,
)
from search.synth.dataset import _truth_json
from search.synth.uptake import draw_patient
from trainables.config import HeadSpec
from trainables.model import PolarMapNet

CLASSES = ("Infarction", "Ischemia", "Normal")
VIEWS = ("rest", "stress")
SIZE = 64
PNG, JPEG = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"


def make_net(views: int = 2, seed: int = 0) -> PolarMapNet:
    torch.manual_seed(seed)
    backbone = timm.create_model("test_resnet", pretrained=False, num_classes=0)
    return PolarMapNet(backbone, views, len(CLASSES), HeadSpec.uniform(16, 1, 0.0))


def make_monotone(net: PolarMapNet) -> PolarMapNet:
    """Every logit grows with every (non-negative) pooled feature: a class's CAM is hot
    exactly where the last stage is active, which on a black map is where it is lit."""
    with torch.no_grad():
        net.head[0].weight.abs_()
        net.head[0].bias.zero_()
        net.head[-1].weight.abs_()
    return net


def lit_territory(territory: str | None, views: int = 2) -> torch.Tensor:
    """(V, 3, S, S) maps, black except the territory's segments (all of the disc if None)."""
    segments = segment_map(SIZE)
    inside = segments > 0 if territory is None else np.isin(segments, TERRITORIES[territory])
    x = torch.zeros(views, 3, SIZE, SIZE)
    x[:, :, torch.from_numpy(inside)] = 1.0
    return x


def patients_of(x: torch.Tensor, labels, territories=None, prefix="P") -> HeldOutPatients:
    n = x.shape[0]
    ids = tuple(f"{prefix}{i:02d}" for i in range(n))
    maps = (x.permute(0, 1, 3, 4, 2).clamp(0, 1) * 255).to(torch.uint8).numpy()
    return HeldOutPatients(ids, x, maps, np.asarray(labels), VIEWS, dict(territories or {}))


def probabilities_for(predicted) -> np.ndarray:
    probabilities = np.full((len(predicted), len(CLASSES)), 0.1)
    probabilities[np.arange(len(predicted)), predicted] = 0.8
    return probabilities


def write_sidecar(folder, pid: str, diagnosis: str, territory: str | None = None) -> None:
    """`truth/<pid>.json` as `polarmap data synth` writes it."""
    truth = draw_patient(diagnosis, np.random.default_rng(len(pid)), 0.3)
    if territory is not None:
        truth = dataclasses.replace(
            truth, defect=dataclasses.replace(truth.defect, territory=territory)
        )
    (folder / f"{pid}.json").write_text(_truth_json(pid, diagnosis, truth, views={}))


# -- read_defect_territories ----------------------------------------------------------------


def test_reads_each_diseased_patients_territory_from_synth_sidecars(tmp_path):
    write_sidecar(tmp_path, "SYN0001", "Ischemia", "LCx")
    write_sidecar(tmp_path, "SYN0002", "Infarction", "RCA")
    write_sidecar(tmp_path, "SYN0003", "Normal")
    write_sidecar(tmp_path, "SYN0004", "Ischemia", "LAD")  # not asked for
    assert json.loads((tmp_path / "SYN0003.json").read_text())["defect"] is None
    assert isinstance(json.loads((tmp_path / "SYN0001.json").read_text())["defect"], dict)

    found = read_defect_territories(tmp_path, ("SYN0002", "SYN0001", "SYN0003", "SYN0009"))

    assert found == {"SYN0002": "RCA", "SYN0001": "LCx"}  # normal and missing left out


def test_hand_written_sidecars_and_unknown_territories(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"defect": {"territory": "LAD", "severity": 1}}))
    (tmp_path / "b.json").write_text(json.dumps({"defect": None}))
    (tmp_path / "c.json").write_text(json.dumps({"label": "Normal"}))
    (tmp_path / "d.json").write_text(json.dumps({"defect": {"territory": "LM"}}))
    assert read_defect_territories(tmp_path, ("a", "b", "c", "d", "e")) == {"a": "LAD"}
    assert read_defect_territories(tmp_path, ()) == {}


def test_invalid_sidecar_json_names_the_file(tmp_path):
    (tmp_path / "good.json").write_text(json.dumps({"defect": {"territory": "RCA"}}))
    (tmp_path / "broken.json").write_text('{"defect": {"territory": "LAD"')
    with pytest.raises(ValueError, match=r"broken\.json"):
        read_defect_territories(tmp_path, ("good", "broken"))


# -- explain_model -------------------------------------------------------------------------


def test_files_and_findings_follow_the_predicted_class(tmp_path):
    net = make_net(seed=1)
    x = torch.rand(4, 2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    labels = np.array([0, 1, 2, 1])
    predicted = np.array([0, 0, 2, 1])  # P01 missed
    patients = patients_of(x, labels)
    folder = tmp_path / "cams"

    findings = explain_model(
        net, patients, probabilities_for(predicted), predicted, CLASSES, folder, panels=False
    )

    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        ["segments.csv", "territories.csv", "checks.csv", "cams.json"]
        + [f"bullseye-{CLASSES[c]}.png" for c in set(predicted)]
    )
    assert not (folder / "panels").exists()
    assert findings.panels == {}

    # segments.csv: one row per patient and view, the predicted class's CAM per segment
    table = pd.read_csv(folder / "segments.csv")
    assert list(table.columns) == ["patient", "view", "target", "explains", *SEGMENT_COLUMNS]
    assert len(SEGMENT_COLUMNS) == 17
    assert list(zip(table["patient"], table["view"], strict=True)) == [
        (pid, view) for pid in patients.ids for view in VIEWS
    ]
    assert list(table["target"]) == [CLASSES[p] for p in predicted for _ in VIEWS]
    assert set(table["explains"]) == {"predicted"}
    cams = grad_cams(net, x, targets=predicted)
    expected = segment_means(cams.reshape(-1, SIZE, SIZE))
    np.testing.assert_allclose(table[SEGMENT_COLUMNS].to_numpy(), expected, atol=1e-4)
    pd.testing.assert_frame_equal(findings.segments, table, check_exact=False, atol=1e-9)

    # bullseyes: the mean over views, then over the patients predicted in the class
    per_patient = expected.reshape(4, 2, 17).mean(axis=1)
    assert findings.bullseye_counts == {"Infarction": 2, "Ischemia": 1, "Normal": 1}
    assert set(findings.bullseyes) == {"Infarction", "Ischemia", "Normal"}
    np.testing.assert_allclose(findings.bullseyes["Infarction"], per_patient[:2].mean(axis=0))
    np.testing.assert_allclose(findings.bullseyes["Normal"], per_patient[2])
    for name, path in findings.bullseye_files.items():
        assert path == folder / f"bullseye-{name}.png"
        assert path.read_bytes().startswith(PNG)

    assert findings.misclassified == ("P01",)
    assert findings.match_rate is None and findings.match_baseline is None
    assert findings.match_patients == 0 and findings.territories.empty

    summary = json.loads((folder / "cams.json").read_text())
    assert summary["misclassified"] == ["P01"]
    assert summary["territory_match_rate"] is None and summary["territory_patients"] == 0
    assert summary["bullseye_patients"] == findings.bullseye_counts
    np.testing.assert_allclose(
        summary["bullseyes"]["Infarction"], findings.bullseyes["Infarction"], atol=1e-4
    )
    territories = pd.read_csv(folder / "territories.csv")
    assert territories.empty
    assert list(territories.columns) == [
        "patient", "true_class", "predicted", "true_territory", *TERRITORY_NAMES,
        "hottest_territory", "match",
    ]  # fmt: skip


def test_bullseyes_only_for_predicted_classes_and_panels_per_patient(tmp_path):
    net = make_net(seed=2)
    x = torch.rand(3, 2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    labels = np.array([2, 2, 0])
    predicted = np.array([2, 2, 2])
    patients = patients_of(x, labels, prefix="Q")

    findings = explain_model(
        net, patients, probabilities_for(predicted), predicted, CLASSES, tmp_path, panels=True
    )

    assert sorted(p.name for p in tmp_path.glob("bullseye-*.png")) == ["bullseye-Normal.png"]
    assert findings.bullseye_counts == {"Infarction": 0, "Ischemia": 0, "Normal": 3}
    assert set(findings.bullseyes) == {"Normal"}
    assert findings.misclassified == ("Q02",)
    assert sorted(p.name for p in (tmp_path / "panels").iterdir()) == [
        "Q00.jpg", "Q01.jpg", "Q02.jpg",
    ]  # fmt: skip
    assert findings.panels == {pid: tmp_path / "panels" / f"{pid}.jpg" for pid in patients.ids}
    assert all(path.read_bytes().startswith(JPEG) for path in findings.panels.values())


def test_territory_check_finds_the_lit_territory_with_the_true_class(tmp_path):
    """Black maps lit in one territory: a monotone network's CAM is hottest there, whatever
    class it explains. Sidecar truth agrees for three of four diseased patients."""
    net = make_monotone(make_net(seed=0))
    lit = ["LAD", "RCA", "RCA", "LCx", None]
    x = torch.stack([lit_territory(t) for t in lit])
    labels = np.array([0, 1, 0, 1, 2])
    predicted = np.array([0, 2, 1, 1, 2])  # two diseased patients missed
    truth = {"P00": "LAD", "P01": "LAD", "P02": "RCA", "P03": "LCx"}  # P04 normal
    patients = patients_of(x, labels, truth)

    findings = explain_model(
        net, patients, probabilities_for(predicted), predicted, CLASSES, tmp_path, panels=False
    )

    table = findings.territories
    assert list(table["patient"]) == ["P00", "P01", "P02", "P03"]
    assert list(table["hottest_territory"]) == ["LAD", "RCA", "RCA", "LCx"]
    assert list(table["match"]) == [True, False, True, True]
    assert list(table["true_territory"]) == ["LAD", "LAD", "RCA", "LCx"]
    assert list(table["true_class"]) == ["Infarction", "Ischemia", "Infarction", "Ischemia"]
    assert list(table["predicted"]) == ["Infarction", "Normal", "Ischemia", "Ischemia"]
    assert findings.match_rate == pytest.approx(0.75)
    assert findings.match_baseline == pytest.approx(0.5)  # LAD, 2 of 4
    assert findings.match_patients == 4
    assert findings.misclassified == ("P01", "P02")

    written = pd.read_csv(tmp_path / "territories.csv")
    assert list(written["hottest_territory"]) == list(table["hottest_territory"])
    assert list(written["match"]) == [True, False, True, True]
    summary = json.loads((tmp_path / "cams.json").read_text())
    assert summary["territory_match_rate"] == pytest.approx(0.75)
    assert summary["territory_match_baseline"] == pytest.approx(0.5)
    assert summary["territory_patients"] == 4
    assert (summary["territory_match_rate"], summary["territory_match_baseline"]) == pytest.approx(
        territory_match(written["hottest_territory"], written["true_territory"])
    )


def test_territory_check_explains_the_true_class_not_the_predicted_one(tmp_path):
    net = make_net(seed=4)
    x = torch.rand(5, 2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    labels = np.array([0, 1, 0, 1, 2])
    predicted = np.array([1, 0, 2, 1, 0])
    truth = {"P00": "RCA", "P01": "LCx", "P02": "LAD", "P03": "RCA"}
    patients = patients_of(x, labels, truth)

    findings = explain_model(
        net, patients, probabilities_for(predicted), predicted, CLASSES, tmp_path, panels=False
    )

    known = [0, 1, 2, 3]

    def territory_values(targets):
        cams = grad_cams(net, x[known], targets=targets)
        values = segment_means(cams.reshape(-1, SIZE, SIZE)).reshape(len(known), 2, 17)
        return territory_means(values.mean(axis=1))

    expected = territory_values(labels[known])
    by_prediction = territory_values(predicted[known])
    assert np.abs(expected - by_prediction).max() > 0.01  # the two CAMs disagree here
    table = findings.territories
    np.testing.assert_allclose(table[list(TERRITORY_NAMES)].to_numpy(), expected, atol=1e-4)
    hottest = hottest_territory(expected)
    assert list(table["hottest_territory"]) == list(hottest)
    rate, baseline = territory_match(list(hottest), [truth[f"P0{i}"] for i in known])
    assert findings.match_rate == pytest.approx(rate)
    assert findings.match_baseline == pytest.approx(baseline)
    assert (findings.match_rate, findings.match_baseline) == pytest.approx(
        territory_match(table["hottest_territory"], table["true_territory"])
    )
    assert list(table["match"]) == [
        h == t for h, t in zip(table["hottest_territory"], table["true_territory"], strict=True)
    ]


def test_the_checks_follow_the_readers_annotations_per_view_and_run_faithfulness(tmp_path):
    """The lit-territory maps with a reader's annotations: the true class's CAM points at
    the marked territory in each view the reader marked (views without a mark are left
    out), beside the most-common-territory reference; with `faithfulness`, ROAD and the
    randomisation check add their rows, views taken together."""
    net = make_monotone(make_net(seed=0))
    lit = ["LAD", "RCA", "RCA", "LCx", None]
    x = torch.stack([lit_territory(t) for t in lit])
    labels = np.array([0, 1, 0, 1, 2])
    patients = dataclasses.replace(
        patients_of(x, labels),
        reader_territories={"P00": {"stress": ("LAD",), "rest": ("LAD",)},
                            "P01": {"stress": ("RCA",)}, "P02": {"stress": ("LAD", "RCA")},
                            "P03": {"stress": ("LAD",)}, "P04": {"stress": ()}},
        reader_scores={"P00": {"stress": tuple(int(s in TERRITORIES["LAD"]) for s in
                                               range(1, 18))}},
    )  # fmt: skip
    predicted = labels.copy()

    findings = explain_model(net, patients, probabilities_for(predicted), predicted, CLASSES,
                             tmp_path, panels=False, faithfulness=True)  # fmt: skip

    checks = findings.checks.set_index(["view", "check", "attribution"])
    stress = checks.loc[("stress", "pointing_game", "grad_cam")]
    assert stress["value"] == pytest.approx(0.75) and stress["patients"] == 4  # P03 missed
    common = checks.loc[("stress", "pointing_game", "most_common_territory")]
    assert common["value"] == pytest.approx(0.75)  # LAD is marked for P00, P02 and P03
    assert checks.loc[("rest", "pointing_game", "grad_cam"), "patients"] == 1
    ranked = checks.loc[("stress", "segment_rank_correlation", "grad_cam")]
    assert ranked["patients"] == 1 and ranked["value"] > 0.5
    for order in ("morf", "lerf"):
        for attribution in ("grad_cam", "random"):
            row = checks.loc[("all", f"road_{order}_drop", attribution)]
            assert row["patients"] == 5 and row["low"] <= row["value"] <= row["high"]
    randomised = checks.loc[("all", "randomisation_rank_correlation", "grad_cam")]
    assert isinstance(randomised["flagged"], bool | np.bool_) and randomised["seconds"] > 0
    written = pd.read_csv(tmp_path / "checks.csv")
    assert len(written) == len(findings.checks)
