"""The patient model behind the synthetic polar maps: tracer uptake at rest and stress.

Uptake is a smooth field over the bullseye (fraction of the maximum, about 0.7-1.0 when
normal) built from physiological variation, attenuation artefacts and noise; a defect
lowers part of one coronary territory: at stress only for ischemia, at rest and stress
for infarction, with a further stress-only reduction around an infarct.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from search.data.segments import TERRITORIES, polar_grid, segment_map

__all__ = ["Defect", "PatientTruth", "draw_patient", "reader_annotations", "uptake_maps"]

# How often each territory is the culprit (LAD disease is the most common).
TERRITORY_ODDS = {"LAD": 0.5, "RCA": 0.3, "LCx": 0.2}
# Segments of each territory ordered from base to apex: a defect covers a run of them.
ANGLE_OF_SEGMENT = {  # centre angle from anterior, growing towards the septum (degrees)
    1: 0, 2: 60, 3: 120, 4: 180, 5: 240, 6: 300,
    7: 0, 8: 60, 9: 120, 10: 180, 11: 240, 12: 300,
    13: 0, 14: 90, 15: 180, 16: 270, 17: 0,
}  # fmt: skip
RING_OF_SEGMENT = {
    **dict.fromkeys(range(1, 7), 0),
    **dict.fromkeys(range(7, 13), 1),
    **dict.fromkeys(range(13, 17), 2),
    17: 3,
}


@dataclass(frozen=True)
class Defect:
    """Where and how strongly perfusion is reduced."""

    territory: str
    segments: tuple[int, ...]
    severity: float  # fractional uptake loss at the defect's core
    reversible: bool  # True: ischemia (stress only); False: infarction (rest and stress)
    peri_infarct: float = 0.0  # extra stress-only loss around an infarct


@dataclass(frozen=True)
class PatientTruth:
    """Everything drawn for one patient: the ground truth a sidecar records."""

    diagnosis: str  # Infarction, Ischemia or Normal
    sex: str
    defect: Defect | None
    inferior_attenuation: float
    anterior_attenuation: float
    variation: dict[str, float] = field(default_factory=dict)


def draw_patient(diagnosis: str, rng: np.random.Generator, difficulty: float) -> PatientTruth:
    """Draw one patient's truth. `difficulty` in [0, 1]: higher gives milder, smaller
    defects and stronger artefacts."""
    sex = str(rng.choice(["F", "M"]))
    # Men: diaphragmatic (inferior) attenuation; women: breast (anterior) attenuation.
    strength = 0.05 + 0.15 * difficulty
    inferior = rng.uniform(0.3, 1.0) * strength if sex == "M" else rng.uniform(0, 0.3) * strength
    anterior = rng.uniform(0.3, 1.0) * strength if sex == "F" else rng.uniform(0, 0.3) * strength
    variation = {
        "level": float(rng.normal(0.88, 0.03)),
        "apex": float(rng.uniform(-0.08, 0.0)),  # apical thinning
        "base": float(rng.uniform(-0.06, 0.0)),
        "septal": float(rng.uniform(-0.05, 0.02)),
    }
    defect = None
    if diagnosis in ("Ischemia", "Infarction"):
        territory = str(rng.choice(list(TERRITORY_ODDS), p=list(TERRITORY_ODDS.values())))
        segments = _defect_segments(territory, rng, difficulty)
        mild, strong = 0.35 - 0.2 * difficulty, 0.55 - 0.15 * difficulty
        defect = Defect(
            territory=territory,
            segments=segments,
            severity=float(rng.uniform(mild, strong)),
            reversible=diagnosis == "Ischemia",
            peri_infarct=float(rng.uniform(0.05, 0.15)) if diagnosis == "Infarction" else 0.0,
        )
    return PatientTruth(diagnosis, sex, defect, float(inferior), float(anterior), variation)


def reader_annotations(truth: PatientTruth, view: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(territories, 17 segment scores 0-4) a reader would write for a view from the
    truth: the defect's territory and segments where the view shows it (ischemia at
    stress only), scored by its depth (a fifth lower: 2, a third: 3, half: 4)."""
    defect = truth.defect
    scores = [0] * 17
    if defect is None or (view == "rest" and defect.reversible):
        return (), tuple(scores)
    depth = defect.severity + (defect.peri_infarct if view == "stress" else 0.0)
    for segment in defect.segments:
        scores[segment - 1] = int(np.clip(round(depth * 8), 1, 4))
    return (defect.territory,), tuple(scores)


