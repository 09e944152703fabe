"""`polarmap data preprocess` and `polarmap data preview`: clean exports into maps (crop to
the disc, remove text, blank outside, resize) into the cache, and draw them for a check
by eye."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

from search.commands.options import (
    UsageError,
    add_cache_option,
    add_data_options,
    argtype,
    checked_dataset,
    number_type,
    positive_int,
)
from search.data import DataError, Dataset, Patient, Problem
from search.data.clean import CropBox, clean_export
from search.data.export import export_cleaned
from search.data.images import read_export
from search.data.map_cache import MapCache
from search.data.normalize import backbone_input
from search.data.preprocess import CleanedMaps, PreprocessSpec, preprocess_dataset
from search.data.preview import PreviewItem, draw_preview
from search.files import write_atomic

__all__ = ["format_cleaning", "register", "write_preview"]

MIN_SIZE, MAX_SIZE = 16, 2048  # map sizes in pixels cleaning makes


def _crop(text: str) -> tuple[str, CropBox]:
    view, sep, box = text.partition("=")
    if not sep or not view:
        raise ValueError(f"crop {text!r}: expected VIEW=LEFT,TOP,RIGHT,BOTTOM")
    return view, CropBox.parse(box)


def add_cleaning_options(parser: argparse.ArgumentParser) -> None:
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--backbone",
        default=None,
        help="size maps for this timm backbone's input (its data config), e.g. resnet18",
    )
    size.add_argument(
        "--size",
        type=number_type(int, MIN_SIZE, MAX_SIZE),
        default=None,
        help=f"map size in pixels, {MIN_SIZE} to {MAX_SIZE} (default 224)",
    )
    parser.add_argument(
        "--crop",
        type=argtype(_crop),
        action="append",
        default=[],
        metavar="VIEW=L,T,R,B",
        help="use this box (pixels; right/bottom exclusive) for every export of VIEW "
        "instead of finding the disc; repeat per view",
    )


def spec_from_args(args: argparse.Namespace, dataset: Dataset) -> PreprocessSpec:
    crops = dict(args.crop)
    unknown = sorted(set(crops) - set(dataset.views))
    if unknown:
        raise UsageError(
            f"--crop for view(s) {', '.join(unknown)}: the data set's views are "
            f"{', '.join(dataset.views)}"
        )
    if args.backbone:
        try:
            size = backbone_input(args.backbone).size
        except ValueError as exc:
            raise UsageError(f"--backbone: {exc}") from exc
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise UsageError(
                f"--backbone {args.backbone}: its input size {size} is not {MIN_SIZE} to "
                f"{MAX_SIZE} pixels"
            )
    else:
        size = args.size or 224  # --size is in range: its type saw to it
    return PreprocessSpec(size, crops)


def register(commands: argparse._SubParsersAction) -> None:
    preprocess = commands.add_parser(
        "preprocess",
        help="clean every export into the map cache",
        description="Check the data set, then find each export's polar-map disc (or use "
        "--crop), remove burned-in text inside it, blank what lies outside, resize, and "
        "store the uint8 map in the cache keyed by the image bytes and these settings. "
        "Later runs and searches read the cache instead of decoding again.",
    )
    add_data_options(preprocess, split=False)
    add_cleaning_options(preprocess)
    add_cache_option(preprocess)
    preprocess.add_argument(
        "--workers", type=positive_int, default=None, help="processes (default: one per core)"
    )
    preprocess.add_argument(
        "--export", type=Path, default=None, metavar="DIR",
        help="also write the cleaned, de-identified maps as DIR/<patient>/<view>.png and "
        "DIR/manifest.csv pointing at them (every command accepts it)",
    )  # fmt: skip
    preprocess.set_defaults(func=run_preprocess, parser=preprocess)

    preview = commands.add_parser(
        "preview",
        help="draw exports next to their cleaned maps, to check the crop by eye",
        description="Draw, for a sample of patients, every export of the input mode "
        "(de-identified: blurred outside the disc, found text covered in magenta, the "
        "found disc outlined in green) next to its cleaned map, into one PNG.",
    )
    add_data_options(preview, split=False)
    add_cleaning_options(preview)
    preview.add_argument("--out", type=Path, required=True, help="PNG to write")
    preview.add_argument(
        "--patients",
        type=positive_int,
        default=8,
        help="patients, spread over the data set (default 8)",
    )
    preview.add_argument("--ids", default=None, help="comma-separated patient ids to show instead")
    preview.set_defaults(func=run_preview, parser=preview)


def run_preprocess(args: argparse.Namespace) -> int:
    dataset = checked_dataset(args)
    if dataset is None:
        return 1
    spec = spec_from_args(args, dataset)
    cleaned = preprocess_dataset(dataset, spec, MapCache(args.cache), workers=args.workers)
    print(format_cleaning(cleaned))
    if args.export:
        try:
            manifest = export_cleaned(dataset, cleaned, args.export)
        except ValueError as exc:
            raise UsageError(f"--export {args.export}: {exc}") from exc
        print(f"cleaned maps written to {args.export}; their manifest: {manifest}")
    return 0


def format_cleaning(cleaned: CleanedMaps) -> str:
    """A few lines on what preprocessing did and where the maps are."""
    total = cleaned.maps.shape[0] * cleaned.maps.shape[1]
    size = cleaned.maps.shape[2]
    fresh = cleaned.text_fractions[~np.isnan(cleaned.text_fractions)]
    lines = [
        f"{total} maps of {size} x {size} px ({', '.join(cleaned.views)}): "
        f"{total - cleaned.from_cache} cleaned now, {cleaned.from_cache} from the cache, "
        f"{cleaned.seconds:.1f} s",
    ]
    if fresh.size:
        lines.append(
            f"text removed inside the disc: median {100 * np.median(fresh):.2f} %, largest "
            f"{100 * fresh.max():.2f} % of a disc (of the {fresh.size} cleaned now)"
        )
    lines.append(f"cache: {cleaned.cache}")
    return "\n".join(lines)


def run_preview(args: argparse.Namespace) -> int:
    dataset = checked_dataset(args)
    if dataset is None:
        return 1
    spec = spec_from_args(args, dataset)
    patients = _pick(dataset, args.ids, args.patients)
    write_preview(dataset, spec, args.out, patients=patients)
    print(f"wrote {args.out}: {len(patients)} patients, {len(dataset.views)} view(s) each")
    return 0


def write_preview(
    dataset: Dataset,
    spec: PreprocessSpec,
    out: Path,
    patients: list[Patient] | None = None,
    count: int = 8,
) -> Path:
    """Draw `patients` (default: `count` spread over the data set) into the PNG `out`.

    Raises:
        DataError: listing every export that cannot be cleaned.
    """
    patients = patients or _pick(dataset, None, count)
    rows, problems = [], []
    for patient in patients:
        row = []
        for view in dataset.views:
            path = patient.images[view]
            export = read_export(
                path.read_bytes(), patient.frames.get(view), patient.pages.get(view)
            )
            try:
                cleaned = clean_export(
                    export, spec.size, spec.crops.get(view), patient.positions.get(view)
                )
            except ValueError as exc:
                problems.append(Problem(str(path), str(exc), patient.row, f"{view}_path"))
                continue
            label = dataset.class_set.names[patient.label]
            caption = (
                f"{patient.patient_id} ({label}), {view}: disc r={cleaned.disc.radius:.0f} px, "
                f"text {100 * cleaned.text_fraction:.1f} %"
            )
            if cleaned.unsure.any():  # left alone: the reader judges (orange boxes)
                caption += f", unsure {cleaned.unsure.sum()} px left"
            row.append(PreviewItem(caption, export, cleaned))
        if row:
            rows.append(row)
    if problems:
        raise DataError(problems, summary="exports that cannot be cleaned")
    return write_atomic(out, _png(draw_preview(rows)))


def _pick(dataset: Dataset, ids: str | None, count: int) -> list[Patient]:
    if ids:
        wanted = [i.strip() for i in ids.split(",") if i.strip()]
        by_id = {p.patient_id: p for p in dataset.patients}
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise UsageError(f"--ids: no patient {', '.join(missing)} in {dataset.source}")
        return [by_id[i] for i in wanted]
    if count < 1:
        raise UsageError(f"--patients {count}: expected at least 1")
    picks = np.linspace(0, len(dataset) - 1, min(count, len(dataset))).round().astype(int)
    return [dataset.patients[i] for i in dict.fromkeys(picks)]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
