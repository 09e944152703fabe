"""Command-line options shared by every command that reads a data set."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from search.commands.report import print_report
from search.data import (
    DEFAULT_MIN_SIZE,
    CheckReport,
    Dataset,
    SplitSpec,
    check_dataset,
    format_problems,
    parse_class_set,
    parse_mode,
)
from search.data.disc import parse_position
from search.errors import UsageError
from search.layout import map_cache_dir

__all__ = [
    "INTERRUPTED",
    "TERMINATED",
    "UsageError",
    "add_cache_option",
    "add_data_options",
    "add_layout_option",
    "add_split_options",
    "argtype",
    "check_from_args",
    "checked_dataset",
    "comma_names",
    "fold_count",
    "gpu_count",
    "mlflow_uri",
    "non_negative_int",
    "number_type",
    "positive_float",
    "positive_int",
    "refused",
    "seed_number",
    "split_from_args",
]


log = logging.getLogger(__name__)

INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C, as shells report it
TERMINATED = 143  # stopped by SIGTERM (preemption, scancel, kubectl delete), as shells say


def refused(problems) -> int:
    """The exit of a command whose search cannot start (`search.tuning.SearchProblems`):
    the data's problems listed on stderr (1, as a failed data check); with any problem
    of the settings, usage (2)."""
    if not problems.data_only:
        raise UsageError(str(problems)) from problems
    print(problems, file=sys.stderr)
    return 1


def argtype(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Turn a parser's ValueError into argparse's usage error (exit status 2)."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    convert.__name__ = parse.__name__
    return convert


def number_type(
    parse: Callable[[str], Any] = int,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    above: float | None = None,
    below: float | None = None,
    noun: str | None = None,
) -> Callable[[str], Any]:
    """An argparse type: a number `parse` reads (int, float or a parser of one) within
    bounds, `minimum` / `maximum` included, `above` / `below` excluded; anything else is
    refused as usage (exit status 2), argparse naming the option, the message the range,
    so a value no downstream code can take never reaches it."""
    noun = noun or {int: "an integer", float: "a number"}.get(parse, "a number")
    if minimum is not None and maximum is not None:
        expected = f"{noun} from {_shown(minimum)} to {_shown(maximum)}"
    elif minimum is not None and below is not None:
        expected = f"{noun} from {_shown(minimum)} up to (not including) {_shown(below)}"
    elif minimum is not None:
        expected = f"{noun} of at least {_shown(minimum)}"
    elif above is not None and below is not None:
        expected = f"{noun} between {_shown(above)} and {_shown(below)}, both excluded"
    elif above is not None:
        expected = f"{noun} more than {_shown(above)}"
    else:
        expected = noun

    def check(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError as exc:
            if parse not in (int, float):
                raise  # a parser of its own says what it expected
            raise ValueError(f"expected {noun}, got {text!r}") from exc
        inside = math.isfinite(value) and not (
            (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)
            or (above is not None and value <= above)
            or (below is not None and value >= below)
        )
        if not inside:
            raise ValueError(f"expected {expected}, got {text}")
        return value

    check.__name__ = getattr(parse, "__name__", "number")
    return argtype(check)


def _shown(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


positive_int = number_type(int, 1)  # threads, workers, samples, seeds, batch size ...
non_negative_int = number_type(int, 0)  # fine-tune epochs, retries, unfreeze depth ...
positive_float = number_type(float, above=0)
miscoverage = number_type(float, above=0, below=1)  # a conformal level alpha
# Optuna's samplers take seeds below 2**32 (pair i of a search uses seed + i): 2**31 - 1
# leaves room for every pair, and every other seeded generator takes it too
seed_number = number_type(int, 0, 2**31 - 1)


def _gpus(text: str) -> float:
    try:
        gpus = float(text)
    except ValueError:
        gpus = math.nan
    if not math.isfinite(gpus) or gpus < 0 or (gpus > 1 and not gpus.is_integer()):
        raise ValueError(
            "expected 0 or more GPUs: a fraction up to 1 (0.25 shares a GPU four ways) or a "
            f"whole number above 1, got {text}"
        )
    return gpus


# --gpus-per-trial: Ray shares a GPU in fractions, but gives more than one only whole
gpu_count = argtype(_gpus)


def comma_names(text: str) -> tuple[str, ...]:
    """`a, b,c` -> ("a", "b", "c"): the comma-separated lists options take."""
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _split_text(text: str) -> str:
    SplitSpec.parse_fractions(text)  # validate the form now, build with folds and seed later
    return text


def add_data_options(
    parser: argparse.ArgumentParser, split: bool = True, data_flag: bool = False
) -> None:
    """The data set argument and the options that say how it will be used; `split=False`
    for commands that do not split (no --split, --folds, --seed); `data_flag` takes the
    data set as `--data DATA` instead of a positional argument."""
    data_help = (
        "manifest CSV (patient_id, <view>_path..., label, metadata...) or the root "
        "of a folder-per-class layout (ROOT/<class>/<patient>.png)"
    )
    if data_flag:
        parser.add_argument("--data", metavar="DATA", required=True, help=data_help)
    else:
        parser.add_argument("data", metavar="DATA", help=data_help)
    parser.add_argument(
        "--classes",
        type=argtype(parse_class_set),
        default=None,
        help="class set: triad (Infarction, Ischemia, Normal), binary (non-CAD, CAD; reads "
        "triad labels as Normal non-CAD, Ischemia and Infarction CAD), names in index order "
        "such as 'Normal,Abnormal', or labels mapped onto classes such as "
        "'non-CAD=Normal;CAD=Ischemia+Infarction'. Default: triad for a manifest, the "
        "folder names for class folders",
    )
    parser.add_argument(
        "--mode",
        type=argtype(parse_mode),
        default=None,
        help="input mode the data will feed: stress, rest, dual, or views joined by '+' "
        "(rest_nac+stress_nac). Default: every view of the manifest; 'stress' for "
        "class folders (the view name they are given)",
    )
    parser.add_argument(
        "--min-size",
        type=positive_int,
        default=DEFAULT_MIN_SIZE,
        help=f"smallest accepted image side in pixels (default {DEFAULT_MIN_SIZE})",
    )
    add_layout_option(parser)
    if split:
        add_split_options(parser)


def add_split_options(
    parser, seed_help: str = "seed of the split (default 0)", search: bool = False
) -> None:
    """How the patients are split: --split, --folds, --repeats, --outer-folds, --group-by,
    --seed; `search` words the help for a search, which cross-validates every trial."""
    parser.add_argument(
        "--split",
        type=argtype(_split_text),
        default="70/15/15",
        help="train/validation/test percentages, stratified per class (default 70/15/15; "
        "with --folds, e.g. 80/0/20: validation is each fold in turn)",
    )
    parser.add_argument(
        "--folds",
        type=argtype(fold_count),
        default=None,
        help=(
            "cross-validate every trial: stratified k-fold by patient over train + "
            "validation, one model per fold, epochs chosen on the fold-mean curve"
            if search
            else "stratified k-fold over train + validation instead of one validation split"
        )
        + "; the test share of --split is still held out",
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=1,
        help="with --folds: repeated k-fold, this many different partitions (default 1)",
    )
    parser.add_argument(
        "--outer-folds",
        type=argtype(outer_folds),
        default=None,
        metavar="M|groups",
        help="nested cross-validation: every patient in one of M stratified outer folds"
        + ("; the whole search runs once per outer fold with that fold as its unseen test"
           if search else "")
        + " (needs --folds; the shares of --split are not used); 'groups': one outer fold "
        "per value of --group-by (leave one site out)",
    )  # fmt: skip
    parser.add_argument(
        "--group-by",
        default=None,
        metavar="COLUMN",
        help="a manifest metadata column (site, scanner): test split, folds and outer folds "
        "keep each of its groups whole",
    )
    parser.add_argument("--seed", type=seed_number, default=0, help=seed_help)


def outer_folds(text: str) -> int | str:
    """--outer-folds: an integer of at least 2, or `groups`."""
    if text.strip().lower() == "groups":
        return "groups"
    count = int(text)
    if count < 2:
        raise ValueError(f"--outer-folds must be at least 2 (or groups), got {count}")
    return count


def parse_layout(text: str) -> dict[str, str]:
    """`stress=left,rest=right` -> {"stress": "left", "rest": "right"}."""
    layout = {}
    for part in comma_names(text):
        view, sep, position = part.partition("=")
        if not sep or not view.strip():
            raise ValueError(f"layout {text!r}: expected VIEW=POSITION,... such as stress=left")
        layout[view.strip()] = parse_position(position)
    return layout


def add_layout_option(parser: argparse.ArgumentParser) -> None:
    """--layout: which disc is which view, in exports that hold several maps."""
    parser.add_argument(
        "--layout",
        type=argtype(parse_layout),
        default={},
        metavar="VIEW=POSITION,...",
        help="for exports that hold several polar maps (both bullseyes in one screenshot): "
        "which is each view's, by position: left, right, top, bottom, or 1..n in reading "
        "order, e.g. stress=left,rest=right (a <view>_position manifest column overrides)",
    )


def add_cache_option(parser: argparse.ArgumentParser) -> None:
    """--cache: where cleaned maps are kept between runs."""
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help=f"map cache folder (default maps under $POLARMAP_CACHE, else {map_cache_dir()})",
    )


def fold_count(text: str) -> int:
    """--folds: an integer of at least 2."""
    folds = int(text)
    if folds < 2:
        raise ValueError(f"--folds must be at least 2, got {folds}")
    return folds


def split_from_args(args: argparse.Namespace) -> SplitSpec:
    """The split `add_split_options` asked for."""
    outer = args.outer_folds
    try:
        return SplitSpec.parse(
            args.split, folds=args.folds, seed=args.seed, repeats=args.repeats,
            group_by=args.group_by, outer_folds=outer if isinstance(outer, int) else None,
            outer_groups=outer == "groups",
        )  # fmt: skip
    except ValueError as exc:
        raise UsageError(f"--split {args.split}: {exc}") from exc


def checked_dataset(args: argparse.Namespace) -> Dataset | None:
    """The checked data set (its warnings logged), or None after printing the check's
    report of its problems."""
    report = check_from_args(args)
    if not report.ok:
        print_report(report)
        return None
    for line in format_problems(report.warnings, mark_warnings=False):
        log.warning("data: %s", line)  # the command goes on, but its user must see them
    assert report.dataset is not None
    return report.dataset


def check_from_args(args: argparse.Namespace) -> CheckReport:
    """Run the data check with the options given on the command line."""
    splits = hasattr(args, "split")
    return check_dataset(
        args.data,
        class_set=args.classes,
        mode=args.mode,
        split=split_from_args(args) if splits else None,
        splittable=splits,
        min_size=args.min_size,
        layout=args.layout,
        crops=dict(getattr(args, "crop", None) or []),
    )


def mlflow_uri(where: str | None) -> str | None:
    """`--mlflow`'s tracking URI, checked (MLflow installed, a local store's folder made)."""
    if not where:
        return None
    from search.tracking.mlflow_runs import check_mlflow

    return check_mlflow(where)
