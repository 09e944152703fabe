"""The finalize report: one self-contained HTML file (every image embedded, no script, no
network) that a reader opens from disk. It shows the test figures with their intervals,
the search's learning curves, ROC and calibration curves, confusion matrices, the CAM
bullseyes and galleries and the model cards. The maps shown are the cleaned ones, so no
text burned into the raw exports appears."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from results.paired import min_discordant
from results.plots import figure_bytes, learning_curves_figure
from results.read import learning_curves
from search.explanation.segments import TERRITORY_NAMES
from search.files import write_atomic
from search.inference.evaluate import EvaluationFigures
from search.provenance import provenance
from search.records import BASELINE_NAME, Comparisons, EnsembleFinal, FinalModel
from search.reporting.checklist import TO_BE_WRITTEN, ChecklistItem, checklist_frame
from search.reporting.comparison_text import plain_sentence
from search.reporting.html_parts import data_uri as _data_uri
from search.reporting.html_parts import escaped as _e
from search.reporting.html_parts import figure_file as _figure_file
from search.reporting.html_parts import figure_html as _figure_bytes
from search.reporting.html_parts import html_table
from search.reporting.html_parts import with_interval as _with_interval
from search.reporting.tables import TABLE_METRICS, backbone_mode_table, over_seeds
from search.reporting.trust import conformal_parts, decision_curve_parts, explanation_parts
from trainables.weight_files import weights_source

__all__ = [
    "REPORT_FILE",
    "checklist_parts",
    "comparison_parts",
    "ensemble_parts",
    "figure_cells",
    "html_table",
    "write_page",
    "write_report",
]

REPORT_FILE = "report.html"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1320px; padding: 0 1.5rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2rem; margin-top: 2.5rem; }
h3 { margin-top: 1.8rem; }
.warning { background: #fff4e5; border-left: 4px solid #e8a33d; padding: 0.6rem 1rem; }
.muted { color: #666; font-size: 0.9rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.84rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.55rem; text-align: right; }
table.facts td { text-align: left; }
th { background: #f3f4f6; }
td:first-child, th:first-child { text-align: left; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.figures figure { margin: 0; }
figcaption { font-size: 0.85rem; color: #555; max-width: 460px; }
img { max-width: 100%; height: auto; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr));
           gap: 0.8rem; }
.gallery img { border: 1px solid #ddd; }
.card { white-space: pre-wrap; background: #f8f8f8; border: 1px solid #ddd;
        padding: 0.8rem; font-size: 0.82rem; }
details summary { cursor: pointer; font-weight: 600; margin: 0.6rem 0; }
nav ul { columns: 2; }
"""


def write_report(
    out: Path,
    search: str,
    finals: Sequence[FinalModel],
    finals_table: pd.DataFrame,
    results: str,
    search_row: dict,
    comparisons: Comparisons | None = None,
    checklist: list[ChecklistItem] | None = None,
    curves: pd.DataFrame | None = None,
) -> Path:
    """Write `out/report.html` for the finalized models `finals` (FinalModel) of `search`,
    whose rows of the `finals` table are `finals_table` and whose tables are under
    `results`, with the baseline and the paired comparisons (`pipeline.Comparisons`) and
    a two-class search's decision curves (rows of the `decision_curves` table); returns
    its path."""
    summary = over_seeds(finals_table)
    winners = _group_by_winner(finals)
    parts = [
        f"<h1>polarmap-search: finalized models of search {_e(search)}</h1>",
        '<p class="warning"><strong>Research use only; not for diagnosis or any clinical '
        "decision.</strong> Every figure below comes from one held-out test split that the "
        "search never read.</p>",
        _provenance_block(search_row, finals),
        _contents(winners),
        "<h2 id='table'>Test figures, backbone x mode</h2>",
        f"<p>Mean ± standard deviation over seeds of the retrained winners, on "
        f"{_e(summary['test_patients'].iloc[0] if len(summary) else 0)} test patients "
        "(macro averages over classes). Each seed's 95 % intervals are in its winner's "
        "section: with this few patients they are wide. CAM territory match: how "
        "often the Grad-CAM's hottest territory is the synthetic defect's, against always "
        "answering the most common territory (the baseline).</p>",
        html_table(
            _with_territory_check(
                backbone_mode_table(summary).drop(columns=["test_patients"]),
                finals,  # said above
            )
        ),
    ]
    if comparisons is not None:
        parts += comparison_parts(
            comparisons.baseline, comparisons.baseline_views, comparisons.rows, "test"
        )
        if comparisons.ensemble is not None:
            parts += ensemble_parts(comparisons.ensemble)
    parts += decision_curve_parts(curves)
    for key, models in winners.items():
        parts.append(_winner_section(key, models, results))
    if checklist is not None:
        parts += checklist_parts(checklist)
    return write_page(out / REPORT_FILE, f"polarmap-search report: {search}", parts)


