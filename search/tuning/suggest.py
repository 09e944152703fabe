"""A trial's flat config, as the searcher hands it to Ray: what the search's settings fix
for every trial, what the space draws for this one, and the pair it belongs to, checked
against the one flat schema the trainable and the result tables read
(`trainables.config`). No Ray here."""

from __future__ import annotations

from typing import Any

from search.data import parse_mode
from search.tuning.settings import SearchSettings
from spaces import suggest_config
from spaces.space import Suggester
from trainables.config import check_flat

__all__ = ["shared_config", "suggest_trial"]


def shared_config(settings: SearchSettings) -> dict[str, Any]:
    """What every trial of the search shares."""
    space = settings.space
    return {
        "warmup_epochs": space.warmup_epochs,
        "finetune_epochs": space.finetune_epochs,
        "pretrained": space.pretrained,
        "weights": settings.weights,
        "seed": settings.seed,
        "threads": settings.threads,
        "cpus": settings.cpus_per_trial,  # the trial's Ray resources, for compute hours
        "gpus": settings.gpus_per_trial,
        "max_layer_share": space.max_layer_share,
        "max_param_share": space.max_param_share,
        "class_weighted": space.class_weighted,
    }


def suggest_trial(
    trial: Suggester,
    backbone: str,
    mode: str,
    *,
    shared: dict[str, Any],
    settings: SearchSettings,
    max_unfreeze: dict[str, int],
) -> dict[str, Any]:
    """One trial's flat config: `shared`, then what the space's ranges draw through the
    pair's Optuna `trial`, then the backbone and mode (the searcher adds the pair's key).

    Raises:
        ValueError: the config has a key the trainable does not read, or a value out of
            range (a space's mistake, found before the trial runs).
    """
    drawn = suggest_config(trial, settings.space.ranges, max_unfreeze[backbone])
    views = list(parse_mode(mode).views)
    flat = {**shared, **drawn, "backbone": backbone, "mode": mode, "views": views}
    check_flat(flat)
    return flat
