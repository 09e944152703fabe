"""The report's sections on how far its figures and pictures can be trusted: whether the
Grad-CAMs point where a reader sees disease and reflect what the model uses (localisation,
faithfulness, the randomisation check), the prediction sets that say when a model does not
know, and the decision curves of a two-class task. Each figure is explained in one sentence
a clinician can read."""

from __future__ import annotations

import pandas as pd

from results.plots import figure_bytes
from search.records import FinalModel
from search.reporting.html_parts import escaped, figure_html, html_table, with_interval
from search.reporting.plots import decision_curve_figure

__all__ = ["CHECK_SENTENCES", "conformal_parts", "decision_curve_parts", "explanation_parts"]

# One sentence per check of the `final_explanations` table, for the report and the docs.
CHECK_SENTENCES = {
    "pointing_game": "How often the model's strongest evidence for the patient's diagnosis "
    "lies in a coronary territory the reader marked abnormal.",
    "segment_rank_correlation": "Whether the segments the model weighs most are the ones the "
    "reader scored worst (1: the same order, 0: unrelated).",
    "road_morf_drop": "How far the model's confidence falls when the parts of the map it "
    "relied on most are blurred away (a faithful map: further than blurring random parts).",
    "road_lerf_drop": "How far it falls when the parts it relied on least are blurred away "
    "(a faithful map: less than blurring random parts).",
    "randomisation_rank_correlation": "How much the map stays the same when the model's top "
    "layers are replaced by random ones (near 1 would mean the map shows the image, not "
    "what the model learned; flagged from 0.5).",
}
_ATTRIBUTIONS = {
    "grad_cam": "the model's Grad-CAM",
    "label_shuffled": "a twin trained on shuffled labels",
    "most_common_territory": "always the most often marked territory",
    "random": "random maps",
}


def explanation_parts(first: FinalModel) -> list[str]:
    """The localisation and faithfulness checks of a winner's first seed."""
    checks = first.cams.checks
    if checks is None or checks.empty:
        return ["<p>No checks of the Grad-CAMs were run for this model.</p>"]
    parts = ["<h3>Can the Grad-CAMs be trusted?</h3>",
             "<p>Each figure: mean over test patients with its 95 % bootstrap interval "
             "(none where every resample agrees) and the patients it rests on, beside "
             "references that learned nothing about where disease is. Only a clear gap "
             "to them means something.</p>"]  # fmt: skip
    listed = "".join(f"<li><strong>{escaped(c.replace('_', ' '))}</strong>: {escaped(s)}</li>"
                     for c, s in CHECK_SENTENCES.items() if c in set(checks["check"]))  # fmt: skip
    parts.append(f"<ul>{listed}</ul>")
    table = checks.assign(
        # an interval only where resamples differ as shown: one patient, or patients that
        # all agree, leave none (the patient count beside it says why)
        shown=[with_interval(v, (lo, hi) if f"{lo:.3f}" != f"{hi:.3f}" else None) + f" ({int(n)})"
               for v, lo, hi, n in zip(checks["value"], checks["low"], checks["high"],
                                       checks["patients"], strict=True)],
        attribution=checks["attribution"].map(lambda a: _ATTRIBUTIONS.get(a, a)),
    )  # fmt: skip
    wide = table.pivot_table(index=["check", "view"], columns="attribution", values="shown",
                             aggfunc="first", sort=False).reset_index()  # fmt: skip
    wide["check"] = wide["check"].str.replace("_", " ")
    parts.append(html_table(wide))
    flagged = checks[checks["flagged"].fillna(False).astype(bool)]
    if len(flagged):
        parts.append("<p class='warning'><strong>Flagged:</strong> the Grad-CAMs hardly change "
                     "when the model's top layers are randomised; read them as pictures of "
                     "the map, not of what the model learned.</p>")  # fmt: skip
    cost = checks["seconds"].drop_duplicates().sum()  # each check's rows share its cost
    parts.append(f"<p>These checks took {cost:.0f} s.</p>")
    return parts


def conformal_parts(first: FinalModel) -> list[str]:
    """A winner's prediction sets: their coverage per class on the test patients."""
    conformal = first.conformal
    if conformal is None:
        return []
    level = 1 - conformal.alpha
    coverage = conformal.coverage
    rows = pd.DataFrame({
        "class": coverage["class"],
        "calibration patients": [conformal.calibration.get(c, sum(conformal.calibration.values()))
                                 for c in coverage["class"]],
        "test patients": coverage["patients"],
        "coverage": [with_interval(v, (lo, hi), (int(k), int(n))) for v, lo, hi, k, n in zip(
            coverage["coverage"], coverage["coverage_lower"], coverage["coverage_upper"],
            coverage["covered"], coverage["patients"], strict=True)],
        "mean set size": coverage["mean_set_size"].round(2),
        "one class only": coverage["singleton_share"].round(2),
    })  # fmt: skip
    parts = [
        "<h3>Prediction sets: when the model does not know</h3>",
        f"<p>For each patient, the diagnoses the model cannot rule out: calibrated on "
        f"patients it did not train on, so that each class's patients get a set holding "
        f"their true diagnosis at least {level:.0%} of the time. A set of one class is a "
        "confident call; a larger set says the model cannot tell. Coverage on the test "
        "patients, with its exact 95 % interval:</p>",
        html_table(rows),
    ]
    if conformal.too_few:
        parts.append(
            f"<p class='warning'>Too few calibration patients in {', '.join(conformal.too_few)} "
            f"to rule that class out at {level:.0%}: every set holds it.</p>"
        )
    return parts


def decision_curve_parts(curves: pd.DataFrame | None) -> list[str]:
    """The decision curves of a two-class search (rows of the `decision_curves` table)."""
    if curves is None or curves.empty:
        return []
    positive = curves["positive_class"].iloc[0]
    figure = decision_curve_figure(curves)
    return [
        "<h2 id='decision-curves'>Decision curves: would acting on the model help?</h2>",
        f"<p>The net benefit of acting (say, referring for angiography) on the patients a "
        f"model gives at least the threshold risk of {escaped(positive)}, against acting on "
        "everyone and on no one, at each risk a clinician might choose: a model helps at the "
        "thresholds where its curve lies above both lines (Vickers &amp; Elkin 2006).</p>",
        figure_html(figure_bytes(figure, dpi=90), "Net benefit per threshold risk.", width=640),
    ]