def write_page(path: Path, title: str, parts: list[str]) -> Path:
    """A self-contained HTML page of `parts`, written whole."""
    body = "\n".join(parts)
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title>"
        f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )
    return write_atomic(path, page)


def ensemble_parts(final: EnsembleFinal) -> list[str]:
    """The greedy ensemble (greedy.EnsembleFinal): its members and weights, how it was
    chosen, its test figures."""
    selection = final.ensemble.selection
    members = pd.DataFrame(
        [{"trial": t, "backbone / mode": f"{row['backbone']} / {row['mode']}",
          "weight": f"{selection.weights[t]:.2f}", "model": str(final.member_folders[t])}
         for t, row in final.ensemble.members.items()]
    )  # fmt: skip
    figures = {"patients": final.figures.count, **figure_cells(final.figures)}
    figures["ECE"] = f"{final.figures.ece:.3f}"
    return [
        "<h2 id='ensemble'>Greedy ensemble across trials</h2>",
        f"<p>Greedy ensemble selection (Caruana et al. 2004, as AutoGluon) over "
        f"{final.ensemble.candidates} trials of the search, on the held-out predictions "
        f"the search kept of them: {selection.metric.replace('_', ' ')} "
        f"{selection.loss:.3f} against {final.ensemble.best_single_loss:.3f} for the best "
        "trial alone (chosen on these predictions: optimistic). Each member retrained "
        "(first seed), probabilities averaged with the weights, tested once; compared with "
        "the others above. Members and weights are in "
        f"{_e(final.folder / 'ensemble.json')} and the ensembles table.</p>",
        html_table(members),
        html_table(pd.DataFrame([figures])),
    ]


def checklist_parts(checklist: list[ChecklistItem]) -> list[str]:
    """The reporting checklist (also written as checklist.md beside the report)."""
    return [
        "<h2 id='checklist'>Reporting checklist</h2>",
        "<p>TRIPOD+AI and CLAIM items filled from this run; every item marked "
        f"<strong>{TO_BE_WRITTEN}</strong> needs a person. The same table is in "
        "checklist.md beside this report.</p>",
        html_table(checklist_frame(checklist)),
    ]


def figure_cells(figures: EvaluationFigures) -> dict[str, str]:
    """The table metrics of `figures` (EvaluationFigures), each with its interval."""
    return {
        metric.replace("_", " "): _with_interval(
            figures.macro[metric], figures.intervals.get(metric), figures.counts.get(metric)
        )
        for metric in TABLE_METRICS
    }


