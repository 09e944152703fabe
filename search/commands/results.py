"""`polarmap results ingest|leaderboard`: the result tables from a search's folder, and
the best trial of each backbone and mode read from them."""

from __future__ import annotations

import argparse

from search.commands.options import UsageError

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    results = commands.add_parser("results", help="the result tables (Parquet)")
    actions = results.add_subparsers(dest="action", metavar="ACTION", required=True)
    ingest = actions.add_parser(
        "ingest", help="rebuild the tables from a search's folder (STORAGE/NAME)"
    )
    ingest.add_argument("experiment", help="the search's folder")
    ingest.add_argument("--results", default=None, help="tables root (default STORAGE/results)")
    ingest.set_defaults(func=run_ingest, parser=ingest)
    board = actions.add_parser("leaderboard", help="best trial per backbone and mode")
    board.add_argument("results", help="tables root, e.g. polarmap-runs/results")
    board.add_argument("--search", default=None, help="one search only")
    board.set_defaults(func=run_leaderboard, parser=board)


def run_ingest(args: argparse.Namespace) -> int:
    from results.ingest import ingest_experiment

    try:
        count = ingest_experiment(args.experiment, args.results)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    print(f"{count} trials written to the result tables")
    return 0


def run_leaderboard(args: argparse.Namespace) -> int:
    from results.leaderboard import format_leaderboard, leaderboard

    board = leaderboard(args.results, args.search)
    if args.search is None and board["search"].nunique() > 1:
        for search, part in board.groupby("search", sort=False):
            print(f"\nsearch {search}:" + format_leaderboard(part))
    else:
        print(format_leaderboard(board))
    return 0
