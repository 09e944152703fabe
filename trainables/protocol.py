"""The seeds' two-stage transfer-learning protocol as a plain function.

Warm-up: backbone frozen (BatchNorm in eval), head trained with Adam at 10^-a; the best
validation epoch is restored. Fine-tune: the top k layers unfrozen (within the one-third
rule), Adam at 10^-(a+2); the best epoch is restored again. Only validation data choose
epochs. `run_protocol` takes a `report` callable, called after every epoch with the
epoch's figures and the trial's whole state, so it runs without Ray; the Ray adapter
turns each call into `tune.report` with a checkpoint, and passing that state back as
`resume` continues the trial exactly where it stopped.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainables.augment import augment
from trainables.chain import Chain, feature_chain
from trainables.config import TrialConfig
from trainables.frozen_store import FrozenWorkStore, tensor_digest
from trainables.metrics import PER_CLASS_METRICS, classification_metrics
from trainables.model import PolarMapNet
from trainables.unfreeze import plan_unfreezing
from trainables.weight_files import weights_digest
from trainables.weights import initial_backbone

__all__ = ["TrialConfig", "TrialData", "TrialResult", "run_protocol"]

Report = Callable[[dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class TrialData:
    """Normalized maps as tensors: x is (N, views, 3, H, W) float, y is (N,) class index."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    class_names: tuple[str, ...]

    @cached_property
    def digests(self) -> dict[str, tuple[str, ...]]:
        """SHA-256 of the train and validation maps of each view, part of the name of their
        frozen work. Computed once; a copy pickled after that (to a Ray worker) carries it."""
        return {
            split: tuple(tensor_digest(x[:, v]) for v in range(x.shape[1]))
            for split, x in (("train", self.train_x), ("val", self.val_x))
        }


@dataclass
class TrialResult:
    """What a finished trial leaves: the model with its best weights restored, and figures."""

    model: PolarMapNet
    history: list[dict[str, Any]]
    best: dict[str, Any]
    unfreezing: dict[str, Any]
    compute_path: dict[str, str]


