"""Finalize on a real search: the winners retrained from their recorded configurations,
tested once on the held-out split, the same figures for the same seeds and threads, the
models exported and reloaded, the finals tables written; data that changed is refused."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from results import load_table, load_trials
from search.cli import main
from search.finalize.pipeline import FinalizeSettings, finalize, held_out_patients, load_search
from search.inference.export import load_model, predict_probabilities

pytestmark = pytest.mark.slow


def settings(finished_search, tmp_path, **changes) -> FinalizeSettings:
    """Finalize's settings for these tests; the ensemble is left to the command's test."""
    values = dict(results=str(finished_search.results), top=1, seeds=1, bootstrap=50,
                  out=tmp_path / "finals", ensemble=False)  # fmt: skip
    return FinalizeSettings(**{**values, **changes})


def held_out_ids(finished_search, tmp_path) -> list[str]:
    """The search's held-out patients, as its settings split them."""
    from search.tuning.prepare import check_search, prepare_search

    _, _, search_settings = load_search(settings(finished_search, tmp_path))
    return list(prepare_search(search_settings, check_search(search_settings)).split.test)


def test_the_same_seeds_and_threads_give_the_same_models_and_figures(finished_search, tmp_path):
    first = finalize(settings(finished_search, tmp_path / "a"), say=lambda _: None)
    second = finalize(settings(finished_search, tmp_path / "b"), say=lambda _: None)
    (one,), (two,) = first, second
    best = load_trials(finished_search.results, "my-search").sort_values(
        ["best_selection", "best_val_loss"], ascending=[False, True]
    )
    assert one.trial["trial_id"] == best.iloc[0]["trial_id"]  # the top trial won
    np.testing.assert_array_equal(one.test_probabilities, two.test_probabilities)
    assert one.figures.macro == two.figures.macro and one.figures.intervals == two.figures.intervals
    weights = [(f / "model.safetensors").read_bytes() for f in (one.folder, two.folder)]
    assert weights[0] == weights[1]


def test_a_finalized_model_reloads_and_predicts_its_test_probabilities(finished_search, tmp_path):
    (final,) = finalize(settings(finished_search, tmp_path, seeds=1), say=lambda _: None)
    model, exported = load_model(final.folder)
    config = exported.config
    assert config.backbone == final.trial["backbone"] and exported.views == config.views
    assert json.loads(final.trial["config"])["width"] == config.head.widths[0]
    _, _, search_settings = load_search(settings(finished_search, tmp_path))
    from search.tuning.prepare import check_search, prepare_search

    prepared = prepare_search(search_settings, check_search(search_settings))
    patients = held_out_patients(prepared, config.backbone, config.views)
    ids, x = patients.ids, patients.x
    assert ids == final.test_ids and len(ids) == final.figures.count
    assert set(ids) == set(prepared.split.test) and ids  # the held-out split, nothing else
    again = predict_probabilities(model, x).numpy()
    np.testing.assert_allclose(again, final.test_probabilities, rtol=1e-5, atol=1e-6)
    import pandas as pd

    written = pd.read_csv(final.folder / "test-predictions.csv")
    assert tuple(written["patient_id"]) == ids
    probabilities = written[[f"probability_{c}" for c in exported.class_names]].to_numpy()
    np.testing.assert_allclose(probabilities, final.test_probabilities, rtol=1e-6)
    card = (final.folder / "MODEL_CARD.md").read_text()
    assert "Not for diagnosis" in card and "95 % interval" in card
    assert isinstance(model, torch.nn.Module) and not model.training


