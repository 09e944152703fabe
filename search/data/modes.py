"""Input modes: which manifest views one model sees.

A mode is a list of views; all of them go through one shared backbone. The presets are
the seeds' (`stress`, `rest`, `dual`); any other combination of manifest views is
written with `+`, such as `stress+stress_nac`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PRESET_MODES", "InputMode", "parse_mode"]

_VIEW_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class InputMode:
    """A named, ordered list of views (the manifest's `<view>_path` columns without `_path`)."""

    name: str
    views: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.views:
            raise ValueError(f"input mode {self.name!r} has no views")
        if len(set(self.views)) != len(self.views):
            raise ValueError(f"input mode {self.name!r} repeats a view: {list(self.views)}")
        for view in self.views:
            if not _VIEW_NAME.match(view):
                raise ValueError(
                    f"input mode {self.name!r}: view name {view!r} must be letters, digits "
                    "and underscores, as in the manifest column '<view>_path'"
                )


PRESET_MODES = {
    m.name: m
    for m in (
        InputMode("stress", ("stress",)),
        InputMode("rest", ("rest",)),
        InputMode("dual", ("rest", "stress")),
    )
}


def parse_mode(spec: str) -> InputMode:
    """A preset name (`stress`, `rest`, `dual`) or views joined by `+` (`rest_nac+stress_nac`)."""
    spec = spec.strip()
    if spec in PRESET_MODES:
        return PRESET_MODES[spec]
    views = tuple(v.strip() for v in spec.split("+"))
    if len(views) == 1 and not _VIEW_NAME.match(views[0]):
        presets = ", ".join(PRESET_MODES)
        raise ValueError(f"input mode {spec!r}: expected one of {presets} or views joined by '+'")
    return InputMode(spec, views)
