"""The reporting checklist: the items of TRIPOD+AI and CLAIM (the reporting guidelines a
journal asks a clinical prediction or imaging AI paper to follow) that a run knows, filled
from the run, and the items only a person can write, marked "to be written". Written as
`checklist.md` beside the report, and as a section of it, so nothing the run measured has
to be copied by hand and nothing it cannot know is forgotten."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from search.files import write_atomic
from search.inference.evaluate import EvaluationFigures
from search.records import Comparisons, FinalModel, PooledModel, first_seeds
from search.reporting.tables import TABLE_METRICS

__all__ = [
    "TO_BE_WRITTEN",
    "ChecklistItem",
    "checklist_frame",
    "checklist_markdown",
    "nested_checklist",
    "run_checklist",
    "write_checklist",
]

TO_BE_WRITTEN = "to be written"

COMPARISON_METHODS = (
    "McNemar's exact test, sign-flip and permutation tests, Newcombe, MOVER and stratified "
    "bootstrap intervals, Holm; supported only with at least 6 discordant patients"
)

# Topics a person must write, with the guideline items they answer.
_PERSON = [
    ("Clinical background and rationale", "TRIPOD+AI: background; CLAIM: introduction"),
    ("Intended use and users of the model", "TRIPOD+AI: objectives; CLAIM: study goals"),
    ("Data source, setting, centres and dates", "TRIPOD+AI: source of data; CLAIM: data"),
    ("Eligibility criteria of the patients", "TRIPOD+AI: participants; CLAIM: eligibility"),
    ("Reference standard (how the classes were established)",
     "TRIPOD+AI: outcome; CLAIM: ground truth"),
    ("Annotators: who labelled, their expertise, agreement",
     "TRIPOD+AI: outcome assessment; CLAIM: annotation"),
    ("Sample size justification", "TRIPOD+AI: sample size; CLAIM: sample size"),
    ("Ethics approval and consent", "TRIPOD+AI: ethics; CLAIM: ethics"),
    ("Funding and conflicts of interest", "TRIPOD+AI: funding, conflicts; CLAIM: funding"),
    ("Data and code availability", "TRIPOD+AI: open science; CLAIM: availability"),
    ("Limitations and clinical implications", "TRIPOD+AI: discussion; CLAIM: discussion"),
]  # fmt: skip


@dataclass(frozen=True)
class ChecklistItem:
    """One item: what it is about, the guideline items it answers, and its value from the
    run (None: a person must write it)."""

    topic: str
    guideline: str
    value: str | None

    @property
    def text(self) -> str:
        return self.value if self.value is not None else TO_BE_WRITTEN


def run_checklist(
    search_row: dict,
    settings,
    prepared,
    finals: Sequence[FinalModel],
    comparisons: Comparisons,
    curves=None,
) -> list[ChecklistItem]:
    """Every item, from the search's row and settings (`search.tuning`'s SearchSettings),
    its prepared data (PreparedSearch: read for its data set and split; not imported, so
    reporting stays free of training code), the finalized models (winners best first),
    the comparisons and a two-class search's decision curves (rows of `decision_curves`,
    a DataFrame)."""
    split, dataset, space = prepared.split, prepared.dataset, settings.space
    names = dataset.class_set.names
    counts = Counter(names[label] for label in dataset.labels.values())
    parts = {"train": split.train, "validation": split.val, "test": split.test}
    disjoint = all(
        not set(a) & set(b) for a in parts.values() for b in parts.values() if a is not b
    )
    winners = first_seeds(finals)
    items = [
        ("Data: patients and classes", "TRIPOD+AI: participants; CLAIM: data",
         f"{len(dataset)} patients ({_counts(counts, names)}); data fingerprint "
         f"{dataset.fingerprint[:16]}"),
        ("Data partitions (patient level, disjoint, counts per class)",
         "TRIPOD+AI: data partitioning; CLAIM: data partitions",
         f"{split.spec.describe()}; "
         + "; ".join(f"{part} {len(ids)} ({_class_counts(ids, dataset, names)})"
                     for part, ids in parts.items() if ids)
         + f"; every patient in exactly one part: {'yes' if disjoint else 'NO'}"),
        ("Subgroups", "TRIPOD+AI: fairness; CLAIM: demographics",
         _subgroups(dataset, split.test)),
        ("Missing data", "TRIPOD+AI: missing data; CLAIM: missing data",
         "patients with a missing, unreadable or wrongly sized image are refused by the data "
         "check before a search starts; none are imputed"),
        ("Preprocessing", "TRIPOD+AI: data preparation; CLAIM: preprocessing",
         "each export cropped to its bullseye, burned-in text removed, outside the disc "
         "blanked, resized to the backbone's input, normalized with its mean and SD; "
         + ", ".join(sorted(f"{size} px" for size in prepared.data.maps))),
        ("Model and initialization", "TRIPOD+AI: model specification; CLAIM: model",
         "; ".join(_model(f.trial, space) for f in winners)),
        ("Layers frozen and fine-tuned", "CLAIM: model (transfer learning)",
         "; ".join(_unfreezing(f.trial) for f in winners)),
        ("Search space", "TRIPOD+AI: model building; CLAIM: training",
         f"space {space.name}: backbones {', '.join(space.backbones)}; modes "
         f"{', '.join(space.modes)}; "
         + ", ".join(f"{k} {v}" for k, v in space.ranges.describe())
         + f"; {space.samples} trials per backbone and mode"),
        ("Scheduler and budgets", "TRIPOD+AI: model building; CLAIM: training",
         f"{settings.scheduler} (eta {settings.reduction_factor}), {settings.sampler} "
         f"sampler; {space.warmup_epochs} warm-up + {space.finetune_epochs} fine-tune "
         "epochs at most per trial"
         + (f"; time budget {settings.time_budget_s:g} s" if settings.time_budget_s else "")),
        ("Seeds", "TRIPOD+AI: reproducibility; CLAIM: training",
         f"split and sampler seed {settings.seed}; retraining seeds "
         f"{', '.join(str(s) for s in sorted({f.seed for f in finals}))}"),
        ("Selection procedure", "TRIPOD+AI: model selection; CLAIM: model selection",
         _selection(winners, split)),
        ("Validation scheme", "TRIPOD+AI: evaluation; CLAIM: validation",
         f"{split.spec.describe()}; winners retrained and tested once on the held-out "
         f"test split ({len(split.test)} patients), which no step of the search read"),
        ("Performance with confidence intervals", "TRIPOD+AI: performance; CLAIM: metrics",
         "; ".join(_performance(f) for f in winners)),
        ("Calibration", "TRIPOD+AI: calibration; CLAIM: metrics",
         "; ".join(f"{_name(f.trial)} expected calibration error {f.figures.ece:.3f} "
                   "(reliability diagram in the report)" for f in winners)),
        ("Comparison with a baseline and between models",
         "TRIPOD+AI: model comparison; CLAIM: comparison",
         f"logistic regression on segment means; {len(comparisons.rows)} paired comparisons, "
         f"{sum(r['supported'] for r in comparisons.rows)} supported ({COMPARISON_METHODS})"),
        ("Uncertainty of each prediction (prediction sets)",
         "TRIPOD+AI: performance, uncertainty; CLAIM: metrics",
         "; ".join(_conformal(f) for f in winners)),
        ("Clinical utility (decision curves)", "TRIPOD+AI: clinical utility",
         _utility(curves, len(names))),
        ("Failure analysis", "CLAIM: failure analysis",
         "the report's gallery of every misclassified test patient, with its CAM"),
        ("Explanation method", "CLAIM: model interpretation",
         "Grad-CAM (pytorch-grad-cam) on the last feature block; for an ensemble, the mean of "
         "its members' maps; summarized per AHA segment and coronary territory"),
        ("Explanations checked: localisation against readers' annotations",
         "CLAIM: model interpretation",
         "; ".join(_checks(f, ("pointing_game", "segment_rank_correlation")) for f in winners)),
        ("Explanations checked: faithfulness (ROAD) and model randomisation",
         "CLAIM: model interpretation",
         "; ".join(_checks(f, ("road_morf_drop", "road_lerf_drop",
                               "randomisation_rank_correlation")) for f in winners)),
        ("Code revision and library versions", "TRIPOD+AI: software; CLAIM: software",
         f"git {search_row.get('git_revision') or 'n/a'}; {search_row.get('library_versions')}"),
    ]  # fmt: skip
    filled = [ChecklistItem(topic, guideline, value) for topic, guideline, value in items]
    return filled + [ChecklistItem(topic, guideline, None) for topic, guideline in _PERSON]


def nested_checklist(
    outer_items: Sequence[ChecklistItem],
    scheme: str,
    outer_sizes: Sequence[int],
    pooled: Sequence[PooledModel],
    rows: list[dict],
) -> list[ChecklistItem]:
    """A nested run's checklist: outer fold 0's items, with the partitions, validation,
    selection, figures and comparisons of the nested run (`rows`: its comparisons)."""
    patients = sum(outer_sizes)
    changed = {
        "Data partitions (patient level, disjoint, counts per class)": (
            f"nested cross-validation, {scheme}: every one of {patients} patients in exactly "
            f"one of {len(outer_sizes)} outer folds ({', '.join(map(str, outer_sizes))} "
            "patients), each the unseen test of one whole search; inner folds over the rest"
        ),
        "Validation scheme": (
            f"{scheme}; the search, the choice of winners and their retraining ran once per "
            "outer fold; the pooled outer-fold predictions (each patient once) give the "
            "figures of the procedure"
        ),
        "Selection procedure": (
            "in each outer fold separately: "
            + next(i.text for i in outer_items if i.topic == "Selection procedure")
        ),
        "Performance with confidence intervals": "; ".join(
            f"{p.name} (pooled, {p.figures.count} patients): " + _figures(p.figures) for p in pooled
        ),
        "Calibration": "; ".join(
            f"{p.name} expected calibration error {p.figures.ece:.3f} (pooled)" for p in pooled
        ),
        "Comparison with a baseline and between models": (
            f"logistic regression on segment means, fitted in each outer fold; {len(rows)} "
            f"paired comparisons on the pooled patients, {sum(r['supported'] for r in rows)} "
            f"supported ({COMPARISON_METHODS})"
        ),
    }
    return [ChecklistItem(i.topic, i.guideline, changed.get(i.topic, i.value)) for i in outer_items]


def checklist_markdown(items: Sequence[ChecklistItem], title: str) -> str:
    """The checklist as Markdown: a table of every item, its guideline items and value."""
    lines = [
        f"# Reporting checklist: {title}",
        "",
        "Filled from the run where it knows the answer; every item marked "
        f"**{TO_BE_WRITTEN}** needs a person. Guideline items: TRIPOD+AI (Collins et al., "
        "BMJ 2024) and CLAIM (Tejani et al., Radiology: AI 2024).",
        "",
        "| topic | guideline items | value |",
        "| --- | --- | --- |",
    ]
    for item in items:
        value = f"**{TO_BE_WRITTEN}**" if item.value is None else item.value
        lines.append(f"| {_cell(item.topic)} | {_cell(item.guideline)} | {_cell(value)} |")
    return "\n".join(lines) + "\n"


def checklist_frame(items: Sequence[ChecklistItem]):
    """The checklist as a table for the report."""
    import pandas as pd

    return pd.DataFrame(
        [{"topic": i.topic, "guideline items": i.guideline, "value": i.text} for i in items]
    )


def write_checklist(out: Path, items: Sequence[ChecklistItem], title: str) -> Path:
    return write_atomic(out / "checklist.md", checklist_markdown(items, title))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _counts(counts: Counter, names: Sequence[str]) -> str:
    return ", ".join(f"{name} {counts.get(name, 0)}" for name in names)


def _class_counts(ids, dataset, names) -> str:
    return _counts(Counter(names[dataset.labels[i]] for i in ids), names)


def _subgroups(dataset, test_ids) -> str:
    columns = dataset.metadata_columns
    if not columns:
        return "the manifest has no metadata columns: no subgroups"
    by_id = {p.patient_id: p for p in dataset.patients}
    parts = []
    for column in columns:
        groups = Counter(by_id[i].metadata.get(column, "") or "(blank)" for i in test_ids)
        listed = ", ".join(f"{g} {n}" for g, n in sorted(groups.items()))
        parts.append(f"{column}: {listed}")
    return "test patients by " + "; ".join(parts) + " (figures per group in the report)"


def _name(trial: dict) -> str:
    return f"{trial['backbone']} / {trial['mode']}"


def _model(trial: dict, space) -> str:
    start = "ImageNet weights" if space.pretrained else "random initialization"
    return (
        f"{_name(trial)}: timm {trial['backbone']} from {start}, head of width "
        f"{trial['width']}, depth {trial['depth']}, dropout {trial['dropout']:.2f}"
    )


def _unfreezing(trial: dict) -> str:
    share = trial.get("trainable_share")
    shared = f" ({share:.0%} of the backbone's parameters)" if share == share and share else ""
    return (
        f"{_name(trial)}: {trial['warmup_epochs']} warm-up epochs with the backbone frozen, "
        f"then {trial['finetune_epochs']} with its top {trial['effective_unfreeze']} "
        f"layers fine-tuned{shared}; learning rate 10^-{trial['a']:.2f}"
    )


def _selection(winners, split) -> str:
    metric = winners[0].trial.get("selection_metric", "") if winners else ""
    how = "fold-mean validation" if split.folds else "validation"
    return (
        f"each trial's epochs chosen on its {how} {metric}; the best trial of each backbone "
        "and input mode (its best epoch's figure; ties to the lower validation loss) "
        "retrained with its settings; the best of them is the search's pick"
    )


def _conformal(final: FinalModel) -> str:
    c = final.conformal
    if c is None:
        return f"{_name(final.trial)}: no prediction sets"
    rows = {r["class"]: r for r in c.coverage.to_dict("records")}
    covered = ", ".join(
        f"{name} {r['covered']}/{r['patients']}" for name, r in rows.items() if name != "all"
    )
    calibration = ", ".join(f"{k} {v}" for k, v in c.calibration.items())
    few = f"; too few to rule out: {', '.join(c.too_few)}" if c.too_few else ""
    return (
        f"{_name(final.trial)}: class-conditional split-conformal sets at "
        f"{1 - c.alpha:.0%} (calibrated on {calibration} out-of-fold patients{few}); test "
        f"coverage {covered}; mean set size {rows['all']['mean_set_size']:.2f}"
    )


def _utility(curves, classes: int) -> str:
    if curves is None or len(curves) == 0:
        return f"not applicable: {classes} classes (decision curves need two)"
    parts = []
    for model, rows in curves.groupby("model", sort=False):
        above = rows[(rows["net_benefit"] > rows["treat_all"]) & (rows["net_benefit"] > 0)]
        span = (f"thresholds {above['threshold'].min():.2f}-{above['threshold'].max():.2f}"
                if len(above) else "no threshold")  # fmt: skip
        parts.append(f"{model} above treat-all and treat-none at {span}")
    return "decision curves in the report; " + "; ".join(parts)


def _checks(final: FinalModel, checks: tuple[str, ...]) -> str:
    """Each check's Grad-CAM value beside its references, from the model's checks."""
    table = final.cams.checks
    table = table[table["check"].isin(checks)] if table is not None else table
    if table is None or table.empty:
        return f"{_name(final.trial)}: not run (no reader annotations)"
    shown = []
    for (check, view), rows in table.groupby(["check", "view"], sort=False):
        values = ", ".join(
            f"{r['attribution'].replace('_', ' ')} {r['value']:.2f}"
            + ("" if r["low"] != r["low"] else f" [{r['low']:.2f}, {r['high']:.2f}]")
            + (" FLAGGED" if _flagged(r["flagged"]) else "")
            for r in rows.to_dict("records")
        )
        shown.append(f"{check.replace('_', ' ')} ({view}, {rows['patients'].iloc[0]} "
                     f"patients): {values}")  # fmt: skip
    return f"{_name(final.trial)}: " + "; ".join(shown)


def _flagged(value) -> bool:
    return value is not None and value == value and bool(value)  # None and NaN: not flagged


def _performance(final: FinalModel) -> str:
    f = final.figures
    return f"{_name(final.trial)} (seed {final.seed}, {f.count} test patients): {_figures(f)}"


def _figures(f: EvaluationFigures) -> str:
    """The table metrics of EvaluationFigures `f`, with their intervals where known."""
    return ", ".join(
        f"{m.replace('_', ' ')} {f.macro[m]:.3f} [{f.intervals[m][0]:.3f}, {f.intervals[m][1]:.3f}]"
        if m in f.intervals else f"{m.replace('_', ' ')} {f.macro[m]:.3f}"
        for m in TABLE_METRICS
    )  # fmt: skip
