"""Class activation maps on the AHA 17-segment model: per-segment and per-territory means,
whether the hottest territory is the diseased one, and the bullseye plot of 17 values.

Segments and orientation are those of `search.data.segments`, the same geometry the
synthetic defects are drawn on, so a CAM can be checked against where the defect is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from matplotlib import colors
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.patches import Wedge

from search.data.segments import RING_EDGES, TERRITORIES, segment_map

__all__ = [
    "TERRITORY_NAMES",
    "bullseye_figure",
    "hottest_territory",
    "segment_means",
    "territory_match",
    "territory_means",
]

# Column order of `territory_means`.
TERRITORY_NAMES: tuple[str, ...] = tuple(TERRITORIES)


def segment_means(cams: np.ndarray) -> np.ndarray:
    """Mean CAM value over each segment's pixels.

    Args:
        cams: (N, S, S) CAMs on square polar maps.

    Returns:
        (N, 17) float64; column i is segment i + 1.
    """
    cams = np.asarray(cams, dtype=np.float64)
    if cams.ndim != 3 or cams.shape[1] != cams.shape[2]:
        raise ValueError(f"expected (N, S, S) square CAMs, got shape {cams.shape}")
    labels = segment_map(cams.shape[1]).ravel()
    inside = labels > 0
    onehot = np.eye(17)[labels[inside] - 1]  # (pixels, 17)
    counts = onehot.sum(axis=0)
    if not counts.all():
        raise ValueError(f"{cams.shape[1]} px maps are too small: some segments have no pixel")
    return cams.reshape(len(cams), -1)[:, inside] @ onehot / counts


def territory_means(segment_values: np.ndarray) -> np.ndarray:
    """Mean of each coronary territory's segment values, so territories of 7 (LAD) and 5
    segments compare fairly.

    Args:
        segment_values: (N, 17), as from `segment_means`.

    Returns:
        (N, 3) float64, columns in `TERRITORY_NAMES` order (LAD, RCA, LCx).
    """
    values = np.asarray(segment_values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != 17:
        raise ValueError(f"expected (N, 17) segment values, got shape {values.shape}")
    return np.stack(
        [values[:, [s - 1 for s in TERRITORIES[name]]].mean(axis=1) for name in TERRITORY_NAMES],
        axis=1,
    )


def hottest_territory(territory_values: np.ndarray) -> np.ndarray:
    """Each patient's territory with the highest mean, by name; ties go to the first in
    `TERRITORY_NAMES`.

    Args:
        territory_values: (N, 3), as from `territory_means`.

    Returns:
        (N,) array of territory names.
    """
    values = np.asarray(territory_values)
    if values.ndim != 2 or values.shape[1] != len(TERRITORY_NAMES):
        raise ValueError(f"expected (N, 3) territory values, got shape {values.shape}")
    return np.asarray(TERRITORY_NAMES)[values.argmax(axis=1)]


def territory_match(
    predicted_territories: Sequence[str], true_territories: Sequence[str]
) -> tuple[float, float]:
    """How often the CAM's hottest territory is the diseased one, and what always naming
    the most common diseased territory would score (the rate to beat).

    Only patients with one known diseased territory belong here; leave normals out.

    Returns:
        (rate, baseline_rate), both in [0, 1].
    """
    predicted, truth = list(predicted_territories), list(true_territories)
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predicted territories for {len(truth)} patients")
    if not truth:
        raise ValueError("no patients to compare territories on")
    rate = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
    baseline = Counter(truth).most_common(1)[0][1] / len(truth)
    return rate, baseline


def _segment_wedges() -> list[tuple[int, float, float, float, float]]:
    """(segment, inner radius, outer radius, start, end angle in degrees counterclockwise
    from the right, as matplotlib draws them) for segments 1-17, as `segment_map` lays
    them out: anterior at the top, septal on the left."""
    apex, apical, mid, basal = RING_EDGES
    wedges = []
    for first, inner, outer in ((1, mid, basal), (7, apical, mid)):
        for k in range(6):  # 60 degrees each, centred on anterior, anteroseptal, ...
            wedges.append((first + k, inner, outer, 90 + 60 * k - 30, 90 + 60 * k + 30))
    for k in range(4):  # 90 degrees each, centred on anterior, septal, inferior, lateral
        wedges.append((13 + k, apex, apical, 90 + 90 * k - 45, 90 + 90 * k + 45))
    wedges.append((17, 0.0, apex, 0, 360))
    return wedges


def bullseye_figure(
    values17: Sequence[float] | np.ndarray,
    title: str = "",
    vmin: float = 0,
    vmax: float = 1,
    cmap: str = "inferno",
) -> Figure:
    """A 17-segment bullseye: each segment filled with its value's colour and labelled
    with its number and value, and a colour bar. NaN segments are grey."""
    values = np.asarray(values17, dtype=np.float64).reshape(-1)
    if values.shape != (17,):
        raise ValueError(f"expected 17 segment values, got {values.size}")
    norm = colors.Normalize(vmin=vmin, vmax=vmax)
    mappable = ScalarMappable(norm=norm, cmap=cmap)

    figure = Figure(figsize=(5.2, 4.4), layout="constrained")
    ax = figure.add_subplot()
    for segment, inner, outer, start, end in _segment_wedges():
        value = values[segment - 1]
        face = (0.8, 0.8, 0.8, 1.0) if np.isnan(value) else mappable.to_rgba(value)
        ax.add_patch(
            Wedge(
                (0, 0),
                outer,
                start,
                end,
                width=outer - inner if inner else None,
                facecolor=face,
                edgecolor="white",
                linewidth=1.5,
                label=f"segment {segment}",
            )
        )
        radius = (inner + outer) / 2 if inner else 0.0
        angle = np.radians((start + end) / 2)
        text = f"{segment}\n" + ("n/a" if np.isnan(value) else f"{value:.2f}")
        ax.text(
            radius * np.cos(angle),
            radius * np.sin(angle),
            text,
            ha="center",
            va="center",
            fontsize=7,
            color=_readable_on(face),
        )
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title)
    figure.colorbar(mappable, ax=ax, shrink=0.8)
    return figure


def _readable_on(face: tuple[float, ...]) -> str:
    """Black text on light colours, white on dark ones."""
    red, green, blue = face[:3]
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"
