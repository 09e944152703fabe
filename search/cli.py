"""The `polarmap` command (and its twin, `python -m search`): one subcommand per job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from search.commands import data, demo, finalize, predict, results, search, spaces, train, weights
from search.commands.options import INTERRUPTED, UsageError
from search.data import DataError
from search.logs import configure_logging, level_for

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polarmap",
        description="Hyperparameter and backbone search for transfer-learning classifiers "
        "of myocardial perfusion SPECT polar maps.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="also show debugging details on stderr (a command's --quiet: warnings only)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data.register(commands)
    demo.register(commands)
    finalize.register(commands)
    predict.register(commands)
    results.register(commands)
    search.register(commands)
    spaces.register(commands)
    train.register(commands)
    weights.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status: 0 done, 1 data problems (found while
    checking or while cleaning), 2 usage, 130 interrupted (Ctrl-C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(level_for(args.verbose, getattr(args, "quiet", False)))
    try:
        return args.func(args)
    except UsageError as exc:
        getattr(args, "parser", parser).error(str(exc))
    except DataError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    return 0


def _version() -> str:
    try:
        return metadata.version("polarmap-search")
    except metadata.PackageNotFoundError:
        return "unknown"
