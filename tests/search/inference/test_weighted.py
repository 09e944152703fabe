"""A greedy ensemble's folder as one model for `predict` and `evaluate`: the weighted mean of
its members' probabilities, each member reading the maps at its own views and input size,
class 1 called from the ensemble's own threshold; the finals folder can be moved whole; a
broken ensemble.json is refused naming the file and what is wrong, before any compute."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from search.cli import main
from search.data import BINARY, TRIAD
from search.inference.weighted import ENSEMBLE_FORMAT
from tests.search.inference.test_external import export_model, probabilities_of, read_csv


def write_ensemble(folder: Path, members: list[tuple[Path, float]], class_names,
                   threshold: float | None = None) -> Path:  # fmt: skip
    """An ensemble folder as finalize writes it: members named relative to it."""
    record = {
        "format": ENSEMBLE_FORMAT,
        "class_names": list(class_names),
        "threshold": threshold,
        "members": [
            {"trial_id": f"t{i}", "weight": weight, "backbone": "test_resnet",
             "model": os.path.relpath(model, folder)}
            for i, (model, weight) in enumerate(members)
        ],
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ensemble.json").write_text(json.dumps(record))
    return folder


def to_binary(rows):
    for row in rows[1:]:
        row[3] = "non-CAD" if row[3] == "Normal" else "CAD"


def predicted(model: Path, manifest: Path, out: Path, cache: Path) -> list[dict[str, str]]:
    args = ["predict", str(model), str(manifest), "--out", str(out), "--cache", str(cache)]
    assert main([*args, "--workers", "1"]) == 0
    return read_csv(out)


def test_predict_on_an_ensemble_folder_is_the_weighted_mean_of_its_members(edit_manifest, tmp_path):
    manifest = edit_manifest(to_binary)
    finals, cache = tmp_path / "finals", tmp_path / "cache"
    stress = export_model(finals / "stress", BINARY.names, views=("stress",), seed=1)
    config = json.loads((stress / "config.json").read_text())
    (stress / "config.json").write_text(json.dumps({**config, "input_size": 48}))
    dual = export_model(finals / "dual", BINARY.names, seed=2)  # both views, 64 px
    alone = {
        name: probabilities_of(predicted(folder, manifest, tmp_path / f"{name}.csv", cache),
                               BINARY.names)[:, 1]
        for name, folder in (("stress", stress), ("dual", dual))
    }  # fmt: skip
    mean = 0.25 * alone["stress"] + 0.75 * alone["dual"]
    threshold = float(np.quantile(mean, 0.3))  # calls more patients CAD than 0.5 would
    ensemble = write_ensemble(finals / "ensemble", [(stress, 0.25), (dual, 0.75)],
                              BINARY.names, threshold)  # fmt: skip
    rows = predicted(ensemble, manifest, tmp_path / "ensemble.csv", cache)
    written = probabilities_of(rows, BINARY.names)
    np.testing.assert_allclose(written[:, 1], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(written.sum(axis=1), 1.0, atol=1e-5)
    called = np.array([r["predicted"] == "CAD" for r in rows])
    np.testing.assert_array_equal(called, mean >= threshold)

    moved = tmp_path / "elsewhere"
    shutil.move(finals, moved)  # the members are found beside the ensemble, not by old paths
    again = predicted(moved / "ensemble", manifest, tmp_path / "moved.csv", cache)
    assert again == rows


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["members"][0].update(weight=0.6), "weights [0.6, 0.5]: expected positive"),
        (lambda r: r["members"][1].update(model="../gone"), "member model folder ../gone"),
        (lambda r: r.update(class_names=list(BINARY.names)), "the ensemble ['non-CAD', 'CAD']"),
        (lambda r: r.update(format="something/9"), "format 'something/9', not polarmap"),
    ],
)
def test_a_broken_ensemble_is_a_usage_error_naming_its_file(
    manifest, tmp_path, capsys, change, message
):
    members = [(export_model(tmp_path / n, TRIAD.names, seed=i), 0.5) for i, n in enumerate("ab")]
    ensemble = write_ensemble(tmp_path / "ensemble", members, TRIAD.names)
    record = json.loads((ensemble / "ensemble.json").read_text())
    change(record)
    (ensemble / "ensemble.json").write_text(json.dumps(record))
    out, cache = tmp_path / "p.csv", tmp_path / "cache"
    with pytest.raises(SystemExit) as exited:
        main(["predict", str(ensemble), str(manifest), "--out", str(out), "--cache", str(cache)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert str(ensemble / "ensemble.json") in err and message in err
    assert not out.exists() and not cache.exists()  # nothing cleaned, nothing written


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda text: text[: len(text) // 2], "not valid JSON"),
        (lambda text: text.replace('"weight"', '"wieght"'), "not an ensemble's file (no 'weight')"),
        (lambda text: "[1, 2]", "not an ensemble's file"),
    ],
    ids=["cut-short", "no-weight", "a-list"],
)
def test_a_damaged_ensemble_file_is_named(manifest, tmp_path, capsys, damage, message):
    # Issue 29: every model folder's file named in its load error, ensemble.json too
    members = [(export_model(tmp_path / n, TRIAD.names, seed=i), 0.5) for i, n in enumerate("ab")]
    path = write_ensemble(tmp_path / "ensemble", members, TRIAD.names) / "ensemble.json"
    path.write_text(damage(path.read_text()))
    with pytest.raises(SystemExit) as exited:
        main(["predict", str(path.parent), str(manifest), "--out", str(tmp_path / "p.csv")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{path}: {message}" in err and "Traceback" not in err