def test_the_command_writes_the_finals_tables(finished_search, tmp_path, capsys):
    out = tmp_path / "finals"
    args = ["finalize", str(finished_search.results), "--per", "mode", "--seeds", "2"]
    assert main([*args, "--bootstrap", "40", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert len(re.findall(r"seed \d: test balanced accuracy", printed)) == 4  # 2 modes x 2 seeds
    finals = load_table(finished_search.results, "finals", "my-search")
    assert len(finals) == 4 and set(finals["mode"]) == {"stress", "dual"}
    assert sorted(set(finals["seed"])) == [0, 1]
    test_count = len(held_out_ids(finished_search, tmp_path))
    for row in finals.to_dict("records"):
        assert row["test_balanced_accuracy_low"] <= row["test_balanced_accuracy"]
        assert row["test_balanced_accuracy"] <= row["test_balanced_accuracy_high"]
        assert sum(map(sum, json.loads(row["confusion"]))) == row["test_patients"] == test_count
    per_class = load_table(finished_search.results, "final_class_metrics", "my-search")
    assert len(per_class) == 4 * 3 * 6  # models x classes x metrics (NPV too)
    proportions = per_class[per_class["metric"].isin(["sensitivity", "specificity", "npv"])]
    proportions = proportions[proportions["denominator"] > 0]  # 0/0 (never called) has none
    assert proportions["interval_method"].eq("Clopper-Pearson exact").all()
    assert (proportions["numerator"] <= proportions["denominator"]).all()
    assert (proportions["high"] > proportions["low"]).all()  # never of no width
    subgroups = load_table(finished_search.results, "final_subgroups", "my-search")
    for _, model in subgroups[subgroups["metric"] == "accuracy"].groupby(["trial_id", "seed"]):
        assert set(model["attribute"]) == {"sex"} and set(model["group"]) <= {"F", "M"}
        assert model["patients"].sum() == test_count  # every test patient in one group
    comparisons = load_table(finished_search.results, "comparisons", "my-search")
    assert sorted(comparisons["kind"].unique()) == [
        "against the baseline", "against the best", "input modes"]  # fmt: skip
    ensemble = load_table(finished_search.results, "ensembles", "my-search")
    if len(ensemble):  # the greedy ensemble: one more model against the best
        assert ensemble["weight"].sum() == pytest.approx(1) and len(ensemble) >= 2
        assert (out / "ensemble" / "ensemble.json").is_file()
        against = comparisons[comparisons["model_b"] == "greedy ensemble"]
        assert set(against["kind"]) == {"against the best"} and len(against) == 6
        # predict reads its folder as one model: what finalize tested, patient for patient
        import pandas as pd
        from sklearn.metrics import balanced_accuracy_score

        manifest, written = finished_search.root / "data" / "manifest.csv", tmp_path / "e.csv"
        assert main(["predict", str(out / "ensemble"), str(manifest), "--out", str(written),
                     "--workers", "1"]) == 0  # fmt: skip
        test = (
            pd.read_csv(written)
            .set_index("patient_id")
            .loc[held_out_ids(finished_search, tmp_path)]
        )
        assert balanced_accuracy_score(test["label"], test["predicted"]) == pytest.approx(
            ensemble["test_balanced_accuracy"].iloc[0])  # fmt: skip
    pairs = 3 + (1 if len(ensemble) else 0)  # dual-stress, modes, baseline (+ ensemble)
    assert len(comparisons) == 6 * pairs  # x accuracy, balanced accuracy, AUC, 3 recalls
    assert (comparisons["patients"] == test_count).all()
    recalls = comparisons[comparisons["metric"].str.startswith("sensitivity[")]
    assert set(recalls["method"]) == {"McNemar exact"} and recalls["class"].notna().all()
    assert (comparisons["discordant"] >= comparisons["a_only"] + comparisons["b_only"] - 1e-9)[
        comparisons["method"] == "McNemar exact"
    ].all()
    assert comparisons["evidence"].str.len().gt(0).all()
    supported = comparisons[comparisons["supported"]]
    assert (supported["discordant"] >= 6).all() and (supported["p_holm"] < 0.05).all()
    assert (comparisons["p_holm"] >= comparisons["p_value"] - 1e-12).all()
    modes = comparisons[comparisons["kind"] == "input modes"]
    assert set(modes["model_a"]) == {"test_resnet / dual"}  # dual against one view
    assert set(modes["model_b"]) == {"test_resnet / stress"}
    baseline = comparisons[comparisons["kind"] == "against the baseline"].set_index("metric")
    assert set(baseline["model_b"]) == {"segment logistic regression"}
    top = finals[(finals["seed"] == 0) & (finals["trial_id"] == baseline["trial_a"].iloc[0])]
    assert baseline.loc["balanced_accuracy", "value_a"] == pytest.approx(
        top["test_balanced_accuracy"].iloc[0])  # fmt: skip
    ranked = load_trials(finished_search.results, "my-search").sort_values(
        ["best_selection", "best_val_loss"], ascending=[False, True])  # fmt: skip
    assert set(baseline["trial_a"]) == {ranked.iloc[0]["trial_id"]}  # the best on validation
    page = (out / "report.html").read_text()
    assert "Baseline and paired comparisons" in page and "cannot tell" in page
    shown = re.findall(r"\[([+-]?\d\.\d{3}),\s([+-]?\d\.\d{3})\]", page)
    assert shown and all(low != high for low, high in shown)  # no interval of no width
    # the checklist: every item with its value from the run or "to be written"
    rows = [line.split(" | ") for line in (out / "checklist.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith(("| topic", "| ---"))]  # fmt: skip
    values = {row[0].lstrip("| "): row[2].rstrip(" |") for row in rows}
    assert all(values.values()) and len(values) == len(rows) >= 25
    person = {topic for topic, value in values.items() if value == "**to be written**"}
    assert {"Reference standard (how the classes were established)",
            "Funding and conflicts of interest"} <= person  # fmt: skip
    partitions = values["Data partitions (patient level, disjoint, counts per class)"]
    assert f"test {test_count} (" in partitions and "exactly one part: yes" in partitions
    assert "Normal" in values["Data: patients and classes"]
    assert values["Code revision and library versions"].startswith("git ")
    assert "Reporting checklist" in page
    assert main([*args, "--bootstrap", "40", "--out", str(out)]) == 0  # again: replaced
    assert len(load_table(finished_search.results, "finals", "my-search")) == 4
    assert len(load_table(finished_search.results, "comparisons", "my-search")) == 6 * pairs
    assert printed.rstrip().endswith(f"report: {out / 'report.html'}")
    # the search was shown in MLflow: finalize's runs are there too, each once
    from collections import Counter

    from mlflow.tracking import MlflowClient

    client = MlflowClient(finished_search.mlflow)
    experiment = client.get_experiment_by_name("polarmap-search").experiment_id
    found = client.search_runs([experiment], "tags.`polarmap.search` = 'my-search'")
    assert max(Counter(r.data.tags["polarmap.key"] for r in found).values()) == 1
    runs = {r.data.tags["polarmap.key"]: r for r in found}
    assert runs["search"].info.status == "FINISHED"  # finalize leaves it as it found it
    for row in finals.to_dict("records"):
        winner, seed = (
            runs[f"final:{row['trial_id']}"],
            runs[f"final:{row['trial_id']}:seed-{row['seed']}"],
        )
        assert winner.data.tags["mlflow.parentRunId"] == runs["search"].info.run_id
        assert seed.data.tags["mlflow.parentRunId"] == winner.info.run_id
        for figure in ("test_balanced_accuracy", "test_balanced_accuracy_low", "test_roc_auc_high"):
            assert seed.data.metrics[figure] == pytest.approx(row[figure])
        saved = {a.path for a in client.list_artifacts(seed.info.run_id, "model")}
        assert {"model/MODEL_CARD.md", "model/model.safetensors"} <= saved
    report = {a.path for a in client.list_artifacts(runs["search"].info.run_id, "finals")}
    assert report == {"finals/report.html", "finals/checklist.md"}
    if len(ensemble):
        assert runs["final:ensemble"].data.metrics["test_balanced_accuracy"] == pytest.approx(
            ensemble["test_balanced_accuracy"].iloc[0])  # fmt: skip


def test_the_report_is_one_self_contained_page(finished_search, tmp_path):
    finals = finalize(settings(finished_search, tmp_path, top=None, seeds=2), say=lambda _: None)
    page = (tmp_path / "finals" / "report.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    sources = re.findall(r"<img src='([^']*)'", page)
    assert sources and all(s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,"))
                           for s in sources)  # fmt: skip
    assert "<link" not in page and "url(" not in page  # no stylesheet or font fetched
    winners = {(f.trial["backbone"], f.trial["mode"]) for f in finals}
    assert page.count("<h2 id='winner-") == len(winners) == 2  # backbone x mode
    for backbone, mode in winners:
        assert f"{backbone} / {mode}" in page
    assert page.count("Not for diagnosis") == 2 * len(winners)  # each seed's model card
    test_ids = finals[0].test_ids
    panels = [src for src in sources if src.startswith("data:image/jpeg")]
    assert len(panels) >= len(winners) * len(test_ids)  # every test patient, each winner
    assert "no territory check" in page  # this data set has no ground-truth sidecars


def test_a_changed_data_set_is_refused_before_any_training(finished_search, tmp_path, capsys):
    import shutil

    moved = tmp_path / "data"
    shutil.copytree(finished_search.root / "data", moved)
    manifest = moved / "manifest.csv"
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:-1]) + "\n")  # one patient fewer
    with pytest.raises(SystemExit) as exited:
        main(["finalize", str(finished_search.results), "--data", str(manifest), "--top", "1"])
    assert exited.value.code == 2
    assert "not the data set the search used" in capsys.readouterr().err
    assert not (finished_search.storage / "finals").exists()


