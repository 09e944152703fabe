"""Where each stage of a fold model starts, and the frozen work it starts from.

The unfreeze plan is known before training, so the backbone is cut once, before the block
holding the lowest layer fine-tune will unfreeze, where its forward is a chain of modules:
everything below the cut stays frozen for the whole trial and its output is computed once.
Warm-up starts from the frozen backbone's pooled features; fine-tune from the activations
at the cut. With augmentation, the frozen work is done on a fixed pool of augmented copies
of each map and every epoch draws one copy per training map.

The frozen work is the same for every fold model of a trial, since they share the
pretrained backbone and the maps: it is computed once for the whole pool of patients and
held in a `FrozenWork` that all fold models read, each taking its own rows. Its entries
are keyed by a `FeatureKind` and a `Split`; the names the result tables record
(`compute_path`) and the store's keys are made from those in one place each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import torch

from trainables.augment import augment
from trainables.chain import Chain, feature_chain
from trainables.config import AugmentSpec, TrialConfig
from trainables.frozen_store import FrozenWorkStore
from trainables.model import PolarMapNet
from trainables.pool import TrainingPool
from trainables.unfreeze import plan_unfreezing
from trainables.weight_files import weights_digest

__all__ = [
    "POOL",
    "FeatureKind",
    "FrozenFeatures",
    "FrozenWork",
    "Split",
    "autocast",
    "autocast_dtype",
    "path_name",
]


class FeatureKind(StrEnum):
    """What frozen work a stage starts from: the frozen backbone's pooled features
    (warm-up) or the activations at the cut (fine-tune). The value names it in the store."""

    POOLED = "pooled"
    PREFIX = "prefix"


@dataclass(frozen=True)
class Split:
    """Which maps frozen work is of: the pool's own (`copy` None), or augmented copy number
    `copy` of them."""

    copy: int | None = None

    def inputs_digest(self, view_digest: str, spec: AugmentSpec) -> str:
        """How the store names these maps of one view, from that view's digest of the pool's
        maps: a copy is named by the augmentation and its number too."""
        if self.copy is None:
            return view_digest
        return f"{view_digest}:{spec}:{self.copy}"


POOL = Split()  # the pool's own maps


def path_name(start: FeatureKind | None, cut: str) -> str:
    """How the result tables name a stage's compute path (`compute_path_warmup`,
    `compute_path_finetune`), from where it starts (None: from the maps) and the cut."""
    if start is None:
        return "full"
    if start is FeatureKind.POOLED:
        return "pooled-features"
    return f"cached-prefix:{cut}"


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The number format a trial computes in on `device` (None: full precision); frozen
    work is computed in it too, and the store's keys name it."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: torch.device):
    """A context computing in `autocast_dtype(device)`."""
    dtype = autocast_dtype(device)
    if dtype is not None:
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", enabled=False)


class FrozenWork:
    """The pool's frozen work, shared by a trial's fold models: computed by the first that
    needs it (or read from the store, where another trial did it) and kept for the trial.
    `entries`: of the pool's maps or of one augmented copy; `stacked`: of all the copies,
    stacked (copies, N, ...)."""

    def __init__(self, pool: TrainingPool, device: torch.device, store: FrozenWorkStore | None):
        self.x, self.y = pool.x.to(device), pool.y.to(device)
        self.pool, self.store = pool, store
        self.entries: dict[tuple[FeatureKind, Split], torch.Tensor] = {}
        self.stacked: dict[FeatureKind, torch.Tensor] = {}
        # store entries (one per view) this trial read, and computed and stored: the
        # store's hits and misses, in the trials table
        self.counts = {"read": 0, "computed": 0}

    def drop(self, kind: FeatureKind) -> None:
        """Forget the entries of `kind` (warm-up's pooled features, once fine-tune starts)."""
        for key in [k for k in self.entries if k[0] is kind]:
            del self.entries[key]
        self.stacked.pop(kind, None)


class FrozenFeatures:
    """One fold model's frozen-feature plan: the cut of its backbone (its `chain`, run from
    `top_start` above the cut), where each stage starts (`starts`: None, from the maps),
    and that start's frozen work, read from the trial's `FrozenWork`."""

    def __init__(
        self, config: TrialConfig, model: PolarMapNet, device: torch.device, work: FrozenWork
    ):
        self.config, self.model, self.device, self.work = config, model, device, work
        self.chain: Chain | None = None
        self.top_start = 0
        self.cut_name = "none"  # where the chain is cut, for store keys
        self.starts: dict[str, FeatureKind | None] = {"warmup": None, "finetune": None}
        if config.feature_cache:
            self._plan()

    def _plan(self) -> None:
        """Cut the backbone where fine-tune's unfrozen layers begin."""
        self.starts["warmup"] = FeatureKind.POOLED
        chain = feature_chain(self.model.backbone)
        if chain is None:  # e.g. transformers: warm-up still needs the backbone only once
            return
        plan = plan_unfreezing(self.model.layers, self.config.unfreeze, self.config.rule)
        self.chain, self.top_start = chain, chain.cut_before(plan.layers)
        units = chain.units
        self.cut_name = (
            units[self.top_start][0] if self.top_start < len(units) else "backbone-output"
        )
        self.starts["finetune"] = FeatureKind.PREFIX

    @property
    def compute_path(self) -> dict[str, str]:
        """Each stage's compute path and the augmentation's, as the result tables name them."""
        config = self.config
        augmentation = "none"
        if config.augment.active:
            augmentation = (
                f"pool of {config.augment_copies} copies" if config.feature_cache else "per epoch"
            )
        return {
            "warmup": path_name(self.starts["warmup"], self.cut_name),
            "finetune": path_name(self.starts["finetune"], self.cut_name),
            "augmentation": augmentation,
        }

    @torch.no_grad()
    def start_points(self, stage: str, copies: bool) -> torch.Tensor | None:
        """The cached input of `stage`'s trainable part for every map of the pool (or, with
        `copies`, for its augmented copies, stacked), or None where it starts from the maps."""
        kind = self.starts[stage]
        if kind is None:
            return None
        work = self.work
        if copies and kind not in work.stacked:
            with self._computing():
                splits = [Split(c) for c in range(self.config.augment_copies)]
                work.stacked[kind] = torch.stack([self._start_work(kind, s) for s in splits])
                if kind is FeatureKind.PREFIX:  # now held in the stack
                    for split in splits:
                        work.entries.pop((kind, split), None)
        elif not copies and (kind, POOL) not in work.entries:
            with self._computing():
                work.entries[kind, POOL] = self._start_work(kind, POOL)
        return work.stacked[kind] if copies else work.entries[kind, POOL]

    @contextmanager
    def _computing(self) -> Iterator[None]:
        """The model in eval mode (its training mode back after), in the trial's format."""
        was_training = self.model.training
        self.model.eval()
        try:
            with autocast(self.device):
                yield
        finally:
            self.model.train(was_training)

    def _start_work(self, kind: FeatureKind, split: Split) -> torch.Tensor:
        """The frozen work of `kind` for `split`, as a stage starts from it: pooled
        features (N, V * features), as the model's `features` gives them."""
        work = self._frozen_work(kind, split)
        return work.flatten(1) if kind is FeatureKind.POOLED else work

    def _inputs(self, split: Split) -> torch.Tensor:
        """The maps of `split`: the pool's, or its augmented copy. A copy is the same for
        every trial (its random stream depends on the copy number only), so trials share
        its frozen work."""
        if split.copy is None:
            return self.work.x
        generator = torch.Generator().manual_seed(1_000_003 + split.copy)
        return augment(self.work.x, self.config.augment, generator)

    def _frozen_work(self, kind: FeatureKind, split: Split) -> torch.Tensor:
        """The frozen work of `kind` for `split`, (N, V, ...): from the store where another
        trial (or an earlier run) did it already, else computed here and stored. Stored per
        view, since a view's frozen work does not depend on the other views: searches in
        stress or rest mode read what a dual-mode search stored, and the other way round."""
        store = self.work.store
        views = range(len(self.config.views))
        keys = [self.store_key(kind, split, v) if store else None for v in views]
        rows = len(self.work.x)  # a stored entry must hold one row per map
        parts = {v: store.load(key, rows) for v, key in enumerate(keys) if key is not None}
        missing = [v for v in views if parts.get(v) is None]
        computed = 0
        if missing:
            with store.computing([keys[v] for v in missing]) if store else nullcontext():
                if store:  # another trial may have stored them while this one waited
                    parts.update({v: store.load(keys[v], rows) for v in missing})
                computed = self._compute_missing(kind, split, parts, keys)
        if store:
            self.work.counts["read"] += len(views) - computed
            self.work.counts["computed"] += computed
        return torch.stack([parts[v].to(self.device) for v in views], dim=1)

    def _compute_missing(
        self, kind: FeatureKind, split: Split, parts: dict[int, Any], keys: list[str | None]
    ) -> int:
        """Compute the views missing from `parts` together, and store each; how many."""
        missing = [v for v in range(len(keys)) if parts.get(v) is None]
        if not missing:
            return 0
        computed = self._compute_frozen(kind, split, missing)
        for i, view in enumerate(missing):
            parts[view] = computed[:, i]
            if keys[view] is not None:
                self.work.store.store(keys[view], parts[view])
        return len(missing)

    def _compute_frozen(self, kind: FeatureKind, split: Split, views: list[int]) -> torch.Tensor:
        """(N, len(views), ...) frozen work of `kind` for those views of `split`."""
        if self.chain is None:  # no cut: pooled features straight from the maps
            pooled = _in_chunks(self.model.features, self._inputs(split)[:, views])
            return pooled.unflatten(1, (len(views), -1))
        if kind is FeatureKind.PREFIX:
            return _in_chunks(self._prefix, self._inputs(split)[:, views])
        entries = self.work.entries
        prefix = (FeatureKind.PREFIX, split)
        if prefix not in entries:  # kept: fine-tune starts from it too
            entries[prefix] = self._frozen_work(*prefix)
        pooled = _in_chunks(
            lambda a: self.model.features_from(a, self.chain, self.top_start),
            entries[prefix][:, views],
        )
        return pooled.unflatten(1, (len(views), -1))

    def store_key(self, kind: FeatureKind, split: Split, view: int) -> str:
        """The store's name of one view's frozen work: everything it depends on."""
        config = self.config
        return FrozenWorkStore.key(
            kind=kind.value,
            weights=weights_digest(config.backbone, config.pretrained, config.weights, config.seed),
            inputs=split.inputs_digest(self.work.pool.digests[view], config.augment),
            cut=self.cut_name,
            device=self.device.type,
            autocast=str(autocast_dtype(self.device)),
        )

    def _prefix(self, x: torch.Tensor) -> torch.Tensor:
        """(B, V, 3, H, W) -> (B, V, ...) activations entering the trainable top."""
        assert self.chain is not None
        out = self.chain.run(x.flatten(0, 1), 0, self.top_start)
        return out.reshape(x.shape[0], x.shape[1], *out.shape[1:])


def _in_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int = 64):
    """fn over rows of x, `size` at a time (bounded memory), concatenated."""
    return torch.cat([fn(x[s : s + size]) for s in range(0, len(x), size)])
