"""A finalized model's card (`MODEL_CARD.md`): what it is, what it was trained and tested
on, how well, and what it is for (research, not diagnosis); and its one line in
finalize's output."""

from __future__ import annotations

import json

from search.inference.evaluate import EvaluationFigures
from search.inference.export import ExportedModel
from search.records import CamFindings, Conformal, FinalModel
from trainables.metrics import METRICS
from trainables.weight_files import weights_source

__all__ = ["model_card", "summary_line"]


def model_card(final: FinalModel, exported: ExportedModel) -> str:
    """A short model card: what it is, what it was trained and tested on, how well, and
    what it is for (research, not diagnosis)."""
    f, trial, c = final.figures, final.trial, exported.config
    lines = [
        f"# {trial['backbone']} / {trial['mode']} (search {trial['search']}, trial "
        f"{trial['trial_id']}, seed {final.seed})",
        "",
        "**Intended use: research on myocardial perfusion SPECT polar maps. Not for "
        "diagnosis or any clinical decision.**",
        "",
        f"- Input: {' + '.join(c.views)} polar map(s), {exported.input_size} px, cleaned as "
        "polarmap-search cleans exports.",
        f"- Classes: {', '.join(exported.class_names)}"
        + (
            f"; class {exported.class_names[1]} from probability {f.threshold:.3f} (chosen on "
            "validation)"
            if f.threshold is not None
            else "; the most probable class"
        ),
        f"- Model: timm `{c.backbone}`, head widths {list(c.head.widths)}, dropouts "
        f"{list(c.head.dropouts)}; warm-up {c.warmup_epochs} epochs at lr 10^-{c.a:.2f}, "
        f"fine-tune {c.finetune_epochs} epochs of the top {c.unfreeze} layers at lr "
        f"10^-{c.a + 2:.2f}; epochs chosen on validation {c.selection}.",
        f"- Backbone started from: {weights_source(c.backbone, c.pretrained, c.weights)}.",
        *(
            [
                f"- Ensemble: {final.members} fold models (stratified k-fold by patient over "
                "the training patients, each trained without its fold), class probabilities "
                "averaged; their epochs chosen on the folds' mean validation curve."
            ]
            if final.members > 1
            else []
        ),
        *(
            [
                "- Refit: one model on every training patient, for the warm-up and fine-tune "
                "epochs the winner's cross-validation kept (no validation data left to choose "
                "them again)."
            ]
            if final.refit
            else []
        ),
        f"- Data: fingerprint {exported.provenance['data_fingerprint'][:16]}; test split "
        f"fingerprint {exported.provenance['test_fingerprint'][:16]} ({f.count} patients, "
        "never used by the search).",
        "- Split: {train} training, {val} validation, {test} test patients (by patient, "
        "stratified by class).".format(**exported.provenance.get("split", {})),
        "",
        f"## Test figures ({f.count} patients; 95 % intervals over patients: exact for "
        f"proportions, closed forms for balanced accuracy, a bootstrap of {f.bootstrap} "
        "resamples within each class for the rest)",
        "",
        *_figures_table(f),
        f"| expected calibration error | {f.ece:.3f} | |",
        "",
        f"With {f.count} test patients the intervals are wide: read them before the values.",
        "",
        *_card_cv_lines(final.cross_validated),
        *_card_conformal_lines(final.conformal),
        *_card_cam_lines(final.cams),
        "",
        f"Versions: {json.dumps(exported.provenance.get('libraries', {}), sort_keys=True)}; "
        f"git {exported.provenance.get('git_revision')}.",
    ]
    return "\n".join(lines) + "\n"


def _card_cv_lines(cv: EvaluationFigures | None) -> list[str]:
    if cv is None:
        return []
    lines = [
        f"## Cross-validated figures ({cv.count} training patients, out-of-fold)",
        "",
        "Each patient predicted by the fold model that did not train on it. The epochs were "
        "chosen on these folds, so these lean optimistic; the test figures above do not.",
        "",
        *_figures_table(cv),
    ]
    return [*lines, ""]


def _card_conformal_lines(conformal: Conformal | None) -> list[str]:
    if conformal is None:
        return []
    counts = ", ".join(f"{name} {count}" for name, count in conformal.calibration.items())
    total = conformal.coverage[conformal.coverage["class"] == "all"].iloc[0]
    lines = [
        f"## Prediction sets (level {1 - conformal.alpha:.0%}, alpha {conformal.alpha:g})",
        "",
        "`predict` writes, beside the probabilities, each patient's set: the classes the "
        "model cannot rule out, calibrated per class (Mondrian split-conformal, crepes) on "
        f"patients it did not train on ({counts}; its out-of-fold or validation "
        "predictions), so that each class's patients are covered at least "
        f"{1 - conformal.alpha:.0%} of the time. On the test patients: coverage "
        f"{total['coverage']:.3f} ({int(total['covered'])}/{int(total['patients'])}), "
        f"mean set size {total['mean_set_size']:.2f}, one class only "
        f"{total['singleton_share']:.0%}.",
    ]
    if conformal.too_few:
        lines.append(f"Too few calibration patients to ever rule out: "
                     f"{', '.join(conformal.too_few)} (every set holds it).")  # fmt: skip
    return [*lines, ""]


def _figures_table(figures: EvaluationFigures) -> list[str]:
    """Markdown rows: each metric with its 95 % interval."""
    lines = ["| metric | value | 95 % interval |", "| --- | --- | --- |"]
    for metric in METRICS:
        interval = figures.intervals.get(metric)
        shown = f"{interval[0]:.3f} - {interval[1]:.3f}" if interval else "none (resamples agree)"
        count = figures.counts.get(metric)
        value = f"{figures.macro[metric]:.3f}" + (f" ({count[0]}/{count[1]})" if count else "")
        lines.append(f"| {metric.replace('_', ' ')} | {value} | {shown} |")
    return lines


def _card_cam_lines(cams: CamFindings) -> list[str]:
    if cams.match_rate is None:
        return ["Grad-CAM territory check: no ground truth of defect territories.", ""]
    return [
        f"Grad-CAM territory check (synthetic ground truth, {cams.match_patients} patients "
        f"with a defect): the hottest territory is the defect's in {cams.match_rate:.0%}; "
        f"always naming the most common territory gives {cams.match_baseline:.0%}.",
        "",
    ]


def summary_line(final: FinalModel) -> str:
    """Finalize's line for one model: its test figures and where it went."""
    f, trial = final.figures, final.trial
    low, high = f.intervals.get("balanced_accuracy", (float("nan"), float("nan")))
    return (
        f"  {trial['backbone']}/{trial['mode']} trial {trial['trial_id']} seed {final.seed}: "
        f"test balanced accuracy {f.macro['balanced_accuracy']:.3f} [{low:.3f}, {high:.3f}], "
        f"ROC AUC {f.macro['roc_auc']:.3f}, ECE {f.ece:.3f} ({f.count} patients) -> {final.folder}"
    )
