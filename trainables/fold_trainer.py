"""One fold model of a trial and its moving parts: the two stages, the compute paths, one
epoch of training and evaluation, and its weights and state. Which epoch is kept is not
decided here: the trial decides for all its fold models together (`trainables.protocol`).

The frozen work (activations below the cut, pooled features of the frozen backbone) is
the same for every fold model of a trial, since they share the pretrained backbone and the
maps: it is computed once for the whole pool of patients and held in a `FrozenWork` that
all fold models read, each taking its own rows.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainables.augment import augment
from trainables.chain import Chain, feature_chain
from trainables.config import TrialConfig
from trainables.frozen_store import FrozenWorkStore
from trainables.model import PolarMapNet
from trainables.pool import Fold, TrainingPool
from trainables.unfreeze import plan_unfreezing
from trainables.weight_files import weights_digest

__all__ = ["EpochOutcome", "FoldTrainer", "FrozenWork"]


class FrozenWork:
    """The pool's frozen work, shared by a trial's fold models: computed by the first that
    needs it (or read from the store, where another trial did it) and kept for the trial.
    Keys: (kind, split), kind "pooled" or "prefix", split "pool" or "copies" (the pool's
    augmented copies, stacked)."""

    def __init__(self, pool: TrainingPool, device: torch.device, store: FrozenWorkStore | None):
        self.x, self.y = pool.x.to(device), pool.y.to(device)
        self.pool, self.store = pool, store
        self.entries: dict[tuple[str, str], torch.Tensor] = {}
        # store entries (one per view) this trial read, and computed and stored: the
        # store's hits and misses, in the trials table
        self.counts = {"read": 0, "computed": 0}

    def drop(self, kind: str) -> None:
        """Forget the entries of `kind` (warm-up's pooled features, once fine-tune starts)."""
        for key in [k for k in self.entries if k[0] == kind]:
            del self.entries[key]


class EpochOutcome:
    """What one epoch of one fold model gave: training figures, validation loss and class
    probabilities of its validation patients (in the order of its `val_rows`)."""

    def __init__(self, train_loss, train_accuracy, val_loss, probabilities):
        self.train_loss, self.train_accuracy = train_loss, train_accuracy
        self.val_loss, self.probabilities = val_loss, probabilities


class FoldTrainer:
    """One fold model; `epoch` counts finished epochs across both stages."""

    def __init__(
        self,
        config: TrialConfig,
        fold: Fold,
        model: PolarMapNet,
        device: torch.device,
        frozen: FrozenWork,
    ):
        self.config, self.fold, self.model, self.device = config, fold, model, device
        self.frozen = frozen
        self.train_rows, self.val_rows = fold.train_rows.to(device), fold.val_rows.to(device)
        self.train_y = frozen.y[self.train_rows]
        self.val_y = frozen.y[self.val_rows]
        classes = len(frozen.pool.class_names)
        self.loss_weights = _class_weights(self.train_y, classes) if config.class_weighted else None
        self.epoch = 0
        self.best_weights: dict[str, torch.Tensor] = {}
        self.unfreezing: dict[str, Any] = {"requested": config.unfreeze, "effective": 0}
        self.optimizer = self._optimizer("warmup")
        self._chain: Chain | None = None
        self._top_start = 0
        self._cut_name = "none"  # where the chain is cut, for store keys
        self.compute_path = self._plan_paths()
        self._stage = "warmup"
        self._epoch_copies = torch.zeros(0, dtype=torch.long)

    # -- stages ---------------------------------------------------------------------------
    @property
    def stage(self) -> str:
        """The stage of the epoch being run (or, between epochs, of the next one)."""
        return self._stage

    def start_finetune(self) -> None:
        """From the best warm-up weights, unfreeze the top k layers, new optimizer."""
        self.restore_best()
        plan = self.model.unfreeze_top(self.config.unfreeze, self.config.rule)
        self.unfreezing = {
            "requested": plan.requested,
            "effective": plan.effective,
            "allowed": plan.allowed,
            "trainable_share": plan.trainable_share,
            "layers": list(plan.layers),
        }
        self.optimizer = self._optimizer("finetune")
        self.frozen.drop("pooled")
        # The best so far is now this model (best head, pretrained layers): if no fine-tune
        # epoch beats it, restoring the best must also put the unfrozen layers back.
        self.best_weights = self.trainable_state()

    def _optimizer(self, stage: str) -> torch.optim.Optimizer:
        """The stage's optimizer: Adam over the head at 10^-a in warm-up; over every
        unfrozen parameter (head and top layers) at 10^-(a+2) in fine-tune."""
        if stage == "warmup":
            return torch.optim.Adam(self.model.head.parameters(), lr=self.config.warmup_lr)
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.config.finetune_lr)

    def run_epoch(self) -> EpochOutcome:
        if self.epoch == self.config.warmup_epochs:
            self.start_finetune()
        self._stage = "warmup" if self.epoch < self.config.warmup_epochs else "finetune"
        self.epoch += 1
        train_loss, train_accuracy = self._train_one_epoch()
        val_loss, probabilities = self._evaluate()
        return EpochOutcome(train_loss, train_accuracy, val_loss, probabilities)

    def keep_best(self) -> None:
        """This epoch's weights are the best so far (the trial decided)."""
        self.best_weights = self.trainable_state()

    # -- compute paths ------------------------------------------------------------------
    def _plan_paths(self) -> dict[str, str]:
        """Where each stage's forward starts. The unfreeze plan is known before training,
        so the backbone is cut once, before the block holding the lowest layer fine-tune
        will unfreeze, where its forward is a chain of modules: everything below the cut
        stays frozen for the whole trial and its output is computed once. Warm-up pools
        the frozen backbone's output from there; fine-tune trains from there.
        With augmentation, the frozen work is done on a fixed pool of augmented copies of
        each map and every epoch draws one copy per training map."""
        config = self.config
        augmentation = "none"
        if config.augment.active:
            augmentation = (
                f"pool of {config.augment_copies} copies" if config.feature_cache else "per epoch"
            )
        paths = {"warmup": "full", "finetune": "full", "augmentation": augmentation}
        if not config.feature_cache:
            return paths
        paths["warmup"] = "pooled-features"
        chain = feature_chain(self.model.backbone)
        if chain is None:  # e.g. transformers: warm-up still needs the backbone only once
            return paths
        plan = plan_unfreezing(self.model.layers, config.unfreeze, config.rule)
        self._chain, self._top_start = chain, chain.cut_before(plan.layers)
        self._cut_name = (
            chain.units[self._top_start][0]
            if self._top_start < len(chain.units)
            else "backbone-output"
        )
        paths["finetune"] = f"cached-prefix:{self._cut_name}"
        return paths

    @torch.no_grad()
    def _start_points(self, copies: bool) -> torch.Tensor | None:
        """The cached input of this stage's trainable part for every map of the pool (or,
        with `copies`, for its augmented copies, stacked), or None."""
        if self.compute_path[self.stage] == "full":
            return None
        kind = "pooled" if self.stage == "warmup" else "prefix"
        split = "copies" if copies else "pool"
        entries = self.frozen.entries
        if (kind, split) not in entries:
            was_training = self.model.training
            self.model.eval()

            def frozen_work(name: str) -> torch.Tensor:  # pooled: (N, V * features) as `features`
                work = self._frozen_work(kind, name)
                return work.flatten(1) if kind == "pooled" else work

            with self._autocast():
                if copies:
                    names = [f"copy{c}" for c in range(self.config.augment_copies)]
                    entries[kind, split] = torch.stack([frozen_work(n) for n in names])
                    if kind == "prefix":  # now held in the stack
                        for name in names:
                            entries.pop(("prefix", name), None)
                else:
                    entries[kind, split] = frozen_work("pool")
            self.model.train(was_training)
        return entries[kind, split]

    def _inputs(self, split: str) -> torch.Tensor:
        """The maps of `split`: pool, or copy<c>, augmented copy c of the pool."""
        if split == "pool":
            return self.frozen.x
        return self._augmented_copy(int(split.removeprefix("copy")))

    def _inputs_digest(self, split: str, view: int) -> str:
        digest = self.frozen.pool.digests[view]
        if split == "pool":
            return digest
        return f"{digest}:{self.config.augment}:{split.removeprefix('copy')}"

    def _augmented_copy(self, copy: int) -> torch.Tensor:
        """Copy `copy` of the pool's maps, augmented; the same for every trial (its random
        stream depends on the copy number only), so trials share its frozen work."""
        generator = torch.Generator().manual_seed(1_000_003 + copy)
        return augment(self.frozen.x, self.config.augment, generator)

    def _frozen_work(self, kind: str, split: str) -> torch.Tensor:
        """The frozen work of `kind` for `split`, (N, V, ...): from the store where another
        trial (or an earlier run) did it already, else computed here and stored. Stored per
        view, since a view's frozen work does not depend on the other views: searches in
        stress or rest mode read what a dual-mode search stored, and the other way round."""
        store = self.frozen.store
        views = range(len(self.config.views))
        keys = [self._store_key(kind, split, v) if store else None for v in views]
        rows = len(self.frozen.x)  # a stored entry must hold one row per map
        parts = {v: store.load(key, rows) for v, key in enumerate(keys) if key is not None}
        missing = [v for v in views if parts.get(v) is None]
        computed = 0
        if missing:
            with store.computing([keys[v] for v in missing]) if store else nullcontext():
                if store:  # another trial may have stored them while this one waited
                    parts.update({v: store.load(keys[v], rows) for v in missing})
                computed = self._compute_missing(kind, split, parts, keys)
        if store:
            self.frozen.counts["read"] += len(views) - computed
            self.frozen.counts["computed"] += computed
        return torch.stack([parts[v].to(self.device) for v in views], dim=1)

    def _compute_missing(
        self, kind: str, split: str, parts: dict[int, Any], keys: list[str | None]
    ) -> int:
        """Compute the views missing from `parts` together, and store each; how many."""
        missing = [v for v in range(len(keys)) if parts.get(v) is None]
        if not missing:
            return 0
        computed = self._compute_frozen(kind, split, missing)
        for i, view in enumerate(missing):
            parts[view] = computed[:, i]
            if keys[view] is not None:
                self.frozen.store.store(keys[view], parts[view])
        return len(missing)

    def _compute_frozen(self, kind: str, split: str, views: list[int]) -> torch.Tensor:
        """(N, len(views), ...) frozen work of `kind` for those views of `split`."""
        if self._chain is None:  # no cut: pooled features straight from the maps
            pooled = _in_chunks(self.model.features, self._inputs(split)[:, views])
            return pooled.unflatten(1, (len(views), -1))
        if kind == "prefix":
            return _in_chunks(self._prefix, self._inputs(split)[:, views])
        entries = self.frozen.entries
        if ("prefix", split) not in entries:  # kept: fine-tune starts from it too
            entries["prefix", split] = self._frozen_work("prefix", split)
        pooled = _in_chunks(
            lambda a: self.model.features_from(a, self._chain, self._top_start),
            entries["prefix", split][:, views],
        )
        return pooled.unflatten(1, (len(views), -1))

    def _store_key(self, kind: str, split: str, view: int) -> str:
        config = self.config
        return FrozenWorkStore.key(
            kind=kind,
            weights=weights_digest(config.backbone, config.pretrained, config.weights, config.seed),
            inputs=self._inputs_digest(split, view),
            cut=self._cut_name,
            device=self.device.type,
            autocast=str(self._autocast_dtype()),
        )

    def _prefix(self, x: torch.Tensor) -> torch.Tensor:
        """(B, V, 3, H, W) -> (B, V, ...) activations entering the trainable top."""
        assert self._chain is not None
        out = self._chain.run(x.flatten(0, 1), 0, self._top_start)
        return out.reshape(x.shape[0], x.shape[1], *out.shape[1:])

    def _logits(self, rows: torch.Tensor, x: torch.Tensor | None, drawn: torch.Tensor | None):
        """Logits for the pool's `rows`, from the stage's cached start points where there
        are some (with `drawn`, from each row's drawn augmented copy), else from the
        (possibly augmented) maps `x`."""
        start = self._start_points(copies=drawn is not None)
        if start is None:
            return self.model(x)
        start = start[drawn, rows] if drawn is not None else start[rows]
        if self.stage == "warmup":
            return self.model.head(start)
        return self.model.head(self.model.features_from(start, self._chain, self._top_start))

    # -- one epoch ------------------------------------------------------------------------
    def _train_one_epoch(self) -> tuple[float, float]:
        """Mean loss and accuracy over the epoch's batches, as they trained (the running
        figures Keras reports, so curves compare with the seeds' Figure 4)."""
        config = self.config
        self.model.train()
        generator = torch.Generator().manual_seed(config.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.train_rows), generator=generator).to(self.device)
        full = self.compute_path[self.stage] == "full"
        copies = not full and config.augment.active
        if copies:
            self._epoch_copies = torch.randint(
                config.augment_copies, (len(self.train_rows),), generator=generator
            ).to(self.device)
        total, count = torch.zeros((), device=self.device), 0  # summed on the device
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            rows = self.train_rows[index]
            with self._autocast():
                x = augment(self.frozen.x[rows], config.augment, generator) if full else None
                logits = self._logits(rows, x, self._epoch_copies[index] if copies else None)
                loss = F.cross_entropy(logits.float(), self.train_y[index], self.loss_weights)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach() * len(index)
            correct += (logits.detach().argmax(1) == self.train_y[index]).sum()
            count += len(index)
        # one device-to-host copy per figure per epoch
        return total.item() / count, correct.item() / count

    @torch.no_grad()
    def _evaluate(self) -> tuple[float, np.ndarray]:
        self.model.eval()
        with self._autocast():
            parts = []
            for s in range(0, len(self.val_rows), 64):
                rows = self.val_rows[s : s + 64]
                parts.append(self._logits(rows, self.frozen.x[rows], None))
        logits = torch.cat(parts).float()
        loss = float(F.cross_entropy(logits, self.val_y, self.loss_weights))
        return loss, torch.softmax(logits, dim=1).cpu().numpy()

    def _autocast_dtype(self) -> torch.dtype | None:
        if self.device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None

    def _autocast(self):
        dtype = self._autocast_dtype()
        if dtype is not None:
            return torch.autocast("cuda", dtype=dtype)
        return torch.autocast("cpu", enabled=False)

    # -- weights and state ----------------------------------------------------------------
    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Head and unfrozen layers (parameters and their norm statistics): all that
        differs from the pretrained backbone."""
        state = {f"head.{k}": v.detach().clone() for k, v in self.model.head.state_dict().items()}
        modules = dict(self.model.layers)
        for name in self.unfreezing.get("layers", []):
            for key, value in modules[name].state_dict().items():
                state[f"backbone.{name}.{key}"] = value.detach().clone()
        return state

    def restore_best(self) -> None:
        if self.best_weights:
            self.model.load_state_dict(self.best_weights, strict=False)

    def state(self) -> dict[str, Any]:
        """This fold model's part of the trial's state (the trial deep-copies it)."""
        return {
            "weights": self.trainable_state(),
            "optimizer": self.optimizer.state_dict(),
            "best_weights": self.best_weights,
        }

    def load_state(self, state: dict[str, Any], epoch: int, unfreezing: dict[str, Any]) -> None:
        self.epoch = epoch
        if self.epoch > self.config.warmup_epochs:
            self.model.unfreeze_top(self.config.unfreeze, self.config.rule)
            self.unfreezing = unfreezing
            self.optimizer = self._optimizer("finetune")
            self._stage = "finetune"
        self.model.load_state_dict(state["weights"], strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.best_weights = state["best_weights"]


def _in_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int = 64):
    """fn over rows of x, `size` at a time (bounded memory), concatenated."""
    return torch.cat([fn(x[s : s + size]) for s in range(0, len(x), size)])


def _class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """len / (classes x count) per class: every class weighs the same in the loss."""
    counts = torch.bincount(labels.cpu(), minlength=num_classes).float().clamp(min=1)
    return (len(labels) / (num_classes * counts)).to(labels.device)
