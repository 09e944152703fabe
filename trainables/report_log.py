"""Every report a trial has made, kept in each of its checkpoints (`reports.json`).

Ray's own record of a trial's reports (result.json) is written by the driver and copied
to the storage from time to time; a driver killed in between, or a trial paused and
resumed before the next copy, loses reports from it. The checkpoint is saved with every
report, so the log in the newest one holds every epoch up to it: the result tables are
built from it, and a resumed trial goes on appending to it. Plain JSON, no Ray or torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from search.files import write_atomic

__all__ = ["REPORTS_FILE", "load_reports", "report_lines", "save_reports"]

REPORTS_FILE = "reports.json"


def save_reports(reports: list[dict[str, Any]], folder: str | os.PathLike[str]) -> Path:
    """Write the log into a checkpoint `folder`."""
    return write_atomic(Path(folder) / REPORTS_FILE, json.dumps(reports, default=_plain))


def load_reports(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The log in a checkpoint `folder`; none when the checkpoint has no log."""
    path = Path(folder) / REPORTS_FILE
    return json.loads(path.read_text()) if path.exists() else []


def report_lines(data: bytes | str) -> list[dict[str, Any]]:
    """The reports in Ray's result.json (one JSON object a line), in order. A line cut
    short is left out, not an error: a full disk or a kill while Ray appended it tears
    the last line (and a resumed trial appends after the torn piece); the checkpoint's
    log keeps that epoch."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    reports = []
    for line in text.splitlines():
        try:
            report = json.loads(line) if line.strip() else None
        except ValueError:  # json's errors are ValueErrors
            continue
        if isinstance(report, dict):
            reports.append(report)
    return reports


def _plain(value: Any) -> Any:
    """numpy scalars (and anything with `item()`) as plain numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"a report value of type {type(value).__name__} is not JSON")
