"""The keys of a trial's epoch report: one grammar, built by the trainable (`fold_figures`,
`tune`) and parsed back by the result tables (`results.rows`), so that neither spells a
key the other does not read. No torch here: the result tables import it.

| key | what | build | parse |
|---|---|---|---|
| `val_<metric>` | the validation figure (mean over fold models) | `val_key` | `parse_val_key` |
| `val_<metric>_sd` | its standard deviation over fold models | `sd_key` | `parse_sd_key` |
| `oof_<metric>` | the pooled out-of-fold predictions' figure | `oof_key` | `parse_oof_key` |
| `val_<metric>/<class>` | a class's one-vs-rest figure | `class_key` | `parse_class_key` |
| `fold_<repeat>_<fold>/val_<metric>` | one fold model's figure | `fold_key` | `parse_fold_key` |
| `compute_path_<stage>` | how a stage ran | `compute_path_key` | `parse_compute_path_key` |
| `frozen_<what>` | the frozen-work store's counts | `frozen_key` | `parse_frozen_key` |

A metric's (stage's, count's) name is lower-case letters, digits and `_`, and a metric's
does not end in `_sd`; `val_loss` is `val_key("loss")`. A class name is any text.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from trainables.metrics import PER_CLASS_METRICS

__all__ = [
    "class_key",
    "compute_path_key",
    "fold_key",
    "frozen_key",
    "oof_key",
    "parse_class_key",
    "parse_compute_path_key",
    "parse_fold_key",
    "parse_frozen_key",
    "parse_oof_key",
    "parse_sd_key",
    "parse_val_key",
    "sd_key",
    "val_key",
]

_NAME = r"[a-z0-9_]+"
_VAL = re.compile(rf"val_({_NAME})")
_SD = re.compile(rf"val_({_NAME})_sd")
_OOF = re.compile(rf"oof_({_NAME})")
_FOLD = re.compile(rf"fold_(\d+)_(\d+)/(val_{_NAME})")
_COMPUTE_PATH = re.compile(rf"compute_path_({_NAME})")
_FROZEN = re.compile(rf"frozen_({_NAME})")


# -- building ----------------------------------------------------------------------------
def val_key(metric: str) -> str:
    """`val_<metric>`: the validation figure (cross-validated: the fold models' mean)."""
    return f"val_{metric}"


def sd_key(metric: str) -> str:
    """`val_<metric>_sd`: its standard deviation over the fold models."""
    return f"val_{metric}_sd"


def oof_key(metric: str) -> str:
    """`oof_<metric>`: the figure of the pooled out-of-fold predictions."""
    return f"oof_{metric}"


def class_key(metric: str, cls: str) -> str:
    """`val_<metric>/<class>`: one class's one-vs-rest validation figure."""
    return f"val_{metric}/{cls}"


def fold_key(repeat: int, fold: int, name: str) -> str:
    """`fold_<repeat>_<fold>/<name>`: fold model (repeat, fold)'s own figure; `name` is a
    `val_key`."""
    return f"fold_{repeat}_{fold}/{name}"


def compute_path_key(stage: str) -> str:
    """`compute_path_<stage>`: how the stage (warmup, finetune) ran."""
    return f"compute_path_{stage}"


def frozen_key(what: str) -> str:
    """`frozen_<what>`: frozen-work entries the trial read from the store or computed."""
    return f"frozen_{what}"


# -- parsing: the parts a key was built from, or None for a key of another kind ----------
def parse_val_key(key: str) -> str | None:
    """The metric of a `val_key` (not of an `sd_key`)."""
    match = _VAL.fullmatch(key)
    return match[1] if match and not _SD.fullmatch(key) else None


def parse_sd_key(key: str) -> str | None:
    """The metric of an `sd_key`."""
    match = _SD.fullmatch(key)
    return match[1] if match else None


def parse_oof_key(key: str) -> str | None:
    """The metric of an `oof_key`."""
    match = _OOF.fullmatch(key)
    return match[1] if match else None


def parse_class_key(
    key: str, metrics: Collection[str] = PER_CLASS_METRICS
) -> tuple[str, str] | None:
    """(metric, class) of a `class_key` whose metric is one of `metrics` (the per-class
    metrics): the class is everything after the first `/`."""
    head, slash, cls = key.partition("/")
    if not slash or not head.startswith("val_") or head[4:] not in metrics:
        return None
    return head[4:], cls


def parse_fold_key(key: str) -> tuple[int, int, str] | None:
    """(repeat, fold, name) of a `fold_key`; `name` is the `val_key` it holds."""
    match = _FOLD.fullmatch(key)
    return (int(match[1]), int(match[2]), match[3]) if match else None


def parse_compute_path_key(key: str) -> str | None:
    """The stage of a `compute_path_key`."""
    match = _COMPUTE_PATH.fullmatch(key)
    return match[1] if match else None


def parse_frozen_key(key: str) -> str | None:
    """What a `frozen_key` counts (read, computed)."""
    match = _FROZEN.fullmatch(key)
    return match[1] if match else None
