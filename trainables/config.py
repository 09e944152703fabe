"""A trial's configuration, and its flat form: the dict Ray Tune samples and the result
tables store, one plain value per hyperparameter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from trainables.augment import AugmentSpec
from trainables.model import HeadSpec
from trainables.unfreeze import UnfreezeRule

__all__ = ["SELECTABLE", "TrialConfig"]

SELECTABLE = ("balanced_accuracy", "accuracy", "f1", "roc_auc", "sensitivity", "specificity")


@dataclass(frozen=True)
class TrialConfig:
    """One configuration run through the whole protocol."""

    backbone: str
    views: tuple[str, ...] = ("rest", "stress")
    head: HeadSpec = field(default_factory=HeadSpec)
    a: float = 3.5
    unfreeze: int = 3
    warmup_epochs: int = 100
    finetune_epochs: int = 30
    batch_size: int = 32
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    class_weighted: bool = False
    selection: str = "balanced_accuracy"
    seed: int = 0
    threads: int = 1
    pretrained: bool = False
    weights: str | None = None
    rule: UnfreezeRule = field(default_factory=UnfreezeRule)
    feature_cache: bool = True  # False: the exact mode, the whole model runs every batch
    augment_copies: int = 8  # with augmentation and the feature cache: copies per map

    def __post_init__(self) -> None:
        if self.selection not in SELECTABLE:
            raise ValueError(
                f"selection metric {self.selection!r}: expected one of {', '.join(SELECTABLE)}"
            )
        if self.warmup_epochs < 1 or self.finetune_epochs < 0 or self.batch_size < 1:
            raise ValueError("need warm-up epochs >= 1, fine-tune epochs >= 0, batch size >= 1")
        if self.augment_copies < 1:
            raise ValueError(f"augment_copies must be at least 1, got {self.augment_copies}")
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")

    @property
    def warmup_lr(self) -> float:
        return 10.0**-self.a

    @property
    def finetune_lr(self) -> float:
        return 10.0 ** -(self.a + 2)

    @property
    def epochs(self) -> int:
        return self.warmup_epochs + self.finetune_epochs

    def to_flat(self) -> dict[str, Any]:
        """Plain values only: head as width/depth/dropout (uniform heads) or lists."""
        flat: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "head":
                flat["head_widths"] = list(value.widths)
                flat["head_dropouts"] = list(value.dropouts)
            elif f.name == "rule":
                flat["max_layer_share"] = value.max_layer_share
                flat["max_param_share"] = value.max_parameter_share
            elif f.name == "augment":
                flat["augment"] = str(value)
            elif f.name == "views":
                flat["views"] = list(value)
            else:
                flat[f.name] = value
        return flat

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any]) -> TrialConfig:
        """Build from a flat dict; the head may be `width`, `depth`, `dropout` (what a
        search samples) or `head_widths`, `head_dropouts`. Unknown keys are ignored, so a
        search may carry its own bookkeeping keys alongside.

        Raises:
            ValueError: a value is out of range.
        """
        options = dict(flat)
        if "width" in options:
            head = HeadSpec.uniform(
                int(options["width"]),
                int(options.get("depth", 1)),
                float(options.get("dropout", HeadSpec().dropouts[0])),
            )
        elif "head_widths" in options:
            head = HeadSpec(tuple(options["head_widths"]), tuple(options["head_dropouts"]))
        else:
            head = HeadSpec()
        known = {f.name for f in fields(cls)} - {"head", "rule", "augment", "views"}
        values = {k: v for k, v in options.items() if k in known}
        return cls(
            **values,
            views=tuple(options.get("views", ("rest", "stress"))),
            head=head,
            augment=AugmentSpec.parse(str(options.get("augment", "none"))),
            rule=UnfreezeRule(
                float(options.get("max_layer_share", 1 / 3)),
                float(options.get("max_param_share", 1 / 3)),
            ),
        )
