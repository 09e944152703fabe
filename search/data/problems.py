"""Problems found in a data set, and the error that carries them.

Checks collect every problem before reporting, so a user fixes a manifest in one pass
instead of one error per run.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DataError", "Problem"]


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


class DataError(Exception):
    """A data set failed its check; `problems` lists everything found, errors first."""

    def __init__(self, problems: list[Problem], summary: str = "the data set has problems"):
        self.problems = sorted(problems, key=lambda p: not p.is_error)
        errors = sum(p.is_error for p in problems)
        lines = [f"{summary}: {errors} error(s)"] + [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))
