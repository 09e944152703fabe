"""Synthetic clinical polar-map exports with known truth: the embedded data set.

Real data sets are private; this draws what clinical software exports (colour-mapped
bullseye, colour bar, burned-in text) from a patient model with known defects.
"""

from search.synth.dataset import (
    DEFAULT_BALANCE,
    DEFAULT_DIFFICULTY,
    check_synth_options,
    class_counts,
    write_synthetic_dataset,
)

__all__ = [
    "DEFAULT_BALANCE",
    "DEFAULT_DIFFICULTY",
    "check_synth_options",
    "class_counts",
    "write_synthetic_dataset",
]
