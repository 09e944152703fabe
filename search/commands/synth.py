"""`polarmap data synth`: write a synthetic data set of clinical-style exports."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from search.commands.options import UsageError, argtype, number_type, positive_int, seed_number
from search.commands.report import print_report
from search.data import PRESET_CLASS_SETS, SplitSpec, check_dataset, format_problems
from search.data.splits import feasibility_problems
from search.synth import (
    COLOUR_MAPS,
    DEFAULT_DIFFICULTY,
    IMAGE_FORMATS,
    PRINTED_SCALES,
    STYLES,
    check_export_options,
    check_synth_options,
    write_synthetic_dataset,
)

__all__ = ["register", "run_synth"]


def _balance(text: str) -> dict[str, float]:
    weights = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        try:
            weights[name.strip()] = float(weight)
        except ValueError:
            raise ValueError(
                f"balance {text!r}: expected NAME=WEIGHT pairs such as "
                "Infarction=4,Ischemia=18,Normal=65"
            ) from None
    return weights


def _canvas(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        size = int(width), int(height)
    except ValueError:
        size = (0, 0)
    if min(size) < 1:
        raise ValueError(
            f"canvas {text!r}: expected WIDTHxHEIGHT in pixels, each at least 1, such as 1640x1068"
        )
    return size


def register(commands: argparse._SubParsersAction) -> None:
    synth = commands.add_parser(
        "synth",
        help="write a synthetic data set of clinical-style exports with ground truth",
        description="Draw rest and stress polar maps on the AHA 17-segment model (normal "
        "variation, attenuation artefacts, noise; ischemia lowers a coronary territory at "
        "stress, infarction at rest and stress), export them like clinical software "
        "(colour map, colour bar, burned-in text, sometimes over the map), and write "
        "manifest.csv plus truth/<patient>.json and text masks. Then run the data check.",
    )
    synth.add_argument("out", type=Path, metavar="OUT", help="output folder")
    synth.add_argument(
        "--patients",
        type=positive_int,
        default=160,
        help="number of patients (default 160: enough for 7 infarction cases at 65/18/4)",
    )
    synth.add_argument(
        "--classes",
        choices=("triad", "binary"),
        default="triad",
        help="triad (Infarction, Ischemia, Normal) or binary (non-CAD, CAD); default triad",
    )
    synth.add_argument("--seed", type=seed_number, default=0, help="seed (default 0)")
    synth.add_argument(
        "--balance",
        type=argtype(_balance),
        default=None,
        help="class weights, e.g. Infarction=4,Ischemia=18,Normal=65 (the first seed's "
        "proportions, the triad default); binary default non-CAD=50,CAD=50",
    )
    synth.add_argument(
        "--difficulty",
        type=number_type(float, 0, 1),
        default=DEFAULT_DIFFICULTY,
        help="0 (large, severe defects, faint artefacts) to 1 (small, mild defects, strong "
        f"artefacts and noise); default {DEFAULT_DIFFICULTY}",
    )
    synth.add_argument(
        "--format",
        choices=tuple(IMAGE_FORMATS),
        default="png",
        dest="image_format",
        help="export file format: png (default), jpeg, or dicom (Secondary Capture with a "
        "made-up patient in its header)",
    )
    synth.add_argument(
        "--style",
        choices=STYLES,
        default="project",
        help="how exports are drawn: project (default, the project's renderer), single (one "
        "map with count noise, a horizontal colour bar, jet by default), pair (stress "
        "left and rest right in one file; the manifest's <view>_position columns say which), "
        "or printed (report pages: light page, dark lettering, a white-topped thermal scale, "
        "the 17-segment grid and scores over the map; overlay-free twins in truth/)",
    )
    synth.add_argument(
        "--colour-map",
        choices=(*COLOUR_MAPS, *PRINTED_SCALES),
        default=None,
        help="colour map of the single and pair styles (default: jet for single, one drawn "
        "per export for pair); the printed style's scale, thermal or cedars (default: one "
        "drawn per page)",
    )
    synth.add_argument(
        "--canvas",
        type=argtype(_canvas),
        default=(1640, 1068),
        help="export size WIDTHxHEIGHT (default 1640x1068, as the seed's)",
    )
    synth.set_defaults(func=run_synth, parser=synth)


def run_synth(args: argparse.Namespace) -> int:
    classes = PRESET_CLASS_SETS[args.classes]
    try:
        check_synth_options(classes, args.patients, args.balance, args.difficulty)
        check_export_options(args.image_format, args.style, args.colour_map)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    started = time.perf_counter()
    manifest = write_synthetic_dataset(
        args.out,
        classes,
        args.patients,
        seed=args.seed,
        balance=args.balance,
        difficulty=args.difficulty,
        canvas=args.canvas,
        image_format=args.image_format,
        style=args.style,
        colour_map=args.colour_map,
    )
    print(f"wrote {args.patients} patients to {manifest} in {time.perf_counter() - started:.1f} s")
    report = check_dataset(manifest, class_set=classes, splittable=False)
    print_report(report)
    if not report.ok:
        return 1
    spec = SplitSpec(seed=args.seed)
    counts = report.dataset.class_counts()
    unfilled = format_problems(feasibility_problems(counts, spec, str(manifest)))
    if not unfilled:
        print(f"splits: it fills the default {spec.describe()}")
        return 0
    print(
        f"splits: it cannot fill the default {spec.short()} split (what would work, for "
        "the --split of `data check`, `data split`, `train` and `search run`):"
    )
    for line in unfilled:
        print(f"  {line}")
    return 0
