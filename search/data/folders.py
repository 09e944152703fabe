"""Reading the folder-per-class layout of single-view data sets.

`ROOT/<class name>/<patient id>.<png|jpg|jpeg|tif|tiff>`: the folder names are the
labels and the file stem is the patient id. Hidden files are ignored.
"""

from __future__ import annotations

from pathlib import Path

from search.data.classes import PRESET_CLASS_SETS, ClassSet
from search.data.dataset import Record
from search.data.images import IMAGE_SUFFIXES
from search.data.problems import Problem

__all__ = ["infer_class_set", "read_class_folders"]


def infer_class_set(root: Path) -> ClassSet | None:
    """The preset whose names the class folders match, else the folder names, sorted;
    None with fewer than two class folders."""
    folders = [p.name for p in _class_folders(root)]
    if len(folders) < 2:
        return None
    for preset in PRESET_CLASS_SETS.values():
        if all(preset.index_of(f) is not None for f in folders):
            return preset
    return ClassSet("custom", tuple(sorted(folders)))


def read_class_folders(
    root: Path, class_set: ClassSet, view: str
) -> tuple[list[Record], list[Problem]]:
    """One record per image file, labelled by its folder; `view` names the single view."""
    problems: list[Problem] = []
    records: list[Record] = []
    folders = _class_folders(root)
    if len(folders) < 2:
        names = f" ({', '.join(f.name for f in folders)})" if folders else ""
        return [], [
            Problem(
                str(root),
                f"found {len(folders)} class folder(s){names}; expected at least two: "
                "ROOT/<class name>/<image files>",
            )
        ]
    for stray in sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")):
        problems.append(
            Problem(str(stray), "file outside a class folder is ignored", severity="warning")
        )
    for folder in folders:
        label = class_set.index_of(folder.name)
        if label is None:
            problems.append(
                Problem(
                    str(folder),
                    f"folder name is not a class of class set '{class_set.name}': "
                    f"expected one of {class_set.describe()}",
                )
            )
        for file in sorted(folder.iterdir()):
            if file.name.startswith(".") or file.is_dir():
                continue
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                problems.append(
                    Problem(
                        str(file),
                        f"ignored: expected an image file ({', '.join(IMAGE_SUFFIXES)})",
                        severity="warning",
                    )
                )
                continue
            records.append(
                Record(
                    source=str(file),
                    row=None,
                    patient_id=file.stem,
                    label=label,
                    images={view: file.resolve()},
                )
            )
    return records, problems


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
