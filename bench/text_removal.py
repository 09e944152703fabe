"""How well preprocessing removes burned-in text, measured against the renderers' truth,
beside the finder it replaced (issue 17) measured on the same exports; and how well it
cleans printed report pages (issue 30), against each page's overlay-free twin.

Three renderers: the project's generator (thermal colour scale), and two drawn the way
other vendors draw exports (`search.synth.vendors`): `single` (one map with its count
noise, a horizontal colour bar, white lettering) and `pair` (stress and rest side by
side, coarse maps drawn pixelated, titles and labels in one flat colour), each in every
colour map (jet, rainbow, hot, cool, grey).

- False text: on exports with no lettering over the map, the share of each disc the
  finder flags (every flagged pixel is map); the goals are a median of 0.0 % and at most
  0.5 % of any disc.
- Recall: on exports with lettering over the map, each rendered twice from the same
  random stream (with and without that lettering), a text pixel is visible where the two
  differ by more than 24 in some channel; recall is the share of visible text pixels
  flagged (the project's generator: also its false positives at least 4 px from text).

Printed report pages, from two renderers: `bench/plotted_pages.py` (matplotlib, held
back: the cleaning was never tuned on it; PNG, JPEG and vector PDF pages) and the
project's generator (`search.synth.printed`: a light page, the 17-segment grid and
scores over the map, a white-topped thermal scale, smooth or in steps; PNG, JPEG
(quality 70-95, drawn per page) and PDF (the page embedded in a one-page PDF)), both
read back through the project's own readers, each page and its twin cleaned as
`polarmap data preprocess` does (224 px, no crop box):

- discs found: pages whose disc was found within 2 pixels of the truth (a twin whose
  disc cannot be found, a map all at the page's white with no outline drawn, is
  cleaned in its page's box: `boxed`);
- overlays left: the mean absolute difference (grey levels, over the disc and the three
  channels) between a cleaned page and its cleaned twin; median and largest;
- map removed: the share of each twin's disc removed as text (every pixel of it is
  map); median and largest;
- s/export: seconds to clean one page (this machine, one process).

    .venv/bin/python bench/text_removal.py [--exports 10] [--part all|screens|printed|plotted]
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image
from plotted_pages import FORMATS as PLOTTED_FORMATS
from plotted_pages import SCALES as PLOTTED_SCALES
from plotted_pages import render_plotted_page
from scipy import ndimage

from search.data.clean import CropBox, clean_export, disc_mask, find_text
from search.data.images import read_export
from search.synth.printed import PRINTED_SCALES, render_printed_export
from search.synth.render import render_export
from search.synth.uptake import draw_patient, uptake_maps
from search.synth.vendors import COLOUR_MAPS, VENDORS, render_vendor_export

CANVASES = ((1640, 1068), (820, 534), (2400, 1560))


def patient_maps(rng: np.random.Generator, seed: int) -> dict[str, np.ndarray]:
    """A patient's uptake maps (256 px) drawn from `rng`, the class by the seed in turn."""
    truth = draw_patient(("Normal", "Ischemia", "Infarction")[seed % 3], rng, 0.5)
    return uptake_maps(truth, 256, rng, 0.5)


def measure(canvas: tuple[int, int], jpeg: bool, exports: int) -> dict[str, float]:
    missed = visible = 0
    false_shares, seconds = [], 0.0
    for seed in range(exports):
        rng = np.random.default_rng(seed)
        uptake = patient_maps(rng, seed)["stress"]
        stream = int(rng.integers(0, 2**32))
        texts = ("STRESS AC", "DOE, JOHN", "2024-01-02", "GE")
        export = render_export(
            uptake, *texts, np.random.default_rng(stream), canvas, text_over_map=True
        )
        plain = render_export(uptake, "", "", "", "", np.random.default_rng(stream), canvas)
        image = export.image
        if jpeg:
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="JPEG", quality=85)
            image = np.asarray(Image.open(buffer))
        cx, cy, radius = export.disc
        y, x = np.ogrid[: image.shape[0], : image.shape[1]]
        inside = np.hypot(x - cx, y - cy) <= radius - 1
        started = time.perf_counter()
        found = find_text(image, radius)
        seconds += time.perf_counter() - started
        difference = np.abs(export.image.astype(int) - plain.image.astype(int)).max(axis=2)
        shown = export.text_mask & inside & (difference > 24)
        missed += int((shown & ~found).sum())
        visible += int(shown.sum())
        far = inside & ~ndimage.binary_dilation(export.text_mask, iterations=4)
        false_shares.append((found & far).sum() / far.sum())
    return {
        "visible": visible,
        "missed": missed,
        "false_mean": float(np.mean(false_shares)),
        "false_max": float(np.max(false_shares)),
        "seconds": seconds / exports,
    }


