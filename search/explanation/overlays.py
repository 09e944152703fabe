"""One patient's class activation maps drawn over its cleaned polar maps, view by view, as
the seed papers show them: where the classifier looked, next to what it decided."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from search.data.segments import polar_grid

__all__ = ["cam_panel_figure"]

CAM_ALPHA = 0.45  # the map stays readable under the CAM
# A fixed layout, in inches: every panel of a gallery alike, every map the same size (a
# layout engine solved each figure anew, most of a panel's drawing time).
CELL, MAP, TITLE, TOP = 2.6, 2.1, 0.3, 0.5  # a view's column, its map, a map's title, the top
BAR_COLUMN, BOTTOM = 0.9, 0.1  # the Grad-CAM colour bar's column; the margin below the maps
HEIGHT = TOP + 2 * (TITLE + MAP) + BOTTOM


def cam_panel_figure(
    maps: np.ndarray,
    cams: np.ndarray,
    view_names: Sequence[str],
    predicted: str,
    probability: float,
    truth: str | None = None,
    patient: str | None = None,
) -> Figure:
    """Each view's cleaned map as it is (top row) and with its CAM over it (bottom row; jet,
    semi-transparent, only inside the disc), views side by side, titled with the
    predicted class and its probability (and the true class when given).

    Args:
        maps: (V, H, W, 3) uint8 cleaned polar maps.
        cams: (V, h, w) CAMs in [0, 1]; stretched over the map if their size differs.
        view_names: V names, in the order of `maps`.
        predicted: the predicted class; `probability` its softmax probability.
        truth: the true class, when known.
        patient: the patient's (de-identified) id.
    """
    maps, cams = np.asarray(maps), np.asarray(cams, dtype=np.float64)
    views = len(view_names)
    if maps.ndim != 4 or maps.shape[0] != views or maps.shape[-1] != 3:
        raise ValueError(f"expected ({views}, H, W, 3) maps, got shape {maps.shape}")
    if cams.ndim != 3 or cams.shape[0] != views:
        raise ValueError(f"expected ({views}, H, W) CAMs, got shape {cams.shape}")

    figure = Figure(figsize=(CELL * views + BAR_COLUMN, HEIGHT))
    height, width = maps.shape[1:3]
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)  # the CAM covers the map exactly
    image = None
    for v, (name, polar_map, cam) in enumerate(zip(view_names, maps, cams, strict=True)):
        plain, overlaid = _map_axes(figure, v, row=0), _map_axes(figure, v, row=1)
        plain.imshow(polar_map, extent=extent)
        plain.set_title(f"{name} map")
        overlaid.imshow(polar_map, extent=extent)
        image = overlaid.imshow(
            _inside_disc(cam), cmap="jet", alpha=CAM_ALPHA, vmin=0, vmax=1, extent=extent
        )
        overlaid.set_title(name)
    figure.colorbar(image, cax=_colour_bar_axes(figure, views), label="Grad-CAM")

    title = f"predicted {predicted} ({probability:.0%})"
    if truth is not None:
        title += f"\ntrue {truth}"
    if patient is not None:
        title = f"{patient}: {title}"
    figure.suptitle(title, fontsize=10)  # two lines: fits one view's narrow panel
    return figure


def _map_axes(figure: Figure, view: int, row: int):
    """The axes of a view's map in a row (0: the map alone, 1: with its CAM), no frame."""
    width, height = figure.get_size_inches()
    left = view * CELL + (CELL - MAP) / 2
    bottom = _row_bottom(row)
    axes = figure.add_axes((left / width, bottom / height, MAP / width, MAP / height))
    axes.set_axis_off()
    return axes


def _colour_bar_axes(figure: Figure, views: int):
    """A thin bar beside the CAM row, over its middle four fifths."""
    width, height = figure.get_size_inches()
    length = 0.8 * MAP
    bottom = _row_bottom(1) + (MAP - length) / 2
    return figure.add_axes((
        (views * CELL + 0.1) / width, bottom / height, 0.15 / width, length / height
    ))  # fmt: skip


def _row_bottom(row: int) -> float:
    """Inches from the figure's foot to the foot of a row's maps."""
    return HEIGHT - TOP - (row + 1) * (TITLE + MAP)


def _inside_disc(cam: np.ndarray) -> np.ndarray:
    """The CAM masked outside the polar map's disc (the disc fills a square map), so the
    black corners stay black."""
    if cam.shape[0] != cam.shape[1]:
        return cam
    radius, _ = polar_grid(cam.shape[0])
    return np.ma.masked_where(radius >= 1, cam)
