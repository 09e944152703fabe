"""A search's settings, what it will cost, and everything wrong with it, known before Ray
starts. Nothing here imports Ray."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from results.records import SearchStatus
from search.data import SplitSpec, parse_mode
from search.files import check_writable
from search.layout import StorageLayout
from spaces import SearchSpace

__all__ = [
    "FINISHED",
    "Bracket",
    "SearchSettings",
    "epoch_budget",
    "hyperband_brackets",
    "outer_parallel",
    "outer_search_name",
    "pair_brackets",
    "pair_key",
    "settings_problems",
    "storage_problems",
]


# a searches row's status: done
FINISHED = (SearchStatus.COMPLETED, SearchStatus.STOPPED_BY_TIME_BUDGET)


def outer_search_name(name: str, outer: int) -> str:
    """The search of outer fold `outer` (from 0) of the nested run `name`."""
    return f"{name}-outer-{outer}"


def outer_parallel(settings: SearchSettings, count: int) -> int:
    """How many of a nested run's `count` outer searches run at once: as asked, else all
    of them on a cluster and one at a time on this machine."""
    if settings.outer_parallel:
        return min(settings.outer_parallel, count)
    return count if settings.address else 1


def pair_key(backbone: str, mode: str) -> str:
    """The name of a (backbone, input mode) pair: one Hyperband and one sampler each."""
    return f"{backbone}/{mode}"


@dataclass(frozen=True)
class SearchSettings:
    """Everything `polarmap search run` was asked for.

    Attributes:
        space: what is searched (backbones, modes, ranges, epochs); flags already applied.
        data: the manifest CSV or class-folder root.
        name: the experiment's name, its folder under `storage`.
        storage: where experiment state goes: a folder, or a URI such as s3://bucket/path.
        scheduler: hyperband (Ray's HyperBandScheduler, pauses trials) or asha (stops only).
        sampler: tpe or random (Optuna).
        reduction_factor: Hyperband's eta.
        cpus_per_trial, gpus_per_trial: Ray resources per trial (fractional GPUs allowed).
        max_concurrent: at most this many trials at once (None: as resources allow).
        time_budget_s: stop the search cleanly after this many seconds.
        max_failures: retries of a failing trial from its last checkpoint.
        seed: the split's and the samplers' seed; trial i of a pair trains with seed i.
        threads: CPU threads per trial.
        weights: pretrained weights: a file, a folder or a URI (s3://bucket/prefix) that
            every node reaches (None: the model hub).
        address: a running Ray cluster ("auto", "ray://host:10001"); None starts Ray here.
        split: train/validation/test shares (the test share is never read by a search).
        cache: map cache folder; None: the default.
        disc_layout: view -> position of its disc in exports that hold several maps
            (--layout).
        nested_in: an outer fold's search: the nested run it belongs to (its name).
        outer_parallel: a nested run's outer searches at once (None: all of them on a
            cluster, one at a time on this machine, where they would share its slots).
        mlflow: the MLflow tracking URI the driver writes the search's runs to (None:
            none); absolute (`search.tracking.mlflow_runs.tracking_uri`).
    """

    space: SearchSpace
    data: Path
    name: str
    storage: str
    scheduler: str = "hyperband"
    sampler: str = "tpe"
    reduction_factor: int = 3
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    time_budget_s: float | None = None
    max_failures: int = 2
    seed: int = 0
    threads: int = 1
    weights: str | None = None
    address: str | None = None
    split: SplitSpec = field(default_factory=SplitSpec)
    cache: Path | None = None
    disc_layout: dict[str, str] = field(default_factory=dict)
    nested_in: str | None = None
    outer_parallel: int | None = None
    mlflow: str | None = None

    @property
    def pairs(self) -> list[str]:
        return [pair_key(b, m) for b, m in self.space.pairs]

    @property
    def layout(self) -> StorageLayout:
        return StorageLayout.of(self.storage)

    @property
    def experiment(self) -> str:
        """STORAGE/NAME: Ray's experiment folder and the search's record."""
        return self.layout.experiment(self.name)

    @property
    def results(self) -> str:
        """STORAGE/results: the result tables, beside the searches' own folders."""
        return self.layout.results

    @property
    def trials(self) -> int:
        return len(self.pairs) * self.space.samples

    @property
    def views(self) -> tuple[str, ...]:
        """Every view some mode of the space reads, in first-use order."""
        views: dict[str, None] = {}
        for mode in self.space.modes:
            views.update(dict.fromkeys(parse_mode(mode).views))
        return tuple(views)


