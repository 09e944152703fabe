"""How the paired comparisons and the test figures' intervals behave at small classes,
measured by simulation; the figures behind the choices in docs/finalize.md.

1. False positives: two models of EQUAL skill (85 % accurate, independent errors) on
   simulated test sets at the demo's class mix (1 / 5 / 26), the first seed's (1 / 5 / 16)
   and a balanced one (11 / 11 / 10): the share of sets on which a difference is called
   supported (p < 0.05 and the 95 % interval excluding 0; for the chosen scheme, the
   evidence rule), for three schemes:
   - before: the paired percentile bootstrap that left out draws lacking a class (what
     finalize did until issue 26);
   - stratified: a paired bootstrap drawing within each class (no draw left out), its
     percentile interval and p-value;
   - chosen: `results.paired.compare_models` (McNemar exact, sign flips, permutations;
     Newcombe, MOVER and stratified-bootstrap intervals; the evidence rule).
2. Power: 90 % against 60 % accurate, 99 balanced patients.
3. One ROC AUC of two classes with few positives (3 / 29, 5 / 27, 16 / 16): DeLong's test
   against the permutation test, equal skill.
4. Coverage of one model's intervals (truth from 180,000 simulated patients): a class's
   sensitivity on 1, 2, 5 and 26 patients (Clopper-Pearson against the percentile
   bootstrap); balanced accuracy, one class's AUC and the macro AUC at the three mixes,
   the chosen interval against the alternatives; and how often the paired intervals of
   equal-skill pairs hold 0.
5. Speed: one model's intervals with 1000 resamples, vectorised
   (`results.figure_intervals`) against one metrics call per draw (as before).

    .venv/bin/python bench/paired_tests.py [--sets 1000] [--resamples 500]

A 5 % rate measured on 1000 sets has a standard error of 0.7 points.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from results.figure_intervals import figure_intervals
from results.intervals import auc_interval, clopper_pearson, mover_mean, wilson
from results.paired import compare_models, delong_test
from results.paired_simulation import simulated_model, supported_rates
from results.resampling import batched_figures, parse_figure, stratified_draws
from trainables.metrics import PER_CLASS_METRICS, classification_metrics

MIXES = {"demo 1/5/26": (1, 5, 26), "seed 1/5/16": (1, 5, 16), "balanced 11/11/10": (11, 11, 10)}
METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "sensitivity[0]", "sensitivity[1]",
           "sensitivity[2]")  # fmt: skip
CLASSES = ("Infarction", "Ischemia", "Normal")
FIGURES = [("balanced_accuracy", None), ("roc_auc", 0), ("roc_auc", None), ("specificity", None)]


def bootstrap_supported(labels, a, b, metrics, resamples, rng, stratified: bool) -> list[bool]:
    """A paired percentile bootstrap's verdicts: p (with the +1 correction) below 0.05 and
    the interval excluding 0. Conditional (before): random draws, those lacking a class
    left out. Stratified: draws within each class."""
    names = [parse_figure(m, 3) for m in metrics]
    n = labels.size
    if stratified:
        draws = stratified_draws(labels, resamples, rng)
    else:
        draws = rng.integers(0, n, (resamples, n))
        keep = np.array([np.unique(labels[d]).size == np.unique(labels).size for d in draws])
        draws = draws[keep]
    y = labels[draws]
    diff = batched_figures(y, a[0][draws], a[1][draws], names) - batched_figures(
        y, b[0][draws], b[1][draws], names
    )
    out = []
    for column in diff.T:
        low, high = np.percentile(column, [2.5, 97.5])
        extreme = min((column <= 0).sum(), (column >= 0).sum()) + 1
        p = min(1.0, 2 * extreme / (column.size + 1))
        out.append(bool(p < 0.05 and not low <= 0 <= high))
    return out


def false_positives(sets: int, resamples: int) -> None:
    print(f"\n1. Equal skill (85 %), {sets} test sets: share called supported")
    header = f"{'mix':<20} {'scheme':<11}" + "".join(f"{m:>18}" for m in METRICS)
    print(header)
    for label, mix in MIXES.items():
        labels = np.repeat(np.arange(3), mix)
        rng = np.random.default_rng(0)
        counts = {"before": np.zeros(len(METRICS)), "stratified": np.zeros(len(METRICS))}
        for _ in range(sets):
            a = simulated_model(labels, 0.85, 3, rng)
            b = simulated_model(labels, 0.85, 3, rng)
            for scheme in counts:
                counts[scheme] += bootstrap_supported(
                    labels, a, b, METRICS, resamples, rng, scheme == "stratified"
                )
        chosen = supported_rates(mix, 0.85, 0.85, sets, METRICS, seed=0, resamples=resamples)
        rows = {s: c / sets for s, c in counts.items()} | {"chosen": list(chosen.values())}
        for scheme, rates in rows.items():
            print(f"{label:<20} {scheme:<11}" + "".join(f"{r:>18.3f}" for r in rates))


def power(sets: int, resamples: int) -> None:
    print(f"\n2. 90 % against 60 % accurate, 33/33/33 patients, {sets} sets: share supported")
    labels = np.repeat(np.arange(3), 33)
    rng = np.random.default_rng(1)
    counts = np.zeros(len(METRICS))
    for _ in range(sets):
        a, b = simulated_model(labels, 0.9, 3, rng), simulated_model(labels, 0.6, 3, rng)
        counts += bootstrap_supported(labels, a, b, METRICS, resamples, rng, True)
    chosen = supported_rates((33, 33, 33), 0.9, 0.6, sets, METRICS, seed=1, resamples=resamples)
    print(f"{'scheme':<11}" + "".join(f"{m:>18}" for m in METRICS))
    print(f"{'stratified':<11}" + "".join(f"{r:>18.3f}" for r in counts / sets))
    print(f"{'chosen':<11}" + "".join(f"{r:>18.3f}" for r in chosen.values()))


def binary_auc(sets: int, resamples: int) -> None:
    print(f"\n3. One ROC AUC, two classes, equal skill, {sets} sets: share with p < 0.05")
    print(f"{'positives/negatives':<20}{'DeLong':>10}{'permutation':>13}")
    for mix in ((3, 29), (5, 27), (16, 16)):
        labels = np.repeat([1, 0], mix)
        rng = np.random.default_rng(2)
        delong = permutation = 0
        for s in range(sets):
            a, b = simulated_model(labels, 0.8, 2, rng), simulated_model(labels, 0.8, 2, rng)
            test = delong_test(labels, a[0][:, 1], b[0][:, 1])
            delong += test.p_value < 0.05
            (row,) = compare_models(labels, a[0], b[0], a[1], b[1], ["roc_auc"], resamples, s)
            permutation += row.p_value < 0.05
        print(f"{f'{mix[0]}/{mix[1]}':<20}{delong / sets:>10.3f}{permutation / sets:>13.3f}")


def coverage(sets: int, resamples: int) -> None:
    print(f"\n4. Coverage of 95 % intervals, {sets} sets (models 85 % accurate)")
    print("one class's sensitivity (true 0.85) on n patients:")
    print(f"{'patients':<10}{'Clopper-Pearson':>17}{'percentile bootstrap':>22}")
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 26):
        right = rng.random((sets, n)) < 0.85
        low, high = clopper_pearson(right.sum(axis=1), n)
        exact = ((low <= 0.85) & (high >= 0.85)).mean()
        draws = right[:, rng.integers(0, n, (resamples, n))].mean(axis=2)
        b_low, b_high = np.percentile(draws, [2.5, 97.5], axis=1)
        boot = ((b_low <= 0.85) & (b_high >= 0.85)).mean()
        print(f"{n:<10}{exact:>17.3f}{boot:>22.3f}")
    columns = ("BA chosen", "BA Wilson", "BA strat", "BA before", "AUC0 chosen", "AUC0 strat",
               "mAUC chosen", "mAUC MOVER", "mAUC strat", "mSpec chosen", "mSpec strat",
               "paired BA", "paired mAUC")  # fmt: skip
    print("balanced accuracy (BA), class 0's AUC (AUC0), macro AUC (mAUC), macro specificity")
    print("(mSpec): the chosen interval against the alternatives; paired: equal-skill pairs'")
    print("difference intervals holding 0")
    print(f"{'mix':<18}" + "".join(f"{c:>13}" for c in columns))
    for label, mix in MIXES.items():
        truth = _population_figures(rng, mix)
        labels = np.repeat(np.arange(3), mix)
        hits = np.zeros(len(columns))
        for s in range(sets):
            hits += _covered(labels, truth, resamples, rng, s)
        print(f"{label:<18}" + "".join(f"{h / sets:>13.3f}" for h in hits))


def _population_figures(rng, mix) -> dict[str, float]:
    """The simulated model's figures on 10,000 times the mix's patients: the truth the
    intervals should hold (macro specificity depends on the mix)."""
    labels = np.repeat(np.arange(3), np.array(mix) * 10000)
    p, q = simulated_model(labels, 0.85, 3, rng)
    figures = batched_figures(labels, p[None], q[None], FIGURES)[0]
    return dict(zip(("ba", "auc0", "mauc", "spec"), figures, strict=True))


def _covered(labels, truth, resamples, rng, seed) -> list[bool]:
    p, q = simulated_model(labels, 0.85, 3, rng)
    found = figure_intervals(labels, p, q, CLASSES, resamples, seed)
    strat, before = _two_bootstraps(labels, resamples, rng)
    booted = [batched_figures(labels[d], p[d], q[d], FIGURES) for d in (strat, before)]
    sizes = np.bincount(labels)
    right = np.bincount(labels[q == labels], minlength=3)
    wilson_ba = mover_mean(right / sizes, *wilson(right, sizes))
    aucs = batched_figures(labels, p[None], q[None], [("roc_auc", c) for c in range(3)])[0]
    per_class = [auc_interval(aucs[c], sizes[c], labels.size - sizes[c]) for c in range(3)]
    mover_auc = mover_mean(aucs, *np.array(per_class).T)

    def holds(interval, value) -> bool:
        return bool(interval[0] <= value <= interval[1])

    def pct(values) -> tuple[float, float]:
        return tuple(np.percentile(values[~np.isnan(values)], [2.5, 97.5]))

    other_p, other_q = simulated_model(labels, 0.85, 3, rng)
    paired = compare_models(labels, p, other_p, q, other_q, ["balanced_accuracy", "roc_auc"],
                            resamples, seed)  # fmt: skip
    return [
        holds(found.intervals["balanced_accuracy"], truth["ba"]),
        holds(wilson_ba, truth["ba"]),
        holds(pct(booted[0][:, 0]), truth["ba"]),
        holds(pct(booted[1][:, 0]), truth["ba"]),
        holds(found.intervals.get("roc_auc/Infarction", (1, 0)), truth["auc0"]),
        holds(pct(booted[0][:, 1]), truth["auc0"]),
        holds(found.intervals["roc_auc"], truth["mauc"]),
        holds(mover_auc, truth["mauc"]),
        holds(pct(booted[0][:, 2]), truth["mauc"]),
        holds(found.intervals["specificity"], truth["spec"]),
        holds(pct(booted[0][:, 3]), truth["spec"]),
        *(bool(row.low <= 0 <= row.high) for row in paired),
    ]


def _two_bootstraps(labels, resamples, rng):
    """Stratified draws, and random draws with those lacking a class left out (before)."""
    draws = rng.integers(0, labels.size, (resamples, labels.size))
    keep = np.array([np.unique(labels[d]).size == 3 for d in draws])
    return stratified_draws(labels, resamples, rng), draws[keep]


def speed(resamples: int) -> None:
    print(f"\n5. One model's intervals, 32 patients, {resamples} resamples (best of 3)")
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(3), (1, 5, 26))
    p, q = simulated_model(labels, 0.85, 3, rng)
    timings = {}
    for name, run in (
        ("vectorised", lambda: figure_intervals(labels, p, q, CLASSES, resamples)),
        ("per draw (before)", lambda: _per_draw(labels, p, q, resamples, rng)),
    ):
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        timings[name] = best
        print(f"{name:<20}{best * 1000:>9.1f} ms")
    print(f"{'ratio':<20}{timings['per draw (before)'] / timings['vectorised']:>9.1f} x")


def _per_draw(labels, probabilities, predicted, resamples, rng):
    """The loop finalize ran before: one classification_metrics call per draw."""
    draws = {}
    for _ in range(resamples):
        pick = rng.integers(0, labels.size, labels.size)
        macro, per_class = classification_metrics(labels[pick], probabilities[pick],
                                                  predicted[pick])  # fmt: skip
        for name, value in macro.items():
            draws.setdefault(name, []).append(value)
        for name in PER_CLASS_METRICS:
            for c in range(3):
                draws.setdefault(f"{name}/{c}", []).append(per_class[name][c])
    return {k: np.percentile(v, [2.5, 97.5]) for k, v in draws.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=1000, help="simulated test sets per mix")
    parser.add_argument("--resamples", type=int, default=500, help="draws per test")
    args = parser.parse_args()
    started = time.perf_counter()
    false_positives(args.sets, args.resamples)
    power(max(args.sets // 5, 100), args.resamples)
    binary_auc(max(args.sets // 2, 100), args.resamples)
    coverage(args.sets, args.resamples)
    speed(1000)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
