"""The pieces every report page is made of: escaped text, tables, embedded figures and a
value with its interval, so that each section's module writes its HTML the same way."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

__all__ = ["data_uri", "escaped", "figure_file", "figure_html", "html_table", "with_interval"]


def escaped(value) -> str:
    return html.escape(str(value), quote=True)


def html_table(frame: pd.DataFrame) -> str:
    table = frame.to_html(index=False, border=0, na_rep="n/a", escape=True)
    return f"<div class='scroll'>{table}</div>"


def figure_file(path: Path, caption: str) -> str:
    return figure_html(Path(path).read_bytes(), caption)


def figure_html(data: bytes, caption: str, width: int = 420) -> str:
    """An embedded image with its caption (the page needs no other file)."""
    return (f"<figure><img src='{data_uri(data)}' width='{width}' alt='{escaped(caption)}'>"
            f"<figcaption>{escaped(caption)}</figcaption></figure>")  # fmt: skip


def data_uri(data: bytes, suffix: str = ".png") -> str:
    kind = "jpeg" if suffix.lower() in (".jpg", ".jpeg") else "png"
    return f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")


def with_interval(
    value: float, interval: tuple[float, float] | None, count: tuple[int, int] | None = None
) -> str:
    """ "0.000 (0/1) [0.000, 0.975]": the value, a proportion's counts, its interval."""
    if count is not None and not count[1]:
        return "n/a (0/0)"
    if value != value:  # NaN
        return "n/a"
    shown = f"{value:.3f}" + (f"\u00a0({count[0]}/{count[1]})" if count else "")
    if not interval:
        return shown
    # Non-breaking inside the interval: a narrow cell wraps before "[", nowhere else.
    return f"{shown} [{interval[0]:.3f},\u00a0{interval[1]:.3f}]"
