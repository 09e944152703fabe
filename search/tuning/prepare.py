"""Before Ray starts: check the settings and the data together, listing every problem at
once, then build what every trial reads (cleaned maps at each backbone's input size, the
split) and each backbone's unfreeze limit. Nothing here imports Ray."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from search import errors
from search.data import (
    Dataset,
    InputMode,
    Split,
    check_dataset,
    format_problems,
    parse_class_set,
    split_patients,
)
from search.data.map_cache import MapCache
from search.data.normalize import backbone_input
from search.data.preprocess import PreprocessSpec, preprocess_dataset
from search.tuning.settings import SearchSettings, settings_problems, storage_problems
from spaces import SearchSpace
from trainables.data import SearchData

__all__ = [
    "PreparedSearch",
    "SearchProblems",
    "check_search",
    "prepare_search",
]

log = logging.getLogger(__name__)


class SearchProblems(errors.SettingsError):
    """The settings or the data cannot make a search; the message lists every problem.
    `data_only`: every problem is the data's (the command exits 1, as for a failed data
    check; problems with the settings are usage errors, 2)."""

    def __init__(self, problems: list[str], data_only: bool = False):
        self.problems, self.data_only = problems, data_only
        super().__init__(
            f"{len(problems)} problem(s) before the search could start:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


@dataclass(frozen=True)
class PreparedSearch:
    dataset: Dataset
    split: Split
    data: SearchData
    max_unfreeze: dict[str, int]  # backbone -> the largest k the one-third rule allows


def check_search(settings: SearchSettings, probe_storage: bool = True) -> Dataset:
    """The checked data set.

    The data check's warnings (a leak across splits, say) are logged.

    Args:
        settings: the search's.
        probe_storage: also check that the storage takes files (`storage_problems`);
            False for a caller that writes elsewhere, as finalize does.

    Raises:
        SearchProblems: every problem with the settings, the storage and the data, all at
            once.
    """
    problems = settings_problems(settings)
    if probe_storage:
        problems += storage_problems(settings)
    space = settings.space
    try:
        class_set = parse_class_set(space.classes)
    except ValueError as exc:
        problems.append(f"space {space.name!r} classes: {exc}")
        class_set = None
    report = check_dataset(
        settings.data,
        class_set=class_set,
        mode=InputMode("search", settings.views),
        split=settings.split,
        layout=settings.disc_layout,
    )
    data_problems = [f"data: {line}" for line in format_problems(report.errors)]
    if problems or data_problems or report.dataset is None:
        raise SearchProblems(problems + data_problems, data_only=not problems)
    for line in format_problems(report.warnings, mark_warnings=False):
        log.warning("data: %s", line)  # a search goes on, but its user must see them
    return report.dataset


def prepare_search(settings: SearchSettings, dataset: Dataset, workers: int | None = None):
    """Split, clean the maps at every input size the backbones take (cached), and find
    each backbone's unfreeze limit."""
    spec = settings.split
    split = split_patients(
        dataset.labels, spec, dataset.class_set.names, dataset.groups(spec.group_by)
    )
    cache = MapCache(settings.cache)
    sizes = sorted({backbone_input(b).size for b in settings.space.backbones})
    maps = {
        size: preprocess_dataset(
            dataset, PreprocessSpec(size), cache, views=settings.views, workers=workers
        )
        for size in sizes
    }
    data = SearchData(maps, dataset.labels, split, dataset.class_set.names)
    limits = {b: unfreeze_limit(b, settings.space) for b in settings.space.backbones}
    return PreparedSearch(dataset, split, data, limits)


def unfreeze_limit(backbone: str, space: SearchSpace) -> int:
    """The largest unfreeze depth the space's rule allows (built without weights: the
    limit depends on the architecture only)."""
    from trainables.config import UnfreezeRule
    from trainables.unfreeze import feature_layers, plan_unfreezing
    from trainables.weights import create_backbone

    rule = UnfreezeRule(space.max_layer_share, space.max_param_share)
    return plan_unfreezing(feature_layers(create_backbone(backbone)), 0, rule).allowed
