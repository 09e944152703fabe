"""`polarmap search run|resume`: the main job, a Hyperband search per backbone and input
mode on Ray Tune, here or on a running cluster."""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import replace
from pathlib import Path

from results.leaderboard import format_leaderboard, leaderboard
from results.records import SearchStatus
from search.commands.options import (
    INTERRUPTED,
    TERMINATED,
    UsageError,
    add_cache_option,
    add_layout_option,
    add_split_options,
    comma_names,
    gpu_count,
    mlflow_uri,
    non_negative_int,
    number_type,
    positive_float,
    positive_int,
    refused,
    split_from_args,
)
from search.errors import SearchStateError
from search.layout import StorageLayout
from search.tracking.viewers import viewer_commands
from search.tuning import SearchProblems, SearchSettings, check_search, prepare_search
from search.tuning.estimate import format_plan
from spaces import PRESETS, get_space

__all__ = ["register", "run_settings", "settings_from_args"]

DEFAULT_STORAGE = "polarmap-runs"


def register(commands: argparse._SubParsersAction) -> None:
    search = commands.add_parser(
        "search",
        help="run or resume a search (Hyperband per backbone and input mode, on Ray Tune)",
        description="Search hyperparameters for every (backbone, input mode) pair of a "
        "space, each pair with its own Hyperband and its own Optuna sampler.",
    )
    actions = search.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="start a search",
        description="Check everything, clean the maps (cached), then run the search on "
        "Ray Tune: started in this process, or on a running cluster with --address. "
        "Every problem with the arguments or the data is listed before Ray starts.",
    )
    run.add_argument("--data", required=True, help="manifest CSV or class-folder root")
    add_layout_option(run)
    run.add_argument(
        "--space",
        required=True,
        help=f"search space: {', '.join(sorted(PRESETS))} (polarmap spaces list)",
    )
    _add_space_overrides(run)
    _add_run_options(run)
    run.add_argument("--name", default=None, help="experiment name (default SPACE-TIMESTAMP)")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the pairs, trials, Hyperband rungs, epoch budget and a time estimate "
        "(from per-epoch costs measured on this machine), and start nothing",
    )
    run.set_defaults(func=run_search_command, parser=run)

    resume = actions.add_parser(
        "resume",
        help="continue an interrupted search",
        description="Continue the search in STORAGE/NAME: finished trials are kept, paused "
        "and unfinished ones continue from their last checkpoints.",
    )
    resume.add_argument(
        "experiment",
        help="the search's folder, STORAGE/NAME (or a URI): wherever it is now, moved or "
        "copied; its result tables are those of the storage it is in",
    )
    resume.add_argument(
        "--data",
        default=None,
        help="the data set, where it is now if it moved since the search started (it must "
        "be the same data: patients, labels and images are checked)",
    )
    resume.add_argument("--address", default=None, help="a running Ray cluster")
    _add_mlflow_option(resume, "(default: the store the search started with, if any)")
    _add_outer_parallel(resume)
    resume.add_argument("--quiet", action="store_true", help="log lines instead of a live view")
    resume.set_defaults(func=resume_search_command, parser=resume)


def _add_mlflow_option(parser, default: str) -> None:
    parser.add_argument(
        "--mlflow",
        default=None,
        metavar="URI",
        help="also show the search in MLflow: a tracking server (http://HOST:5000), an "
        f"SQLite store (sqlite:///mlflow.db) or a folder (docs/tracking.md) {default}",
    )


def _add_outer_parallel(parser) -> None:
    parser.add_argument(
        "--outer-parallel",
        type=positive_int,
        default=None,
        metavar="N",
        help="a nested run's outer searches at once, each under this driver in a Ray task "
        "(default: all of them with --address, else one at a time)",
    )


