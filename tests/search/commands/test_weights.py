"""`polarmap weights fetch` as a user runs it (against a faked hub): what it prints, the
files it leaves, and its exit status when the hub is out of reach or the request is wrong."""

from __future__ import annotations

import pyarrow.fs as pafs
import pytest
import torch

from search.cli import main
from search.files import join_location
from trainables.weights import create_backbone


def test_fetch_a_space_into_a_folder_and_print_what_to_pass(fake_hub, tmp_path, capsys):
    folder = tmp_path / "weights"
    assert main(["weights", "fetch", "--space", "tiny", "--to", str(folder)]) == 0
    out = capsys.readouterr().out
    for name in ("test_resnet", "test_efficientnet"):
        path = folder / f"{name}.safetensors"
        assert f"{path.stat().st_size / 1e6:9.1f} MB  fetched" in out
        assert str(path) in out and f"downloading {name} ..." in out
    assert f"use: --weights {folder}\n" in out
    assert "add --pretrained" in out  # the demo space starts from random weights
    loaded = create_backbone("test_resnet", pretrained=True, weights=folder)
    hub = fake_hub.weights("test_resnet")
    assert all(torch.equal(value, hub[key]) for key, value in loaded.state_dict().items())


def test_backbones_replace_the_spaces(fake_hub, s3_storage, tmp_path, capsys):
    prefix = join_location(s3_storage, tmp_path.name)
    args = ["weights", "fetch", "--space", "paper-triad", "--backbones", "test_resnet"]
    assert main([*args, "--to", prefix]) == 0
    assert fake_hub.calls == ["test_resnet.r160_in1k"]
    out = capsys.readouterr().out
    assert f"use: --weights {prefix}\n" in out and "add --pretrained" not in out
    fs, root = pafs.FileSystem.from_uri(prefix)
    assert [i.base_name for i in fs.get_file_info(pafs.FileSelector(root))] == [
        "test_resnet.safetensors"
    ]


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_an_unreachable_hub_exits_1_naming_the_backbone(fake_hub, tmp_path, capsys, where, request):
    fake_hub.unreachable.add("test_efficientnet")
    if where == "folder":
        to = str(tmp_path / "weights")
    else:
        to = join_location(request.getfixturevalue("s3_storage"), tmp_path.name)
    assert main(["weights", "fetch", "--space", "tiny", "--to", to]) == 1
    err = capsys.readouterr().err
    assert "backbone 'test_efficientnet'" in err and "where the model hub is reachable" in err
    assert f"nothing was written to {to}" in err
    if where == "folder":
        assert not (tmp_path / "weights").exists()
    else:
        fs, root = pafs.FileSystem.from_uri(to)
        assert fs.get_file_info(root).type == pafs.FileType.NotFound


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space", "nope"], "unknown search space 'nope'"),
        (["--backbones", "resnet_nope"], "unknown timm backbone 'resnet_nope'"),
        ([], "--space NAME, --backbones a,b, or both"),
    ],
)
def test_usage_errors_exit_2_before_any_download(fake_hub, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as stopped:
        main(["weights", "fetch", *args, "--to", str(tmp_path / "w")])
    assert stopped.value.code == 2 and message in capsys.readouterr().err
    assert fake_hub.calls == [] and not (tmp_path / "w").exists()
