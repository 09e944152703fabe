"""`polarmap demo`: the main job, end to end, on the embedded synthetic data set.

So far the main job is: generate the synthetic exports, check them, clean them into the
map cache (with a preview to look at), split them by patient and record the split, then
search the `demo` space, print the leaderboard and the best trial's learning curves read
from the result tables, and draw both; then finalize the winners (retrain per seed, test
once on the held-out split, export, CAMs) and write the HTML report.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from search.commands.data import split_record
from search.commands.options import (
    INTERRUPTED,
    add_cache_option,
    argtype,
    fold_count,
    mlflow_uri,
    positive_int,
    seed_number,
)
from search.commands.preprocess import format_cleaning, write_preview
from search.commands.report import format_split_table, print_report
from search.data import TRIAD, SplitSpec, check_dataset, split_patients
from search.data.map_cache import MapCache
from search.data.normalize import backbone_input
from search.data.preprocess import PreprocessSpec, preprocess_dataset
from search.files import write_json_atomic
from search.synth import write_synthetic_dataset
from search.tracking.viewers import viewer_commands
from search.tuning import SearchSettings, check_search, prepare_search
from search.tuning.estimate import format_plan
from spaces import get_space

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the main job end to end on the embedded synthetic data set",
        description="Generate synthetic clinical exports (rest and stress, three classes "
        "in the first seed's 65/18/4 proportions), check them, clean them into the map "
        "cache at the demo backbone's input size, draw a preview, split them 70/15/15 by "
        "patient and record the split, then search the demo space on Ray Tune (started "
        "here), print the leaderboard, finalize the winners and write the report.",
    )
    demo.add_argument(
        "--out", type=Path, default=Path("demo-run"), help="output folder (default demo-run)"
    )
    demo.add_argument("--patients", type=positive_int, default=160, help="patients (default 160)")
    demo.add_argument(
        "--seed", type=seed_number, default=0, help="seed for data and split (default 0)"
    )
    demo.add_argument(
        "--backbone",
        default=None,
        help="timm backbone whose input size the maps are cleaned to (default: the demo "
        "space's, efficientnet_lite0)",
    )
    add_cache_option(demo)
    demo.add_argument(
        "--samples",
        type=positive_int,
        default=None,
        help="trials per pair (default: the demo space's)",
    )
    demo.add_argument(
        "--seeds", type=positive_int, default=1, help="seeds per finalized winner (default 1)"
    )
    demo.add_argument(
        "--folds",
        type=argtype(fold_count),
        default=3,
        help="cross-validation folds of each trial (default 3)",
    )
    demo.add_argument(
        "--mlflow", default=None, metavar="URI",
        help="also show the search and the finalized models in MLflow: a tracking server, "
        "an SQLite store (sqlite:///mlflow.db) or a folder (docs/tracking.md)",
    )  # fmt: skip
    demo.add_argument("--quiet", action="store_true", help="log lines instead of a live view")
    demo.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    out: Path = args.out
    started = time.perf_counter()
    print(f"1. Generating {args.patients} synthetic patients in {out / 'data'}")
    manifest = write_synthetic_dataset(out / "data", TRIAD, args.patients, seed=args.seed)
    print(f"   done in {time.perf_counter() - started:.0f} s")

    print(f"\n2. Checking {manifest}")
    # cross-validated: every trial trains one model per fold (see docs/search.md)
    spec = SplitSpec(train=0.8, val=0.0, test=0.2, folds=args.folds, seed=args.seed)
    report = check_dataset(manifest, split=spec)
    print_report(report)
    if report.dataset is None:
        return 1
    dataset = report.dataset

    args.backbone = args.backbone or get_space("demo").backbones[0]
    size = backbone_input(args.backbone).size
    print(f"\n3. Cleaning every export to {size} x {size} px for {args.backbone}")
    cleaned = preprocess_dataset(dataset, PreprocessSpec(size), MapCache(args.cache))
    print(format_cleaning(cleaned))
    preview = write_preview(dataset, PreprocessSpec(size), out / "preview.png", count=6)
    print(f"preview of 6 patients (look at the crops): {preview}")
    _other_exports(out, args.seed, size, args.cache)

    print(f"\n4. Splitting by patient: {spec.describe()}")
    split = split_patients(dataset.labels, spec, dataset.class_set.names)
    print(format_split_table(dataset, split))
    record = write_json_atomic(out / "split.json", split_record(dataset, split))
    print(f"test fingerprint {split.test_fingerprint[:16]}..., recorded in {record}")

    print("\n5. Searching: the demo space, one Hyperband and one Optuna study per pair")
    settings = SearchSettings(
        space=replace(get_space("demo"), samples=args.samples or get_space("demo").samples),
        data=manifest,
        name=f"demo-{time.strftime('%Y%m%d-%H%M%S')}",
        storage=str(out / "runs"),
        seed=args.seed,
        split=spec,
        cache=args.cache,
        mlflow=mlflow_uri(args.mlflow),
    )
    prepared = prepare_search(settings, check_search(settings))
    print(format_plan(settings, prepared, measure=False))
    print(viewer_commands(settings.experiment, settings.mlflow))
    from search.tuning.runner import run_search

    if run_search(settings, prepared, quiet=args.quiet).interrupted:
        return INTERRUPTED  # the runner said how to go on; finalize needs every trial
    from search.commands.results import show_results

    show_results(settings.results, settings.name, plots=out / "plots")
    print(f"experiment: {settings.experiment}")

    print("\n6. Finalizing: the best trial of each backbone and mode, its fold models "
          "retrained and averaged, tested once on the held-out split")  # fmt: skip
    from search.finalize.pipeline import FinalizeSettings, finalize
    from search.reporting.report import REPORT_FILE

    finals_folder = out / "finals"
    finalize(FinalizeSettings(results=settings.results, search=settings.name,
                              seeds=args.seeds, cache=args.cache, out=finals_folder))  # fmt: skip
    report = (finals_folder / REPORT_FILE).resolve()
    print(
        f"\nDone in {time.perf_counter() - started:.0f} s: synthetic exports made, checked, "
        f"cleaned into {cleaned.cache}, split, searched, every trial written to the result "
        f"tables in {settings.results}, plots in {out / 'plots'}, the winners "
        f"retrained, tested and exported in {finals_folder}.\n"
        f"Report (open it in a browser): {report}"
    )
    return 0


def _other_exports(out: Path, seed: int, size: int, cache: str | None) -> None:
    """Exports as another vendor writes them (both maps in one DICOM screenshot, a hot
    colour scale): checked with their positions, cleaned, previewed. Not searched."""
    folder = out / "other-exports"
    print(f"   and exports as another vendor writes them, in {folder}:")
    manifest = write_synthetic_dataset(folder, TRIAD, 6, seed=seed, image_format="dicom",
                                       style="pair", colour_map="hot")  # fmt: skip
    report = check_dataset(manifest, class_set=TRIAD, splittable=False)
    if report.dataset is None:
        print_report(report)
        return
    print(
        "   6 patients, stress left and rest right in one DICOM file each (hot colour scale),"
        " read by their stress_position/rest_position columns"
    )
    cleaned = preprocess_dataset(report.dataset, PreprocessSpec(size), MapCache(cache))
    print("   " + format_cleaning(cleaned).replace("\n", "\n   "))
    preview = write_preview(report.dataset, PreprocessSpec(size), folder / "preview.png", count=3)
    print(f"   preview (text removed in magenta, left alone in orange): {preview}")
