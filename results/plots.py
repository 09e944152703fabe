"""PNG plots of the result tables: the leaderboard, and a trial's learning curves per stage
laid out like the second seed's Figure 4 (accuracy and loss, training and validation).
Drawn on matplotlib Figures (no pyplot state), written whole or not at all."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from search.files import write_atomic

__all__ = ["figure_bytes", "leaderboard_figure", "learning_curves_figure", "save_png"]

STAGES = (("warmup", "warm-up (backbone frozen)"), ("finetune", "fine-tune (top layers unfrozen)"))
MODE_COLOURS = {"stress": "#d62728", "rest": "#1f77b4", "dual": "#9467bd"}


def leaderboard_figure(board: pd.DataFrame, title: str = "") -> Figure:
    """Horizontal bars of each backbone/mode's best validation score, best on top, with
    its ROC AUC marked; one colour per input mode."""
    board = board.reset_index(drop=True)
    labels = [f"{b}/{m}" for b, m in zip(board["backbone"], board["mode"], strict=True)]
    figure = Figure(figsize=(8, 1.2 + 0.4 * max(len(board), 1)), layout="constrained")
    axes = figure.subplots()
    positions = list(range(len(board)))[::-1]  # rank 1 at the top
    colours = [MODE_COLOURS.get(mode, "#7f7f7f") for mode in board["mode"]]
    axes.barh(positions, board["best_selection"], color=colours, height=0.6)
    axes.scatter(
        board["best_val_roc_auc"], positions, marker="|", s=250, color="black", label="ROC AUC"
    )
    for y, value in zip(positions, board["best_selection"], strict=True):
        axes.text(value, y, f" {value:.3f}", va="center", fontsize=8)
    axes.set_yticks(positions, labels, fontsize=8)
    axes.set_xlim(0, 1.1)
    metric = _selection_name(board)
    axes.set_xlabel(f"best validation {metric} (bars); ROC AUC of that epoch (|)")
    axes.set_title(title or "leaderboard")
    if len(board):
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return figure


def learning_curves_figure(
    curves: pd.DataFrame, title: str = "", best_epoch: int | None = None
) -> Figure:
    """A trial's accuracy and loss per epoch (`results.learning_curves`), training and
    validation, one row of panels per stage; `best_epoch`, the one kept, is marked."""
    figure = Figure(figsize=(10, 7), layout="constrained")
    panels = figure.subplots(len(STAGES), 2, squeeze=False)
    best = best_epoch
    for row, (stage, label) in enumerate(STAGES):
        part = curves[curves["stage"] == stage]
        accuracy, loss = panels[row]
        for axes, kind in ((accuracy, "accuracy"), (loss, "loss")):
            axes.set_title(f"{label}: {kind}", fontsize=10)
            axes.set_xlabel("epoch")
            if part.empty:
                axes.text(0.5, 0.5, "not reached", ha="center", va="center",
                          transform=axes.transAxes)  # fmt: skip
                continue
            axes.plot(part["epoch"], part[f"train_{kind}"], marker=".", label=f"training {kind}")
            axes.plot(part["epoch"], part[f"val_{kind}"], marker=".", label=f"validation {kind}")
            if kind == "accuracy":  # what the search selects by, for the imbalanced classes
                axes.plot(part["epoch"], part["val_balanced_accuracy"], linestyle=":",
                          marker=".", label="validation balanced accuracy")  # fmt: skip
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            if best is not None and best in set(part["epoch"]):
                axes.axvline(best, color="grey", linestyle="--", linewidth=1, label="best epoch")
            axes.legend(fontsize=8)
        accuracy.set_ylim(0, 1.02)
    figure.suptitle(title or "learning curves")
    return figure


def _selection_name(board: pd.DataFrame) -> str:
    names = board.get("selection_metric")
    if names is None or names.dropna().empty:
        return "selection metric"
    return str(names.dropna().iloc[0]).replace("_", " ")


def figure_bytes(figure: Figure, format: str = "png", dpi: int = 110, **options) -> bytes:
    """`figure` drawn as an image file's bytes (`options` go to `savefig`)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=format, dpi=dpi, **options)
    return buffer.getvalue()


def save_png(figure: Figure, path: str | Path) -> Path:
    """Write `figure` as a PNG at `path`, whole or not at all."""
    return write_atomic(Path(path), figure_bytes(figure))
