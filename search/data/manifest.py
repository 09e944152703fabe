"""Reading a manifest CSV in the first seed's format.

Columns: `patient_id`, one `<view>_path` per view (paths relative to the manifest's
folder), `label` (class name or index); optional per view, `<view>_position` (which disc
of a several-map export), `<view>_frame` (which frame of a multi-frame DICOM file) and
`<view>_page` (which page of a PDF report, 1-based), and a reader's annotations
`<view>_territory` and `<view>_scores` (`search.data.annotations`); every other column is
patient metadata. Row numbers count the header as row 1, as a spreadsheet shows them. Labels may
be made optional (a manifest of new patients to predict): then the column may be absent
and a cell empty, but a label that is written must still be one of the class set's.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from search.data.annotations import parse_scores, parse_territories
from search.data.classes import ClassSet
from search.data.dataset import Record
from search.data.disc import parse_position
from search.data.problems import Problem

__all__ = [
    "CLASS_SET_HINT",
    "FRAME_SUFFIX",
    "PAGE_SUFFIX",
    "PATH_SUFFIX",
    "POSITION_SUFFIX",
    "SCORES_SUFFIX",
    "TERRITORY_SUFFIX",
    "manifest_text",
    "read_manifest",
]

PATH_SUFFIX = "_path"
POSITION_SUFFIX = "_position"  # which disc of a several-map export is the view's
FRAME_SUFFIX = "_frame"  # which frame of a multi-frame DICOM export is the view's
PAGE_SUFFIX = "_page"  # which page of a PDF report is the view's
TERRITORY_SUFFIX = "_territory"  # the territories a reader found abnormal in the view
SCORES_SUFFIX = "_scores"  # the reader's 17 segment scores of the view
VIEW_SUFFIXES = (POSITION_SUFFIX, FRAME_SUFFIX, PAGE_SUFFIX, TERRITORY_SUFFIX, SCORES_SUFFIX)
REQUIRED_COLUMNS = ("patient_id", "label")
CLASS_SET_HINT = " (choose another with --classes)"  # commands whose class set is fixed drop it


def read_manifest(
    path: Path, class_set: ClassSet, require_labels: bool = True
) -> tuple[list[Record], tuple[str, ...], tuple[str, ...], list[Problem]]:
    """Parse the manifest's structure: columns, ids and labels (images are checked later).

    Args:
        path: the manifest CSV.
        class_set: the classes labels are read as.
        require_labels: False accepts a manifest without a `label` column and empty
            label cells (their records get label None); unknown labels stay errors.

    Returns:
        records, the views its columns offer, the metadata columns, and the problems found.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return [], (), (), [Problem(source, "manifest file not found")]
    except UnicodeDecodeError as exc:
        return [], (), (), [_not_utf8(source, path.read_bytes(), exc)]
    except OSError as exc:
        return [], (), (), [Problem(source, f"cannot read the manifest: {exc.strerror or exc}")]

    reader = csv.reader(text.splitlines(keepends=True))
    header = next(reader, None)
    if header is None:
        return [], (), (), [Problem(source, "the manifest is empty; expected a header row", row=1)]
    columns = [c.strip() for c in header]
    required = REQUIRED_COLUMNS if require_labels else ("patient_id",)
    problems = _header_problems(source, columns, required, header_line=text.splitlines()[0])
    views = tuple(c[: -len(PATH_SUFFIX)] for c in columns if c.endswith(PATH_SUFFIX))
    metadata_columns = tuple(
        c
        for c in columns
        if c
        and c not in REQUIRED_COLUMNS
        and not c.endswith(PATH_SUFFIX)
        and c not in {v + suffix for v in views for suffix in VIEW_SUFFIXES}
    )

    records: list[Record] = []
    row_start = reader.line_num + 1
    for cells in reader:
        row, row_start = row_start, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue  # blank line
        if len(cells) != len(columns):
            problems.append(
                Problem(source, f"has {len(cells)} fields, the header has {len(columns)}", row=row)
            )
            continue
        values = {c: v.strip() for c, v in zip(columns, cells, strict=True)}
        records.append(_record(source, path.parent, row, values, views, metadata_columns))
        problems.extend(_row_problems(source, records[-1], values, class_set, require_labels))
    if not records:
        problems.append(Problem(source, "the manifest has a header but no patient rows"))
    return records, views, metadata_columns, problems