def test_every_file_the_pipeline_writes_is_readable_as_the_umask_says(finished_search, tmp_path):
    """Under umask 022 (the test session's, set in conftest) every file kind is 0644:
    result tables, the search's record, map cache, frozen work, models, model cards,
    CAM panels, segment tables, predictions and the report. Temporary files are created
    0600, so written as they were, colleagues on a shared disk could read none of them."""
    finalize(settings(finished_search, tmp_path, seeds=1), say=lambda _: None)
    root = finished_search.root
    written = [
        *finished_search.results.rglob("*"),
        finished_search.experiment / "polarmap-search.json",
        *(root / "map-cache").rglob("*"),
        *(root / "frozen").rglob("*"),
        *(tmp_path / "finals").rglob("*"),
    ]
    files = [path for path in written if path.is_file()]
    kinds = {path.suffix for path in files}
    assert {".parquet", ".json", ".npy", ".pt", ".safetensors", ".md", ".csv", ".html"} <= kinds
    assert kinds & {".png", ".jpg"}
    modes = {str(path): oct(path.stat().st_mode & 0o777) for path in files}
    assert {mode for mode in modes.values()} == {"0o644"}, modes


def test_finalize_given_the_storage_folder_points_to_its_results_folder(finished_search, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["finalize", str(finished_search.storage)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{finished_search.storage} holds no result tables, but {finished_search.results}" in err