def previous_find_text(image: np.ndarray, disc_radius: float) -> np.ndarray:
    """The finder before issue 17 (cleaning version 2), the reference: light thin strokes
    on lines of lettering, whatever their colour."""
    stroke = max(2, round(disc_radius / 80))
    top_hat = np.zeros(image.shape[:2], dtype=np.int16)
    for channel in range(3):
        values = image[..., channel].astype(np.int16)
        top_hat = np.maximum(top_hat, values - ndimage.grey_opening(values, size=2 * stroke + 1))
    second = np.sort(image[..., :3], axis=2)[..., 1]
    strokes = (top_hat > 60) & (ndimage.grey_dilation(second, size=3) >= 180)
    lines, count = ndimage.label(
        ndimage.binary_dilation(strokes, structure=np.ones((1, 6 * stroke + 1), dtype=bool))
    )
    sizes = ndimage.sum(strokes, lines, index=np.arange(1, count + 1))
    lettering = np.concatenate([[False], sizes >= 2.5 * stroke**2])
    return ndimage.binary_dilation(strokes & lettering[lines], iterations=2)


FINDERS = {"new": find_text, "previous": previous_find_text}


def maps_of(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    maps = patient_maps(rng, seed)
    return {"stress": maps["stress"], "rest": maps["rest"]}


def jpeg_round_trip(image: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=85)
    return np.asarray(Image.open(buffer))


def measure_vendor(
    vendor: str, colour_map: str, jpeg: bool, exports: int
) -> dict[str, dict[str, float]]:
    """Per finder: false text on discs without lettering, recall of lettering over a map."""
    false_shares = {name: [] for name in FINDERS}
    found_visible = dict.fromkeys(FINDERS, 0)
    visible = 0
    for seed in range(exports):
        maps = maps_of(seed)
        plain = render_vendor_export(maps, vendor, np.random.default_rng(seed), colour_map)
        export = render_vendor_export(maps, vendor, np.random.default_rng(seed), colour_map,
                                      text_over_map=True)  # fmt: skip
        y, x = np.ogrid[: plain.image.shape[0], : plain.image.shape[1]]
        difference = np.abs(export.image.astype(int) - plain.image.astype(int)).max(axis=2)
        for name, finder in FINDERS.items():
            for drawn, over in ((plain, False), (export, True)):
                image = jpeg_round_trip(drawn.image) if jpeg else drawn.image
                found = None
                for cx, cy, radius in drawn.discs.values():
                    found = finder(image, radius) if found is None else found
                    inside = np.hypot(x - cx, y - cy) <= radius - 1
                    if not over:
                        false_shares[name].append((found & inside).sum() / inside.sum())
                        continue
                    shown = (difference > 24) & drawn.text_mask & inside
                    visible += int(shown.sum()) if name == "new" else 0
                    found_visible[name] += int((shown & found).sum())
    return {
        name: {
            "false_median": float(np.median(false_shares[name])),
            "false_max": float(np.max(false_shares[name])),
            "recall": found_visible[name] / visible if visible else float("nan"),
            "visible": visible,
            "found": found_visible[name],
        }
        for name in FINDERS
    }


PRINTED_FORMATS = ("png", "jpeg", "pdf")


def as_format(image: np.ndarray, image_format: str, quality: int) -> np.ndarray:
    """The page as a viewer reads it back from a PNG, a JPEG or a one-page PDF."""
    if image_format == "png":
        return image
    buffer = io.BytesIO()
    if image_format == "jpeg":
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    else:  # Pillow embeds the page as one image, as report writers often do
        Image.fromarray(image).save(buffer, format="PDF", resolution=150.0)
    return read_export(buffer.getvalue(), page=1 if image_format == "pdf" else None)


def measure_printed(scale: str, stepped: bool, image_format: str, pages: int) -> dict[str, dict]:
    """Per scale (smooth or stepped): discs found, overlays left on pages, map removed on
    twins, seconds per page."""
    rows: dict[str, dict] = {}
    for seed in range(pages):
        rng = np.random.default_rng([30, seed])
        uptake = patient_maps(rng, seed)["stress"]
        drawn = render_printed_export(uptake, "stress", ("DOE, JOHN", "2024-01-02", "GE"),
                                      rng, scale=scale, stepped=stepped)  # fmt: skip
        quality = int(rng.integers(70, 96))
        image, twin = (as_format(i, image_format, quality) for i in (drawn.image, drawn.twin))
        zoom = image.shape[1] / drawn.image.shape[1]  # a PDF may render at another size
        disc = tuple(v * zoom for v in drawn.discs["stress"])
        row = rows.setdefault(drawn.colour_map, new_row())
        add_page(row, image, twin, disc, 2 * max(1.0, zoom), drawn.twin)
    return rows


def new_row() -> dict:
    return {"pages": 0, "found": 0, "left": [], "removed": [], "seconds": [], "boxed": 0,
            "floor": [], "one box": []}  # fmt: skip


def add_page(
    row: dict, image: np.ndarray, twin: np.ndarray, disc, reach: float, lossless=None
) -> None:
    """One page and its twin, cleaned as `polarmap data preprocess` does (224 px, no
    crop box), into a row's figures: whether the page's disc was found within `reach`
    pixels of the truth, the overlays left (against the twin), the twin's map removed,
    seconds to clean the page; with the twin as drawn (`lossless`), how far the format
    alone moves its cleaned map (JPEG's own floor under the overlays left)."""
    row["pages"] += 1
    started = time.perf_counter()
    try:
        page = clean_export(image, 224)
    except ValueError:
        return
    row["seconds"].append(time.perf_counter() - started)
    error = np.abs(np.subtract((page.disc.cx, page.disc.cy, page.disc.radius), disc))
    row["found"] += int(error.max() <= reach)
    cleaned_twin, found = clean_twin(twin, page.disc)
    row["boxed"] += not found
    row["removed"].append(cleaned_twin.text_fraction)
    diff = np.abs(page.pixels.astype(int) - cleaned_twin.pixels.astype(int))
    row["left"].append(float(diff[disc_mask(224, 112)].mean()))
    box = CropBox(*page.disc.box())  # both in one box: the overlays alone
    diff = np.abs(clean_export(image, 224, crop=box).pixels.astype(int)
                  - clean_export(twin, 224, crop=box).pixels.astype(int))  # fmt: skip
    row["one box"].append(float(diff[disc_mask(224, 112)].mean()))
    if lossless is not None and lossless.shape == twin.shape and (lossless != twin).any():
        drawn, _ = clean_twin(lossless, page.disc)
        diff = np.abs(drawn.pixels.astype(int) - cleaned_twin.pixels.astype(int))
        row["floor"].append(float(diff[disc_mask(224, 112)].mean()))


def clean_twin(twin: np.ndarray, page_disc) -> tuple[object, bool]:
    """(a twin cleaned as preprocessing would, whether its own disc was found). A twin
    whose disc cannot be found (a map whose white end is all there is of it, on paper
    of its colour, with no outline drawn: nothing a reader could see either) is cleaned
    with its page's disc as the crop box."""
    try:
        return clean_export(twin, 224), True
    except ValueError:
        return clean_export(twin, 224, crop=CropBox(*page_disc.box())), False


def measure_plotted(scale: str, stepped: bool, image_format: str, pages: int) -> dict:
    """As `measure_printed`, on pages drawn by matplotlib (`plotted_pages`), a renderer
    the cleaning was never tuned on."""
    row = new_row()
    for seed in range(pages):
        rng = np.random.default_rng([31, seed])
        uptake = patient_maps(rng, seed)["stress"]
        drawn = render_plotted_page(uptake, rng, scale, stepped, image_format)
        add_page(row, drawn.image, drawn.twin, drawn.disc, 2.0)
    return row


def print_pages(title: str, rows) -> None:
    """A table of printed pages: (scale, format, row) from `rows`, then every page's."""
    print(title)
    print(f"{'scale':>18} {'format':>6} {'discs found':>11} {'left median':>11} "
          f"{'left max':>8} {'removed median':>14} {'removed max':>11} {'boxed':>5} "
          f"{'s/export':>8} {'format alone':>12} {'one box median':>14} {'max':>5}")  # fmt: skip
    every = new_row()
    for name, image_format, row in rows:
        left, removed = row["left"] or [np.nan], row["removed"] or [np.nan]
        print(f"{name:>18} {image_format:>6} {row['found']:>7}/{row['pages']:<3} "
              f"{np.median(left):>11.2f} {np.max(left):>8.2f} "
              f"{100 * np.median(removed):>13.3f}% {100 * np.max(removed):>10.3f}% "
              f"{row['boxed']:>5} {np.mean(row['seconds']):>8.3f} "
              f"{np.median(row['floor']) if row['floor'] else np.nan:>12.2f} "
              f"{np.median(row['one box'] or [np.nan]):>14.2f} "
              f"{np.max(row['one box'] or [np.nan]):>5.2f}", flush=True)  # fmt: skip
        for key, value in row.items():
            every[key] += value
    print(
        f"every page: discs found {every['found']} of {every['pages']}; overlays left median "
        f"{np.median(every['left']):.2f}, largest {np.max(every['left']):.2f} grey levels; "
        f"map removed on twins median {100 * np.median(every['removed']):.3f} %, largest "
        f"{100 * np.max(every['removed']):.3f} %; twins cleaned in their page's box "
        f"{every['boxed']}; {np.mean(every['seconds']):.3f} s/export; both cleaned in the "
        f"page's disc box: overlays left median {np.median(every['one box']):.2f}, largest "
        f"{np.max(every['one box']):.2f}\n"
    )


def plotted_rows(pages: int):
    for image_format in PLOTTED_FORMATS:
        for scale in PLOTTED_SCALES:
            for stepped in (False, True):
                name = scale + ("-stepped" if stepped else "")
                yield name, image_format, measure_plotted(scale, stepped, image_format, pages)


def printed_rows(pages: int):
    for image_format in PRINTED_FORMATS:
        for scale, stepped in ((s, stepped) for s in PRINTED_SCALES for stepped in (False, True)):
            for name, row in measure_printed(scale, stepped, image_format, pages).items():
                yield name, image_format, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exports", type=int, default=10, help="exports per case (default 10)")
    parser.add_argument(
        "--part",
        choices=("all", "screens", "printed", "plotted"),
        default="all",
        help="screenshots (dark pages), printed pages, or both (default)",
    )
    args = parser.parse_args()
    if args.part in ("all", "plotted"):
        print_pages(
            f"printed pages drawn by matplotlib (bench/plotted_pages.py, held back), "
            f"{args.exports} pages per scale and format:",
            plotted_rows(args.exports),
        )
    if args.part in ("all", "printed"):
        print_pages(
            f"printed report pages (search.synth.printed), {args.exports} pages per "
            "scale and format:",
            printed_rows(args.exports),
        )
    if args.part in ("printed", "plotted"):
        return
    print("the project's generator (thermal colour scale), text over the map:")
    print(f"{'canvas':>11} {'format':>6} {'visible':>8} {'missed':>6} "
          f"{'false mean':>10} {'false max':>9} {'s/export':>8}")  # fmt: skip
    for canvas in CANVASES:
        for jpeg in (False, True):
            m = measure(canvas, jpeg, args.exports)
            print(
                f"{canvas[0]:>5}x{canvas[1]:<5} {'jpeg' if jpeg else 'png':>6} "
                f"{m['visible']:>8} {m['missed']:>6} {100 * m['false_mean']:>9.3f}% "
                f"{100 * m['false_max']:>8.3f}% {m['seconds']:>8.3f}"
            )
    print("\nother vendors' renderers (search.synth.vendors): new finder | previous finder")
    print(f"{'renderer':>8} {'colours':>8} {'format':>6} {'false median':>12} {'false max':>9} "
          f"{'recall':>7} | {'false median':>12} {'false max':>9} {'recall':>7}")  # fmt: skip
    pooled = {name: [0, 0] for name in FINDERS}  # found, visible
    for vendor in VENDORS:
        for colour_map in COLOUR_MAPS:
            for jpeg in (False, True):
                m = measure_vendor(vendor, colour_map, jpeg, args.exports)
                for name, f in m.items():
                    pooled[name][0] += f["found"]
                    pooled[name][1] += f["visible"]
                print(f"{vendor:>8} {colour_map:>8} {'jpeg' if jpeg else 'png':>6} " + " | ".join(
                    f"{100 * f['false_median']:>11.3f}% {100 * f['false_max']:>8.3f}% "
                    f"{100 * f['recall']:>6.1f}%" for f in m.values()), flush=True)  # fmt: skip
    print("recall pooled over every row (visible text pixels over a map): " + " | ".join(
        f"{name} {100 * found / visible:.1f} % of {visible}"
        for name, (found, visible) in pooled.items()))  # fmt: skip


if __name__ == "__main__":
    main()
