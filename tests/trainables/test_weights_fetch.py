"""Fetching a space's pretrained weights once (from a faked hub) into a folder or onto S3,
and trials loading exactly those weights from there."""

from __future__ import annotations

import pyarrow.fs as pafs
import pytest
import timm
import torch
from safetensors import safe_open

from search.files import join_location
from trainables.weights import create_backbone
from trainables.weights_fetch import FetchError, fetch_weights

NAMES = ("test_resnet", "test_efficientnet")


def assert_hub_weights(model, name, fake_hub):
    """`model` holds the hub's weights of `name`, classifier left out."""
    hub = fake_hub.weights(name)
    state = model.state_dict()
    assert state and set(state) < set(hub)  # the hub's checkpoint has the classifier too
    for key, value in state.items():
        assert torch.equal(value, hub[key]), key


def test_fetched_weights_load_as_the_hub_gave_them(fake_hub, tmp_path):
    folder = tmp_path / "weights"
    fetched = fetch_weights(NAMES, str(folder))
    assert fake_hub.calls == ["test_resnet.r160_in1k", "test_efficientnet.r160_in1k"]
    assert [(f.backbone, f.fetched) for f in fetched] == [(n, True) for n in NAMES]
    assert sorted(p.name for p in folder.iterdir()) == [
        "test_efficientnet.safetensors",
        "test_resnet.safetensors",
    ]  # no temporary files left
    for item in fetched:
        assert item.location == str(folder / f"{item.backbone}.safetensors")
        assert item.size == (folder / f"{item.backbone}.safetensors").stat().st_size
        with safe_open(item.location, "pt") as stored:
            assert stored.metadata()["source"] == f"timm/{item.backbone}.r160_in1k"
    for name in NAMES:
        hub = fake_hub.weights(name)
        fresh = create_backbone(name).state_dict()  # unlike the hub's: the check can fail
        assert any(not torch.equal(value, hub[key]) for key, value in fresh.items())
        assert_hub_weights(create_backbone(name, pretrained=True, weights=folder), name, fake_hub)


def test_files_already_there_are_kept_unless_forced(fake_hub, tmp_path):
    fetch_weights(["test_resnet"], str(tmp_path))
    before = (tmp_path / "test_resnet.safetensors").stat().st_mtime_ns
    again = fetch_weights(NAMES, str(tmp_path))
    assert fake_hub.calls == ["test_resnet.r160_in1k", "test_efficientnet.r160_in1k"]
    assert [f.fetched for f in again] == [False, True]
    assert (tmp_path / "test_resnet.safetensors").stat().st_mtime_ns == before
    fetch_weights(["test_resnet"], str(tmp_path), force=True)
    assert fake_hub.calls[-1] == "test_resnet.r160_in1k" and len(fake_hub.calls) == 3


def test_fetch_to_s3_then_trials_load_from_the_node_cache(
    fake_hub, s3_storage, tmp_path, monkeypatch
):
    from trainables import weight_files

    monkeypatch.setenv("POLARMAP_WEIGHTS_CACHE", str(tmp_path / "node-cache"))
    prefix = join_location(s3_storage, tmp_path.name)  # moto keeps objects
    fetched = fetch_weights(NAMES, prefix)
    assert [f.location for f in fetched] == [
        join_location(prefix, f"{n}.safetensors") for n in NAMES
    ]
    fs, root = pafs.FileSystem.from_uri(prefix)
    listed = fs.get_file_info(pafs.FileSelector(root))
    assert sorted(i.base_name for i in listed) == [f"{n}.safetensors" for n in sorted(NAMES)]

    downloads = []
    original = weight_files._download
    monkeypatch.setattr(
        weight_files, "_download", lambda *a: (downloads.append(a[1].relative), original(*a))
    )
    for _ in range(2):  # the second round reads the node's cache, not S3
        for name in NAMES:
            model = create_backbone(name, pretrained=True, weights=prefix)
            assert_hub_weights(model, name, fake_hub)
    assert downloads == ["test_resnet.safetensors", "test_efficientnet.safetensors"]
    cached = sorted(p.name for p in (tmp_path / "node-cache").rglob("*") if p.is_file())
    assert cached == [".lock", ".lock", "test_efficientnet.safetensors", "test_resnet.safetensors"]


def test_an_unreachable_hub_names_the_backbone_and_writes_nothing(fake_hub, tmp_path):
    fake_hub.unreachable.add("test_efficientnet")  # the first backbone downloads fine
    with pytest.raises(FetchError) as failed:
        fetch_weights(NAMES, str(tmp_path / "weights"))
    message = str(failed.value)
    assert "backbone 'test_efficientnet'" in message and "LocalEntryNotFoundError" in message
    assert "where the model hub is reachable" in message
    assert fake_hub.calls == ["test_resnet.r160_in1k"]
    assert not (tmp_path / "weights").exists()


def test_unknown_backbones_fail_before_any_download(fake_hub, tmp_path):
    with pytest.raises(ValueError, match="unknown timm backbone 'resnet_nope'"):
        fetch_weights(["test_resnet", "resnet_nope"], str(tmp_path))
    assert fake_hub.calls == [] and list(tmp_path.iterdir()) == []


def test_bit_weights_load_from_a_state_dict_despite_their_custom_format(tmp_path):
    """BiT's registry entry says its weights are Google's .npz (`custom_load`); a fetched
    safetensors file of the backbone must load as a state dict all the same."""
    assert timm.models.get_pretrained_cfg("resnetv2_50x1_bit").custom_load
    torch.manual_seed(5)
    source = timm.create_model("resnetv2_50x1_bit", pretrained=False, num_classes=0)
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "w.safetensors")
    )
    loaded = create_backbone(
        "resnetv2_50x1_bit", pretrained=True, weights=tmp_path / "w.safetensors"
    )
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_weights_that_would_not_load_back_as_built_are_not_written(fake_hub, tmp_path, monkeypatch):
    from trainables import weights_fetch

    def altered(name, pretrained, weights):  # as a checkpoint filter that changes weights
        model = create_backbone(name, pretrained, weights)
        with torch.no_grad():
            next(iter(model.parameters())).mul_(2)
        return model

    monkeypatch.setattr(weights_fetch, "create_backbone", altered)
    with pytest.raises(FetchError, match="backbone 'test_resnet': the saved weights do not load"):
        fetch_weights(["test_resnet"], str(tmp_path / "weights"))
    assert not (tmp_path / "weights").exists()
