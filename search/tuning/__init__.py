"""The search: settings and checks (no Ray), and the Ray Tune parts: a Hyperband and an
Optuna study per (backbone, input mode) pair, the runner, the live progress view. Import
the Ray parts from their modules; this package's top level stays Ray-free."""

from search.tuning.prepare import PreparedSearch, SearchProblems, check_search, prepare_search
from search.tuning.settings import SearchSettings, epoch_budget, hyperband_brackets, pair_key

__all__ = [
    "PreparedSearch",
    "SearchProblems",
    "SearchSettings",
    "check_search",
    "epoch_budget",
    "hyperband_brackets",
    "pair_key",
    "prepare_search",
]
