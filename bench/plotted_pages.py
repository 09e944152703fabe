"""Printed report pages drawn by a renderer the cleaning was never tuned on: matplotlib,
as report software built on a plotting library draws them (held back from
`search.synth.printed`, whose pages the cleaning rules were developed against).

What differs from the project's generator: matplotlib's own rasteriser and text engine
(hinted, anti-aliased glyphs at point sizes), the map shown by `imshow` and clipped to
its circle (bilinear or nearest resampling of the map's grid), the 17-segment grid drawn
as vector lines in points, a colour bar made by `fig.colorbar` with its own ticks and
outline, matplotlib's white-topped scales (`gist_heat`, `afmhot`) and a thermal scale
with other breaks than ours, smooth or in bands; and vector PDF pages (the map an
embedded image, everything over it vector art), read back through the project's PDF
input at its own resolution.

Each page comes with its twin: the same page with nothing drawn over the map (no grid,
no scores), from the same random choices.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.patches import Circle

from search.data.images import read_export
from search.data.segments import RING_EDGES

THERMAL = LinearSegmentedColormap.from_list(
    "plotted-thermal",
    [(0, "black"), (0.25, "#1010c0"), (0.45, "#b000b0"), (0.62, "#e00000"),
     (0.78, "#ff9000"), (0.9, "#ffff00"), (1, "white")],
)  # fmt: skip
SCALES = {"gist_heat": plt.get_cmap("gist_heat"), "afmhot": plt.get_cmap("afmhot"),
          "thermal": THERMAL}  # fmt: skip
FORMATS = ("png", "jpeg", "pdf")


@dataclass(frozen=True)
class PlottedPage:
    """A page as its viewer reads it, its twin alike, and the map's true circle
    (centre x, centre y, radius) in the page's pixels."""

    image: np.ndarray
    twin: np.ndarray
    disc: tuple[float, float, float]
    scale: str


def render_plotted_page(
    uptake: np.ndarray, rng: np.random.Generator, scale: str, stepped: bool, image_format: str
) -> PlottedPage:
    """One view's `uptake` (N x N in [0, 1], NaN outside the map) on a report page drawn
    by matplotlib, as a PNG, a JPEG (quality 70-95) or a vector PDF read back."""
    colour_map = SCALES[scale].resampled(int(rng.choice([10, 16]))) if stepped else SCALES[scale]
    choices = {
        "landscape": bool(rng.random() < 0.4),
        "dpi": int(rng.choice([100, 120, 150])),
        "paper": ["white", "#fbfaf6", "#eeeeee", "#dcdde0"][int(rng.integers(4))],
        "size": float(rng.uniform(0.45, 0.6)),
        "left": float(rng.uniform(0.06, 0.2)),
        "bar": str(rng.choice(["vertical", "horizontal"])),
        "interpolation": str(rng.choice(["bilinear", "nearest"])),
        "peak": float(rng.uniform(0.96, 0.995)),
        "grid": ["black", "black", "#404040", "white", "#008800"][int(rng.integers(5))],
        "line": float(rng.uniform(0.5, 1.6)),
        "rim": bool(rng.random() < 0.7),
        "score_size": float(rng.uniform(7, 11)),
        "bold": bool(rng.random() < 0.5),
        "labels": bool(rng.random() < 0.6),
        "font": str(rng.choice(["DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono"])),
        "quality": int(rng.integers(70, 96)),
    }
    values = np.clip(uptake / np.nanquantile(uptake, choices["peak"]), 0, 1)
    with plt.rc_context({"font.family": choices["font"]}):
        page, disc, zoom = _draw(values, colour_map, choices, image_format, overlays=True)
        twin, _, _ = _draw(values, colour_map, choices, image_format, overlays=False)
    name = scale + ("-stepped" if stepped else "")
    return PlottedPage(page, twin, tuple(v * zoom for v in disc), name)


