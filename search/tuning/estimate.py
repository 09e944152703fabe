"""What a search will do before it does it: pairs, trials, Hyperband's brackets and rungs,
the epoch budget, and (for a dry run) a time estimate from per-epoch costs measured here."""

from __future__ import annotations

import math
import os
import tempfile
import time

from search.data.splits import outer_partition
from search.tuning.prepare import PreparedSearch
from search.tuning.settings import (
    SearchSettings,
    epoch_budget,
    hyperband_brackets,
    outer_parallel,
    pair_brackets,
)
from spaces import IntRange

__all__ = ["EpochCost", "format_plan", "measure_epoch_cost"]

# Ray's own costs, measured on a 2-core machine with the demo space: a report with its
# checkpoint and experiment snapshot per epoch, and starting (or resuming) a trial.
RAY_EPOCH_S = 0.3
RAY_TRIAL_S = 2.0


class EpochCost:
    """Seconds of one backbone's trial on this machine: the frozen pass (once per backbone
    and search: later trials read it from the store), a warm-up epoch, a fine-tune epoch."""

    def __init__(self, frozen: float, warmup: float, finetune: float):
        self.frozen, self.warmup, self.finetune = frozen, warmup, finetune


def measure_epoch_cost(prepared: PreparedSearch, settings: SearchSettings, backbone: str):
    """Run a 2 + 1 epoch trial of `backbone` in the mode with the most views, fine-tuning
    the middle of the space's unfreeze range, with a store of its own (so the frozen pass
    is timed)."""
    from search.data import parse_mode
    from trainables.config import TrialConfig, UnfreezeRule
    from trainables.frozen_store import FrozenWorkStore
    from trainables.protocol import run_protocol

    space = settings.space
    views = max((parse_mode(m).views for m in space.modes), key=len)
    limit = prepared.max_unfreeze[backbone]
    spec = space.ranges.unfreeze  # fine-tune cost grows with depth: time the middle one
    if isinstance(spec, IntRange):
        low, high = spec.low, limit if spec.high is None else spec.high
    else:
        low = high = limit
    middle = (min(low, limit) + min(high, limit)) // 2
    config = TrialConfig(
        backbone=backbone, views=views, warmup_epochs=2, finetune_epochs=1, unfreeze=middle,
        rule=UnfreezeRule(space.max_layer_share, space.max_param_share),
        pretrained=False, threads=settings.threads, seed=settings.seed,
    )  # fmt: skip
    data = prepared.data.for_trial(backbone, views)
    with tempfile.TemporaryDirectory() as folder:
        history = run_protocol(config, data, store=FrozenWorkStore(folder)).history
    seconds = [r["epoch_seconds"] for r in history]
    return EpochCost(max(seconds[0] - seconds[1], 0.0), seconds[1], seconds[2])


def format_plan(settings: SearchSettings, prepared: PreparedSearch, measure: bool) -> str:
    space = settings.space
    max_t, eta = space.max_epochs, settings.reduction_factor
    budget = epoch_budget(space.samples, max_t, eta, settings.scheduler)
    lines = [
        f"search space {space.name}: {len(settings.pairs)} pairs x {space.samples} trials = "
        f"{settings.trials} trials; {space.warmup_epochs} + {space.finetune_epochs} epochs "
        f"each at most; {settings.scheduler} (eta {eta}), {settings.sampler} sampler",
        _data_line(prepared),
        "pairs: " + ", ".join(settings.pairs),
    ]
    if settings.scheduler == "hyperband":
        lines += _bracket_lines(space.samples, max_t, eta, space.warmup_epochs)
    lines.append(
        f"epoch budget: at most {budget} epochs per pair, {budget * len(settings.pairs)} in all"
    )
    if settings.split.nested and settings.nested_in is None:
        lines.append(_nested_line(settings, prepared, budget * len(settings.pairs)))
    if measure:
        lines += _estimate(settings, prepared, budget)
    return "\n".join(lines)