@dataclass(frozen=True)
class Bracket:
    """One Hyperband bracket as Ray fills it: `trials` start, and the survivors of each
    rung (`rungs`, in epochs) go on, 1 / eta of them each time."""

    trials: int
    rungs: tuple[int, ...]
    eta: int

    def kept(self) -> list[int]:
        """Trials that run to each rung when the bracket is full: all of them to the first,
        then ceil(1 / eta) of those at each next."""
        alive, out = self.trials, []
        for _ in self.rungs:
            out.append(alive)
            alive = math.ceil(alive / self.eta)
        return out

    def epochs(self, trials: int | None = None) -> int:
        """Epochs run if `trials` (default: all) start. As in Ray, each rung keeps
        1 / eta of the bracket's full size, so an unfilled bracket keeps more than
        1 / eta of the trials it has."""
        size = self.trials
        alive, done, total = trials if trials is not None else size, 0, 0
        for rung in self.rungs:
            total += alive * (rung - done)
            size = math.ceil(size / self.eta)
            done, alive = rung, min(alive, size)
        return total


def hyperband_brackets(max_t: int, eta: int) -> list[Bracket]:
    """The brackets of one Hyperband round, in the order Ray's HyperBandScheduler fills
    them, with its formulas: bracket s starts ceil((s_max + 1) / (s + 1) * eta^s) trials,
    its first rung at int(max_t / eta^s) epochs, then s times eta as far, capped at max_t.
    Where max_t is not a power of eta, a bracket's last rung can fall short of max_t (the
    bracket's trials then stop there)."""
    s_max_1 = round(math.log(max_t) / math.log(eta)) + 1
    brackets = []
    for s in range(s_max_1):
        r0 = int(max_t * eta ** (-s))
        if r0 == 0:
            continue
        rungs = tuple(min(r0 * eta**i, max_t) for i in range(s + 1))
        brackets.append(Bracket(math.ceil(s_max_1 / (s + 1) * eta**s), rungs, eta))
    return brackets


def pair_brackets(samples: int, max_t: int, eta: int) -> list[Bracket]:
    """The brackets one pair's `samples` trials fill.

    A full Hyperband round (Ray's brackets, `hyperband_brackets`) needs far more trials
    than a pair usually gets; filled in Ray's order, a pair's few trials land in its
    no-stopping bracket and one part-filled bracket that keeps nearly all it holds, so
    nothing stops. So a pair whose trials cannot fill a round gets one bracket of its
    own size, successive halving: all `samples` trials start, each rung keeps 1 / eta of
    them, with as many rungs as the trials allow (at least one from 2 trials on) and
    the epochs allow. Its first rung is ceil(max_t / eta^s), so its last is max_t: the
    trials that survive run every epoch. With trials for a whole round or more, Ray's
    own brackets, round after round."""
    rounds = hyperband_brackets(max_t, eta)
    if samples >= sum(b.trials for b in rounds):
        return rounds
    halvings = max(1, math.floor(math.log(samples, eta) + 1e-9)) if samples >= 2 else 0
    while halvings and math.ceil(max_t / eta**halvings) * eta ** (halvings - 1) >= max_t:
        halvings -= 1  # rungs would repeat: fewer epochs than halvings
    first = math.ceil(max_t / eta**halvings)
    rungs = tuple(min(first * eta**i, max_t) for i in range(halvings + 1))
    return [Bracket(samples, rungs, eta)]


