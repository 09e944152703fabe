"""The `polarmap` command (and its twin, `python -m search`): one subcommand per job."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from importlib import metadata

from search.commands import data, demo, finalize, predict, results, search, spaces, train, weights
from search.commands.options import INTERRUPTED, TERMINATED
from search.errors import PolarmapError, Terminated
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
    checking or while cleaning), a storage that took no more of a search's files, or a
    bug, 2 usage, settings or a search's state, 130 interrupted (Ctrl-C), 143 terminated
    (SIGTERM).

    A `search.errors.PolarmapError` is a problem the user can act on: its message, with the
    command's usage for status 2. Anything else is a bug: its traceback, status 1, never
    the usage text, which would make it look like a mistake in the command line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(level_for(args.verbose, getattr(args, "quiet", False)))
    try:
        with _stop_on_sigterm():
            return args.func(args)
    except PolarmapError as exc:
        if exc.exit_status == 2:
            getattr(args, "parser", parser).error(str(exc))
        print(exc, file=sys.stderr)
        return exc.exit_status
    except Terminated:
        print("terminated (SIGTERM)", file=sys.stderr)
        return TERMINATED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception:
        traceback.print_exc()
        print(
            f"polarmap {args.command}: stopped on an unexpected error, a bug rather than a "
            "problem with its input; please report it with the traceback above",
            file=sys.stderr,
        )
        return 1


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the command as Ctrl-C does (files are written whole or not at all),
    with status 143; a search, while Ray Tune runs, stops gracefully first (the runner's
    `StopSignals`). The handler before is back when the command ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum, frame):
        raise Terminated()

    before = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _version() -> str:
    try:
        return metadata.version("polarmap-search")
    except metadata.PackageNotFoundError:
        return "unknown"
