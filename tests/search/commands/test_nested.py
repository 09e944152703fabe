"""A nested run as a user with sites runs it: leave-one-site-out outer folds, 2 inner
folds, two input modes, the outer searches at once under one driver. Every patient gets
exactly one outer-fold prediction, from the search that held its site out; no outer fold's
patients reach its own search; sites are never split; the frozen work is done once, before
the first outer search ends; finalize (--refit) pools the outer folds into figures,
comparisons (dual against stress, the baseline) and a report; resume runs only the outer
searches that have not finished."""

from __future__ import annotations

import contextlib
import io
import shutil

import pytest

from results import load_table
from search.cli import main
from tests.conftest import read_rows, write_example_dataset

pytestmark = pytest.mark.slow

COUNTS = {"Infarction": 6, "Ischemia": 6, "Normal": 12}


@pytest.fixture(scope="module")
def nested_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("nested")
    manifest = write_example_dataset(root / "data", size=64, counts=COUNTS, sites=3)
    run = [
        "search", "run", "--data", str(manifest), "--space", "tiny", "--backbones",
        "test_resnet", "--modes", "stress,dual", "--samples", "1", "--warmup-epochs", "1",
        "--finetune-epochs", "1", "--outer-folds", "groups", "--group-by", "site",
        "--folds", "2", "--storage", str(root / "runs"), "--name", "nest", "--quiet",
        "--outer-parallel", "3",
    ]  # fmt: skip
    finalize = ["finalize", str(root / "runs" / "results"), "--seeds", "1", "--bootstrap",
                "30", "--refit", "--out", str(root / "finals")]  # fmt: skip
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(out):
        env.setenv("POLARMAP_CACHE", str(root / "cache"))
        env.setenv("POLARMAP_FROZEN", str(root / "frozen"))
        assert main(run) == 0
        frozen = {p: p.stat().st_mtime_ns for p in (root / "frozen").rglob("*.pt")}
        assert main(finalize) == 0
    header, *rows = read_rows(manifest)
    sites = {row[header.index("patient_id")]: row[header.index("site")] for row in rows}
    return root, out.getvalue(), sites, frozen


def test_every_patient_is_predicted_once_by_the_search_that_held_its_site_out(nested_run):
    root, printed, sites, _ = nested_run
    results = root / "runs" / "results"
    assert "leave-one-site-out x inner 2-fold" in printed
    searches = load_table(results, "searches").set_index("search")
    assert searches.loc["nest", "status"] == "completed"
    assert searches.loc["nest", "outer_folds"] == 3
    outer = searches[searches["nested_in"] == "nest"].sort_values("outer_fold")
    assert list(outer.index) == ["nest-outer-0", "nest-outer-1", "nest-outer-2"]
    pooled = load_table(results, "outer_predictions", "nest")
    models = {"the search's pick", "test_resnet / stress", "test_resnet / dual"}
    # the greedy ensemble is pooled where every outer search kept one
    assert set(pooled["model"]) - {"greedy ensemble"} == models | {"segment logistic regression"}
    for _, model in pooled.groupby("model"):
        assert sorted(model["patient_id"]) == sorted(sites)  # each patient once
    for m, held_out in pooled[pooled["model"] == "test_resnet / dual"].groupby("outer_fold"):
        site = sorted({sites[p] for p in held_out["patient_id"]})
        assert site == [f"S{m + 1}"]  # one whole site per outer fold, in sorted order
        assert sorted(held_out["patient_id"]) == sorted(p for p in sites if sites[p] == site[0])
        # its own search never validated (nor so trained on) a patient of its site
        seen = load_table(results, "predictions", f"nest-outer-{m}")
        assert len(seen) and not set(seen["patient_id"]) & set(held_out["patient_id"])
        for _, trial in seen.groupby("trial_id"):
            assert len(set(trial["patient_id"])) == len(sites) - len(held_out)


