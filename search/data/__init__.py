"""Data sets of polar maps: manifests, class folders, the check, and patient-level splits.

Every command that reads a data set calls `load_dataset` (or `check_dataset`) first, so
bad input is refused with every problem listed before any compute is spent.
"""

from search.data.check import DEFAULT_MIN_SIZE, CheckReport, check_dataset, load_dataset
from search.data.classes import BINARY, PRESET_CLASS_SETS, TRIAD, ClassSet, parse_class_set
from search.data.dataset import Dataset, Patient
from search.data.modes import PRESET_MODES, InputMode, parse_mode
from search.data.problems import DataError, Problem, format_problems
from search.data.splits import Split, SplitSpec, split_patients

__all__ = [
    "BINARY",
    "DEFAULT_MIN_SIZE",
    "PRESET_CLASS_SETS",
    "PRESET_MODES",
    "TRIAD",
    "CheckReport",
    "ClassSet",
    "DataError",
    "Dataset",
    "InputMode",
    "Patient",
    "Problem",
    "Split",
    "SplitSpec",
    "check_dataset",
    "format_problems",
    "load_dataset",
    "parse_class_set",
    "parse_mode",
    "split_patients",
]
