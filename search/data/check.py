"""The data check that every command runs before spending any compute.

It reads a manifest or a class-folder layout, decodes every image the input mode needs,
and collects every problem at once, each with its row (or file) and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations, repeat
from pathlib import Path

import numpy as np

from search.data.classes import TRIAD, ClassSet
from search.data.clean import CropBox, crop_problem
from search.data.dataset import Dataset, Patient, Record
from search.data.disc import NO_DISC, choose_disc
from search.data.fingerprint import data_fingerprint, images_digest
from search.data.folders import infer_class_set, read_class_folders
from search.data.images import ImageInfo, ImageProblem, inspect_image
from search.data.manifest import PAGE_SUFFIX, PATH_SUFFIX, POSITION_SUFFIX, read_manifest
from search.data.modes import InputMode
from search.data.pdf import DEFAULT_DPI
from search.data.problems import DataError, Problem
from search.data.splits import SplitSpec, split_problems

__all__ = ["DEFAULT_MIN_SIZE", "CheckReport", "check_dataset", "load_dataset"]

SAME_LOOK = 0.5  # mean grey difference below which two views' discs are one map

DEFAULT_MIN_SIZE = 64  # pixels on the short side; smaller cannot show 17 segments usefully

Key = tuple[Path, int | None, int | None]  # an image read: its path, DICOM frame, PDF page


@dataclass(frozen=True)
class CheckReport:
    """What the check found. `dataset` is None when there is any error."""

    source: Path
    class_set: ClassSet
    views: tuple[str, ...]
    records: int
    problems: list[Problem] = field(default_factory=list)
    dataset: Dataset | None = None
    notes: tuple[str, ...] = ()  # facts worth a line (the resolution PDF pages drew at)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors


def load_dataset(path: str | os.PathLike[str], **options) -> Dataset:
    """Check a data set and return it, or raise `DataError` listing every problem.

    Takes the keyword options of `check_dataset`.
    """
    report = check_dataset(path, **options)
    if report.dataset is None:
        raise DataError(report.problems, summary=f"{report.source} failed its check")
    return report.dataset


def check_dataset(
    path: str | os.PathLike[str],
    *,
    class_set: ClassSet | None = None,
    mode: InputMode | None = None,
    split: SplitSpec | None = None,
    splittable: bool = True,
    min_size: int = DEFAULT_MIN_SIZE,
    require_labels: bool = True,
    layout: Mapping[str, str] | None = None,
    crops: Mapping[str, CropBox] | None = None,
) -> CheckReport:
    """Check a manifest CSV, or a folder-per-class root, for everything later steps need.

    Args:
        path: the manifest file or the root of the class folders.
        class_set: the classes; default triad for a manifest, the folder names for folders.
        mode: the input mode to be used; its views must be present for every patient.
            Default: every view the manifest has.
        split: the split to be made; every class must be large enough for it, and with
            `group_by` the column must exist and its groups allow the split (every outer
            fold's, for a nested one). Default 70/15/15.
        splittable: False for jobs that do not split (preprocessing, previews): skip the
            class-size check.
        min_size: smallest accepted image side, in pixels.
        require_labels: False for a manifest of patients to predict: the `label` column
            may be missing and cells empty (those patients get label None); a label that
            is written must still be of the class set. Class folders are always labelled.
        layout: view -> position of its disc in exports that hold several maps (left,
            right, top, bottom, 1..n); a row's `<view>_position` cell takes precedence.
        crops: view -> the crop box cleaning will cut instead of finding the disc; an
            export of any other view with no disc is refused, as cleaning would refuse it.
    """
    layout = dict(layout or {})
    path = Path(path)
    split = split or SplitSpec()
    folders = path.is_dir()
    class_set, records, views, metadata_columns, problems = _read_patients(
        path, class_set, mode, require_labels
    )
    needed = mode.views if mode else views
    problems += _missing_view_columns(path, needed, views, mode, manifest=not folders)
    problems += _duplicate_ids(records)
    problems += _missing_cells(records, needed, mode)
    infos, image_problems = _inspect_images(records, needed, min_size)
    problems += image_problems + _paths_from_elsewhere(path, records, needed, folders)
    problems += _page_problems(records, needed, infos)
    problems += _shared_images(records, infos)
    problems += _disc_problems(records, needed, infos, layout, dict(crops or {}))

    if records and splittable:
        problems += _split_problems(path, records, class_set, split, metadata_columns)

    notes = _rendering(infos)
    report = CheckReport(path, class_set, tuple(needed), len(records), problems, notes=notes)
    if not report.ok:
        return report
    dataset = _dataset(path, class_set, tuple(needed), records, infos, layout, metadata_columns)
    return CheckReport(path, class_set, tuple(needed), len(records), problems, dataset, notes)


def _read_patients(path: Path, class_set: ClassSet | None, mode: InputMode | None,
                   require_labels: bool):  # fmt: skip
    """The class set, the patients' records, the views and metadata columns there are, and
    the problems of reading them: from class folders (one view) or a manifest."""
    if not path.is_dir():
        class_set = class_set or TRIAD
        records, views, metadata_columns, problems = read_manifest(path, class_set, require_labels)
        return class_set, records, views, metadata_columns, problems
    # Fewer than two class folders: any class set will do, reading reports the problem.
    class_set = class_set or infer_class_set(path) or TRIAD
    view = mode.views[0] if mode else "stress"
    records, problems = read_class_folders(path, class_set, view)
    if mode and len(mode.views) > 1:
        problems.append(
            Problem(
                str(path),
                f"a class-folder layout holds one view; input mode "
                f"'{mode.name}' needs {len(mode.views)}: use a manifest CSV",
            )
        )
    return class_set, records, (view,), (), problems


def _dataset(path, class_set, needed, records, infos, layout, metadata_columns) -> Dataset:
    """The checked data set (no errors): its patients, and its fingerprint over the class
    names, ids, labels and every needed image's bytes (a PDF's with its page). Every PDF
    view gets its page, its only one where none was written, so later steps (the map
    cache's keys) never guess it."""
    patients = tuple(
        Patient(
            patient_id=r.patient_id,
            label=r.label,  # no errors: every label is known, or None where optional
            images={v: r.images[v] for v in needed},  # type: ignore[misc]
            metadata=r.metadata,
            row=r.row,
            positions={v: p for v in needed if (p := r.positions.get(v) or layout.get(v))},
            frames={v: r.frames[v] for v in needed if v in r.frames},
            pages={v: page for v in needed if (page := infos[_key(r, v)].page) is not None},
            territories={v: r.territories[v] for v in needed if v in r.territories},
            scores={v: r.scores[v] for v in needed if v in r.scores},
        )
        for r in records
    )

    shas = {r.patient_id: {v: infos[_key(r, v)].sha256 for v in needed} for r in records}
    fingerprint = data_fingerprint(
        class_set.names, ((p.patient_id, p.label, shas[p.patient_id]) for p in patients)
    )
    digests = {p.patient_id: images_digest(shas[p.patient_id]) for p in patients}
    return Dataset(path, class_set, tuple(needed), patients, metadata_columns, fingerprint, digests)


def _split_problems(
    path: Path,
    records: list[Record],
    class_set: ClassSet,
    split: SplitSpec,
    metadata_columns: tuple[str, ...],
) -> list[Problem]:
    """Whether the labelled patients can be split as `split` says: class sizes, and with
    `group_by` the column and its group structure (for every outer fold)."""
    labels = {r.patient_id: r.label for r in records if r.label is not None}
    column = split.group_by
    if column and column not in metadata_columns:
        there = ", ".join(metadata_columns) if metadata_columns else "none"
        message = f"--group-by {column}: the manifest has no such column (its metadata: {there})"
        return [Problem(str(path), message, field=column)]
    groups = {r.patient_id: r.metadata.get(column, "") for r in records} if column else None
    return split_problems(labels, split, class_set.names, groups, source=str(path))


def _missing_view_columns(
    path: Path,
    needed: tuple[str, ...],
    views: tuple[str, ...],
    mode: InputMode | None,
    manifest: bool,
) -> list[Problem]:
    if not manifest or mode is None:
        return []
    return [
        Problem(
            str(path),
            f"missing column '{v}{PATH_SUFFIX}': input mode '{mode.name}' "
            f"needs view '{v}' (the manifest has views: {', '.join(views) or 'none'})",
            row=1,
        )
        for v in needed
        if v not in views
    ]


def _duplicate_ids(records: list[Record]) -> list[Problem]:
    first: dict[str, Record] = {}
    problems = []
    for record in records:
        if not record.patient_id:
            continue
        if record.patient_id in first:
            earlier = first[record.patient_id]
            where = f"row {earlier.row}" if earlier.row is not None else earlier.source
            problems.append(
                Problem(
                    record.source,
                    f"duplicate patient_id '{record.patient_id}', already "
                    f"used in {where}; each patient must appear once",
                    row=record.row,
                    field="patient_id" if record.row is not None else None,
                )
            )
        else:
            first[record.patient_id] = record
    return problems


def _missing_cells(
    records: list[Record], needed: tuple[str, ...], mode: InputMode | None
) -> list[Problem]:
    why = f"input mode '{mode.name}'" if mode else "every view of the manifest (narrow with --mode)"
    return [
        Problem(
            r.source,
            f"no image for view '{view}'; {why} needs one for every patient",
            row=r.row,
            field=view + PATH_SUFFIX,
        )
        for r in records
        for view in needed
        if view in r.images and r.images[view] is None
    ]


def _key(record: Record, view: str) -> Key:
    """What one view reads: the file, and its DICOM frame or PDF page where one is chosen."""
    image = record.images[view]
    assert image is not None  # views without an image are never read
    return image, record.frames.get(view), record.pages.get(view)


def _inspect_images(
    records: list[Record], needed: tuple[str, ...], min_size: int
) -> tuple[dict[Key, ImageInfo], list[Problem]]:
    """Decode each needed image (and DICOM frame, PDF page) once, in threads: PIL releases
    the GIL while decoding (PDFium renders one page at a time, under its lock; finding the
    discs on it runs beside). Keyed by (path, frame, page)."""
    keys = sorted(
        {_key(r, v) for r in records for v in needed if r.images.get(v)},
        key=lambda key: (key[0], key[1] or 0, key[2] or 0),
    )
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        outcomes = dict(zip(keys, pool.map(_try_inspect, keys, repeat(min_size)), strict=True))
    infos = {key: o for key, o in outcomes.items() if isinstance(o, ImageInfo)}
    problems = []
    for record in records:
        for view in needed:
            image = record.images.get(view)
            outcome = outcomes.get(_key(record, view)) if image else None
            if isinstance(outcome, ImageProblem):
                column = view + (f"_{outcome.cell}" if outcome.cell else PATH_SUFFIX)
                problems.append(
                    Problem(
                        record.source,
                        f"{outcome}: {_display(image)}",
                        row=record.row,
                        field=column if record.row is not None else None,
                    )
                )
    return infos, problems


def _paths_from_elsewhere(
    manifest: Path, records: list[Record], needed: tuple[str, ...], folders: bool
) -> list[Problem]:
    """One line, after the missing files, when they are found from the current folder:
    a manifest's image paths are read relative to the manifest's own folder."""
    if folders:
        return []
    base = manifest.parent
    missing = [
        image for r in records for v in needed
        if (image := r.images.get(v)) is not None and not image.exists()
    ]  # fmt: skip
    found = [p for p in missing if p.is_relative_to(base) and p.relative_to(base).exists()]
    if not found:
        return []
    return [
        Problem(
            str(manifest),
            f"{len(found)} of the {len(missing)} missing images exist relative to the current "
            f"folder ({Path.cwd()}), as {found[0].relative_to(base)} does: image paths are "
            f"read relative to the manifest's folder ({base}); write them relative to it, "
            "or as absolute paths",
        )
    ]


def _disc_problems(
    records: list[Record],
    needed: tuple[str, ...],
    infos: dict[Key, ImageInfo],
    layout: dict[str, str],
    crops: dict[str, CropBox],
) -> list[Problem]:
    """An export holding several maps needs the view's position; a position must name a
    disc; two views of a patient must not read one disc (nor two copies of one map).
    An export cleaning would refuse (no disc found, or a crop box beyond it) is refused
    here, in cleaning's words, before any compute."""
    problems = []
    for record in records:
        looks = {}
        for view in needed:
            image = record.images.get(view)
            info = infos.get(_key(record, view)) if image else None
            if info is None:
                continue
            refused = (
                crop_problem(crops[view], info.width, info.height)
                if view in crops
                else (None if info.discs else NO_DISC)
            )
            if refused:
                problems.append(
                    Problem(str(image), f"cannot clean: {refused}", record.row, view + PATH_SUFFIX)
                )
            if refused or view in crops:
                continue
            position = record.positions.get(view) or layout.get(view)
            try:
                choose_disc(list(info.discs), position)
            except ValueError as exc:
                field = view + (POSITION_SUFFIX if record.positions.get(view) else PATH_SUFFIX)
                problems.append(
                    Problem(
                        record.source,
                        f"{_display(image)}: {exc}",
                        row=record.row,
                        field=field if record.row is not None else None,
                    )
                )
                continue
            looks[view] = info.look(position)
        for (first, one), (second, other) in combinations(looks.items(), 2):
            if float(np.abs(one - other).mean()) < SAME_LOOK:
                problems.append(
                    Problem(
                        record.source,
                        f"the '{first}' and '{second}' maps are (nearly) the same pixels: "
                        "one disc read for two views, or one map saved twice? (a screenshot "
                        "of both views needs --layout or <view>_position columns)",
                        row=record.row,
                        severity="warning",
                    )
                )
    return problems


def _try_inspect(key: Key, min_size: int) -> ImageInfo | ImageProblem:
    try:
        return inspect_image(key[0], min_size, frame=key[1], page=key[2])
    except ImageProblem as problem:
        return problem


def _page_problems(
    records: list[Record], needed: tuple[str, ...], infos: dict[Key, ImageInfo]
) -> list[Problem]:
    """A page chosen for a file that is not a PDF: a wrong file, or a wrong column."""
    problems = []
    for record in records:
        for view in needed:
            image, page = record.images.get(view), record.pages.get(view)
            info = infos.get(_key(record, view)) if image and page else None
            if info is not None and info.format != "PDF":
                problems.append(
                    Problem(
                        record.source,
                        f"page {page} given, but {_display(image)} is a {info.format} "
                        f"image, not a PDF: expected a PDF report here, or an empty "
                        f"{view}{PAGE_SUFFIX} cell",
                        row=record.row,
                        field=view + PAGE_SUFFIX,
                    )
                )
    return problems


def _rendering(infos: dict[Key, ImageInfo]) -> tuple[str, ...]:
    """How PDF pages were drawn, in a line: how many, at what resolution."""
    dpis = sorted(round(info.dpi) for info in infos.values() if info.dpi is not None)
    if not dpis:
        return ()
    counts = {dpi: dpis.count(dpi) for dpi in dpis}
    at = ", ".join(f"{dpi} dpi ({n})" for dpi, n in counts.items())
    return (
        f"PDF pages rendered: {len(dpis)}, at {at}; each at its largest image's own "
        f"resolution, {DEFAULT_DPI:.0f} dpi where it has none",
    )


def _shared_images(records: list[Record], infos: dict[Key, ImageInfo]) -> list[Problem]:
    """Byte-identical images of different patients: a copy that can leak across splits."""
    owner: dict[str, Record] = {}
    problems = []
    for record in records:
        for view, image in record.images.items():
            info = infos.get(_key(record, view)) if image else None
            if info is None:
                continue
            other = owner.setdefault(info.sha256, record)
            if other is not record and other.patient_id != record.patient_id:
                where = f"row {other.row}" if other.row is not None else other.source
                problems.append(
                    Problem(
                        record.source,
                        f"the '{view}' image is byte-identical to an image "
                        f"of patient '{other.patient_id}' ({where}); a copied image can "
                        "leak between splits",
                        row=record.row,
                        severity="warning",
                    )
                )
    return problems


def _display(path: Path) -> str:
    """The path relative to the working folder when it lies below it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
