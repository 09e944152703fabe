"""`polarmap data preprocess` and `polarmap data preview` as a user runs them."""

from __future__ import annotations

import pytest
from PIL import Image

from search.cli import main


def test_preprocess_fills_the_cache_then_reads_it(manifest, tmp_path, capsys):
    cache = tmp_path / "cache"
    args = ["data", "preprocess", str(manifest), "--cache", str(cache), "--size", "48"]
    assert main([*args, "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "80 maps of 48 x 48 px (rest, stress): 80 cleaned now, 0 from the cache" in out
    assert f"cache: {cache}" in out
    assert len(list(cache.rglob("*.npy"))) == 80
    assert main(args) == 0
    assert "0 cleaned now, 80 from the cache" in capsys.readouterr().out


def test_preprocess_sizes_maps_for_a_backbone(manifest, tmp_path, capsys):
    args = ["data", "preprocess", str(manifest), "--cache", str(tmp_path), "--mode", "stress"]
    assert main([*args, "--backbone", "test_resnet", "--workers", "1"]) == 0
    assert "40 maps of 160 x 160 px (stress)" in capsys.readouterr().out


def test_preprocess_does_not_need_a_splittable_data_set(edit_manifest, tmp_path):
    path = edit_manifest(lambda rows: [r.__setitem__(3, "Normal") for r in rows[1:9]])
    assert main(["data", "split", str(path)]) == 1  # Infarction is now too small to split
    assert main(["data", "preprocess", str(path), "--cache", str(tmp_path), "--size", "32"]) == 0


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--crop", "apical=0,0,90,90"], "--crop for view(s) apical: the data set's views are"),
        (["--crop", "rest=0,0,90"], "expected four whole pixel numbers LEFT,TOP,RIGHT,BOTTOM"),
        (["--crop", "0,0,90,90"], "expected VIEW=LEFT,TOP,RIGHT,BOTTOM"),
        (["--backbone", "no_such_net"], "unknown timm backbone 'no_such_net'"),
        (["--size", "8"], "argument --size: expected an integer from 16 to 2048, got 8"),
        (["--size", "64", "--backbone", "resnet18"], "not allowed with argument"),
    ],
)
def test_bad_cleaning_options_are_usage_errors(manifest, tmp_path, capsys, option, message):
    with pytest.raises(SystemExit) as exited:
        main(["data", "preprocess", str(manifest), "--cache", str(tmp_path), *option])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.npy"))


def test_preprocess_refuses_a_bad_manifest_before_cleaning(edit_manifest, tmp_path, capsys):
    path = edit_manifest(lambda rows: rows[4].__setitem__(1, "images/missing.png"))
    assert main(["data", "preprocess", str(path), "--cache", str(tmp_path)]) == 1
    assert "row 5, rest_path" in capsys.readouterr().out
    assert not list(tmp_path.rglob("*.npy"))


def test_preview_draws_the_chosen_patients(manifest, tmp_path, capsys):
    out = tmp_path / "preview.png"
    assert main(["data", "preview", str(manifest), "--out", str(out), "--ids", "P001,P030"]) == 0
    assert "2 patients, 2 view(s) each" in capsys.readouterr().out
    two = Image.open(out).size
    assert main(["data", "preview", str(manifest), "--out", str(out), "--patients", "5"]) == 0
    five = Image.open(out).size
    assert five[0] == two[0] and five[1] > 2 * two[1]


def test_preview_names_unknown_patients(manifest, tmp_path, capsys):
    out = tmp_path / "preview.png"
    with pytest.raises(SystemExit):
        main(["data", "preview", str(manifest), "--out", str(out), "--ids", "P001,NOPE"])
    assert "--ids: no patient NOPE in" in capsys.readouterr().err
    assert not out.exists()