def _nested_line(settings: SearchSettings, prepared: PreparedSearch, epochs: int) -> str:
    """What nesting multiplies: the search above once per outer fold."""
    dataset = prepared.dataset
    outer = outer_partition(dataset.labels, settings.split, dataset.class_set.names,
                            dataset.groups(settings.split.group_by))  # fmt: skip
    sizes = sorted(len(fold) for fold in outer)
    held = f"{sizes[0]}" if sizes[0] == sizes[-1] else f"{sizes[0]}-{sizes[-1]}"
    return (
        f"nested ({settings.split.short()}): the search above runs {len(outer)} times, each "
        f"outer fold ({held} patients) the unseen test of one, so {len(outer)} x "
        f"{settings.trials} = {len(outer) * settings.trials} trials and at most "
        f"{len(outer) * epochs} epochs; the frozen work is done once for all of them; "
        + _at_once(outer_parallel(settings, len(outer)), len(outer))
    )


def _at_once(parallel: int, count: int) -> str:
    if parallel == 1:
        return "the outer searches run one at a time (--outer-parallel N: N at once)"
    return f"{f'all {count}' if parallel == count else parallel} outer searches at once"


def _bracket_lines(samples: int, max_t: int, eta: int, warmup: int) -> list[str]:
    """Each bracket of a pair: how many trials reach each rung, and how many stop early."""
    brackets = pair_brackets(samples, max_t, eta)
    full = sum(b.trials for b in hyperband_brackets(max_t, eta))
    if samples < full:
        how = (
            f"one bracket sized to its {samples} trials (a whole Hyperband round would take {full})"
        )
    else:
        how = "Hyperband's brackets, in Ray's order"
    lines = [f"Hyperband of each pair: {how}; trials reaching each rung (epochs; * = fine-tune):"]
    for bracket in brackets:
        kept = bracket.kept()
        steps = " -> ".join(
            f"{n} to {rung}{'*' if rung > warmup else ''}"
            for n, rung in zip(kept, bracket.rungs, strict=True)
        )
        lines.append(
            f"  {bracket.trials:>4} trials: {steps} ({bracket.trials - kept[-1]} stopped early)"
        )
    return lines


def _data_line(prepared: PreparedSearch) -> str:
    split, patients = prepared.split, len(prepared.dataset)
    unread = f"the {len(split.test)} test patients are not read"
    if not split.folds:
        return (
            f"data: {patients} patients, {len(split.train)} train / {len(split.val)} "
            f"validation ({unread})"
        )
    models = len(split.folds) * split.spec.repeats
    sizes = sorted({len(f) for folds in split.partitions for f in folds})
    return (
        f"data: {patients} patients, {len(split.train)} cross-validated in {split.spec.short()} "
        f"(validation folds of {sizes[0]}{f'-{sizes[-1]}' if len(sizes) > 1 else ''} "
        f"patients; {unread}); each trial trains {models} fold models"
    )


def _estimate(settings: SearchSettings, prepared: PreparedSearch, budget: int) -> list[str]:
    space = settings.space
    slots = _parallel_trials(settings)
    lines = [f"time estimate (per-epoch costs measured on this machine, {slots} trials at once):"]
    total = 0.0
    for backbone in space.backbones:
        started = time.perf_counter()
        cost = measure_epoch_cost(prepared, settings, backbone)
        share = space.warmup_epochs / space.max_epochs  # of the budget, roughly
        per_epoch = share * cost.warmup + (1 - share) * cost.finetune + RAY_EPOCH_S
        per_pair = budget * per_epoch + space.samples * RAY_TRIAL_S
        seconds = cost.frozen + per_pair * len(space.modes)
        total += seconds
        lines.append(
            f"  {backbone}: frozen pass {cost.frozen:.1f} s, warm-up epoch {cost.warmup:.2f} s, "
            f"fine-tune epoch {cost.finetune:.2f} s -> {seconds / 60:.1f} min of trials "
            f"(measured in {time.perf_counter() - started:.0f} s)"
        )
    lines.append(
        f"  about {total / slots / 60:.1f} min in all (with Ray's costs: {RAY_EPOCH_S} s a "
        f"reported epoch, {RAY_TRIAL_S} s a trial start)"
    )
    return lines


def _parallel_trials(settings: SearchSettings) -> int:
    if settings.gpus_per_trial > 0:
        import torch

        slots = math.floor(max(torch.cuda.device_count(), 1) / settings.gpus_per_trial)
    else:
        slots = math.floor((os.cpu_count() or 1) / settings.cpus_per_trial)
    if settings.max_concurrent:
        slots = min(slots, settings.max_concurrent)
    return max(slots, 1)