def _defect_segments(
    territory: str, rng: np.random.Generator, difficulty: float
) -> tuple[int, ...]:
    """A contiguous run of the territory's segments; smaller when harder."""
    candidates = [s for s in TERRITORIES[territory] if s != 17]
    largest = max(2, round(len(candidates) * (1 - 0.6 * difficulty)))
    count = int(rng.integers(2, largest + 1))
    # Keep the run compact: start from one segment and add its nearest neighbours.
    start = int(rng.choice(candidates))
    by_distance = sorted(candidates, key=lambda s: _segment_distance(start, s))
    return tuple(sorted(by_distance[:count]))


def _segment_distance(a: int, b: int) -> float:
    angle = abs(ANGLE_OF_SEGMENT[a] - ANGLE_OF_SEGMENT[b]) % 360
    return min(angle, 360 - angle) / 60 + abs(RING_OF_SEGMENT[a] - RING_OF_SEGMENT[b])


def uptake_maps(
    truth: PatientTruth, size: int, rng: np.random.Generator, difficulty: float
) -> dict[str, np.ndarray]:
    """Rest and stress uptake on a size x size bullseye (NaN outside the disc)."""
    radius, angle = polar_grid(size)
    segments = segment_map(size)
    v = truth.variation
    base = (
        v["level"]
        + v["apex"] * np.clip(1 - radius / 0.35, 0, 1)
        + v["base"] * np.clip((radius - 0.8) / 0.2, 0, 1)
        + v["septal"] * _bump(angle, 90, 70)
    )
    artefact = truth.inferior_attenuation * _bump(angle, 180, 55) * np.clip(radius / 0.6, 0, 1)
    artefact += truth.anterior_attenuation * _bump(angle, 0, 60) * np.clip(radius / 0.5, 0, 1)
    rest = base - artefact
    stress = base - artefact * rng.uniform(0.8, 1.2)

    if truth.defect is not None:
        d = truth.defect
        core = _smooth(np.isin(segments, d.segments).astype(float), size, 0.06)
        stress = stress - d.severity * core
        if d.reversible:
            rest = rest - d.severity * rng.uniform(0.0, 0.15) * core
        else:
            rest = rest - d.severity * rng.uniform(0.8, 1.0) * core
            rim = np.clip(_smooth(core > 0.3, size, 0.12) - core, 0, 1)
            stress = stress - d.peri_infarct * rim

    noise = 0.015 + 0.03 * difficulty
    maps = {}
    for view, field_ in (("rest", rest), ("stress", stress)):
        noisy = field_ + _smooth(rng.normal(0, 1, (size, size)), size, 0.02) * noise * 3
        noisy = np.clip(noisy + rng.normal(0, noise / 2, (size, size)), 0.0, 1.0)
        noisy[segments == 0] = np.nan
        maps[view] = noisy
    return maps


def _bump(angle: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A smooth angular bump, 1 at `centre`, falling to 0 at +-width degrees."""
    distance = np.abs((angle - centre + 180) % 360 - 180)
    return np.clip(np.cos(np.radians(distance / width * 90)), 0, 1) * (distance < width)


def _smooth(values: np.ndarray, size: int, sigma_fraction: float) -> np.ndarray:
    """Gaussian blur with sigma as a fraction of the map size."""
    sigma = max(sigma_fraction * size, 0.5)
    # Zero padding and a 3-sigma kernel, as a 'same' convolution would give.
    return ndimage.gaussian_filter(
        values.astype(float), sigma, mode="constant", radius=int(3 * sigma)
    )
