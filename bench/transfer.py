"""Transfer learning measured: EfficientNet-Lite0 with its ImageNet weights (the package's
file, offline) against the same network from random weights, on synthetic sets of 40, 87
and 160 patients with the first seed's class mix (65 / 18 / 4; at least 4 patients a
class), the same split and folds:

- the search: `polarmap search run --space demo --split 75/0/25 --folds 3` and the same
  with `--no-pretrained` (stress and dual, 6 trials a pair); the fold-mean balanced
  accuracy of the trial it picks, and its seconds per trial;
- a linear probe on frozen features (global average pooled, both views, logistic
  regression), pretrained and random, over the search's own folds of the training
  patients;
- the project's segment baseline (logistic regression on the 17 segments' mean colours)
  over the same folds.

The probe and the baseline give balanced accuracy and ROC AUC of their out-of-fold
predictions with 95 % intervals (`results.figure_intervals`).

    .venv/bin/python bench/transfer.py [--work /tmp/polarmap-transfer] [--sizes 40,87,160]

Figures are printed; docs/performance.md records them with the machine they came from.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from results import load_trials  # noqa: E402
from results.figure_intervals import figure_intervals  # noqa: E402
from search.data import TRIAD, SplitSpec, check_dataset, split_patients  # noqa: E402
from search.data.map_cache import MapCache  # noqa: E402
from search.data.normalize import backbone_input, normalize_maps  # noqa: E402
from search.data.preprocess import PreprocessSpec, preprocess_dataset  # noqa: E402
from search.finalize.baseline import segment_features  # noqa: E402
from search.synth import write_synthetic_dataset  # noqa: E402

BACKBONE = "efficientnet_lite0"
FIRST_SEED = {"Infarction": 4 / 87, "Ischemia": 18 / 87, "Normal": 65 / 87}
SPEC = SplitSpec(train=0.75, val=0.0, test=0.25, folds=3, seed=0)
POLARMAP = [sys.executable, "-m", "search"]


def search(manifest: Path, work: Path, name: str, pretrained: bool, env) -> tuple[float, float]:
    """The picked trial's fold-mean balanced accuracy and the mean seconds per trial."""
    command = [*POLARMAP, "search", "run", "--data", str(manifest), "--space", "demo",
               "--split", "75/0/25", "--folds", "3", "--seed", "0", "--name", name,
               "--storage", str(work / "runs"), "--quiet"]  # fmt: skip
    if not pretrained:
        command.append("--no-pretrained")
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    trials = load_trials(work / "runs" / "results", name)
    best = trials.sort_values("best_selection", ascending=False).iloc[0]
    return float(best["best_val_balanced_accuracy"]), float(trials["wall_seconds"].mean())


def features(maps: np.ndarray, pretrained: bool) -> np.ndarray:
    """Both views' pooled features of the frozen backbone, side by side."""
    import torch

    from trainables.weights import create_backbone

    torch.manual_seed(0)
    backbone = create_backbone(BACKBONE, pretrained=pretrained).eval()
    x = normalize_maps(maps, backbone_input(BACKBONE))  # (n, views, 3, H, W)
    with torch.no_grad():
        pooled = [backbone.forward_features(x[:, v]).mean(dim=(2, 3)) for v in range(x.shape[1])]
    return torch.cat(pooled, dim=1).numpy()


def out_of_fold(x: np.ndarray, y: np.ndarray, folds: list[np.ndarray]) -> np.ndarray:
    """Logistic regression's out-of-fold class probabilities over `folds` (index arrays)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probabilities = np.zeros((len(y), 3))
    for held in folds:
        train = np.setdiff1d(np.arange(len(y)), held)
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced")
        )
        model.fit(x[train], y[train])
        probabilities[np.ix_(held, model.classes_)] = model.predict_proba(x[held])
    return probabilities


def figures(y: np.ndarray, probabilities: np.ndarray) -> str:
    """Balanced accuracy and ROC AUC with their 95 % intervals."""
    from trainables.metrics import classification_metrics

    macro, _ = classification_metrics(y, probabilities)
    found = figure_intervals(y, probabilities, probabilities.argmax(1), TRIAD.names, 1000)
    cells = []
    for name in ("balanced_accuracy", "roc_auc"):
        low, high = found.intervals.get(name, (np.nan, np.nan))
        cells.append(f"{macro[name]:.2f} [{low:.2f}, {high:.2f}]")
    return "  ".join(cells)


def probes(manifest: Path, cache: Path) -> dict[str, str]:
    """The linear probes and the segment baseline over the search's folds."""
    dataset = check_dataset(manifest, split=SPEC).dataset
    split = split_patients(dataset.labels, SPEC, dataset.class_set.names)
    cleaned = preprocess_dataset(dataset, PreprocessSpec(224), MapCache(cache))
    row = cleaned.index()
    ids = list(split.train)
    maps = cleaned.maps[[row[i] for i in ids]]
    y = np.array([dataset.labels[i] for i in ids])
    position = {pid: k for k, pid in enumerate(ids)}
    folds = [np.array([position[i] for i in fold]) for fold in split.folds]
    return {
        "linear probe, ImageNet": figures(y, out_of_fold(features(maps, True), y, folds)),
        "linear probe, random": figures(y, out_of_fold(features(maps, False), y, folds)),
        "segment baseline": figures(y, out_of_fold(segment_features(maps), y, folds)),
    }


def _mix(n: int) -> dict[str, float]:
    """The first seed's class mix, with at least 4 patients a class (a test patient and a
    patient in each of 3 folds need that many)."""
    counts = {name: max(4, round(share * n)) for name, share in FIRST_SEED.items()}
    counts["Normal"] = n - counts["Infarction"] - counts["Ischemia"]
    return {name: count / n for name, count in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/polarmap-transfer"))
    parser.add_argument("--sizes", default="40,87,160")
    options = parser.parse_args()
    env = {**os.environ, "POLARMAP_CACHE": str(options.work / "cache")}
    started = time.perf_counter()
    for n in (int(s) for s in options.sizes.split(",")):
        work = options.work / f"n{n}"
        shutil.rmtree(work, ignore_errors=True)
        balance = _mix(n)
        manifest = write_synthetic_dataset(work / "data", TRIAD, n, seed=n, balance=balance)
        mix = ", ".join(f"{round(share * n)} {name}" for name, share in balance.items())
        print(f"\n{n} patients ({mix}), {SPEC.describe()}")
        for name, text in probes(manifest, options.work / "cache" / "maps").items():
            print(f"  {name:28} balanced accuracy, ROC AUC (out-of-fold): {text}")
        for pretrained in (True, False):
            label = "ImageNet" if pretrained else "random"
            picked, seconds = search(manifest, work, f"{label}-{n}", pretrained, env)
            print(f"  search, {label:9}             picked trial's fold-mean balanced accuracy "
                  f"{picked:.3f}, {seconds:.1f} s per trial")  # fmt: skip
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