def _draw(values, colour_map, choices, image_format, overlays):
    """(page pixels, disc in the figure's pixels, zoom from those to the page's)."""
    size = (11.0, 8.5) if choices["landscape"] else (8.5, 11.0)
    fig = plt.figure(figsize=size, dpi=choices["dpi"], facecolor=choices["paper"])
    share = choices["size"]
    aspect = size[0] / size[1]
    box = [choices["left"], 0.2, share / aspect, share]
    ax = fig.add_axes(box)
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    shown = ax.imshow(np.ma.masked_invalid(values), cmap=colour_map, vmin=0, vmax=1,
                      extent=(-1, 1, -1, 1), interpolation=choices["interpolation"])  # fmt: skip
    shown.set_clip_path(Circle((0, 0), 1, transform=ax.transData))
    weight = "bold" if choices["bold"] else "normal"
    fig.text(0.06, 0.95, "STRESS PERFUSION  (bull's-eye)", fontsize=15, weight="bold")
    for row, line in enumerate(("Patient: DOE, JOHN", "Study date: 2024-01-02", "Camera: GE")):
        fig.text(0.06, 0.92 - 0.025 * row, line, fontsize=10)
    fig.text(0.06, 0.05, "Summed stress score: 3    Extent 4 %", fontsize=10)
    if choices["labels"]:
        for text, (x, y), align in (("ANT", (0, 1.08), ("center", "bottom")),
                                    ("INF", (0, -1.08), ("center", "top")),
                                    ("SEPT", (-1.08, 0), ("right", "center")),
                                    ("LAT", (1.08, 0), ("left", "center"))):  # fmt: skip
            ax.text(x, y, text, ha=align[0], va=align[1], fontsize=10, weight=weight)
    orientation = choices["bar"]
    bar = fig.colorbar(shown, ax=ax, orientation=orientation, fraction=0.04, pad=0.04,
                       ticks=[0, 0.5, 1])  # fmt: skip
    (bar.ax.set_yticklabels if orientation == "vertical" else bar.ax.set_xticklabels)(
        ["0 %", "50 %", "100 %"]
    )
    if overlays:
        _grid(ax, choices)
        _scores(ax, values, choices, weight)
    fig.canvas.draw()
    (x0, y0), (x1, _) = ax.transData.transform([(0, 0), (1, 0)])
    height = fig.get_size_inches()[1] * choices["dpi"]
    disc = (x0 - 0.5, height - y0 - 0.5, x1 - x0)  # pixel centres lie at half-pixels
    buffer = io.BytesIO()
    if image_format == "pdf":
        fig.savefig(buffer, format="pdf", facecolor=choices["paper"])
    else:
        fig.savefig(buffer, format=image_format, facecolor=choices["paper"],
                    dpi=choices["dpi"], pil_kwargs={"quality": choices["quality"]}
                    if image_format == "jpeg" else None)  # fmt: skip
    plt.close(fig)
    pixels = read_export(buffer.getvalue(), page=1 if image_format == "pdf" else None)
    zoom = pixels.shape[0] / height
    if image_format == "pdf":  # the renderer's pixel centres, at its own resolution
        disc = ((disc[0] + 0.5) * zoom - 0.5, (disc[1] + 0.5) * zoom - 0.5, disc[2] * zoom)
        return pixels[..., :3], disc, 1.0
    return pixels[..., :3], disc, zoom


def _grid(ax, choices) -> None:
    """The 17-segment grid: ring boundaries, segment boundaries, the rim when drawn."""
    style = {"color": choices["grid"], "linewidth": choices["line"], "solid_capstyle": "butt"}
    edges = [*RING_EDGES[:3], 1.0] if choices["rim"] else list(RING_EDGES[:3])
    theta = np.linspace(0, 2 * np.pi, 721)
    for edge in edges:
        ax.plot(edge * np.cos(theta), edge * np.sin(theta), **style)
    spokes = [(RING_EDGES[1], 1.0, a) for a in range(30, 360, 60)]
    spokes += [(RING_EDGES[0], RING_EDGES[1], a) for a in range(45, 360, 90)]
    for inner, outer, angle in spokes:
        s, c = math.sin(math.radians(angle)), math.cos(math.radians(angle))
        ax.plot([-inner * s, -outer * s], [inner * c, outer * c], **style)


def _scores(ax, values: np.ndarray, choices, weight: str) -> None:
    """Each segment's score (0-4 from its mean uptake) at its centre."""
    from search.data.segments import segment_map

    segments = segment_map(values.shape[0])
    middles = {0: (RING_EDGES[2] + 1) / 2, 1: (RING_EDGES[1] + RING_EDGES[2]) / 2,
               2: (RING_EDGES[0] + RING_EDGES[1]) / 2, 3: 0.0}  # fmt: skip
    for segment in range(1, 18):
        mean = float(np.nanmean(values[segments == segment]))
        score = int(np.clip(round((0.85 - mean) / 0.1), 0, 4))
        if segment <= 12:
            ring, angle = (segment - 1) // 6, ((segment - 1) % 6) * 60.0
        elif segment <= 16:
            ring, angle = 2, (segment - 13) * 90.0
        else:
            ring, angle = 3, 0.0
        distance = middles[ring]
        x, y = -distance * math.sin(math.radians(angle)), distance * math.cos(math.radians(angle))
        colour = "white" if mean < 0.45 else "black"
        ax.text(x, y, str(score), ha="center", va="center", color=colour,
                fontsize=choices["score_size"], weight=weight)  # fmt: skip
