"""Synthetic clinical polar-map exports with known truth: the embedded data set.

Real data sets are private; this draws what clinical software exports (colour-mapped
bullseye, colour bar, burned-in text; or a printed report page with the segment grid and
scores over the map) from a patient model with known defects.
"""

from search.synth.dataset import (
    DEFAULT_BALANCE,
    DEFAULT_DIFFICULTY,
    IMAGE_FORMATS,
    STYLES,
    check_export_options,
    check_synth_options,
    class_counts,
    write_synthetic_dataset,
)
from search.synth.printed import PRINTED_SCALES
from search.synth.vendors import COLOUR_MAPS

__all__ = [
    "COLOUR_MAPS",
    "DEFAULT_BALANCE",
    "DEFAULT_DIFFICULTY",
    "IMAGE_FORMATS",
    "PRINTED_SCALES",
    "STYLES",
    "check_export_options",
    "check_synth_options",
    "class_counts",
    "write_synthetic_dataset",
]