def run_protocol(
    config: TrialConfig,
    data: TrialData,
    report: Report | None = None,
    resume: dict[str, Any] | None = None,
    store: FrozenWorkStore | None = None,
) -> TrialResult:
    """Run (or continue from `resume`, a state a `report` call received) one trial.
    `store` shares the frozen work (the backbone below the cut) with other trials."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone = initial_backbone(config.backbone, config.pretrained, config.weights, config.seed)
    model = PolarMapNet(backbone, len(config.views), len(data.class_names), config.head)
    # channels_last: faster convolutions on GPUs and with oneDNN on CPUs alike.
    model = model.to(device, memory_format=torch.channels_last)
    trainer = _Trainer(config, data, model, device, store)
    if resume is not None:
        trainer.load_state(resume)
    try:
        while trainer.epoch < config.epochs:
            record = trainer.run_epoch()
            if report is not None:
                report(record, trainer.state())
        trainer.restore_best()
        return TrialResult(
            model, trainer.history, trainer.best_summary(), trainer.unfreezing, trainer.compute_path
        )
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


class _Trainer:
    """The protocol's moving parts; `epoch` counts finished epochs across both stages."""

    def __init__(
        self,
        config: TrialConfig,
        data: TrialData,
        model: PolarMapNet,
        device: torch.device,
        store: FrozenWorkStore | None = None,
    ):
        self.config, self.model, self.device, self.store = config, model, device, store
        self.train_x, self.train_y = data.train_x.to(device), data.train_y.to(device)
        self.val_x, self.val_y = data.val_x.to(device), data.val_y.to(device)
        self.class_names = data.class_names
        self.data = data
        self.loss_weights = (
            _class_weights(self.train_y, len(data.class_names)) if config.class_weighted else None
        )
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_metric, self.best_loss = -np.inf, np.inf
        self.best_epoch = {"warmup": 0, "finetune": 0}
        self.best_weights: dict[str, torch.Tensor] = {}
        self.unfreezing: dict[str, Any] = {"requested": config.unfreeze, "effective": 0}
        self.optimizer = self._optimizer("warmup")
        # The frozen work, done once per trial: activations entering the block that holds
        # the lowest layer fine-tune will unfreeze ("prefix"), and the pooled features of
        # the whole frozen backbone ("pooled"), per split.
        self._cached: dict[tuple[str, str], torch.Tensor] = {}
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
        self._cached = {k: v for k, v in self._cached.items() if k[0] == "prefix"}
        # The best so far is now this model (best head, pretrained layers): if no fine-tune
        # epoch beats it, restoring the best must also put the unfrozen layers back.
        self.best_weights = self._trainable_state()

    def _optimizer(self, stage: str) -> torch.optim.Optimizer:
        """The stage's optimizer: Adam over the head at 10^-a in warm-up; over every
        unfrozen parameter (head and top layers) at 10^-(a+2) in fine-tune."""
        if stage == "warmup":
            return torch.optim.Adam(self.model.head.parameters(), lr=self.config.warmup_lr)
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.config.finetune_lr)

    def run_epoch(self) -> dict[str, Any]:
        started = time.perf_counter()
        if self.epoch == self.config.warmup_epochs:
            self.start_finetune()
        stage = self._stage = "warmup" if self.epoch < self.config.warmup_epochs else "finetune"
        self.epoch += 1
        train_loss, train_accuracy = self._train_one_epoch()
        val_loss, probabilities = self._evaluate()
        macro, per_class = classification_metrics(self.val_y.cpu().numpy(), probabilities)
        score = macro[self.config.selection]
        improved = score > self.best_metric or (
            score == self.best_metric and val_loss < self.best_loss
        )
        if improved:
            self.best_metric, self.best_loss = score, val_loss
            self.best_epoch[stage] = self.epoch
            self.best_weights = self._trainable_state()
        record: dict[str, Any] = {
            "epoch": self.epoch,
            "stage": stage,
            "stage_epoch": self.epoch - (0 if stage == "warmup" else self.config.warmup_epochs),
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "val_loss": val_loss,
            **{f"val_{name}": value for name, value in macro.items()},
            "selection_metric": self.config.selection,
            "best_selection": self.best_metric,
            "best_epoch": max(self.best_epoch.values()),
            "epoch_seconds": time.perf_counter() - started,
        }
        for name in PER_CLASS_METRICS:
            for cls, value in zip(self.class_names, per_class[name], strict=True):
                record[f"val_{name}/{cls}"] = float(value)
        self.history.append(record)
        return record

    # -- compute paths ------------------------------------------------------------------
    def _plan_paths(self) -> dict[str, str]:
        """Where each stage's forward starts. The unfreeze plan is known before training,
        so the backbone is cut once, before the block holding the lowest layer fine-tune
        will unfreeze, where its forward is a chain of modules: everything below the cut
        stays frozen for the whole trial and its output is computed once. Warm-up pools
        the frozen backbone's output from there; fine-tune trains from there.
        With augmentation, the frozen work is done on a fixed pool of augmented copies of
        each training map and every epoch draws one copy per map."""
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
    def _start_points(self, split: str) -> torch.Tensor | None:
        """The cached input of this stage's trainable part for `split`, or None."""
        if self.compute_path[self.stage] == "full":
            return None
        kind = "pooled" if self.stage == "warmup" else "prefix"
        if (kind, split) not in self._cached:
            was_training = self.model.training
            self.model.eval()

            def frozen_work(name: str) -> torch.Tensor:  # pooled: (N, V * features) as `features`
                work = self._frozen_work(kind, name)
                return work.flatten(1) if kind == "pooled" else work

            with self._autocast():
                if split == "train" and self.config.augment.active:
                    names = [f"train{c}" for c in range(self.config.augment_copies)]
                    self._cached[kind, split] = torch.stack([frozen_work(n) for n in names])
                    if kind == "prefix":  # now held in the stack
                        for name in names:
                            self._cached.pop(("prefix", name), None)
                else:
                    self._cached[kind, split] = frozen_work(split)
            self.model.train(was_training)
        return self._cached[kind, split]

    def _inputs(self, split: str) -> torch.Tensor:
        """The maps of `split`: train, val, or train<c>, augmented copy c of train."""
        if split == "val":
            return self.val_x
        if split == "train":
            return self.train_x
        return self._augmented_copy(int(split.removeprefix("train")))

    def _inputs_digest(self, split: str, view: int) -> str:
        if split in ("train", "val"):
            return self.data.digests[split][view]
        copy = split.removeprefix("train")
        return f"{self.data.digests['train'][view]}:{self.config.augment}:{copy}"

    def _augmented_copy(self, copy: int) -> torch.Tensor:
        """Copy `copy` of the training maps, augmented; the same for every trial (its
        random stream depends on the copy number only), so trials share its frozen work."""
        generator = torch.Generator().manual_seed(1_000_003 + copy)
        return augment(self.train_x, self.config.augment, generator)

    def _frozen_work(self, kind: str, split: str) -> torch.Tensor:
        """The frozen work of `kind` for `split`, (N, V, ...): from the store where another
        trial (or an earlier run) did it already, else computed here and stored. Stored per
        view, since a view's frozen work does not depend on the other views: searches in
        stress or rest mode read what a dual-mode search stored, and the other way round."""
        views = range(len(self.config.views))
        keys = [self._store_key(kind, split, v) if self.store else None for v in views]
        rows = self._inputs(split).shape[0]  # a stored entry must hold one row per map
        parts = {v: self.store.load(key, rows) for v, key in enumerate(keys) if key is not None}
        missing = [v for v in views if parts.get(v) is None]
        if missing:
            computed = self._compute_frozen(kind, split, missing)
            for i, view in enumerate(missing):
                parts[view] = computed[:, i]
                if keys[view] is not None:
                    self.store.store(keys[view], parts[view])
        return torch.stack([parts[v].to(self.device) for v in views], dim=1)

    def _compute_frozen(self, kind: str, split: str, views: list[int]) -> torch.Tensor:
        """(N, len(views), ...) frozen work of `kind` for those views of `split`."""
        if self._chain is None:  # no cut: pooled features straight from the maps
            pooled = _in_chunks(self.model.features, self._inputs(split)[:, views])
            return pooled.unflatten(1, (len(views), -1))
        if kind == "prefix":
            return _in_chunks(self._prefix, self._inputs(split)[:, views])
        if ("prefix", split) not in self._cached:  # kept: fine-tune starts from it too
            self._cached["prefix", split] = self._frozen_work("prefix", split)
        pooled = _in_chunks(
            lambda a: self.model.features_from(a, self._chain, self._top_start),
            self._cached["prefix", split][:, views],
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

    def _logits(self, split: str, index: torch.Tensor | slice, x: torch.Tensor | None = None):
        """Logits for the patients `index` of `split`, from the stage's cached start points
        where there are some, else from the (possibly augmented) maps `x`."""
        start = self._start_points(split)
        if start is None:
            return self.model(x)
        if split == "train" and self.config.augment.active:  # one drawn copy per map
            start = start[self._epoch_copies[index], index]
            index = slice(None)
        if self.stage == "warmup":
            return self.model.head(start[index])
        return self.model.head(self.model.features_from(start[index], self._chain, self._top_start))

    # -- one epoch ------------------------------------------------------------------------
    def _train_one_epoch(self) -> tuple[float, float]:
        """Mean loss and accuracy over the epoch's batches, as they trained (the running
        figures Keras reports, so curves compare with the seeds' Figure 4)."""
        config = self.config
        self.model.train()
        generator = torch.Generator().manual_seed(config.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.train_y), generator=generator).to(self.device)
        full = self.compute_path[self.stage] == "full"
        if not full and config.augment.active:
            self._epoch_copies = torch.randint(
                config.augment_copies, (len(self.train_y),), generator=generator
            ).to(self.device)
        total, count = torch.zeros((), device=self.device), 0  # summed on the device
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            with self._autocast():
                x = augment(self.train_x[index], config.augment, generator) if full else None
                logits = self._logits("train", index, x)
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
            parts = [
                self._logits("val", slice(s, s + 64), self.val_x[s : s + 64])
                for s in range(0, len(self.val_y), 64)
            ]
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
    def _trainable_state(self) -> dict[str, torch.Tensor]:
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

    def best_summary(self) -> dict[str, Any]:
        best = next(r for r in self.history if r["epoch"] == max(self.best_epoch.values()))
        return {
            "epoch": best["epoch"],
            "warmup_epoch": self.best_epoch["warmup"],
            "finetune_epoch": self.best_epoch["finetune"] or None,
            **{k: v for k, v in best.items() if k.startswith("val_")},
        }

    def state(self) -> dict[str, Any]:
        """Everything needed to continue exactly: small, without the frozen backbone. A deep
        copy, so later epochs do not change a state already handed out."""
        return copy.deepcopy(
            {
                "format": "polarmap-trial-state/1",
                "config": _plain(asdict(self.config)),
                "epoch": self.epoch,
                "weights": self._trainable_state(),
                "optimizer": self.optimizer.state_dict(),
                "best_weights": self.best_weights,
                "best_metric": self.best_metric,
                "best_loss": self.best_loss,
                "best_epoch": dict(self.best_epoch),
                "unfreezing": self.unfreezing,
                "compute_path": self.compute_path,
                "history": self.history,
                "torch_rng": torch.get_rng_state(),
            }
        )

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("config") != _plain(asdict(self.config)):
            raise ValueError("the saved trial state belongs to another configuration")
        self.epoch = state["epoch"]
        if self.epoch > self.config.warmup_epochs:
            self.model.unfreeze_top(self.config.unfreeze, self.config.rule)
            self.unfreezing = state["unfreezing"]
            self.optimizer = self._optimizer("finetune")
        self.model.load_state_dict(state["weights"], strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.best_weights = state["best_weights"]
        self.best_metric, self.best_loss = state["best_metric"], state["best_loss"]
        self.best_epoch = dict(state["best_epoch"])
        self.history = list(state["history"])
        torch.set_rng_state(state["torch_rng"])


def _in_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int = 64):
    """fn over rows of x, `size` at a time (bounded memory), concatenated."""
    return torch.cat([fn(x[s : s + size]) for s in range(0, len(x), size)])


def _class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """len / (classes x count) per class: every class weighs the same in the loss."""
    counts = torch.bincount(labels.cpu(), minlength=num_classes).float().clamp(min=1)
    return (len(labels) / (num_classes * counts)).to(labels.device)


def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively: the form a config takes after a JSON round trip."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