def comparison_parts(
    f: EvaluationFigures, views: Sequence[str], rows: list[dict], patients: str
) -> list[str]:
    """The baseline's figures `f`, then every paired comparison `rows` on the same
    `patients` ("test", "pooled outer-fold"), in plain sentences first (what the data can
    and cannot support, and the patients each rests on) and as a table."""
    baseline = {"model": BASELINE_NAME, "views": " + ".join(views), "patients": f.count}
    baseline.update(figure_cells(f))
    supported = [r for r in rows if r["supported"]]
    said = [r for r in rows if r["metric"] == "balanced_accuracy" or r["supported"]]
    lines = [f"<li>{_e(plain_sentence(r))}</li>" for r in said]
    table = pd.DataFrame(rows)
    if len(table):
        table = table[["kind", "model_a", "model_b", "figure", "value_a", "value_b",
                       "difference", "low", "high", "p_value", "p_holm", "method",
                       "evidence", "supported"]].round(3)  # fmt: skip
    return [
        "<h2 id='comparisons'>Baseline and paired comparisons</h2>",
        "<p>The baseline: logistic regression on each AHA segment's mean colour in every "
        "view, trained on the same training patients, threshold chosen on its "
        "cross-validated predictions of them, tested once on the same test patients. "
        "What the deep models add is their difference from it.</p>",
        html_table(pd.DataFrame([baseline])),
        f"<p>Paired comparisons on the same {f.count} {patients} patients: each winner's first "
        "seed against the best (ranked on validation), the input modes of each backbone, "
        "and the best against the baseline. Differences are first minus second. A "
        "difference in right and wrong calls can only come from the <em>discordant</em> "
        "patients, those one model gets right and the other wrong: accuracy and each "
        "class's sensitivity are tested with McNemar's exact test on them (interval: "
        "Newcombe's), balanced accuracy with an exact sign-flip test of them (interval: "
        "each class's interval joined, so a class of one patient keeps its whole "
        "uncertainty), the ROC AUC with a permutation test (interval: a bootstrap within "
        "each class). p-values are Holm-adjusted over the comparisons of each figure. A "
        "difference is supported when its adjusted p-value is below 0.05, its interval "
        f"excludes 0, and at least {min_discordant()} discordant patients lie behind it (an "
        "exact test on fewer cannot reach 5 %): "
        f"<strong>{len(supported)} of {len(rows)}</strong> are.</p>",
        f"<p>Balanced accuracy, and every supported difference:</p><ul>{''.join(lines)}</ul>"
        if lines
        else "",
        html_table(table) if len(table) else "<p>No two models to compare.</p>",
    ]


def _with_territory_check(table: pd.DataFrame, finals: Sequence[FinalModel]) -> pd.DataFrame:
    """The CAM territory check beside the figures (mean over seeds, and its baseline),
    when the data set has ground truth."""
    checked = [f for f in finals if f.cams.match_rate is not None]
    if not checked:
        return table
    rates: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for f in checked:
        key = (f.trial["backbone"], f.trial["mode"])
        rates.setdefault(key, []).append((f.cams.match_rate, f.cams.match_baseline))
    cells = []
    for backbone, mode in zip(table["backbone"], table["mode"], strict=True):
        pairs = rates.get((backbone, mode), [])
        rate = sum(r for r, _ in pairs) / len(pairs) if pairs else float("nan")
        cells.append("n/a" if not pairs else f"{rate:.0%}\u00a0({pairs[0][1]:.0%})")
    return table.assign(**{"CAM territory match (baseline)": cells})


def _group_by_winner(finals: Sequence[FinalModel]) -> dict[tuple[str, str, str], list[FinalModel]]:
    winners: dict[tuple[str, str, str], list] = {}
    for final in finals:
        t = final.trial
        winners.setdefault((t["backbone"], t["mode"], t["trial_id"]), []).append(final)
    return winners


def _provenance_block(row: dict, finals: Sequence[FinalModel]) -> str:
    facts = provenance()
    libraries = ", ".join(f"{k} {v}" for k, v in sorted(facts["libraries"].items()))
    first = finals[0].figures if finals else None
    lines = [
        ("created", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("data fingerprint", row.get("data_fingerprint") or "n/a"),
        ("test split fingerprint", row.get("test_fingerprint") or "n/a"),
        ("test patients", first.count if first else 0),
        ("classes", ", ".join(first.class_names) if first else ""),
        ("bootstrap resamples", first.bootstrap if first else 0),
        ("backbone weights", _weights_sources(finals)),
        ("git revision", facts.get("git_revision") or "n/a"),
        ("libraries", libraries),
    ]
    items = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in lines)
    return f"<table class='facts muted'>{items}</table>"


def _weights_sources(finals: Sequence[FinalModel]) -> str:
    """Where each backbone's starting weights came from (ImageNet and which file, or a
    random initialisation), as the winners' configurations say."""
    sources = {}
    for final in finals:
        flat = json.loads(final.trial["config"])
        key = (flat["backbone"], bool(flat.get("pretrained")), flat.get("weights"))
        if key not in sources:
            sources[key] = weights_source(*key)
    return "; ".join(f"{backbone}: {source}" for (backbone, _, _), source in sources.items())


