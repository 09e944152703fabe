"""Writing a synthetic data set: clinical-style exports, a manifest and ground truth.

Every patient is drawn from its own random stream (seed, patient number), so a data set
is reproducible and a patient does not change when others are added.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from search.data.annotations import format_scores
from search.data.classes import ClassSet
from search.data.manifest import manifest_text
from search.files import write_atomic
from search.synth.dicom import dicom_bytes
from search.synth.printed import PRINTED_SCALES, PrintedExport, render_printed_export
from search.synth.render import FIRST_NAMES, LAST_NAMES, SCANNERS, render_export
from search.synth.uptake import PatientTruth, draw_patient, reader_annotations, uptake_maps
from search.synth.vendors import COLOUR_MAPS, VENDORS, VendorExport, render_vendor_export

__all__ = [
    "DEFAULT_BALANCE",
    "DEFAULT_DIFFICULTY",
    "IMAGE_FORMATS",
    "STYLES",
    "check_synth_options",
    "class_counts",
    "write_synthetic_dataset",
]

DEFAULT_DIFFICULTY = 0.5
# The first seed's 65 normal / 18 ischemia / 4 infarction; 50/50 for CAD vs non-CAD.
DEFAULT_BALANCE = {
    "triad": {"Infarction": 4, "Ischemia": 18, "Normal": 65},
    "binary": {"non-CAD": 50, "CAD": 50},
}
TEXT_OVER_MAP_ODDS = 0.3  # share of exports with a text line burned across the map
MAP_RESOLUTION = 256  # uptake is computed at this size, then scaled onto the canvas
IMAGE_FORMATS = {"png": ".png", "jpeg": ".jpg", "dicom": ".dcm"}
# how exports are drawn: the project's own renderer, as other vendors draw them, or as
# clinics print reports (light page, segment grid and scores over the map)
STYLES = ("project", *VENDORS, "printed")
JPEG_QUALITY = 92  # the screenshot styles'; printed pages are saved at 70-95, drawn per page


def class_counts(patients: int, balance: Mapping[str, float]) -> dict[str, int]:
    """Split `patients` by the weights in `balance` (largest remainder, sums exactly)."""
    total = sum(balance.values())
    exact = {name: patients * weight / total for name, weight in balance.items()}
    counts = {name: math.floor(value) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda n: exact[n] - counts[n], reverse=True)
    for name in by_remainder[: patients - sum(counts.values())]:
        counts[name] += 1
    return counts


def check_synth_options(
    class_set: ClassSet, patients: int, balance: Mapping[str, float] | None, difficulty: float
) -> None:
    """Raise ValueError, before anything is drawn, for options that cannot be honoured."""
    if class_set.name not in DEFAULT_BALANCE:
        raise ValueError(f"synthetic data needs class set triad or binary, not {class_set.name}")
    if balance is not None:
        unknown = sorted(set(balance) - set(class_set.names))
        if unknown:
            raise ValueError(
                f"balance names {unknown} are not classes of {class_set.name}: "
                f"expected {', '.join(class_set.names)}"
            )
        if any(not math.isfinite(w) or w < 0 for w in balance.values()) or not any(
            balance.values()
        ):
            raise ValueError("balance weights must be non-negative numbers, not all zero")
    if not 0 <= difficulty <= 1:
        raise ValueError(f"difficulty must be between 0 and 1, got {difficulty}")
    if patients < 1:
        raise ValueError(f"patients must be at least 1, got {patients}")


def check_export_options(image_format: str, style: str, colour_map: str | None) -> None:
    """Raise ValueError for an export format, style or colour map the generator lacks."""
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"format {image_format!r}: expected one of {', '.join(IMAGE_FORMATS)}")
    if style not in STYLES:
        raise ValueError(f"style {style!r}: expected one of {', '.join(STYLES)}")
    if style == "printed":
        if colour_map is not None and colour_map not in PRINTED_SCALES:
            raise ValueError(
                f"colour map {colour_map!r}: the printed style draws one of "
                f"{', '.join(PRINTED_SCALES)}"
            )
        return
    if colour_map is not None and (style == "project" or colour_map not in COLOUR_MAPS):
        raise ValueError(
            f"colour map {colour_map!r}: expected one of {', '.join(COLOUR_MAPS)}, with a "
            f"vendor style ({', '.join(VENDORS)}); the project style has its own scale"
        )


def write_synthetic_dataset(
    out: Path,
    class_set: ClassSet,
    patients: int,
    seed: int = 0,
    balance: Mapping[str, float] | None = None,
    difficulty: float = DEFAULT_DIFFICULTY,
    canvas: tuple[int, int] = (1640, 1068),
    image_format: str = "png",
    style: str = "project",
    colour_map: str | None = None,
) -> Path:
    """Write rest and stress exports, `manifest.csv` and `truth/<patient>.json`; return the
    manifest path. Class sets other than triad and binary are not drawn (no disease model).

    `image_format` is png, jpeg or dicom (Secondary Capture, a made-up patient in its
    header); `style` is the project's renderer (on `canvas`), or a vendor's: `single` (one
    map per file) or `pair` (stress left and rest right in one file, the manifest's
    `<view>_position` columns saying which, as the truth does), or `printed` (one map a
    page as clinics print reports: light page, dark lettering, a white-topped thermal
    scale, the 17-segment grid and scores over the map; each page's overlay-free twin and
    overlay mask are written to truth/, with truth/twins.csv, a manifest of the twins);
    `colour_map` is a vendor style's (default: the vendor's own) or the printed style's
    scale (thermal or cedars; default drawn per page).
    """
    check_synth_options(class_set, patients, balance, difficulty)
    check_export_options(image_format, style, colour_map)
    balance = balance or DEFAULT_BALANCE[class_set.name]

    rows, twin_rows = [], []
    number = 0
    for label, count in class_counts(patients, balance).items():
        for _ in range(count):
            number += 1
            rng = np.random.default_rng([seed, number])
            pid = f"SYN{number:04d}"
            truth = draw_patient(_diagnosis(label, rng), rng, difficulty)
            maps = uptake_maps(truth, MAP_RESOLUTION, rng, difficulty)
            name = f"{rng.choice(LAST_NAMES)}, {rng.choice(FIRST_NAMES)}"
            study = (date(2023, 1, 1) + timedelta(days=int(rng.integers(0, 1000)))).isoformat()
            scanner = str(rng.choice(SCANNERS))
            identity = {  # a DICOM export's header names the made-up patient
                "PatientName": name.replace(", ", "^"),
                "PatientID": f"{pid}-MRN",
                "StudyDate": study.replace("-", ""),
                "InstitutionName": "Synthetic Hospital",
            }
            row, twin_row = {"patient_id": pid}, {"patient_id": pid}
            reader = {}  # the reader's annotations, after the other columns
            views = {}
            for stem, drawn in _exports(
                maps, style, colour_map, (name, study, scanner), rng, canvas
            ):
                suffix = IMAGE_FORMATS[image_format]
                image_path = f"images/{pid}_{stem}{suffix}"
                mask_path = f"truth/{pid}_{stem}_text.png"
                quality = JPEG_QUALITY
                if isinstance(drawn, PrintedExport):
                    quality = int(rng.integers(70, 96))
                    twin_path, overlay_path = (
                        f"{pid}_{stem}_twin{suffix}",
                        f"truth/{pid}_{stem}_overlay.png",
                    )
                    write_atomic(out / "truth" / twin_path,
                                 _encode(drawn.twin, image_format, identity, quality))  # fmt: skip
                    write_atomic(out / overlay_path, _encode(drawn.overlay_mask, "png"))
                write_atomic(
                    out / image_path, _encode(drawn.image, image_format, identity, quality)
                )
                write_atomic(out / mask_path, _encode(drawn.text_mask, "png"))
                for view, (cx, cy, radius) in drawn.discs.items():
                    row[f"{view}_path"] = image_path
                    territories, scores = reader_annotations(truth, view)
                    reader[f"{view}_territory"] = "+".join(territories) or "none"
                    reader[f"{view}_scores"] = format_scores(scores)
                    views[view] = {
                        "image": image_path,
                        "disc": {"cx": cx, "cy": cy, "radius": radius},
                        "text_mask": mask_path,
                        "text_over_map": drawn.text_over_map,
                    }
                    if style == "pair":
                        row[f"{view}_position"] = views[view]["position"] = drawn.positions[view]
                    if isinstance(drawn, PrintedExport):
                        twin_row[f"{view}_path"] = twin_path
                        views[view] |= {
                            "twin": f"truth/{twin_path}",
                            "overlay_mask": overlay_path,
                            "scale": drawn.colour_map,
                            "page": list(drawn.page),
                            "scores": drawn.scores,
                            "jpeg_quality": quality if image_format == "jpeg" else None,
                        }
            row.update({"label": label, "sex": truth.sex, "scanner": scanner} | reader)
            rows.append(row)
            twin_rows.append(twin_row | {k: row[k] for k in ("label", "sex", "scanner")})
            write_atomic(out / "truth" / f"{pid}.json", _truth_json(pid, label, truth, views))
    if style == "printed":  # the twins, as a data set of their own (paths relative to truth/)
        write_atomic(out / "truth" / "twins.csv", manifest_text(twin_rows))
    return write_atomic(out / "manifest.csv", manifest_text(rows))


def _exports(
    maps, style, colour_map, texts, rng, canvas
) -> list[tuple[str, VendorExport | PrintedExport]]:
    """(file stem, export and its truth) per file one patient's views are drawn into;
    the project renderer's exports in the vendor renderers' shape."""
    name, study, scanner = texts
    if style == "printed":
        return [(view, render_printed_export(maps[view], view, texts, rng, colour_map))
                for view in ("rest", "stress")]  # fmt: skip
    if style == "pair":
        over = bool(rng.random() < TEXT_OVER_MAP_ODDS)
        pair = {view: maps[view] for view in ("stress", "rest")}
        return [("pair", render_vendor_export(pair, "pair", rng, colour_map, over))]
    drawn = []
    for view in ("rest", "stress"):
        over = bool(rng.random() < TEXT_OVER_MAP_ODDS)
        if style == "single":
            export = render_vendor_export({view: maps[view]}, "single", rng, colour_map, over)
        else:
            export = render_export(maps[view], f"{view.upper()} AC", name, study, scanner, rng,
                                   canvas, text_over_map=over)  # fmt: skip
            export = VendorExport(export.image, export.text_mask, {view: export.disc},
                                  {view: None}, "clinical", export.text_over_map)  # fmt: skip
        drawn.append((view, export))
    return drawn


def _diagnosis(label: str, rng: np.random.Generator) -> str:
    """The disease drawn for a label: CAD is ischemia or infarction, 18 to 4 as in the
    first seed; non-CAD is normal."""
    if label == "CAD":
        return "Ischemia" if rng.random() < 18 / 22 else "Infarction"
    return "Normal" if label == "non-CAD" else label


def _truth_json(pid: str, label: str, truth: PatientTruth, views: dict) -> str:
    record = {
        "patient_id": pid,
        "label": label,
        **asdict(truth),
        "views": views,
        "segments_note": "AHA 17-segment model; defect segments are 1-based segment numbers",
    }
    return json.dumps(record, indent=2) + "\n"


def _encode(
    pixels: np.ndarray, image_format: str, identity: dict | None = None,
    quality: int = JPEG_QUALITY,
) -> bytes:  # fmt: skip
    if image_format == "dicom":
        return dicom_bytes(pixels, identity=identity)
    buffer = io.BytesIO()
    if image_format == "jpeg":
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    else:
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
