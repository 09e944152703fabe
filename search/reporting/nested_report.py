"""The report of a nested run (`OUT/report.html`): the pooled outer-fold figures of the
procedure with their intervals, what each outer fold's search chose, the baseline and the
paired comparisons on the pooled patients, and links to each outer fold's own report."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from search.records import BASELINE_NAME, FinalizedSearch, PooledModel
from search.reporting.checklist import ChecklistItem
from search.reporting.report import (
    REPORT_FILE,
    checklist_parts,
    comparison_parts,
    figure_cells,
    html_table,
    write_page,
)

__all__ = ["write_nested_report"]


def write_nested_report(
    out: Path,
    name: str,
    pooled: Sequence[PooledModel],
    rows: list[dict],
    done: Sequence[FinalizedSearch],
    checklist: list[ChecklistItem],
) -> Path:
    """Write the nested run's report for the pooled models, the comparisons `rows` (of the
    `comparisons` table), the finalized outer searches `done` and the `checklist`; returns
    its path."""
    count = pooled[0].figures.count if pooled else 0
    baseline = next(p for p in pooled if p.name == BASELINE_NAME)
    models = [p for p in pooled if p.name != BASELINE_NAME]
    parts = [
        f"<h1>polarmap-search: nested cross-validation {name}</h1>",
        '<p class="warning"><strong>Research use only; not for diagnosis or any clinical '
        "decision.</strong></p>",
        f"<p>The whole procedure (cross-validated search, choice of the winners, "
        f"retraining) ran once per outer fold, {len(done)} times; each outer fold's patients "
        f"were tested once, by the models of the one search that never read them. Pooled, "
        f"every one of the {count} patients is predicted exactly once: the figures below "
        "are those of the procedure on patients it did not see, with 95 % intervals over "
        "the patients (exact for proportions, a bootstrap within each class where no "
        "closed form exists). Each outer fold keeps its own binary threshold. "
        f"{_retraining(done)}</p>",
        "<h2>Pooled outer-fold figures</h2>",
        html_table(pd.DataFrame([_figure_row(p) for p in pooled])),
        "<h2>What each outer fold chose</h2>",
        html_table(_choices(models, done)),
        *comparison_parts(
            baseline.figures, done[0].comparisons.baseline_views, rows, "pooled outer-fold"
        ),
        "<h2>Each outer fold's report</h2>",
        "<ul>" + "".join(_report_link(f, out) for f in done) + "</ul>",
        *checklist_parts(checklist),
    ]
    return write_page(out / REPORT_FILE, f"polarmap-search nested run: {name}", parts)


def _retraining(done: Sequence[FinalizedSearch]) -> str:
    """What each outer fold's winners are: fold ensembles or refit models."""
    if done[0].finals[0].refit:
        return ("Each winner was retrained once on every patient but its outer fold's, for "
                "the epochs its cross-validation chose (--refit).")  # fmt: skip
    return "Each winner is the ensemble of its fold models, probabilities averaged."


def _figure_row(p: PooledModel) -> dict:
    row = {"model": p.name, "patients": p.figures.count}
    row.update(figure_cells(p.figures))
    row["ECE"] = f"{p.figures.ece:.3f}"
    return row


def _choices(models: Sequence[PooledModel], done: Sequence[FinalizedSearch]) -> pd.DataFrame:
    """Outer fold x model: the trial each outer search chose."""
    rows = []
    for outer, finalized in enumerate(done):
        row = {"outer fold": outer, "search": finalized.name,
               "patients": len(finalized.finals[0].test_ids)}  # fmt: skip
        for p in models:
            row[p.name] = p.trials[outer]
        pick = finalized.finals[0].trial
        row["pick is"] = f"{pick['backbone']} / {pick['mode']}"
        rows.append(row)
    return pd.DataFrame(rows)


def _report_link(finalized: FinalizedSearch, out: Path) -> str:
    href = Path(os.path.relpath(finalized.report, out)).as_posix()
    held_out = len(finalized.finals[0].test_ids)
    return f"<li><a href='{href}'>{finalized.name}</a>: {held_out} patients held out</li>"
