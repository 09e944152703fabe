"""`polarmap demo`: the main job, end to end, on data it makes itself.

So far the main job is: make a data set, check it, split it by patient and record the
split. The search, the result tables and the finalists join this command as they land.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from search.commands.data import format_split_table, print_report, split_record
from search.data import SplitSpec, check_dataset, split_patients
from search.data.example import write_example_dataset
from search.files import write_json_atomic

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the main job end to end on a small generated data set",
        description="Generate a small example data set (rest and stress bullseye maps, "
        "three classes), check it, split it 70/15/15 by patient and record the split.",
    )
    demo.add_argument(
        "--out", type=Path, default=Path("demo-run"), help="output folder (default demo-run)"
    )
    demo.add_argument("--seed", type=int, default=0, help="seed for data and split (default 0)")
    demo.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    out: Path = args.out
    print(f"1. Writing an example data set to {out / 'data'}")
    manifest = write_example_dataset(out / "data", seed=args.seed)

    print(f"\n2. Checking {manifest}")
    spec = SplitSpec(seed=args.seed)
    report = check_dataset(manifest, split=spec)
    print_report(report)
    if report.dataset is None:
        return 1
    dataset = report.dataset

    print(f"\n3. Splitting by patient: {spec.describe()}")
    split = split_patients(dataset.labels, spec, dataset.class_set.names)
    print(format_split_table(dataset, split))
    record = write_json_atomic(out / "split.json", split_record(dataset, split))
    print(f"test fingerprint {split.test_fingerprint[:16]}..., recorded in {record}")

    print(
        "\nDone: data set made, checked and split. Not built yet, so not run: "
        "preprocessing of clinical exports, the search, result tables, finalists."
    )
    return 0
