"""Diagnostics through `logging`: one logger per module (`logging.getLogger(__name__)`),
shown on stderr as `warning: ...` lines, at the level the command line asks for.

What a user asked to see (progress, results, where files went) is printed to stdout by the
commands; these are the notes, warnings and debugging details around it. `--verbose`
shows debugging details, `--quiet` only warnings and errors.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["PACKAGES", "configure_logging", "level_for"]

PACKAGES = ("search", "trainables", "spaces", "results")


def level_for(verbose: int = 0, quiet: bool = False) -> int:
    """The logging level of a command line's `--verbose` count and `--quiet` flag."""
    if quiet:
        return logging.WARNING
    return logging.DEBUG if verbose > 0 else logging.INFO


def configure_logging(level: int = logging.INFO) -> None:
    """Show the project's log records of `level` and above on stderr; called again, it
    changes the level (the handler is installed once)."""
    for name in PACKAGES:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
            logger.addHandler(_StderrHandler())
        logger.propagate = False  # Ray's and other libraries' handlers print their own way


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record arrives (a test's capture, a
    redirected stream), as `warning: message`; notes (INFO) as the bare message."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(_Formatter())

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; sys.stderr wins
        pass


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno == logging.INFO:
            return message
        if record.levelno <= logging.DEBUG:
            return f"debug: {record.name}: {message}"
        return f"{record.levelname.lower()}: {message}"