def _not_utf8(source: str, data: bytes, exc: UnicodeDecodeError) -> Problem:
    """Where the text stops being UTF-8 (row and column, as a spreadsheet counts them)
    and what to do: spreadsheets often save Latin-1 or Windows-1252 ("CSV" rather than
    "CSV UTF-8")."""
    before = data[: exc.start]
    row = before.count(b"\n") + 1
    column = len(before) - (before.rfind(b"\n") + 1) + 1
    byte = data[exc.start]
    return Problem(
        source,
        f"not UTF-8 text: byte 0x{byte:02X} at column {column} is not UTF-8 (a Latin-1 or "
        "Windows-1252 file, as some spreadsheets save CSV?); save the manifest as UTF-8 "
        '("CSV UTF-8")',
        row=row,
    )


def _header_problems(
    source: str, columns: list[str], required: tuple[str, ...], header_line: str
) -> list[Problem]:
    problems = []
    for name in required:
        if name not in columns:
            problems.append(Problem(source, f"missing column '{name}'", row=1))
    if not any(c.endswith(PATH_SUFFIX) for c in columns):
        problems.append(
            Problem(
                source,
                "no image column: expected one '<view>_path' column per view, "
                "such as 'rest_path' and 'stress_path'",
                row=1,
            )
        )
    seen = set()
    for column in columns:
        if column in seen:
            problems.append(Problem(source, f"column '{column}' appears twice", row=1))
        seen.add(column)
    if "" in columns:
        problems.append(Problem(source, "a column has no name", row=1))
    if problems and "," not in header_line:
        for sep, name in ((";", "semicolons"), ("\t", "tabs")):
            if sep in header_line:
                problems.append(
                    Problem(source, f"the header is separated by {name}; expected commas", row=1)
                )
    return problems


def _record(
    source: str,
    folder: Path,
    row: int,
    values: dict[str, str],
    views: tuple[str, ...],
    metadata_columns: tuple[str, ...],
) -> Record:
    images: dict[str, Path | None] = {}
    for view in views:
        cell = values[view + PATH_SUFFIX]
        images[view] = (folder / cell).resolve() if cell else None
    return Record(
        source=source,
        row=row,
        patient_id=values.get("patient_id", ""),
        label=None,
        images=images,
        metadata={c: values[c] for c in metadata_columns},
        positions=_cells(values, views, POSITION_SUFFIX),
        frames=_cells(values, views, FRAME_SUFFIX),  # text until checked: numbers
        pages=_cells(values, views, PAGE_SUFFIX),  # text until checked: numbers
        territories=_cells(values, views, TERRITORY_SUFFIX),  # text until checked
        scores=_cells(values, views, SCORES_SUFFIX),  # text until checked
    )


def _cells(values: dict[str, str], views: tuple[str, ...], suffix: str) -> dict:
    """view -> the non-empty cell of its `<view><suffix>` column."""
    return {v: values[v + suffix] for v in views if values.get(v + suffix)}


def _row_problems(
    source: str, record: Record, values: dict[str, str], class_set: ClassSet, require_labels: bool
) -> list[Problem]:
    problems = []
    for numbers, suffix, expected in (
        (record.frames, FRAME_SUFFIX, "a frame number 1..n of the DICOM file"),
        (record.pages, PAGE_SUFFIX, "a page number 1..n of the PDF file"),
    ):
        for view, text in list(numbers.items()):
            if text.isascii() and text.isdigit() and int(text) >= 1:
                numbers[view] = int(text)
            else:
                del numbers[view]  # reported; the check goes on without it
                message = f"{suffix[1:]} {text!r}: expected {expected}"
                problems.append(Problem(source, message, row=record.row, field=view + suffix))
    for cells, suffix, parse in (
        (record.positions, POSITION_SUFFIX, parse_position),
        (record.territories, TERRITORY_SUFFIX, parse_territories),
        (record.scores, SCORES_SUFFIX, parse_scores),
    ):
        for view, text in list(cells.items()):
            try:
                cells[view] = parse(text)
            except ValueError as exc:
                del cells[view]  # reported; the check goes on without it
                problems.append(Problem(source, str(exc), row=record.row, field=view + suffix))
    if "patient_id" in values and not record.patient_id:
        problems.append(Problem(source, "empty patient_id", row=record.row, field="patient_id"))
    if "label" in values:
        text = values["label"]
        record.label = class_set.index_of(text) if text else None
        if record.label is None and (text or require_labels):
            found = f"unknown label {text!r}" if text else "empty label"
            problems.append(
                Problem(
                    source,
                    f"{found}; expected a class name or index of class set "
                    f"'{class_set.name}': {class_set.describe()}{CLASS_SET_HINT}",
                    row=record.row,
                    field="label",
                )
            )
    return problems


def manifest_text(rows: list[dict[str, str]]) -> str:
    """Manifest rows as CSV text, the header taken from the first row's keys."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
