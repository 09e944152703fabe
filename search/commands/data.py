"""`polarmap data ...`: check a data set, and split it into patient-level splits."""

from __future__ import annotations

import argparse
from pathlib import Path

from search.commands.options import add_data_options, check_from_args, split_from_args
from search.data import CheckReport, Dataset, Problem, Split, split_patients
from search.files import write_json_atomic
from search.provenance import provenance

__all__ = ["register", "split_record"]


def register(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser(
        "data", help="check and split data sets", description="Check and split data sets."
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
        "split. The same seed and data always give the same test split.",
    )
    add_data_options(split)
    split.add_argument(
        "--out", type=Path, default=None, help="write the split (ids, fingerprints) as JSON here"
    )
    split.set_defaults(func=run_split, parser=split)


def run_check(args: argparse.Namespace) -> int:
    report = check_from_args(args)
    print_report(report)
    return 0 if report.ok else 1


def run_split(args: argparse.Namespace) -> int:
    spec = split_from_args(args)
    report = check_from_args(args)
    if not report.ok:
        print_report(report)
        return 1
    dataset = report.dataset
    assert dataset is not None
    split = split_patients(dataset.labels, spec, dataset.class_set.names)
    print(f"{dataset.source}: {len(dataset)} patients, {spec.describe()}")
    print(format_split_table(dataset, split))
    print(f"test fingerprint: {split.test_fingerprint}")
    if args.out:
        write_json_atomic(args.out, split_record(dataset, split))
        print(f"wrote {args.out}")
    return 0


def print_report(report: CheckReport) -> None:
    """The check's summary, then every problem, errors first."""
    kind = "class folders" if report.source.is_dir() else "manifest"
    views = ", ".join(report.views) or "none"
    print(f"{report.source} ({kind}): {report.records} patients, views {views}")
    if report.dataset is not None:
        counts = ", ".join(f"{n} {c}" for n, c in report.dataset.class_counts().items())
        print(f"classes ({report.class_set.name}): {counts}")
        print(f"data fingerprint: {report.dataset.fingerprint}")
    for line in format_problems(report.problems):
        print(f"  {line}")
    errors, warnings = len(report.errors), len(report.warnings)
    if errors:
        print(f"FAILED: {errors} error(s), {warnings} warning(s); fix them and run the check again")
    else:
        print(f"OK: no errors, {warnings} warning(s)")


def format_problems(problems: list[Problem]) -> list[str]:
    """One line per problem, top of the file first, errors before warnings; the same
    message on many rows (a wrong class set, say) becomes one line listing the rows."""
    groups: dict[tuple, list[Problem]] = {}
    for p in problems:
        key = (not p.is_error, p.source, p.field, p.message)
        groups.setdefault(key, []).append(p)
    ordered = sorted(groups.values(), key=lambda g: (not g[0].is_error, g[0].row or 0))
    lines = []
    for group in ordered:
        first = group[0]
        if len(group) == 1:
            lines.append(str(first))
            continue
        rows = [p.row for p in group if p.row is not None]
        shown = ", ".join(str(r) for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
        where = f"{first.source}, rows {shown} ({len(rows)} rows)"
        if first.field:
            where += f", {first.field}"
        prefix = "" if first.is_error else "warning: "
        lines.append(f"{where}: {prefix}{first.message}")
    return lines


def format_split_table(dataset: Dataset, split: Split) -> str:
    """Patients per class and split, as a small text table."""
    labels = dataset.labels
    parts = {"train": split.train, "val": split.val, "test": split.test}
    if split.folds:
        parts = {"train+val": split.train, "test": split.test}
        parts.update({f"fold {i + 1}": f for i, f in enumerate(split.folds)})
    width = max(len(n) for n in [*dataset.class_set.names, "class", "total"])
    lines = [f"{'class':<{width}}  " + "  ".join(f"{p:>9}" for p in parts)]
    for index, name in enumerate(dataset.class_set.names):
        cells = [sum(labels[pid] == index for pid in ids) for ids in parts.values()]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c:>9}" for c in cells))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{len(ids):>9}" for ids in parts.values()))
    return "\n".join(lines)


def split_record(dataset: Dataset, split: Split) -> dict[str, object]:
    """What later steps need to prove they never trained on the test split."""
    return {
        "format": "polarmap-split/1",
        "data": str(dataset.source.resolve()),
        "data_fingerprint": dataset.fingerprint,
        "class_set": dataset.class_set.name,
        "class_names": list(dataset.class_set.names),
        "views": list(dataset.views),
        **split.to_dict(),
        "provenance": provenance(),
    }
