"""Printing what the data commands found: the check's report and split tables."""

from __future__ import annotations

from search.data import CheckReport, Dataset, Split, format_problems

__all__ = ["format_outer_table", "format_split_table", "print_report"]


def print_report(report: CheckReport) -> None:
    """The check's summary, then every problem, errors first."""
    kind = "class folders" if report.source.is_dir() else "manifest"
    views = ", ".join(report.views) or "none"
    print(f"{report.source} ({kind}): {report.records} patients, views {views}")
    if report.dataset is not None:
        counts = ", ".join(f"{n} {c}" for n, c in report.dataset.class_counts().items())
        print(f"classes ({report.class_set.name}): {counts}")
        print(f"data fingerprint: {report.dataset.fingerprint}")
    for note in report.notes:
        print(note)
    for line in format_problems(report.problems):
        print(f"  {line}")
    errors, warnings = len(report.errors), len(report.warnings)
    if errors:
        print(f"FAILED: {errors} error(s), {warnings} warning(s); fix them and run the check again")
    else:
        print(f"OK: no errors, {warnings} warning(s)")


def format_split_table(dataset: Dataset, split: Split) -> str:
    """Patients per class and split, as a small text table."""
    parts = {"train": split.train, "val": split.val, "test": split.test}
    if split.folds:
        parts = {"train+val": split.train, "test": split.test}
        parts.update({f"fold {i + 1}": f for i, f in enumerate(split.folds)})
    return _count_table(dataset, parts)


def format_outer_table(
    dataset: Dataset, outer: tuple[tuple[str, ...], ...], groups: dict[str, str] | None
) -> str:
    """Patients per class and outer fold (0-based, as the outer searches are named), and
    with groups the values each outer fold holds."""
    table = _count_table(dataset, {f"outer {m}": ids for m, ids in enumerate(outer)})
    if groups is None:
        return table
    held = [", ".join(sorted({groups[pid] for pid in ids})) for ids in outer]
    return table + "\n" + "\n".join(f"outer {m}: {values}" for m, values in enumerate(held))


def _count_table(dataset: Dataset, parts: dict[str, tuple[str, ...]]) -> str:
    labels = dataset.labels
    width = max(len(n) for n in [*dataset.class_set.names, "class", "total"])
    lines = [f"{'class':<{width}}  " + "  ".join(f"{p:>9}" for p in parts)]
    for index, name in enumerate(dataset.class_set.names):
        cells = [sum(labels[pid] == index for pid in ids) for ids in parts.values()]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c:>9}" for c in cells))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{len(ids):>9}" for ids in parts.values()))
    return "\n".join(lines)
