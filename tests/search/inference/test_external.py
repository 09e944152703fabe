"""`polarmap predict` and `polarmap evaluate` on a real exported model (timm's tiny
test_resnet, random weights): the CSV holds what the model computes on the cleaned maps,
in manifest order; the figures are evaluate_predictions' own; a manifest that does not fit
the model is refused with its file, row and field before anything is computed or written;
a binary model calls its positive class from its threshold; a model saved with a conformal
calibration keeps it, and predict writes each patient's set beside the probabilities."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from results.conformal import ConformalSets, calibrate_sets
from search.cli import main
from search.data import BINARY, TRIAD, load_dataset, parse_mode
from search.data.map_cache import MapCache
from search.data.normalize import backbone_input, normalize_maps
from search.data.preprocess import PreprocessSpec, preprocess_dataset
from search.inference.evaluate import evaluate_predictions
from search.inference.export import ExportedModel, load_model, predict_probabilities, save_model
from search.inference.external import (
    ManifestProblems,
    evaluation_table,
    load_manifest_for_model,
    predict_manifest,
    predictions_csv,
)
from search.inference.weighted import WeightedEnsemble, WeightedMember
from tests.conftest import read_rows, write_rows
from trainables.config import HeadSpec, TrialConfig
from trainables.data import select_views
from trainables.model import PolarMapNet
from trainables.weights import create_backbone

BACKBONE = "test_resnet"
SIZE = 64  # not test_resnet's 160: cheaper to clean and run, and predict must take the
# model folder's input size, not the backbone's default


def export_model(folder: Path, class_names: tuple[str, ...], views=("rest", "stress"),
                 threshold: float | None = None, seed: int = 0,
                 conformal: ConformalSets | None = None) -> Path:  # fmt: skip
    """A model folder as finalize writes it, of an untrained test_resnet whose last layer
    is scaled up so that its probabilities differ visibly between patients (the same
    weights for the same seed)."""
    torch.manual_seed(seed)
    config = TrialConfig(BACKBONE, views=tuple(views), head=HeadSpec.uniform(16, 1, 0.0))
    model = PolarMapNet(create_backbone(BACKBONE), len(views), len(class_names), config.head)
    with torch.no_grad():
        model.head[-1].weight.mul_(20.0)
    exported = ExportedModel(
        trial=config.to_flat(),
        class_names=tuple(class_names),
        input_size=SIZE,
        threshold=threshold,
        provenance={"search": "test", "seed": seed},
        conformal=conformal,
    )
    return save_model(folder, model.eval(), exported, "# test model\n")


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> dict[str, Path]:
    """One triad dual model and one map cache for the module: every test's data set is the
    same seeded example, so its exports are cleaned once."""
    root = tmp_path_factory.mktemp("external")
    return {"model": export_model(root / "model", TRIAD.names), "cache": root / "cache"}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def model_probabilities(model_dir: Path, manifest: Path, cache: Path) -> np.ndarray:
    """What the model computes on the cleaned, normalized maps, assembled by hand."""
    model, exported = load_model(model_dir)
    dataset = load_dataset(manifest, class_set=TRIAD, mode=parse_mode("dual"))
    cleaned = preprocess_dataset(
        dataset, PreprocessSpec(exported.input_size), MapCache(cache), workers=1
    )
    assert cleaned.maps.shape[2] == SIZE
    inputs = backbone_input(BACKBONE)
    x = normalize_maps(select_views(cleaned, exported.views), replace(inputs, size=SIZE))
    return predict_probabilities(model, x).numpy()


def probabilities_of(rows: list[dict[str, str]], class_names) -> np.ndarray:
    return np.array([[float(r[f"probability_{c}"]) for c in class_names] for r in rows])


# -- predict ------------------------------------------------------------------------------


def test_predict_writes_the_models_probabilities_in_manifest_order(
    shared, edit_manifest, tmp_path, capsys
):
    path = edit_manifest(lambda rows: rows.__setitem__(slice(1, None), rows[:0:-1]))  # reversed
    out = tmp_path / "out" / "predictions.csv"
    args = ["predict", str(shared["model"]), str(path), "--out", str(out)]
    assert main([*args, "--cache", str(shared["cache"]), "--workers", "1"]) == 0
    assert f"wrote {out}: 40 patients, with their labels" in capsys.readouterr().out

    rows = read_csv(out)
    assert list(rows[0]) == ["patient_id", "label", "predicted"] + [
        f"probability_{c}" for c in TRIAD.names
    ]
    manifest_rows = read_rows(path)[1:]
    assert [r["patient_id"] for r in rows] == [r[0] for r in manifest_rows]
    assert [r["label"] for r in rows] == [r[3] for r in manifest_rows]
    written = probabilities_of(rows, TRIAD.names)
    expected = model_probabilities(shared["model"], path, shared["cache"])
    np.testing.assert_allclose(written, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(written.sum(axis=1), 1.0, atol=1e-5)
    assert [r["predicted"] for r in rows] == [TRIAD.names[i] for i in expected.argmax(axis=1)]
    assert len({tuple(p) for p in written.round(4)}) > 1  # patients differ
    assert not list(out.parent.glob(".*.tmp"))  # written through a temporary name


def test_predict_needs_no_labels(shared, edit_manifest, tmp_path):
    unlabelled = edit_manifest(lambda rows: [row.pop(3) for row in rows])  # no label column
    out = tmp_path / "a.csv"
    args = ["--cache", str(shared["cache"]), "--workers", "1", "--out", str(out)]
    assert main(["predict", str(shared["model"]), str(unlabelled), *args]) == 0
    rows = read_csv(out)
    assert "label" not in rows[0] and len(rows) == 40


def test_predict_keeps_partial_labels_as_given(shared, manifest, tmp_path):
    rows = read_rows(manifest)
    rows[2][3] = ""
    partial = write_rows(manifest, rows)
    out = tmp_path / "b.csv"
    args = ["--cache", str(shared["cache"]), "--workers", "1", "--out", str(out)]
    assert main(["predict", str(shared["model"]), str(partial), *args]) == 0
    labels = [r["label"] for r in read_csv(out)]
    assert labels[0] == "Infarction" and labels[1] == "" and len(labels) == 40


def test_a_binary_model_calls_its_positive_class_from_its_threshold(
    shared, edit_manifest, tmp_path
):
    def to_binary(rows):
        for row in rows[1:]:
            row[3] = "non-CAD" if row[3] == "Normal" else "CAD"

    path = edit_manifest(to_binary)
    plain = export_model(tmp_path / "plain", BINARY.names)
    model, exported = load_model(plain)
    dataset = load_manifest_for_model(path, exported)
    cad = predict_manifest(model, exported, dataset, shared["cache"], workers=1).probabilities[:, 1]
    argmax_calls = int((cad >= 0.5).sum())
    # A threshold that calls a clearly different number of patients CAD than the argmax.
    threshold = float(max(np.quantile(cad, [0.25, 0.75]), key=lambda t: abs(
        int((cad >= t).sum()) - argmax_calls)))  # fmt: skip
    folder = export_model(tmp_path / "thresholded", BINARY.names, threshold=threshold)
    out = tmp_path / "binary.csv"
    args = ["--cache", str(shared["cache"]), "--workers", "1", "--out", str(out)]
    assert main(["predict", str(folder), str(path), *args]) == 0
    rows = read_csv(out)
    written = probabilities_of(rows, BINARY.names)[:, 1]
    np.testing.assert_allclose(written, cad, rtol=1e-6, atol=1e-7)
    called = np.array([r["predicted"] == "CAD" for r in rows])
    np.testing.assert_array_equal(called, cad >= threshold)
    assert called.sum() != argmax_calls


# -- conformal prediction sets ------------------------------------------------------------


def calibration(n: int = 60, classes: int = 3, seed: int = 0) -> ConformalSets:
    """A calibration on made-up out-of-fold probabilities."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    probabilities = rng.dirichlet(np.ones(classes), size=n)
    return calibrate_sets(probabilities, labels, alpha=0.2, seed=seed)


