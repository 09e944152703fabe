"""The `polarmap` command: help everywhere, exit codes, the split record, the demo."""

from __future__ import annotations

import argparse
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from results import load_table
from results.store import ResultStore
from search.cli import build_parser, main
from search.reporting.trust import CHECK_SENTENCES
from tests.conftest import read_rows, write_example_dataset
from tests.search.tracking.test_optuna_journal import dashboard_studies, serve_dashboard

POLARMAP = Path(sys.executable).parent / "polarmap"


def all_command_paths(parser: argparse.ArgumentParser, prefix=()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += all_command_paths(sub, (*prefix, name))
    return paths


@pytest.mark.parametrize("command", all_command_paths(build_parser()), ids=" ".join)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert "usage: polarmap" in shown
    assert "%%" not in shown  # a literal percent is written once ("95 %")


def test_console_script_and_module_are_twins():
    help_texts = [
        subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        for cmd in (
            [str(POLARMAP), "data", "--help"],
            [sys.executable, "-m", "search", "data", "--help"],
        )
    ]
    assert help_texts[0] == help_texts[1]
    assert "check" in help_texts[0] and "split" in help_texts[0]


def test_check_exits_zero_on_a_good_manifest(manifest, capsys):
    assert main(["data", "check", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "40 patients" in out and "OK: no errors" in out


def test_check_exits_one_and_prints_the_row(edit_manifest, capsys):
    path = edit_manifest(lambda rows: rows[4].__setitem__(3, "Infraction"))
    assert main(["data", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "row 5, label: unknown label 'Infraction'" in out
    assert "FAILED: 1 error(s)" in out


def test_many_rows_with_one_problem_print_as_one_line(manifest, capsys):
    assert main(["data", "check", str(manifest), "--classes", "A,B"]) == 1
    out = capsys.readouterr().out
    assert "(22 rows), label: unknown label 'Normal'" in out


def test_bad_option_values_are_usage_errors(manifest, capsys):
    for options in (["--split", "70/20"], ["--folds", "1"], ["--classes", "Solo"]):
        with pytest.raises(SystemExit) as exited:
            main(["data", "check", str(manifest), *options])
        assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        main(["data", "split", str(manifest), "--split", "80/0/20"])  # no validation, no folds
    assert exited.value.code == 2
    assert "use --folds" in capsys.readouterr().err


def test_split_record_is_written_and_stable(manifest, tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["data", "split", str(manifest), "--out", str(first)]) == 0
    assert main(["data", "split", str(manifest), "--out", str(second), "--split", "60/25/15"]) == 0
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert a["patients"]["test"] == b["patients"]["test"]
    assert a["test_fingerprint"] == b["test_fingerprint"]
    assert a["patients"]["val"] != b["patients"]["val"]
    ids = [pid for part in a["patients"].values() for pid in part]
    assert len(ids) == len(set(ids)) == 40
    assert a["data_fingerprint"] and a["provenance"]["libraries"]["torch"]
    table = capsys.readouterr().out
    assert "Infarction" in table and "test fingerprint" in table


def test_check_and_split_keep_sites_whole_as_a_nested_search_would(tmp_path, capsys):
    manifest = write_example_dataset(tmp_path / "data", size=64, sites=3)
    nested = ["--group-by", "site", "--outer-folds", "groups", "--folds", "2"]
    record = tmp_path / "split.json"
    assert main(["data", "split", str(manifest), *nested, "--out", str(record)]) == 0
    printed = capsys.readouterr().out
    assert "outer 0: S1" in printed and "outer 2: S3" in printed
    written = json.loads(record.read_text())
    header, *rows = read_rows(manifest)
    site = {row[0]: row[header.index("site")] for row in rows}
    assert [sorted({site[p] for p in fold}) for fold in written["outer_fold_patients"]] == [
        ["S1"], ["S2"], ["S3"]]  # fmt: skip
    assert set(written["patients"]["test"]) == set(written["outer_fold_patients"][0])
    assert written["outer_fold_count"] == 3
    for fold in written["fold_patients"]:  # outer fold 0's inner folds: sites whole there too
        assert not {site[p] for p in fold} & {site[p] for p in written["patients"]["test"]}

    assert main(["data", "check", str(manifest), "--group-by", "site", "--outer-folds", "4",
                 "--folds", "2"]) == 1  # fmt: skip
    assert "column 'site' has 3 groups" in capsys.readouterr().out  # what search would say
    assert main(["data", "check", str(manifest), "--group-by", "scanner"]) == 1
    assert "--group-by scanner: the manifest has no such column" in capsys.readouterr().out


def test_split_refuses_bad_data_before_splitting(edit_manifest, tmp_path, capsys):
    path = edit_manifest(lambda rows: rows[4].__setitem__(3, ""))
    out = tmp_path / "split.json"
    assert main(["data", "split", str(path), "--out", str(out)]) == 1
    assert not out.exists()
    assert "row 5, label: empty label" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_runs_the_main_job(tmp_path, capsys):
    """`make demo` as a user runs it: synthetic exports, check, clean, preview, split, the
    search with its leaderboard, and finalize with its report (fewer patients, trials per
    pair and folds than `make demo`)."""
    cache = tmp_path / "cache"
    args = ["demo", "--out", str(tmp_path / "run"), "--cache", str(cache), "--quiet"]
    args += ["--mlflow", str(tmp_path / "mlflow")]
    assert main([*args, "--patients", "120", "--samples", "2", "--folds", "2"]) == 0
    record = json.loads((tmp_path / "run" / "split.json").read_text())
    assert len(record["patients"]["test"]) == 1 + 5 + 18  # 20 % of 5, 25 and 90
    assert (tmp_path / "run" / "data" / "truth" / "SYN0001.json").exists()
    assert len(list(cache.rglob("*.npy"))) == 240 + 12  # and another vendor's 6 pairs
    assert Image.open(tmp_path / "run" / "preview.png").size[1] > 6 * 256
    assert Image.open(tmp_path / "run" / "other-exports" / "preview.png").size[1] > 3 * 256
    out = capsys.readouterr().out
    assert "Infarction 5, Ischemia 25, Normal 90" in out
    report = tmp_path / "run" / "finals" / "report.html"
    assert out.rstrip().endswith(f"Report (open it in a browser): {report.resolve()}")
    winners = re.findall(r"seed \d+: test balanced accuracy", out)
    assert report.stat().st_size > 0 and len(winners) == 2  # 2 winners: stress and dual
    board = out[out.index("leaderboard") :]
    for pair in ("efficientnet_lite0/stress", "efficientnet_lite0/dual"):
        assert pair in board
    # the seeds' protocol on real ImageNet weights, which the report names
    page = report.read_text()
    assert "efficientnet_lite0: ImageNet weights from" in page
    assert "efficientnet-lite0-57934424.pth" in page
    runs = [p for p in (tmp_path / "run" / "runs").iterdir() if p.name != "results"]
    assert len(runs) == 1 and (runs[0] / "polarmap-search.json").exists()
    trials = ResultStore(tmp_path / "run" / "runs" / "results").table("trials")
    assert trials.num_rows == 4  # 2 pairs x 2 trials, in the result tables
    plots = sorted(p.name for p in (tmp_path / "run" / "plots").iterdir())
    assert len(plots) == 2 and plots[1].startswith("leaderboard-demo-")  # and the best curves
    assert plots[0].startswith("curves-demo-") and "<- best" in out
    assert "240 maps of 224 x 224 px (rest, stress): 240 cleaned now" in out
    assert f"cache: {cache}" in out and "stratified 2-fold over train + validation" in out
    assert "Normal             72         18         36         36" in out
    # issue 31: every winner's prediction sets, CAM checks, and predict writing the sets
    results = tmp_path / "run" / "runs" / "results"
    conformal = load_table(results, "final_conformal")
    assert conformal["trial_id"].nunique() == 2 and (conformal["alpha"] == 0.1).all()
    for row in conformal[conformal["test_patients"] > 0].to_dict("records"):
        assert row["coverage_high"] >= 0.9, row  # each class covered within its interval
    checks = load_table(results, "final_explanations")
    for trial_id, rows in checks.groupby("trial_id"):
        done = set(zip(rows["check"], rows["attribution"], strict=True))
        assert {("road_morf_drop", "grad_cam"), ("road_lerf_drop", "random"),
                ("randomisation_rank_correlation", "grad_cam"),
                ("pointing_game", "label_shuffled"),
                ("pointing_game", "most_common_territory")} <= done, trial_id  # fmt: skip
    for sentence in CHECK_SENTENCES.values():
        assert html.escape(sentence, quote=True) in page
    assert "Prediction sets: when the model does not know" in page
    checklist = (tmp_path / "run" / "finals" / "checklist.md").read_text()
    assert "Uncertainty of each prediction (prediction sets)" in checklist
    assert "pointing game (stress" in checklist and "randomisation rank correlation" in checklist
    model = next((tmp_path / "run" / "finals").glob("efficientnet_lite0-stress-*/seed-*"))
    assert main(["predict", str(model), str(tmp_path / "run" / "data" / "manifest.csv"),
                 "--out", str(tmp_path / "sets.csv"), "--cache", str(cache)]) == 0  # fmt: skip
    written = pd.read_csv(tmp_path / "sets.csv", keep_default_na=False)
    assert written["prediction_set"].str.fullmatch(r"[A-Za-z+]*").all() and len(written) == 120
    # issue 32: the demo search in optuna-dashboard (over HTTP), TensorBoard and MLflow
    assert f"tensorboard --logdir {runs[0]}" in out
    with serve_dashboard(runs[0] / "optuna.journal") as url:
        studies = {study["study_name"]: study for study in dashboard_studies(url)}
    assert sorted(studies) == ["efficientnet_lite0/dual", "efficientnet_lite0/stress"]
    assert all(len(study["trials"]) == 2 for study in studies.values())
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    curves = EventMultiplexer()
    curves.AddRunsFromDirectory(str(runs[0]))
    curves.Reload()
    assert len(curves.Runs()) == 4  # one per trial, nothing of Ray's own
    for run in curves.Runs():
        assert run.startswith("tensorboard/efficientnet_lite0-")
        assert curves.Scalars(run, "warmup/val_roc_auc_sd")  # the folds' SD, each epoch
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    tracked = client.search_runs([client.get_experiment_by_name("polarmap-search").experiment_id])
    keys = sorted(r.data.tags["polarmap.key"] for r in tracked)
    ensemble = ["final:ensemble"] if len(load_table(results, "ensembles")) else []
    winners = sorted(set(conformal["trial_id"]))
    assert keys == sorted(
        [*ensemble, *(f"final:{t}" for t in winners), *(f"final:{t}:seed-0" for t in winners),
         "pair:efficientnet_lite0/dual", "pair:efficientnet_lite0/stress", "search",
         *(f"trial:{t}" for t in trials["trial_id"].to_pylist())]
    )  # fmt: skip


def test_synth_command_writes_a_checked_data_set(tmp_path, capsys):
    out = tmp_path / "synth"
    args = ["data", "synth", str(out), "--patients", "21", "--canvas", "410x267"]
    assert main([*args, "--balance", "Infarction=1,Ischemia=1,Normal=1"]) == 0
    assert "Infarction 7, Ischemia 7, Normal 7" in capsys.readouterr().out
    assert main(["data", "check", str(out / "manifest.csv")]) == 0


def test_synth_writes_another_vendors_exports(tmp_path, capsys):
    out = tmp_path / "synth"
    args = ["data", "synth", str(out), "--patients", "3", "--balance", "Ischemia=1,Normal=2"]
    assert main([*args, "--style", "pair", "--format", "dicom", "--colour-map", "grey"]) == 0
    assert "OK: no errors" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        f"SYN000{n}_pair.dcm" for n in (1, 2, 3)
    ]
    assert "stress_position" in (out / "manifest.csv").read_text()


def test_synth_refuses_bad_options_before_writing(tmp_path):
    with pytest.raises(SystemExit) as exited:
        main(["data", "synth", str(tmp_path / "x"), "--balance", "CAD=1"])
    assert exited.value.code == 2
    assert not (tmp_path / "x").exists()


def test_synth_writes_a_set_the_default_split_cannot_fill_and_says_so(tmp_path, capsys):
    """A valid data set is a success (exit 0); which splits it fills is news, not an
    error: the user learns which --split to give the commands that split."""
    out = tmp_path / "synth"
    args = ["data", "synth", str(out), "--patients", "40", "--canvas", "410x267"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "OK: no errors" in printed
    assert "splits: it cannot fill the default 70/15/15 split" in printed
    assert "class 'Infarction' has 2 patients" in printed
    assert main(["data", "check", str(out / "manifest.csv")]) == 1  # as it said
    assert "class 'Infarction' has 2 patients" in capsys.readouterr().out


RUN = ["search", "run", "--data", "nowhere.csv", "--space", "tiny"]
TRAIN = ["train", "--data", "nowhere.csv", "--backbone", "test_resnet"]
AT_LEAST_1, AT_LEAST_0 = "an integer of at least 1", "an integer of at least 0"
SEED = "an integer from 0 to 2147483647"


@pytest.mark.parametrize(
    ("command", "option", "value", "expected"),
    [
        (RUN, "--threads", "0", AT_LEAST_1),
        (RUN, "--threads", "two", "expected an integer, got 'two'"),
        (RUN, "--cpus-per-trial", "0", "a number more than 0"),
        (RUN, "--cpus-per-trial", "nan", "a number more than 0"),
        (RUN, "--gpus-per-trial", "-1", "0 or more GPUs"),
        (RUN, "--gpus-per-trial", "1.5", "a whole number above 1"),
        (RUN, "--max-concurrent", "0", AT_LEAST_1),
        (RUN, "--max-failures", "-1", AT_LEAST_0),
        (RUN, "--samples", "0", AT_LEAST_1),
        (RUN, "--warmup-epochs", "0", AT_LEAST_1),
        (RUN, "--finetune-epochs", "-1", AT_LEAST_0),
        (RUN, "--reduction-factor", "1", "an integer of at least 2"),
        (RUN, "--seed", "-1", SEED),
        (RUN, "--repeats", "0", AT_LEAST_1),
        (RUN, "--outer-parallel", "0", AT_LEAST_1),
        (RUN, "--time-budget", "0", "a duration more than 0"),
        (["search", "resume", "runs/x"], "--outer-parallel", "0", AT_LEAST_1),
        (["finalize", "results"], "--threads", "0", AT_LEAST_1),
        (["finalize", "results"], "--seeds", "0", AT_LEAST_1),
        (["finalize", "results"], "--top", "0", AT_LEAST_1),
        (["finalize", "results"], "--bootstrap", "0", AT_LEAST_1),
        (["predict", "model", "m.csv"], "--workers", "0", AT_LEAST_1),
        (["predict", "model", "m.csv"], "--min-size", "0", AT_LEAST_1),
        (["evaluate", "model", "m.csv"], "--bootstrap", "-1", AT_LEAST_0),
        (["evaluate", "model", "m.csv"], "--seed", "-1", SEED),
        (["data", "check", "m.csv"], "--min-size", "-5", AT_LEAST_1),
        (["data", "split", "m.csv"], "--seed", "2147483648", SEED),
        (["data", "preprocess", "m.csv"], "--size", "8", "an integer from 16 to 2048"),
        (["data", "preprocess", "m.csv"], "--workers", "0", AT_LEAST_1),
        (["data", "preview", "m.csv", "--out", "p.png"], "--patients", "0", AT_LEAST_1),
        (["data", "synth", "out"], "--patients", "0", AT_LEAST_1),
        (["data", "synth", "out"], "--seed", "-1", SEED),
        (["data", "synth", "out"], "--difficulty", "2", "a number from 0 to 1"),
        (["data", "synth", "out"], "--canvas", "0x100", "WIDTHxHEIGHT"),
        (["demo"], "--patients", "0", AT_LEAST_1),
        (["demo"], "--samples", "0", AT_LEAST_1),
        (["demo"], "--seeds", "0", AT_LEAST_1),
        (["demo"], "--folds", "1", "at least 2"),
        (["demo"], "--seed", "-1", SEED),
        (["results", "curves", "results"], "--top", "0", AT_LEAST_1),
        (TRAIN, "--threads", "0", AT_LEAST_1),
        (TRAIN, "--width", "0", AT_LEAST_1),
        (TRAIN, "--depth", "-1", AT_LEAST_0),
        (TRAIN, "--dropout", "1", "a number from 0 up to (not including) 1"),
        (TRAIN, "--a", "0", "a number more than 0"),
        (TRAIN, "--unfreeze", "-1", AT_LEAST_0),
        (TRAIN, "--max-layer-share", "1.5", "a number from 0 to 1"),
        (TRAIN, "--max-param-share", "-0.1", "a number from 0 to 1"),
        (TRAIN, "--warmup-epochs", "0", AT_LEAST_1),
        (TRAIN, "--finetune-epochs", "-1", AT_LEAST_0),
        (TRAIN, "--batch-size", "0", AT_LEAST_1),
        (TRAIN, "--augment-copies", "0", AT_LEAST_1),
        (TRAIN, "--fold", "-1", AT_LEAST_0),
        (TRAIN, "--trial-seed", "-1", SEED),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v[:2]),
)
def test_numbers_out_of_range_are_usage_errors_naming_the_option(
    command, option, value, expected, capsys
):
    """Refused while the command line is read, before any file is read or anything runs:
    exit status 2, argparse's usage, the option and the range it takes; no traceback."""
    with pytest.raises(SystemExit) as exited:
        main([*command, option, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "usage: polarmap" in err and "Traceback" not in err
    assert f"argument {option}: " in err and expected in err, err


@pytest.mark.parametrize(
    "command",
    [
        [*RUN, "--gpus-per-trial", "0.25", "--cpus-per-trial", "0.5", "--max-failures", "0"],
        [*RUN, "--gpus-per-trial", "2", "--finetune-epochs", "0", "--reduction-factor", "2"],
        [*RUN, "--gpus-per-trial", "0", "--seed", "2147483647", "--time-budget", "90m"],
        ["evaluate", "model", "m.csv", "--bootstrap", "0", "--seed", "0"],
        [*TRAIN, "--dropout", "0", "--depth", "0", "--unfreeze", "0", "--max-layer-share", "1"],
        ["data", "synth", "out", "--difficulty", "0", "--canvas", "410x267"],
    ],
)
def test_numbers_at_the_ends_of_their_ranges_are_taken(command):
    args = build_parser().parse_args(command)
    assert args.func is not None
