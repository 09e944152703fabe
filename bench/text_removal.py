"""How well preprocessing removes burned-in text, measured against the generator's truth.

For synthetic exports with a text line over the map, each export is rendered twice from
the same random stream: with text, and without any (same disc). A text pixel is visible
where the two differ by more than 24 in some channel; it is missed when `find_text` does
not flag it. False positives are flagged disc pixels at least 4 px from any text.

    .venv/bin/python bench/text_removal.py [--exports 20]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exports", type=int, default=20, help="exports per case (default 20)")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
