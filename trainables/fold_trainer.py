"""One fold model of a trial and its moving parts: the two stages, one epoch of training
and evaluation, and its weights and state. Which epoch is kept is not decided here: the
trial decides for all its fold models together (`trainables.protocol`).

Where each stage's forward starts (the maps, or frozen work shared by the trial's fold
models) is its `FrozenFeatures`' to say (`trainables.frozen_features`), asked as the
stage's batches start.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainables.augment import augment
from trainables.config import TrialConfig
from trainables.frozen_features import FeatureKind, FrozenFeatures, FrozenWork, autocast
from trainables.model import PolarMapNet
from trainables.pool import Fold

# FrozenWork is made by the trial (`trainables.protocol`), which imports it from here
__all__ = ["EpochOutcome", "FoldTrainer", "FrozenWork"]


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
        self.features = FrozenFeatures(config, model, device, frozen)
        self.compute_path = self.features.compute_path
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
        self.frozen.drop(FeatureKind.POOLED)
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

    # -- where each stage starts --------------------------------------------------------
    def _logits(self, rows: torch.Tensor, x: torch.Tensor | None, drawn: torch.Tensor | None):
        """Logits for the pool's `rows`, from the stage's cached start points where there
        are some (with `drawn`, from each row's drawn augmented copy), else from the
        (possibly augmented) maps `x`."""
        start = self.features.start_points(self.stage, copies=drawn is not None)
        if start is None:
            return self.model(x)
        start = start[drawn, rows] if drawn is not None else start[rows]
        if self.stage == "warmup":
            return self.model.head(start)
        cut = self.features  # the trainable top runs from its cut
        return self.model.head(self.model.features_from(start, cut.chain, cut.top_start))

    # -- one epoch ------------------------------------------------------------------------
    def _train_one_epoch(self) -> tuple[float, float]:
        """Mean loss and accuracy over the epoch's batches, as they trained (the running
        figures Keras reports, so curves compare with the seeds' Figure 4)."""
        config = self.config
        self.model.train()
        generator = torch.Generator().manual_seed(config.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.train_rows), generator=generator).to(self.device)
        full = self.features.starts[self.stage] is None  # from the maps
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
            with autocast(self.device):
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
        with autocast(self.device):
            parts = []
            for s in range(0, len(self.val_rows), 64):
                rows = self.val_rows[s : s + 64]
                parts.append(self._logits(rows, self.frozen.x[rows], None))
        logits = torch.cat(parts).float()
        loss = float(F.cross_entropy(logits, self.val_y, self.loss_weights))
        return loss, torch.softmax(logits, dim=1).cpu().numpy()

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


def _class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """len / (classes x count) per class: every class weighs the same in the loss."""
    counts = torch.bincount(labels.cpu(), minlength=num_classes).float().clamp(min=1)
    return (len(labels) / (num_classes * counts)).to(labels.device)
