"""How well preprocessing removes burned-in text, measured against the renderers' truth,
beside the finder it replaced (issue 17) measured on the same exports.

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

    .venv/bin/python bench/text_removal.py [--exports 10]
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image
from scipy import ndimage

from search.data.clean import find_text
from search.synth.render import render_export
from search.synth.uptake import draw_patient, uptake_maps
from search.synth.vendors import COLOUR_MAPS, VENDORS, render_vendor_export

CANVASES = ((1640, 1068), (820, 534), (2400, 1560))


def measure(canvas: tuple[int, int], jpeg: bool, exports: int) -> dict[str, float]:
    missed = visible = 0
    false_shares, seconds = [], 0.0
    for seed in range(exports):
        rng = np.random.default_rng(seed)
        truth = draw_patient(("Normal", "Ischemia", "Infarction")[seed % 3], rng, 0.5)
        uptake = uptake_maps(truth, 256, rng, 0.5)["stress"]
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
    truth = draw_patient(("Normal", "Ischemia", "Infarction")[seed % 3], rng, 0.5)
    maps = uptake_maps(truth, 256, rng, 0.5)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exports", type=int, default=10, help="exports per case (default 10)")
    args = parser.parse_args()
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
