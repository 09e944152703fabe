"""`polarmap results leaderboard|curves|summary` as an analyst runs them: tables printed,
PNG plots written where asked, unknown trials and empty folders named."""

from __future__ import annotations

import pytest

from search.cli import main


def test_the_leaderboard_prints_and_plots(example_store, tmp_path, capsys):
    plots = tmp_path / "plots"
    assert main(["results", "leaderboard", str(example_store), "--plots", str(plots)]) == 0
    out = capsys.readouterr().out
    s1, s2 = out.index("search s1"), out.index("search s2")  # one table per search
    assert s1 < out.index("resnet18/dual") < out.index("resnet18/stress") < s2
    assert out.index("vgg16/dual") > s2
    assert f"plot: {plots / 'leaderboard-s1.png'}" in out
    assert sorted(p.name for p in plots.iterdir()) == ["leaderboard-s1.png", "leaderboard-s2.png"]


def test_curves_print_the_epochs_of_the_top_trials_and_plot_them(example_store, tmp_path, capsys):
    plots = tmp_path / "plots"
    args = ["results", "curves", str(example_store), "--search", "s1", "--top", "2"]
    assert main([*args, "--plots", str(plots)]) == 0
    out = capsys.readouterr().out
    assert out.index("s1 trial t1") < out.index("s1 trial t2")  # best first
    marked = [line.split()[:2] for line in out.splitlines() if line.endswith("<- best")]
    assert marked == [["2", "warmup"], ["1", "warmup"]]  # the epochs each trial kept
    assert sorted(p.name for p in plots.iterdir()) == ["curves-s1-t1.png", "curves-s1-t2.png"]
    assert main(["results", "curves", str(example_store), "--trial", "t2", "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "trial t2" in out and "trial t1" not in out and "plot:" not in out


def test_summary_prints_status_counts_and_gpu_hours(example_store, capsys):
    assert main(["results", "summary", str(example_store), "--search", "s1"]) == 0
    out = capsys.readouterr().out
    assert "1 completed, 1 stopped, 1 errored" in out
    assert "0.251 GPU-hours" in out and "search s2" not in out


def test_unknown_trials_and_empty_folders_are_usage_errors(example_store, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["results", "curves", str(example_store), "--trial", "t7", "--no-plot"])
    assert exited.value.code == 2 and "no trial t7" in capsys.readouterr().err
    for action in ("leaderboard", "curves", "summary"):
        with pytest.raises(SystemExit) as exited:
            main(
                ["results", action, str(tmp_path / "elsewhere"), "--no-plot"][
                    : 3 + (action != "summary")
                ]
            )
        assert exited.value.code == 2
        assert "elsewhere" in capsys.readouterr().err
