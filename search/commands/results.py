"""`polarmap results ingest|leaderboard|curves|summary|mlflow`: the result tables rebuilt
from a search's folder, what analysts read from them first, as text tables and PNG plots,
and searches of the tables shown in MLflow afterwards."""

from __future__ import annotations

import argparse
from pathlib import Path

from search.commands.options import UsageError, mlflow_uri, positive_int

__all__ = ["register", "show_results"]


def register(commands: argparse._SubParsersAction) -> None:
    results = commands.add_parser("results", help="the result tables (Parquet)")
    actions = results.add_subparsers(dest="action", metavar="ACTION", required=True)
    ingest = actions.add_parser(
        "ingest", help="rebuild the tables from a search's folder (STORAGE/NAME)"
    )
    ingest.add_argument("experiment", help="the search's folder")
    ingest.add_argument("--results", default=None, help="tables root (default STORAGE/results)")
    ingest.set_defaults(func=run_ingest, parser=ingest)

    board = _reader(actions, "leaderboard", "best trial per backbone and mode, and its plot")
    board.set_defaults(func=run_leaderboard, parser=board)
    curves = _reader(actions, "curves", "a trial's learning curves per stage, and their plot")
    curves.add_argument(
        "--trial", action="append", default=None, metavar="ID",
        help="a trial id (repeatable); default: the leaderboard's top --top trials",
    )  # fmt: skip
    curves.add_argument(
        "--top", type=positive_int, default=1, help="how many top trials (default 1)"
    )
    curves.set_defaults(func=run_curves, parser=curves)
    summary = actions.add_parser("summary", help="trials by status, GPU-hours, best so far")
    summary.add_argument("results", help="tables root, e.g. polarmap-runs/results")
    summary.add_argument("--search", default=None, help="one search only")
    summary.set_defaults(func=run_summary, parser=summary)
    mlflow = actions.add_parser(
        "mlflow",
        help="show searches of the tables in MLflow afterwards (docs/tracking.md)",
        description="Write searches already in the result tables to MLflow, as a search "
        "run with --mlflow writes them live: a search started without it, one whose "
        "tracking server was down, or last month's, to compare. Runs already there are "
        "gone on with; nothing is written twice.",
    )
    mlflow.add_argument("results", help="tables root, e.g. polarmap-runs/results or s3://...")
    mlflow.add_argument("--mlflow", required=True, metavar="URI", help="the MLflow store")
    mlflow.add_argument("--search", default=None, help="one search only (default: every one)")
    mlflow.set_defaults(func=run_mlflow, parser=mlflow)


def _reader(actions, name: str, help: str) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=help)
    parser.add_argument("results", help="tables root, e.g. polarmap-runs/results or s3://...")
    parser.add_argument("--search", default=None, help="one search only")
    parser.add_argument(
        "--plots", type=Path, default=Path("."), metavar="DIR",
        help="folder for the PNG plots (default: the current folder)",
    )  # fmt: skip
    parser.add_argument("--no-plot", action="store_true", help="print the tables only")
    return parser


def run_mlflow(args: argparse.Namespace) -> int:
    from results import load_table
    from search.tracking.backfill import show_in_mlflow

    uri = mlflow_uri(args.mlflow)
    searches = load_table(args.results, "searches")
    names = [args.search] if args.search else sorted(set(searches.get("search", [])))
    if not names:
        raise UsageError(_nothing(args))
    for name in names:
        count = show_in_mlflow(uri, args.results, name)
        print(f"search {name}: {count} trials in MLflow at {uri}")
    return 0


def run_ingest(args: argparse.Namespace) -> int:
    from search.tuning.ingest import ingest_experiment

    try:
        count = ingest_experiment(args.experiment, args.results)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    print(f"{count} trials written to the result tables")
    return 0


def run_leaderboard(args: argparse.Namespace) -> int:
    from results.leaderboard import format_leaderboard, leaderboard

    board = leaderboard(args.results, args.search)
    if board.empty:
        raise UsageError(_nothing(args))
    for search, part in board.groupby("search"):  # by name
        print(f"\nsearch {search}:" + format_leaderboard(part))
        if not args.no_plot:
            from results.plots import leaderboard_figure, save_png

            path = save_png(
                leaderboard_figure(part, search), args.plots / f"leaderboard-{search}.png"
            )
            print(f"  plot: {path}")
    return 0


def run_curves(args: argparse.Namespace) -> int:
    from results.leaderboard import rank_trials
    from results.read import learning_curves, load_trials

    trials = load_trials(args.results, args.search)
    if args.trial:
        chosen = trials[trials["trial_id"].isin(args.trial)]
        missing = sorted(set(args.trial) - set(chosen["trial_id"]))
        if missing:
            raise UsageError(f"{args.results}: no trial {', '.join(missing)}{_in(args)}")
    else:
        chosen = rank_trials(trials).head(args.top)
    if chosen.empty:
        raise UsageError(_nothing(args))
    for trial in chosen.to_dict("records"):
        try:
            curves = learning_curves(args.results, trial["trial_id"], trial["search"])
        except LookupError as exc:  # a trials row without epochs (its file moved away)
            raise UsageError(str(exc)) from exc
        title = (
            f"{trial['search']} trial {trial['trial_id']}: {trial['backbone']}/{trial['mode']}, "
            f"width {trial['width']}, dropout {trial['dropout']:.2f}, a {trial['a']:.2f}, "
            f"unfreeze {trial['effective_unfreeze']}"
        )
        print(f"\n{title}\n{_format_curves(curves, trial['best_epoch'])}")
        if not args.no_plot:
            from results.plots import learning_curves_figure, save_png

            figure = learning_curves_figure(curves, title, trial["best_epoch"])
            path = save_png(
                figure, args.plots / f"curves-{trial['search']}-{trial['trial_id']}.png"
            )
            print(f"  plot: {path}")
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from results.summary import format_summary, search_summaries

    try:
        summaries = search_summaries(args.results, args.search)
    except LookupError as exc:
        raise UsageError(str(exc)) from exc
    if not summaries:
        raise UsageError(_nothing(args))
    print("\n\n".join(format_summary(s) for s in summaries))
    return 0


def show_results(results: str, search: str, plots: Path | None = None) -> None:
    """The search's leaderboard and its best trial's learning curves, printed, and drawn
    into `plots` when given (for `polarmap demo`)."""
    options = dict(results=results, search=search, plots=plots, no_plot=plots is None)
    run_leaderboard(argparse.Namespace(**options))
    run_curves(argparse.Namespace(**options, trial=None, top=1))


def _format_curves(curves, best_epoch) -> str:
    lines = [
        f"  {'epoch':>5} {'stage':8} {'train loss':>10} {'train acc':>9} {'val loss':>8} "
        f"{'val acc':>7} {'val bal acc':>11} {'val AUC':>7}"
    ]
    for row in curves.itertuples(index=False):
        mark = "  <- best" if row.epoch == best_epoch else ""
        lines.append(
            f"  {row.epoch:>5} {row.stage:8} {row.train_loss:>10.4f} {row.train_accuracy:>9.3f} "
            f"{row.val_loss:>8.4f} {row.val_accuracy:>7.3f} {row.val_balanced_accuracy:>11.3f} "
            f"{row.val_roc_auc:>7.3f}{mark}"
        )
    return "\n".join(lines)


def _in(args: argparse.Namespace) -> str:
    return f" in search {args.search!r}" if args.search else ""


def _nothing(args: argparse.Namespace) -> str:
    return f"{args.results}: no scored trials{_in(args)} (is this a results folder?)"