def test_the_outer_searches_run_at_once_and_share_the_frozen_work(nested_run):
    root, printed, _, frozen = nested_run
    searches = load_table(root / "runs" / "results", "searches").set_index("search")
    outer = [f"nest-outer-{m}" for m in range(3)]
    assert searches.loc[outer, "started"].max() < searches.loc[outer, "ended"].min()
    assert "; all 3 outer searches at once" in printed  # the plan says so
    assert printed.count(" started") == 3 and printed.count(" completed (2 trials") == 3
    # each entry computed once, by whichever trial needed it first: all before the
    # first outer search ended, and no more of them than one search makes
    first_ended = searches.loc[outer, "ended"].min().value  # ns since the epoch
    assert frozen and all(mtime <= first_ended for mtime in frozen.values())
    # the store's misses over every outer search's trials: one per entry it holds
    trials = load_table(root / "runs" / "results", "trials")
    trials = trials[trials["search"].isin(outer)]
    assert trials["frozen_computed"].sum() == len(frozen)
    assert trials["frozen_read"].sum() > 0  # the store's hits: work another trial did


def test_finalize_pools_the_outer_folds_and_compares_on_every_patient(nested_run):
    root, printed, sites, _ = nested_run
    comparisons = load_table(root / "runs" / "results", "comparisons", "nest")
    assert set(comparisons["patient_set"]) == {"outer folds"}
    assert (comparisons["patients"] == len(sites)).all()
    modes = comparisons[comparisons["kind"] == "input modes"]
    assert set(zip(modes["model_a"], modes["model_b"], strict=True)) == {
        ("test_resnet / dual", "test_resnet / stress")}  # fmt: skip
    assert (comparisons["kind"] == "against the baseline").any()
    page = (root / "finals" / "report.html").read_text()
    assert "Pooled outer-fold figures" in page and "segment logistic regression" in page
    for m in range(3):  # each outer fold's own report, linked
        assert (root / "finals" / f"nest-outer-{m}" / "report.html").is_file()
        assert f"nest-outer-{m}/report.html" in page
    assert "pooled balanced accuracy" in printed
    checklist = (root / "finals" / "checklist.md").read_text()
    assert f"every one of {len(sites)} patients in exactly one of 3 outer folds" in checklist
    assert "(pooled, 24 patients)" in checklist and "**to be written**" in checklist
    # --refit: each outer fold's winners one model, on every patient but its outer fold's
    for m in range(3):
        finals = load_table(root / "runs" / "results", "finals", f"nest-outer-{m}")
        assert finals["refit"].all() and (finals["members"] == 1).all()
    assert "retrained once on every patient but its outer fold" in page


def test_resume_runs_only_the_outer_searches_that_did_not_finish(nested_run):
    """Last in this module: it forgets outer fold 2 (its folder and rows, as if the run had
    stopped before it) and resumes the nested run in place."""
    root, _, _, _ = nested_run
    runs = root / "runs"
    for table in (runs / "results").iterdir():
        shutil.rmtree(table / "search=nest-outer-2", ignore_errors=True)
    shutil.rmtree(runs / "nest-outer-2")
    before = load_table(runs / "results", "searches").set_index("search")["ended"]
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(out):
        env.setenv("POLARMAP_CACHE", str(root / "cache"))
        env.setenv("POLARMAP_FROZEN", str(root / "frozen"))
        assert main(["search", "resume", str(runs / "nest"), "--quiet"]) == 0
    printed = out.getvalue()
    assert "nest-outer-0 already finished" in printed and "nest-outer-1 already finished" in printed
    after = load_table(runs / "results", "searches").set_index("search")
    assert after.loc["nest-outer-2", "status"] == after.loc["nest", "status"] == "completed"
    for kept in ("nest-outer-0", "nest-outer-1"):
        assert after.loc[kept, "ended"] == before[kept]
    assert len(load_table(runs / "results", "trials", "nest-outer-2")) == 2
