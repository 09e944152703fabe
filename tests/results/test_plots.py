"""The plots: one bar per backbone and mode in the leaderboard's order, a trial's curves
per stage with the kept epoch marked, written as whole PNG files."""

from __future__ import annotations

from PIL import Image

from results import leaderboard, learning_curves
from results.plots import leaderboard_figure, learning_curves_figure, save_png


def test_the_leaderboard_plot_has_a_bar_per_pair_best_on_top(example_store, tmp_path):
    board = leaderboard(str(example_store))
    figure = leaderboard_figure(board, "all searches")
    axes = figure.axes[0]
    bars = sorted(axes.patches, key=lambda bar: -bar.get_y())  # top first
    assert [round(bar.get_width(), 3) for bar in bars] == [0.7, 0.6, 0.5]
    ticks = zip(axes.get_yticks(), axes.get_yticklabels(), strict=True)
    labels = [label.get_text() for _, label in sorted(ticks, key=lambda t: -t[0])]
    assert labels == ["vgg16/dual", "resnet18/dual", "resnet18/stress"]
    assert "balanced accuracy" in axes.get_xlabel()
    path = save_png(figure, tmp_path / "plots" / "board.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 400
    assert [p.name for p in path.parent.iterdir()] == ["board.png"]  # no temporary left


def test_learning_curves_show_each_stage_and_mark_the_kept_epoch(example_store):
    curves = learning_curves(example_store, "t1")
    figure = learning_curves_figure(curves, "t1", best_epoch=2)
    warmup_accuracy, _, finetune_accuracy, finetune_loss = figure.axes
    assert "warm-up" in warmup_accuracy.get_title() and "loss" in finetune_loss.get_title()
    lines = {line.get_label(): line for line in warmup_accuracy.get_lines()}
    assert list(lines["training accuracy"].get_xdata()) == [1, 2]
    assert list(lines["validation accuracy"].get_ydata()) == list(curves["val_accuracy"][:2])
    assert "best epoch" in lines  # epoch 2 is in warm-up
    finetune = {line.get_label() for line in finetune_accuracy.get_lines()}
    assert "best epoch" not in finetune and "training accuracy" in finetune


def test_a_stage_not_reached_says_so(example_store):
    curves = learning_curves(example_store, "t2")  # stopped after warm-up
    figure = learning_curves_figure(curves)
    finetune_accuracy = figure.axes[2]
    assert [t.get_text() for t in finetune_accuracy.texts] == ["not reached"]
    assert not finetune_accuracy.get_lines()
