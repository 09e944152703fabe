"""Decision curves (Vickers & Elkin 2006): the net benefit of acting on a two-class model's
risk, against acting on every patient and on none, across the threshold risks at which a
clinician would act. TRIPOD+AI asks for clinical utility, not only discrimination: a model
with a good AUC can still do less good than referring everyone.

At threshold probability t, acting on a patient whose risk is at least t gains a true
positive and costs a false positive weighted by the odds t / (1 - t) (the harm of an
unneeded action as the clinician weighs it):

    net benefit = TP / n - FP / n * t / (1 - t)

Acting on all patients gives prevalence - (1 - prevalence) * t / (1 - t); acting on none,
0. A model is of use at t where its curve lies above both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_THRESHOLDS", "net_benefit"]

DEFAULT_THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)


def net_benefit(
    risk: np.ndarray, positive: np.ndarray, thresholds: np.ndarray = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Per threshold: the model's net benefit, acting on all and on none, from each
    patient's `risk` (the model's probability of the positive class) and whether the
    patient is `positive`.

    Raises:
        ValueError: risks outside [0, 1], thresholds outside (0, 1), lengths that differ,
            or no patients.
    """
    risk = np.asarray(risk, dtype=float)
    positive = np.asarray(positive, dtype=bool)
    thresholds = np.asarray(thresholds, dtype=float)
    if len(risk) != len(positive) or not len(risk):
        raise ValueError(
            f"decision curve: {len(risk)} risks for {len(positive)} patients; "
            "expected one risk per patient, at least one"
        )
    if np.isnan(risk).any() or risk.min() < 0 or risk.max() > 1:
        raise ValueError("decision curve: risks must be probabilities in [0, 1]")
    if thresholds.min() <= 0 or thresholds.max() >= 1:
        raise ValueError("decision curve: thresholds must lie strictly between 0 and 1")
    count = len(risk)
    odds = thresholds / (1 - thresholds)
    acted = risk[None, :] >= thresholds[:, None]
    true_pos = (acted & positive[None, :]).sum(axis=1) / count
    false_pos = (acted & ~positive[None, :]).sum(axis=1) / count
    prevalence = positive.mean()
    return pd.DataFrame({
        "threshold": thresholds,
        "net_benefit": true_pos - false_pos * odds,
        "treat_all": prevalence - (1 - prevalence) * odds,
        "treat_none": np.zeros(len(thresholds)),
    })  # fmt: skip
