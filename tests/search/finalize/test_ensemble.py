"""A fold ensemble as finalize exports it: its probabilities are the mean of its members',
before and after a round trip through a model folder, and its Grad-CAM is the mean of its
members' CAMs for the class the ensemble predicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import timm
import torch

from search.explanation.cams import grad_cams
from search.finalize.retrain import out_of_fold
from search.inference.export import ExportedModel, load_model, predict_probabilities, save_model
from trainables.config import HeadSpec, TrialConfig
from trainables.ensemble import ModelEnsemble
from trainables.model import PolarMapNet
from trainables.protocol import TrialResult

CONFIG = TrialConfig("test_resnet", views=("rest", "stress"), head=HeadSpec((16,), (0.0,)))


def member(seed: int) -> PolarMapNet:
    torch.manual_seed(seed)
    backbone = timm.create_model("test_resnet", pretrained=False, num_classes=0)
    return PolarMapNet(backbone, 2, 3, CONFIG.head).eval()


@pytest.fixture(scope="module")
def maps() -> torch.Tensor:
    return torch.randn(5, 2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def test_an_exported_ensemble_predicts_the_mean_of_its_members(tmp_path, maps):
    members = [member(seed) for seed in range(3)]
    ensemble = ModelEnsemble(members)
    expected = torch.stack([predict_probabilities(m, maps) for m in members]).mean(0)
    assert torch.allclose(predict_probabilities(ensemble, maps), expected, atol=1e-6)

    exported = ExportedModel(CONFIG.to_flat(), ("A", "B", "C"), 64, None, {}, members=3)
    save_model(tmp_path / "model", ensemble, exported, "card")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["members"] == 3
    loaded, record = load_model(tmp_path / "model")
    assert isinstance(loaded, ModelEnsemble) and len(loaded.members) == 3
    assert record.members == 3
    assert torch.allclose(predict_probabilities(loaded, maps), expected, atol=1e-6)


def test_an_ensembles_cams_are_the_mean_of_its_members_for_its_prediction(maps):
    members = [member(seed) for seed in (4, 5)]
    ensemble = ModelEnsemble(members)
    predicted = predict_probabilities(ensemble, maps).argmax(1)
    expected = np.mean([grad_cams(m, maps, predicted) for m in members], axis=0)
    np.testing.assert_allclose(grad_cams(ensemble, maps), expected, atol=1e-6)


def test_members_must_agree_on_views_and_classes():
    torch.manual_seed(0)
    other = PolarMapNet(timm.create_model("test_resnet", num_classes=0), 1, 3, CONFIG.head)
    with pytest.raises(ValueError, match="differ in views or classes"):
        ModelEnsemble([member(0), other])


def test_out_of_fold_predictions_count_each_patient_once():
    kept = {
        "epoch": 3, "classes": ["A", "B"], "patient": ["p1", "p2", "p1", "p2"],
        "repeat": [0, 0, 1, 1], "fold": [0, 1, 1, 0], "label": [1, 0, 1, 0],
        "p": [[0.2, 0.8], [0.6, 0.4], [0.4, 0.6], [0.8, 0.2]],
    }  # fmt: skip
    result = TrialResult([], [], {}, {}, {}, json.dumps(kept))
    labels, probabilities = out_of_fold(result)
    assert labels.tolist() == [1, 0]
    np.testing.assert_allclose(probabilities, [[0.3, 0.7], [0.7, 0.3]])
