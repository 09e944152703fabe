"""Problems found in a data set, and the error that carries them.

Checks collect every problem before reporting, so a user fixes a manifest in one pass
instead of one error per run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from search import errors

__all__ = ["DataError", "Problem", "format_problems"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a data set.

    Args:
        source: the manifest or image file the problem is in.
        message: what is wrong and what was expected.
        row: the manifest row (the header is row 1, as a spreadsheet shows it), if any.
        field: the column the problem is in, if any.
        severity: `error` stops every command; `warning` is reported and let through.
    """

    source: str
    message: str
    row: int | None = None
    field: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = self.source
        if self.row is not None:
            where += f", row {self.row}"
        if self.field:
            where += f", {self.field}"
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


class DataError(errors.DataError):
    """A data set failed its check; `problems` lists everything found, errors first."""

    def __init__(self, problems: list[Problem], summary: str = "the data set has problems"):
        self.problems = sorted(problems, key=lambda p: not p.is_error)
        errors = sum(p.is_error for p in problems)
        lines = [f"{summary}: {errors} error(s)"] + [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


def format_problems(problems: list[Problem], mark_warnings: bool = True) -> list[str]:
    """One line per problem, top of the file first, errors before warnings; the same
    message on many rows (a wrong class set, say) becomes one line listing the rows.
    `mark_warnings=False` leaves out the `warning: ` a warning's line carries (for a
    logger that marks them itself)."""
    groups: dict[tuple, list[Problem]] = {}
    for p in problems:
        key = (not p.is_error, p.source, p.field, p.message)
        groups.setdefault(key, []).append(p)
    ordered = sorted(groups.values(), key=lambda g: (not g[0].is_error, g[0].row or 0))
    lines = []
    for group in ordered:
        first = group[0]
        if len(group) == 1:
            lines.append(str(first if mark_warnings else replace(first, severity="error")))
            continue
        rows = [p.row for p in group if p.row is not None]
        shown = ", ".join(str(r) for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
        where = f"{first.source}, rows {shown} ({len(rows)} rows)"
        if first.field:
            where += f", {first.field}"
        prefix = "" if first.is_error or not mark_warnings else "warning: "
        lines.append(f"{where}: {prefix}{first.message}")
    return lines
