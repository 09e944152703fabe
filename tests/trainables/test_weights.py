"""Pretrained weights from local files, and the error when they are missing."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from trainables.weight_files import WeightsNotFound, weight_candidates
from trainables.weights import create_backbone


@pytest.fixture
def saved(tmp_path):
    """A test_resnet whose weights differ from any fresh initialisation, saved to disk."""
    torch.manual_seed(123)
    source = create_backbone("test_resnet")
    with torch.no_grad():
        for parameter in source.parameters():
            parameter.add_(1.0)
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    return source, state


def assert_same_weights(a, b):
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_weights_load_from_a_safetensors_file(saved, tmp_path):
    source, state = saved
    path = tmp_path / "weights.safetensors"
    save_file(state, str(path))
    assert_same_weights(create_backbone("test_resnet", pretrained=True, weights=path), source)


def test_weights_load_from_a_pytorch_file_in_a_folder(saved, tmp_path):
    source, state = saved
    torch.save(state, tmp_path / "test_resnet.pth")
    loaded = create_backbone("test_resnet", pretrained=True, weights=tmp_path)
    assert_same_weights(loaded, source)


def test_missing_weights_name_the_backbone_and_every_path_searched(tmp_path):
    with pytest.raises(WeightsNotFound) as missing:
        create_backbone("test_resnet.r160_in1k", pretrained=True, weights=tmp_path)
    message = str(missing.value)
    assert "backbone 'test_resnet.r160_in1k'" in message
    for path in weight_candidates("test_resnet.r160_in1k", tmp_path):
        assert str(path) in message
    assert str(tmp_path / "test_resnet.safetensors") in message


def test_unknown_backbone_is_a_value_error():
    with pytest.raises(ValueError, match="unknown timm backbone 'resnet_nope'"):
        create_backbone("resnet_nope")