def _contents(winners: dict) -> str:
    links = "".join(
        f"<li><a href='#{_anchor(key)}'>{_e(key[0])} / {_e(key[1])} (trial {_e(key[2])})</a></li>"
        for key in winners
    )
    top = "<li><a href='#table'>Backbone x mode</a></li>"
    top += "<li><a href='#comparisons'>Baseline and paired comparisons</a></li>"
    top += "<li><a href='#ensemble'>Greedy ensemble</a></li>"
    top += "<li><a href='#checklist'>Reporting checklist</a></li>"
    return f"<nav><strong>Contents</strong><ul>{top}{links}</ul></nav>"


def _winner_section(key: tuple[str, str, str], models: list[FinalModel], results: str) -> str:
    backbone, mode, trial_id = key
    first = models[0]
    parts = [
        f"<h2 id='{_anchor(key)}'>{_e(backbone)} / {_e(mode)} (trial {_e(trial_id)})</h2>",
        "<h3>Test figures per seed</h3>",
        "<p>Value and 95 % interval over test patients: exact (Clopper-Pearson) for "
        "proportions, with the counts beside them; for balanced accuracy each class's "
        "Wilson interval joined (MOVER); Newcombe's for one class's ROC AUC; a bootstrap "
        "within each class for the rest, left out where every resample agrees. ECE: "
        "expected calibration error.</p>",
        *(
            [
                f"<p>The model is the ensemble of the winner's {first.members} fold models, "
                "retrained, class probabilities averaged. The cross-validated rows are its "
                "fold models' out-of-fold predictions of the training patients (each patient "
                "predicted by the model that did not train on it; the epochs were chosen on "
                "these folds, so they lean optimistic); the test rows are the ensemble on "
                "patients no step of the search read.</p>"
            ]
            if first.cross_validated is not None
            else []
        ),
        html_table(_seed_table(models)),
        f"<h3>Per class (seed {first.seed})</h3>",
        html_table(_class_table(first)),
        "<h3>Curves</h3>",
        "<div class='figures'>",
        _learning_curves(results, first),
        _figure_file(first.plots["roc"], "ROC curves, one class against the rest."),
        _figure_file(
            first.plots["calibration"],
            "Reliability diagram: accuracy against confidence per bin, with the bin's patients.",
        ),
        _figure_file(first.plots["confusion"], f"Confusion matrix, seed {first.seed}."),
        "</div>",
    ]
    subgroups = _subgroup_table(models)
    if subgroups is not None:
        parts += ["<h3>Subgroups</h3>", "<p>Macro figures within each value of the "
                  "manifest's metadata columns, mean over seeds. Groups are small.</p>",
                  html_table(subgroups)]  # fmt: skip
    parts += conformal_parts(first)
    parts += _cam_parts(models)
    parts += [
        "<h3>Model cards</h3>",
        *(f"<details><summary>seed {m.seed}: {_e(m.folder)}</summary>"
          f"<div class='card'>{_e((m.folder / 'MODEL_CARD.md').read_text())}</div></details>"
          for m in models),
    ]  # fmt: skip
    return "\n".join(parts)


def _seed_table(models: list[FinalModel]) -> pd.DataFrame:
    """Test figures per seed; for a fold ensemble, its cross-validated (out-of-fold)
    figures on the training patients beside them."""
    rows = []
    for m in models:
        parts = [("test", m.figures)]
        if m.cross_validated is not None:
            parts.append((f"cross-validated ({m.members} fold models)", m.cross_validated))
        for name, f in parts:
            threshold = "argmax" if f.threshold is None else f"{f.threshold:.3f}"
            row = {"seed": m.seed, "figures": name, "patients": f.count, "threshold": threshold}
            for metric in TABLE_METRICS:
                row[metric.replace("_", " ")] = _with_interval(
                    f.macro[metric], f.intervals.get(metric), f.counts.get(metric)
                )
            row["ECE"] = f"{f.ece:.3f}"
            rows.append(row)
    return pd.DataFrame(rows)