def epoch_budget(samples: int, max_t: int, eta: int, scheduler: str) -> int:
    """Epochs one pair runs at most: its brackets (`pair_brackets`) filled by `samples`
    trials (ASHA: bounded by every trial running to the end)."""
    if scheduler != "hyperband":
        return samples * max_t
    brackets = pair_brackets(samples, max_t, eta)
    total, left = 0, samples
    while left > 0:
        for bracket in brackets:
            take = min(left, bracket.trials)
            total += bracket.epochs(take)
            left -= take
            if left == 0:
                break
    return total


def settings_problems(settings: SearchSettings, local_gpus: int | None = None) -> list[str]:
    """Everything wrong with the settings that can be known without data or Ray."""
    import timm

    from results.store import check_search_name

    space, problems = settings.space, []
    try:
        check_search_name(settings.name)
    except ValueError as exc:
        problems.append(str(exc))
    for backbone in space.backbones:
        if not timm.is_model(backbone.split(".")[0]):
            problems.append(f"backbone {backbone!r}: timm does not know it (timm.list_models())")
    for mode in space.modes:
        try:
            parse_mode(mode)
        except ValueError as exc:
            problems.append(f"mode {mode!r}: {exc}")
    if space.samples < 1:
        problems.append(f"samples: need at least 1 trial per pair, got {space.samples}")
    if space.warmup_epochs < 1 or space.finetune_epochs < 0:
        problems.append(
            f"epochs: need warm-up >= 1 and fine-tune >= 0, got {space.warmup_epochs} + "
            f"{space.finetune_epochs}"
        )
    if settings.scheduler not in ("hyperband", "asha"):
        problems.append(f"scheduler {settings.scheduler!r}: expected hyperband or asha")
    if settings.sampler not in ("tpe", "random"):
        problems.append(f"sampler {settings.sampler!r}: expected tpe or random")
    if settings.reduction_factor < 2:
        problems.append(f"reduction factor: need at least 2, got {settings.reduction_factor}")
    if settings.cpus_per_trial <= 0:
        problems.append(f"cpus per trial: need more than 0, got {settings.cpus_per_trial}")
    if settings.gpus_per_trial < 0:
        problems.append(f"gpus per trial: need 0 or more, got {settings.gpus_per_trial}")
    if settings.max_concurrent is not None and settings.max_concurrent < 1:
        problems.append(f"max concurrent: need at least 1, got {settings.max_concurrent}")
    if settings.outer_parallel is not None:
        if settings.outer_parallel < 1:
            problems.append(f"outer parallel: need at least 1, got {settings.outer_parallel}")
        elif not settings.split.nested:
            problems.append("outer parallel: only a nested run (--outer-folds) has outer searches")
    if settings.time_budget_s is not None and settings.time_budget_s <= 0:
        problems.append(f"time budget: need more than 0 s, got {settings.time_budget_s:g}")
    if settings.address is None:  # Ray will start here: its resources are this machine's
        cpus = os.cpu_count() or 1
        if settings.cpus_per_trial > cpus:
            problems.append(
                f"cpus per trial {settings.cpus_per_trial:g}: this machine has {cpus} CPUs"
            )
        gpus = local_gpus if local_gpus is not None else _local_gpus()
        if settings.gpus_per_trial > gpus:
            problems.append(
                f"gpus per trial {settings.gpus_per_trial:g}: this machine has {gpus} GPUs"
            )
    if space.pretrained and settings.weights is not None:
        from trainables.weight_files import WeightsNotFound, weights_digest

        for backbone in space.backbones:
            try:
                weights_digest(backbone, True, settings.weights, 0)
            except WeightsNotFound as exc:
                problems.append(str(exc))
    return problems


def storage_problems(settings: SearchSettings) -> list[str]:
    """The storage cannot take the search's files (a file, a folder it may not write, a
    bucket out of reach): found by a probe before any compute, not by Ray after the
    cleaning (`search.files.check_writable`)."""
    problem = check_writable(settings.storage)
    return [] if problem is None else [f"storage {settings.storage}: {problem}"]


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count()
