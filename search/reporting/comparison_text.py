"""The paired comparisons in words a reader takes in: the difference, its interval, the
patients it rests on and what the data can support (`results.paired`'s evidence rule)."""

from __future__ import annotations

from collections.abc import Sequence

from results.paired import min_discordant

__all__ = ["evidence_words", "plain_sentence"]


def evidence_words(row: dict, class_names: Sequence[str]) -> str:
    """The patients a comparison rests on, in words: for the figures of right and wrong
    calls, those one model alone got right, by class and by model; for the scores, those
    scored differently."""
    classes = [(name, count) for name, count in zip(class_names, row["discordant_by_class"],
                                                    strict=True) if count]  # fmt: skip
    count = row["discordant"]
    if count == 0:
        patients = "no patient"
    elif row["class"] is not None or len(classes) == 1:
        patients = f"{_patients(count)} of class {row['class'] or classes[0][0]}"
    else:
        listed = [f"{name} ({n})" for name, n in classes]
        patients = f"{_patients(count)} of classes {', '.join(listed[:-1])} and {listed[-1]}"
    if row["metric"].startswith("roc_auc"):
        return f"{patients} scored differently"
    return (
        f"{patients} right by one model only ({row['a_only']} by {row['model_a']}, "
        f"{row['b_only']} by {row['model_b']})"
    )


def plain_sentence(row: dict) -> str:
    """What one comparison says, for a reader: the difference, its interval, the patients
    behind it and whether the data support it."""
    interval = (
        "no interval"
        if row["low"] != row["low"]
        else f"95 % interval {row['low']:+.3f} to {row['high']:+.3f}"
    )
    figure = (
        f"{row['model_a']} minus {row['model_b']}, {row['figure']}: {row['difference']:+.3f} "
        f"({interval}; {row['method']}, p = {row['p_value']:.3g}, Holm-adjusted "
        f"{row['p_holm']:.3g})"
    )
    if row["supported"]:
        better = row["model_a"] if row["difference"] > 0 else row["model_b"]
        return f"{figure}: the data support a difference; {better} is better ({row['evidence']})."
    if row["discordant"] < min_discordant():
        return f"{figure}: rests on {row['evidence']}: cannot tell."
    return f"{figure}: the {row['patients']} patients cannot tell these apart ({row['evidence']})."


def _patients(count: int) -> str:
    return f"{count} patient" + ("" if count == 1 else "s")
