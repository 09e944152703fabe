"""Weights on S3 (a local moto server): found without downloading, copied once per node
into its cache (also by trials racing for it), fetched again when the object changes."""

from __future__ import annotations

import io
import threading
import time

import pytest
import torch
from safetensors.torch import save

from search.files import join_location, open_location, write_file
from trainables.weight_files import (
    WeightsNotFound,
    cached_weights,
    find_remote_weights,
    weights_digest,
)
from trainables.weights import create_backbone


def upload(prefix: str, name: str, seed: int) -> dict[str, torch.Tensor]:
    """test_resnet backbone weights from `seed`, put at `prefix/name`."""
    torch.manual_seed(seed)
    state = {k: v.contiguous() for k, v in create_backbone("test_resnet").state_dict().items()}
    fs, path = open_location(join_location(prefix, name))
    write_file(fs, path, save(state))
    return state


def assert_loads(model, state):
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


@pytest.fixture
def prefix(s3_storage, tmp_path, monkeypatch):
    monkeypatch.setenv("POLARMAP_WEIGHTS_CACHE", str(tmp_path / "node-cache"))
    return join_location(s3_storage, tmp_path.name)  # moto keeps objects between tests


@pytest.fixture
def downloads(monkeypatch):
    from trainables import weight_files

    calls = []
    original = weight_files._download

    def counted(fs, remote, target):
        calls.append(remote.relative)
        original(fs, remote, target)

    monkeypatch.setattr(weight_files, "_download", counted)
    return calls


def test_racing_trials_download_once_and_all_read_the_whole_file(prefix, downloads):
    state = upload(prefix, "test_resnet.safetensors", seed=1)
    paths, errors = [], []

    def trial():
        try:
            paths.append(cached_weights("test_resnet", prefix))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=trial) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and downloads == ["test_resnet.safetensors"]
    assert len(set(paths)) == 1
    assert sorted(p.name for p in paths[0].parent.iterdir()) == [".lock", "test_resnet.safetensors"]
    assert_loads(create_backbone("test_resnet", pretrained=True, weights=prefix), state)


def test_a_replaced_object_is_fetched_again(prefix, downloads):
    first = upload(prefix, "test_resnet.safetensors", seed=1)
    digest = weights_digest("test_resnet", True, prefix, 0)
    assert_loads(create_backbone("test_resnet", True, prefix), first)
    time.sleep(1.1)  # S3 keeps the time of change to the second
    second = upload(prefix, "test_resnet.safetensors", seed=2)  # the same size
    assert weights_digest("test_resnet", True, prefix, 0) != digest
    assert_loads(create_backbone("test_resnet", True, prefix), second)
    assert not torch.equal(second["conv1.0.weight"], first["conv1.0.weight"])
    assert downloads == ["test_resnet.safetensors"] * 2


def test_the_hugging_face_layout_and_a_file_uri_are_found(prefix, downloads):
    state = upload(prefix, "test_resnet/model.safetensors", seed=3)
    _, remote = find_remote_weights("test_resnet", prefix)
    assert remote.relative == "test_resnet/model.safetensors" and downloads == []
    file_uri = join_location(prefix, "test_resnet/model.safetensors")
    for weights in (prefix, file_uri):
        assert_loads(create_backbone("test_resnet", pretrained=True, weights=weights), state)


def test_missing_weights_name_the_backbone_the_uri_and_every_location(prefix, downloads):
    upload(prefix, "test_resnet.safetensors", seed=1)
    with pytest.raises(WeightsNotFound) as missing:
        create_backbone("test_efficientnet", pretrained=True, weights=prefix)
    message = str(missing.value)
    assert f"backbone 'test_efficientnet' not found in {prefix}" in message
    assert join_location(prefix, "test_efficientnet.safetensors") in message
    assert join_location(prefix, "test_efficientnet/pytorch_model.bin") in message
    assert downloads == []


def test_credentials_in_a_uri_are_never_shown(s3_storage):
    base, _, query = s3_storage.partition("?")
    uri = base.replace("s3://", "s3://KEY:SECRET@") + "/nowhere?" + query
    with pytest.raises(WeightsNotFound) as missing:
        weights_digest("test_resnet", True, uri, 0)
    assert "SECRET" not in str(missing.value) and "s3://***@runs" in str(missing.value)


def test_a_broken_download_leaves_nothing_half_written(prefix, monkeypatch):
    from trainables import weight_files

    state = upload(prefix, "test_resnet.safetensors", seed=1)

    class Truncating:
        """The store's file system, whose downloads end after 100 bytes."""

        def __init__(self, fs):
            self.fs = fs

        def get_file_info(self, paths):
            return self.fs.get_file_info(paths)

        def open_input_stream(self, path):
            return io.BytesIO(self.fs.open_input_stream(path).read(100))

    real_open = weight_files.open_location
    monkeypatch.setattr(
        weight_files,
        "open_location",
        lambda uri: (Truncating(real_open(uri)[0]), real_open(uri)[1]),
    )
    with pytest.raises(WeightsNotFound, match=r"backbone 'test_resnet'.*could not be downloaded"):
        cached_weights("test_resnet", prefix)
    entries = [p for p in weight_files.weights_cache_dir().rglob("*") if p.is_file()]
    assert [p.name for p in entries] == [".lock"]  # no partial file, no temporary one
    monkeypatch.setattr(weight_files, "open_location", real_open)
    assert_loads(create_backbone("test_resnet", pretrained=True, weights=prefix), state)
