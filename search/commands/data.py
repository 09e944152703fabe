"""`polarmap data ...`: check, split, synthesize, preprocess and preview data sets."""

from __future__ import annotations

import argparse
from pathlib import Path

from search.commands import preprocess as preprocess_command
from search.commands import synth as synth_command
from search.commands.options import (
    add_data_options,
    check_from_args,
    checked_dataset,
    split_from_args,
)
from search.commands.report import format_outer_table, format_split_table, print_report
from search.data import Dataset, Split, split_patients
from search.data.splits import outer_partition
from search.files import write_json_atomic
from search.provenance import provenance

__all__ = ["register", "split_record"]


def register(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser(
        "data",
        help="check, split, synthesize, preprocess and preview data sets",
        description="Check, split, synthesize, preprocess and preview data sets.",
    )
    sub = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    check = sub.add_parser(
        "check",
        help="report every problem of a data set at once",
        description="Check a manifest CSV or class-folder layout before any compute: "
        "columns, ids, labels, every image (decoded in full), the views the input mode "
        "needs, image size, and whether every class can fill the split. Lists every "
        "problem with its row (header = row 1) and exits with status 1 if any is an error.",
    )
    add_data_options(check)
    check.set_defaults(func=run_check, parser=check)

    split = sub.add_parser(
        "split",
        help="make the stratified patient-level split and record it",
        description="Check the data set, then split its patients stratified by class: "
        "train/validation/test, or k folds over train + validation with a fixed test "
        "split, each group of --group-by kept whole; with --outer-folds, the outer folds "
        "and outer fold 0's split. The same seed and data always give the same split.",
    )
    add_data_options(split)
    split.add_argument(
        "--out", type=Path, default=None, help="write the split (ids, fingerprints) as JSON here"
    )
    split.set_defaults(func=run_split, parser=split)
    synth_command.register(sub)
    preprocess_command.register(sub)


def run_check(args: argparse.Namespace) -> int:
    report = check_from_args(args)
    print_report(report)
    return 0 if report.ok else 1


def run_split(args: argparse.Namespace) -> int:
    spec = split_from_args(args)
    dataset = checked_dataset(args)
    if dataset is None:
        return 1
    names, groups = dataset.class_set.names, dataset.groups(spec.group_by)
    split = split_patients(dataset.labels, spec, names, groups)
    outer = outer_partition(dataset.labels, spec, names, groups) if spec.nested else None
    print(f"{dataset.source}: {len(dataset)} patients, {spec.describe()}")
    if outer is not None:
        print(format_outer_table(dataset, outer, groups))
        print(f"\nthe search of outer fold {spec.outer}, that outer fold its test:")
    print(format_split_table(dataset, split))
    print(f"test fingerprint: {split.test_fingerprint}")
    if args.out:
        write_json_atomic(args.out, split_record(dataset, split, outer))
        print(f"wrote {args.out}")
    return 0


def split_record(
    dataset: Dataset, split: Split, outer: tuple[tuple[str, ...], ...] | None = None
) -> dict[str, object]:
    """What later steps need to prove they never trained on the test split (and, for a
    nested split, every outer fold's patients)."""
    nested = {"outer_fold_patients": [list(ids) for ids in outer]} if outer is not None else {}
    return {
        "format": "polarmap-split/1",
        "data": str(dataset.source.resolve()),
        "data_fingerprint": dataset.fingerprint,
        "class_set": dataset.class_set.spec,  # a mapping of labels onto classes included
        "class_names": list(dataset.class_set.names),
        "views": list(dataset.views),
        **split.to_dict(),
        **nested,
        "provenance": provenance(),
    }
