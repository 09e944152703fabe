"""Class sets: which diagnoses a data set is labelled with, and how labels are read.

A class's index is its position in the set. The presets follow the seeds: `triad`
(Infarction 0, Ischemia 1, Normal 2, the first seed's CSV) and `binary` (non-CAD 0,
CAD 1, the second seed; CAD is the positive class), which also reads triad labels as the
second seed grouped them (Normal as non-CAD; Ischemia and Infarction as CAD). Users may
name their own classes, or map labels onto classes: `non-CAD=Normal;CAD=Ischemia+Infarction`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "BINARY",
    "BINARY_FROM_TRIAD",
    "PRESET_CLASS_SETS",
    "TRIAD",
    "ClassSet",
    "parse_class_set",
]


def _normalize(name: str) -> str:
    """Label spelling that ignores case, spaces, hyphens and underscores ("Non-CAD" = "noncad")."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


@dataclass(frozen=True)
class ClassSet:
    """An ordered set of class names; the index of a name is its label index.

    Args:
        name: preset name (`triad`, `binary`) or `custom`.
        names: class names in index order.
        aliases: extra spellings accepted for a class, mapped to its name.
    """

    name: str
    names: tuple[str, ...]
    aliases: dict[str, str] = field(default_factory=dict, compare=False)
    mapping: str | None = None  # `non-CAD=Normal;CAD=Ischemia+Infarction`, as given

    @property
    def spec(self) -> str:
        """What to record with a result: the preset's name, the names, or the mapping."""
        if self.mapping:
            return self.mapping
        return self.name if self.name != "custom" else ",".join(self.names)

    def __post_init__(self) -> None:
        if len(self.names) < 2:
            raise ValueError(f"a class set needs at least two classes, got {list(self.names)}")
        normalized = [_normalize(n) for n in self.names]
        if len(set(normalized)) != len(normalized) or "" in normalized:
            raise ValueError(f"class names must be distinct and non-empty, got {list(self.names)}")

    def __len__(self) -> int:
        return len(self.names)

    def index_of(self, label: str) -> int | None:
        """The class index for a label written as a name (any case) or an index, else None."""
        text = label.strip()
        if text.isascii() and text.isdigit():
            index = int(text)
            return index if index < len(self.names) else None
        key = _normalize(text)
        lookup = {_normalize(n): i for i, n in enumerate(self.names)}
        lookup.update({_normalize(a): self.names.index(n) for a, n in self.aliases.items()})
        return lookup.get(key)

    def describe(self) -> str:
        """`Infarction (0), Ischemia (1), Normal (2)`: how users may write the labels."""
        return ", ".join(f"{n} ({i})" for i, n in enumerate(self.names))


TRIAD = ClassSet(
    "triad",
    ("Infarction", "Ischemia", "Normal"),
    aliases={"infarct": "Infarction", "ischaemia": "Ischemia"},
)
BINARY_FROM_TRIAD = "non-CAD=Normal;CAD=Ischemia+Infarction"  # the second seed's grouping
BINARY = ClassSet(
    "binary",
    ("non-CAD", "CAD"),
    aliases={
        "normal": "non-CAD", "nocad": "non-CAD", "abnormal": "CAD",
        **{label: "CAD" for label in ("ischemia", "ischaemia", "infarction", "infarct")},
    },
    mapping=f"binary ({BINARY_FROM_TRIAD})",
)  # fmt: skip
PRESET_CLASS_SETS = {c.name: c for c in (TRIAD, BINARY)}


def parse_class_set(spec: str) -> ClassSet:
    """`triad`, `binary`, comma-separated class names in index order (`A,B,C`), or a
    mapping of labels onto classes in index order (`non-CAD=Normal;CAD=Ischemia+Infarction`:
    every label on the right is read as the class on the left)."""
    if spec in PRESET_CLASS_SETS:
        return PRESET_CLASS_SETS[spec]
    if "=" in spec:
        return _mapping(spec)
    names = tuple(n.strip() for n in spec.split(",") if n.strip())
    if len(names) < 2:
        presets = ", ".join(PRESET_CLASS_SETS)
        raise ValueError(
            f"class set {spec!r}: expected one of {presets} or at least two "
            "comma-separated class names in index order, such as 'Normal,Abnormal'"
        )
    return ClassSet("custom", names)


def _mapping(spec: str) -> ClassSet:
    names, aliases = [], {}
    for part in (p.strip() for p in spec.split(";") if p.strip()):
        name, _, labels = part.partition("=")
        name, sources = name.strip(), [label.strip() for label in labels.split("+")]
        if not name or not all(sources):
            raise ValueError(
                f"class mapping {spec!r}: expected CLASS=LABEL+LABEL;CLASS=LABEL..., such as "
                f"{BINARY_FROM_TRIAD!r}"
            )
        names.append(name)
        for label in sources:
            if _normalize(label) in {_normalize(a) for a in aliases}:
                raise ValueError(f"class mapping {spec!r}: label {label!r} is mapped twice")
            aliases[label] = name
    return ClassSet("mapping", tuple(names), aliases=aliases, mapping=spec)