def test_a_models_calibration_is_saved_and_loaded_with_it(tmp_path):
    conformal = calibration()
    folder = export_model(tmp_path / "model", TRIAD.names, conformal=conformal)
    _, exported = load_model(folder)
    assert exported.conformal == conformal
    assert "conformal" not in json.loads((folder / "config.json").read_text())
    assert not list(folder.glob(".*.tmp"))  # written through a temporary name
    # exported again without one: the old calibration is not this model's, and goes
    export_model(folder, TRIAD.names)
    assert not (folder / "conformal.json").exists() and load_model(folder)[1].conformal is None
    with pytest.raises(ValueError, match="conformal calibration of 2 classes for a model of 3"):
        export_model(tmp_path / "other", TRIAD.names, conformal=calibration(classes=2))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [(lambda text: text[: len(text) // 2], "not valid JSON"),
     (lambda text: text.replace('"alpha": 0.2', '"alpha": 2'),
      "not a conformal calibration (conformal alpha: expected a level between 0 and 1"),
     (lambda text: json.dumps(calibration(classes=2).to_json()),
      "a calibration of 2 classes for a model of 3")],
    ids=["cut-short", "alpha", "classes"],
)  # fmt: skip
def test_a_damaged_calibration_is_named_in_the_error(
    shared, tmp_path, capsys, manifest, damage, expected
):
    from search.errors import FinalizeError

    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("model.safetensors", "config.json", "MODEL_CARD.md"):
        (folder / name).write_bytes((shared["model"] / name).read_bytes())
    path = folder / "conformal.json"
    path.write_text(damage(json.dumps(calibration().to_json())))
    with pytest.raises(FinalizeError) as caught:
        load_model(folder)
    assert str(caught.value).startswith(f"{path}: {expected}")
    with pytest.raises(SystemExit) as exited:
        main(["predict", str(folder), str(manifest), "--out", str(tmp_path / "p.csv")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{path}: {expected}" in err and "Traceback" not in err


def test_predict_writes_each_patients_set_for_a_calibrated_model(
    shared, manifest, tmp_path, capsys
):
    # calibrated on the very patients it predicts: each sits on its class's boundary
    probabilities = model_probabilities(shared["model"], manifest, shared["cache"])
    labels = np.array(list(load_dataset(manifest).labels.values()))
    conformal = calibrate_sets(probabilities, labels, alpha=0.3)
    folder = export_model(tmp_path / "calibrated", TRIAD.names, conformal=conformal)
    out = tmp_path / "sets.csv"
    args = ["--cache", str(shared["cache"]), "--workers", "1", "--out", str(out)]
    assert main(["predict", str(folder), str(manifest), *args]) == 0
    printed = capsys.readouterr().out
    assert "prediction_set: the classes not ruled out at 70 % (alpha 0.3)" in printed
    assert "calibrated per class on out-of-fold patients (" in printed

    rows = read_csv(out)
    assert list(rows[0]) == ["patient_id", "label", "predicted"] + [
        f"probability_{c}" for c in TRIAD.names
    ] + ["prediction_set"]  # fmt: skip
    written = probabilities_of(rows, TRIAD.names).astype(np.float32)
    np.testing.assert_array_equal(written, probabilities)  # the sets' very input
    expected = [
        "+".join(c for c, inside in zip(TRIAD.names, row, strict=True) if inside)
        for row in conformal.predict(probabilities)
    ]
    assert [r["prediction_set"] for r in rows] == expected
    assert len(set(expected)) > 1  # patients' sets differ


def test_a_weighted_ensemble_writes_no_sets_even_of_calibrated_members(shared, manifest, tmp_path):
    folder = export_model(tmp_path / "calibrated", TRIAD.names, conformal=calibration())
    model, exported = load_model(folder)
    member = WeightedMember(model, exported, 1.0, folder)
    ensemble = WeightedEnsemble(tmp_path, TRIAD.names, None, (member,))
    dataset = load_manifest_for_model(manifest, ensemble)
    predictions = predict_manifest(ensemble, ensemble, dataset, shared["cache"], workers=1)
    assert predictions.conformal is None and predictions.sets is None
    assert "prediction_set" not in predictions_csv(predictions).splitlines()[0]


# -- evaluate -----------------------------------------------------------------------------


def test_evaluate_reports_evaluate_predictions_figures(shared, manifest, tmp_path, capsys):
    out = tmp_path / "evaluation"
    args = ["evaluate", str(shared["model"]), str(manifest), "--out", str(out)]
    args += ["--cache", str(shared["cache"]), "--workers", "1", "--bootstrap", "100"]
    assert main([*args, "--seed", "3"]) == 0
    printed = capsys.readouterr().out

    probabilities = model_probabilities(shared["model"], manifest, shared["cache"])
    labels = np.array(list(load_dataset(manifest).labels.values()))
    expected = evaluate_predictions(labels, probabilities, TRIAD.names, None, 100, 3)
    record = json.loads((out / "figures.json").read_text())
    assert record["format"] == "polarmap-evaluation/1" and record["seed"] == 3
    assert record["count"] == 40 and record["bootstrap"] == 100
    assert record["class_names"] == list(TRIAD.names)
    assert record["confusion"] == expected.confusion
    for name, value in expected.macro.items():
        assert record["macro"][name] == pytest.approx(value, abs=1e-6), name
    assert set(record["intervals"]) == set(expected.intervals)
    for name, (low, high) in expected.intervals.items():
        assert record["intervals"][name] == pytest.approx([low, high], abs=1e-6), name
    assert record["ece"] == pytest.approx(expected.ece, abs=1e-6)
    assert record["per_class"]["sensitivity"] == pytest.approx(expected.per_class["sensitivity"])

    assert evaluation_table(expected) in printed  # the same table, from the same figures
    assert "40 patients; 95 % intervals: exact for proportions" in printed
    assert "100 bootstrap resamples within each class" in printed
    for line in ("balanced_accuracy", "roc_auc", "confusion matrix", "calibration error"):
        assert line in printed
    assert len(read_csv(out / "predictions.csv")) == 40
    assert sorted(p.name for p in out.glob("*.png")) == [
        "calibration.png", "confusion.png", "roc.png"
    ]  # fmt: skip


def test_evaluation_table_shows_each_metric_with_its_interval_and_classes():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    probabilities = np.eye(3)[[0, 1, 1, 1, 2, 2, 0]] * 0.7 + 0.1
    figures = evaluate_predictions(labels, probabilities, TRIAD.names, bootstrap=50)
    table = evaluation_table(figures)
    accuracy = next(line for line in table.splitlines() if line.startswith("accuracy"))
    low, high = figures.intervals["accuracy"]
    assert f"{figures.macro['accuracy']:.3f}" in accuracy and f"[{low:.3f}, {high:.3f}]" in accuracy
    sensitivity = next(line for line in table.splitlines() if line.startswith("sensitivity"))
    assert sensitivity.split()[-3:] == ["0.500", "1.000", "0.667"]
    assert "7 patients" in table and "Infarction 2, Ischemia 2, Normal 3" in table


# -- manifests that do not fit the model ---------------------------------------------------


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize(
    ("change", "where", "what"),
    [
        (lambda rows: [row.pop(2) for row in rows], ", row 1:", "missing column 'stress_path'"),
        (lambda rows: rows[4].__setitem__(3, "Infraction"), ", row 5, label:",
         "unknown label 'Infraction'"),
        (lambda rows: rows[6].__setitem__(1, "images/nowhere.png"), ", row 7, rest_path:",
         "file not found"),
    ],
    ids=["missing-view-column", "unknown-label", "missing-image"],
)  # fmt: skip
def test_a_manifest_that_does_not_fit_is_refused_before_anything_is_written(
    shared, edit_manifest, tmp_path, capsys, command, change, where, what
):
    path = edit_manifest(change)
    out = tmp_path / ("p.csv" if command == "predict" else "evaluation")
    cache = tmp_path / "untouched-cache"
    with pytest.raises(SystemExit) as exited:
        main([command, str(shared["model"]), str(path), "--out", str(out), "--cache", str(cache)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{path}{where}" in err and what in err
    assert not out.exists() and not cache.exists()  # nothing cleaned, nothing written


def test_evaluate_needs_every_label_and_lists_every_problem(shared, edit_manifest):
    def break_two(rows):
        rows[3][3] = ""
        rows[9][2] = "images/gone.png"

    path = edit_manifest(break_two)
    _, exported = load_model(shared["model"])
    with pytest.raises(ManifestProblems) as caught:
        load_manifest_for_model(path, exported)
    assert sorted((p.row, p.field) for p in caught.value.problems) == [
        (4, "label"), (10, "stress_path")
    ]  # fmt: skip
    restored = edit_manifest(lambda rows: rows[9].__setitem__(2, "images/P009_stress.png"))
    assert len(load_manifest_for_model(restored, exported, require_labels=False)) == 40


def test_labels_of_another_class_set_are_refused(shared, edit_manifest, capsys):
    path = edit_manifest(lambda rows: [row.__setitem__(3, "CAD") for row in rows[1:]])
    with pytest.raises(SystemExit):
        main(["predict", str(shared["model"]), str(path)])
    err = capsys.readouterr().err
    assert "rows 2, 3, 4" in err and "(40 rows), label: unknown label 'CAD'" in err
    assert "Normal (2) (the model's classes)" in err and "--classes" not in err


def test_a_folder_that_is_not_a_model_is_a_usage_error(manifest, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["predict", str(tmp_path), str(manifest)])
    assert exited.value.code == 2
    assert "no config.json; is this a model folder?" in capsys.readouterr().err


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x93NUMPY not a safetensors file" * 4)


def _cut_short(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 9 // 10])  # a copy or a write cut off


@pytest.mark.parametrize(
    ("file", "damage", "expected"),
    [
        ("model.safetensors", _cut_short, "not a readable safetensors file"),
        ("model.safetensors", _garbage, "not a readable safetensors file"),
        ("config.json", lambda path: path.write_text('{"format": "polarmap-model/2", "tri'),
         "not valid JSON"),
        ("config.json", lambda path: path.write_text('["polarmap-model/2"]'),
         "not a polarmap model's config"),
        ("config.json",
         lambda path: path.write_text(json.dumps({**json.loads(path.read_text()),
                                                  "class_names": None})),
         "not a polarmap model's config"),
    ],
    ids=["weights-cut-short", "weights-garbage", "config-cut-short", "config-a-list",
         "config-no-classes"],
)  # fmt: skip
def test_a_damaged_model_file_is_named_in_the_error(
    shared, tmp_path, capsys, manifest, file, damage, expected
):
    # Issue 29: a truncated model.safetensors ended predict in a traceback naming no file,
    # a broken config.json in a message naming none.
    from search.errors import FinalizeError

    folder = tmp_path / "model"
    for name in ("model.safetensors", "config.json", "MODEL_CARD.md"):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes((shared["model"] / name).read_bytes())
    damage(folder / file)
    with pytest.raises(FinalizeError) as caught:
        load_model(folder)
    message = str(caught.value)
    assert message.startswith(f"{folder / file}: {expected}")
    assert "polarmap finalize" in message  # what to do: export it again
    with pytest.raises(SystemExit) as exited:
        main(["predict", str(folder), str(manifest), "--out", str(tmp_path / "p.csv")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{folder / file}: {expected}" in err and "Traceback" not in err