def _class_table(final: FinalModel) -> pd.DataFrame:
    f = final.figures
    rows = []
    for c, name in enumerate(f.class_names):
        row = {"class": name, "patients": sum(f.confusion[c])}
        for metric, values in f.per_class.items():
            key = f"{metric}/{name}"
            row[metric.replace("_", " ")] = _with_interval(
                values[c], f.intervals.get(key), f.counts.get(key)
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _subgroup_table(models: list[FinalModel]) -> pd.DataFrame | None:
    rows = [r for m in models for r in m.subgroups]
    if not rows:
        return None
    long = pd.DataFrame(rows)
    keys = ["attribute", "group", "patients", "metric"]
    wide = long.groupby(keys, sort=False)["value"].mean().unstack("metric")
    wide = wide.reindex(columns=list(TABLE_METRICS)).reset_index()
    wide.columns = [str(c).replace("_", " ") for c in wide.columns]
    return wide.round(3)


def _cam_parts(models: list[FinalModel]) -> list[str]:
    first = models[0]
    cams = first.cams
    parts = [
        "<h3>Where the model looked (Grad-CAM)</h3>",
        "<p>Grad-CAM at the backbone's last feature stage. Bullseyes: the mean CAM per AHA "
        "segment of the patients predicted as each class (views averaged), anterior at "
        f"the top, septal on the left (seed {first.seed}).</p>",
        "<div class='figures'>",
        *(_figure_file(path, f"Predicted {name}: {cams.bullseye_counts[name]} patients.")
          for name, path in cams.bullseye_files.items()),
        "</div>",
    ]  # fmt: skip
    rates = [(m.seed, m.cams.match_rate, m.cams.match_baseline, m.cams.match_patients)
             for m in models if m.cams.match_rate is not None]  # fmt: skip
    if rates:
        listed = "; ".join(f"seed {s}: {r:.0%} (baseline {b:.0%}, {n} patients)"
                           for s, r, b, n in rates)  # fmt: skip
        parts += [
            "<p><strong>Territory check on the synthetic ground truth.</strong> For test "
            "patients with a defect, the CAM of the true class, averaged per territory "
            f"({', '.join(TERRITORY_NAMES)}; means, not sums: LAD has 7 segments, the others "
            "5). How often its hottest territory is the defect's, next to always answering "
            f"the most common defect territory: {_e(listed)}.</p>",
            f"<details><summary>Territory means per patient (seed {first.seed})</summary>"
            f"{html_table(cams.territories)}</details>",
        ]
    else:
        parts.append("<p>No ground truth of defect territories (truth/*.json) for these "
                     "patients: no territory check.</p>")  # fmt: skip
    parts += explanation_parts(first)
    wrong = [pid for pid in cams.misclassified if pid in cams.panels]
    parts.append(f"<h3>Misclassified test patients ({len(cams.misclassified)} of "
                 f"{first.figures.count}, seed {first.seed})</h3>")  # fmt: skip
    parts.append(_gallery([cams.panels[p] for p in wrong]) if wrong else "<p>None.</p>")
    parts += [
        f"<details><summary>Every test patient ({len(cams.panels)}): cleaned maps and their "
        "Grad-CAM of the predicted class</summary>",
        _gallery(list(cams.panels.values())),
        "</details>",
    ]
    return parts


def _learning_curves(results: str, final: FinalModel) -> str:
    trial = final.trial
    try:
        curves = learning_curves(results, trial["trial_id"], trial["search"])
    except LookupError:
        return "<p>No epochs recorded for this trial.</p>"
    best = trial.get("best_epoch")
    figure = learning_curves_figure(
        curves, f"search trial {trial['trial_id']}: learning curves",
        None if pd.isna(best) else int(best),
    )  # fmt: skip
    caption = "The search's trial: accuracy and loss per epoch, the epoch kept dashed."
    return _figure_bytes(figure_bytes(figure, dpi=90), caption, width=720)


def _gallery(paths: list[Path]) -> str:
    images = "".join(
        f"<img src='{_data_uri(p.read_bytes(), p.suffix)}' alt='{_e(p.stem)}'>" for p in paths
    )
    return f"<div class='gallery'>{images}</div>"


def _anchor(key: tuple[str, ...]) -> str:
    return "winner-" + "-".join("".join(ch if ch.isalnum() else "-" for ch in k) for k in key)