def _add_space_overrides(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("override the space")
    group.add_argument("--backbones", type=comma_names, help="comma-separated timm names")
    group.add_argument("--modes", type=comma_names, help="comma-separated: stress, rest, dual")
    group.add_argument("--warmup-epochs", type=positive_int, help="warm-up epochs per trial")
    group.add_argument(
        "--finetune-epochs", type=non_negative_int, help="fine-tune epochs per trial (0: none)"
    )
    group.add_argument("--samples", type=positive_int, help="trials per (backbone, mode) pair")
    group.add_argument(
        "--pretrained",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start from ImageNet weights (default: as the space says)",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    sched = parser.add_argument_group("scheduling")
    sched.add_argument("--scheduler", choices=("hyperband", "asha"), default="hyperband")
    sched.add_argument("--sampler", choices=("tpe", "random"), default="tpe")
    sched.add_argument(
        "--reduction-factor", type=number_type(int, 2), default=3, help="Hyperband's eta"
    )
    sched.add_argument("--cpus-per-trial", type=positive_float, default=1.0, help="(default 1)")
    sched.add_argument(
        "--gpus-per-trial",
        type=gpu_count,
        default=0.0,
        help="fractions up to 1 allowed, e.g. 0.25; above 1 whole GPUs (default 0)",
    )
    sched.add_argument("--max-concurrent", type=positive_int, default=None, help="trials at once")
    _add_outer_parallel(sched)
    sched.add_argument(
        "--time-budget",
        type=number_type(parse_duration, above=0, noun="a duration"),
        default=None,
        help="stop cleanly after this long: seconds, or 90m, 2h, 1h30m",
    )
    sched.add_argument(
        "--max-failures", type=non_negative_int, default=2, help="retries per trial (default 2)"
    )
    sched.add_argument("--threads", type=positive_int, default=1, help="CPU threads per trial")
    where = parser.add_argument_group("where")
    where.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"experiment folder or URI (s3://...) (default ./{DEFAULT_STORAGE})",
    )
    where.add_argument(
        "--address", default=None, help="a running Ray cluster: auto, or ray://HOST:10001"
    )
    where.add_argument(
        "--weights",
        default=None,
        help="pretrained weights: a folder, a file or an s3:// prefix, every node reaching it "
        "(polarmap weights fetch fills one; default: the model hub)",
    )
    add_split_options(
        parser.add_argument_group("data"),
        seed_help="seed of the split, samplers and training (default 0)",
        search=True,
    )
    add_cache_option(parser)
    _add_mlflow_option(parser, "(default: none)")
    parser.add_argument("--quiet", action="store_true", help="log lines instead of a live view")


def parse_duration(text: str) -> float:
    """Seconds from '3600', '90m', '2h', '1h30m', '45s'."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not match or not any(match.groups()):
        raise ValueError(f"duration {text!r}: expected seconds or a form like 90m, 2h, 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def settings_from_args(args: argparse.Namespace) -> SearchSettings:
    try:
        space = get_space(args.space)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from exc
    overrides = {
        "backbones": args.backbones,
        "modes": args.modes,
        "warmup_epochs": args.warmup_epochs,
        "finetune_epochs": args.finetune_epochs,
        "samples": args.samples,
        "pretrained": args.pretrained,
    }
    space = replace(space, **{k: v for k, v in overrides.items() if v is not None})
    name = args.name or f"{space.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return SearchSettings(  # paths absolute: a resume may start in any working directory
        space=space,
        data=Path(args.data).expanduser().resolve(),
        name=name,
        storage=StorageLayout.of(args.storage).storage,
        scheduler=args.scheduler,
        sampler=args.sampler,
        reduction_factor=args.reduction_factor,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_concurrent=args.max_concurrent,
        time_budget_s=args.time_budget,
        max_failures=args.max_failures,
        seed=args.seed,
        threads=args.threads,
        weights=args.weights,
        address=args.address,
        split=split_from_args(args),
        cache=args.cache.expanduser().resolve() if args.cache else None,
        disc_layout=args.layout,
        outer_parallel=args.outer_parallel,
        mlflow=mlflow_uri(args.mlflow),
    )


def run_search_command(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    return run_settings(settings, dry_run=args.dry_run, quiet=args.quiet)


def resume_search_command(args: argparse.Namespace) -> int:
    from search.tuning.record import load_settings

    try:
        settings = load_settings(args.experiment)
    except KeyError as exc:
        raise UsageError(f"{args.experiment}: not a search this tool started ({exc})") from exc
    if args.data:
        settings = replace(settings, data=Path(args.data).expanduser().resolve())
    elif not settings.data.exists():
        raise UsageError(
            f"data {settings.data}, as the search started, is not there; if it moved, give "
            f"its place now: polarmap search resume {args.experiment} --data PATH"
        )
    if args.address:
        settings = replace(settings, address=args.address)
    if args.outer_parallel:
        settings = replace(settings, outer_parallel=args.outer_parallel)
    if args.mlflow:
        settings = replace(settings, mlflow=mlflow_uri(args.mlflow))
    elif settings.mlflow:
        mlflow_uri(settings.mlflow)  # still installed
    return run_settings(settings, resume=True, quiet=args.quiet)


def run_settings(settings: SearchSettings, dry_run=False, resume=False, quiet=False) -> int:
    """Check, plan and run (or resume) the search `settings` describe, as `search run` and
    `search resume` do; an outer fold's settings run that outer search alone."""
    if not (resume or dry_run):
        refuse_a_taken_name(settings)
    try:
        dataset = check_search(settings)
    except SearchProblems as problems:
        return refused(problems)
    nested = settings.split.nested and settings.nested_in is None
    if resume:  # before any cleaning: the data must be what the search started with
        from search.tuning.record import check_same_data

        check_same_data(settings.experiment, dataset, None)
    if nested:  # the plan of outer fold 0's search, then what the nested run adds
        from search.tuning.nested import outer_settings

        prepared = prepare_search(outer_settings(settings, 0), dataset)
    else:
        prepared = prepare_search(settings, dataset)
    if resume and not nested:
        check_same_data(settings.experiment, None, prepared.split.test_fingerprint)
    print(format_plan(settings, prepared, measure=dry_run))
    if dry_run:
        return 0
    print(viewer_commands(settings.experiment, settings.mlflow))
    if nested:
        return _run_nested(settings, dataset, prepared, resume, quiet)
    from search.tuning.runner import run_search

    run = run_search(settings, prepared, resume=resume, quiet=quiet)
    if run.interrupted:
        return _stopped(run.stopped_by)  # the runner said how to go on
    print(format_leaderboard(leaderboard(settings.results, settings.name)))
    tables = settings.results
    print(f"\nexperiment: {settings.experiment}\nresult tables: {tables}")
    print(f"  polarmap results summary|curves|leaderboard {tables} --search {settings.name}")
    return 0


def _run_nested(settings: SearchSettings, dataset, first, resume: bool, quiet: bool) -> int:
    from search.tuning.nested import run_nested

    if run_nested(settings, dataset, first, resume=resume, quiet=quiet) == SearchStatus.INTERRUPTED:
        print(f"interrupted; go on with: polarmap search resume {settings.experiment}")
        from search.tuning.runner import StopSignals

        return _stopped(StopSignals.last)
    tables = settings.results
    print(f"\nnested run {settings.name}: {first.split.outer_count} outer searches")
    print(f"result tables: {tables}")
    print(f"  polarmap finalize {tables} --search {settings.name}")
    return 0


def _stopped(signal_name: str | None) -> int:
    """The exit status of a search that stopped before its end: 143 after SIGTERM, 130
    after Ctrl-C (or Ray's own stop)."""
    return TERMINATED if signal_name == "SIGTERM" else INTERRUPTED


def refuse_a_taken_name(settings: SearchSettings) -> None:
    """One name, one search: refuse to start a search whose name its storage already
    holds (a record, or a row of the searches table), before any compute. Two drivers
    starting the same name at once are parted later, when the first claims the name by
    writing its record (`search.tuning.record.write_settings`)."""
    from results.store import ResultStore
    from search.tuning.record import load_search_row, taken_name

    rows = ResultStore(settings.results).table("searches", search=settings.name).to_pylist()
    if rows or load_search_row(settings.experiment) is not None:
        raise SearchStateError(taken_name(settings, rows[0]["status"] if rows else None))
