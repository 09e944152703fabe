"""The localisation reference finalize trains beside each winner: a twin on permuted
labels. On synthetic stress maps with a reader's annotations (`data synth`'s truth), a
model that learned the task points at an annotated territory clearly more often than the
references, and its label-shuffled twin does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search.data.normalize import backbone_input, normalize_maps
from search.explanation.explain import TestPatients as HeldOutPatients  # not a test class
from search.explanation.explain import explain_model
from search.explanation.localisation import MOST_COMMON, POINTING_GAME, RANK_CORRELATION
from search.finalize.retrain import WinnerToRetrain, label_shuffled
from search.synth.render import colourize
from search.synth.uptake import draw_patient, reader_annotations, uptake_maps
from trainables.config import HeadSpec, TrialConfig
from trainables.pool import FoldedData, TrialData
from trainables.protocol import run_protocol

CLASSES = ("Normal", "CAD")


def stress_maps(patients: int, seed: int = 0):
    """Half normal, half ischemic stress maps at efficientnet_lite0's input size, with the
    reader's territory and scores of each."""
    rng = np.random.default_rng(seed)
    size = backbone_input("efficientnet_lite0").size
    maps, labels, annotations = [], [], []
    for i in range(patients):
        truth = draw_patient("Ischemia" if i % 2 else "Normal", rng, 0.2)
        maps.append(colourize(uptake_maps(truth, size, rng, 0.2)["stress"])[None])
        labels.append(i % 2)
        annotations.append(reader_annotations(truth, "stress"))
    return np.stack(maps), np.asarray(labels), annotations


def test_the_twins_labels_are_permuted_within_the_patients_it_trains_on():
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    assignment = np.array([[0, 1, 0, 1, -1, 0, 1, -1]])
    folded = FoldedData(torch.zeros(8, 1, 3, 4, 4), y, tuple("abcdefgh"), assignment, ("a",) * 3)
    seen = assignment[0] != -1
    config = TrialConfig("test_resnet", views=("stress",), warmup_epochs=1, finetune_epochs=0)
    trained = {}

    def fake_protocol(config, data, **kwargs):  # what the twin is trained on
        trained["data"], trained["kwargs"] = data, kwargs
        return type("Result", (), {"model": torch.nn.Linear(1, 1)})()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("search.finalize.retrain.run_protocol", fake_protocol)
        label_shuffled(WinnerToRetrain(config, folded, {"best_warmup_epoch": 1}, "", CLASSES), 3)
    data = trained["data"]
    assert trained["kwargs"]["keep_last"]  # one model on every training patient
    assert sorted(data.y[seen].tolist()) == sorted(y[seen].tolist())  # the same labels...
    assert data.y[seen].tolist() != y[seen].tolist()  # ...dealt to other patients
    assert data.y[~seen].tolist() == y[~seen].tolist()  # unseen patients untouched
    assert data.pool.folds[0].train_rows.tolist() == np.flatnonzero(seen).tolist()


@pytest.mark.slow
def test_a_model_that_learned_points_at_the_readers_territory_and_its_shuffled_twin_does_not(
    tmp_path,
):
    maps, labels, annotations = stress_maps(120)
    x, y = normalize_maps(maps, backbone_input("efficientnet_lite0")), torch.from_numpy(labels)
    train, val, test = slice(0, 60), slice(60, 80), slice(80, 120)
    data = TrialData(x[train], y[train], x[val], y[val], CLASSES)
    config = TrialConfig("efficientnet_lite0", views=("stress",), pretrained=True, a=3.0,
                         head=HeadSpec.uniform(64, 1, 0.2), warmup_epochs=20,
                         finetune_epochs=0, batch_size=16, threads=2)  # fmt: skip
    model = run_protocol(config, data).model.cpu().eval()
    twin = label_shuffled(WinnerToRetrain(config, data, {}, "", CLASSES), seed=1)
    ids = tuple(f"P{i:03d}" for i in range(120))[test]
    read = dict(zip(ids, annotations[test], strict=True))
    patients = HeldOutPatients(
        ids, x[test], maps[test], labels[test], ("stress",),
        reader_territories={pid: {"stress": read[pid][0]} for pid in ids},
        reader_scores={pid: {"stress": read[pid][1]} for pid in ids},
    )  # fmt: skip
    with torch.no_grad():
        probabilities = torch.softmax(model(x[test]), dim=1).numpy()
    assert (probabilities.argmax(1) == labels[test]).mean() > 0.9  # it learned the task

    found = explain_model(model, patients, probabilities, probabilities.argmax(1), CLASSES,
                          tmp_path / "cams", panels=False, shuffled=twin)  # fmt: skip

    checks = found.checks.set_index(["check", "attribution"])
    learned, twin_, common = (checks.loc[(POINTING_GAME, a)]
                              for a in ("grad_cam", "label_shuffled", MOST_COMMON))  # fmt: skip
    assert learned["patients"] == (labels[test] == 1).sum() == 20  # the annotated ones
    assert learned["low"] > common["value"] and learned["low"] > twin_["value"]  # clearly
    assert twin_["low"] <= common["value"]  # the twin is no better than naming one territory
    ranked = checks.loc[(RANK_CORRELATION, "grad_cam")]
    assert ranked["low"] > checks.loc[(RANK_CORRELATION, "label_shuffled"), "value"]
    assert (tmp_path / "cams" / "checks.csv").read_text().count(POINTING_GAME) == 3
