"""A trial's configuration and its parts (head, augmentation, unfreeze rule), and its flat
form: the dict Ray Tune samples, the trainable reads and the result tables store, one
plain value per hyperparameter. Plain values only, no torch, so the result tables (which
must not need torch) read configurations through the same class the trials run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "PAIR_KEY",
    "SEARCH_KEYS",
    "SELECTABLE",
    "AugmentSpec",
    "HeadSpec",
    "TrialConfig",
    "UnfreezeRule",
    "check_flat",
    "flat_keys",
]

SELECTABLE = ("balanced_accuracy", "accuracy", "f1", "roc_auc", "sensitivity", "specificity")

PAIR_KEY = "pair"
# What a search adds to a trial's flat config beside the protocol's settings: bookkeeping
# that the scheduler, the progress view and the result tables read, never the protocol.
SEARCH_KEYS = {
    "mode": "the input mode's name (stress, rest, dual); the protocol reads `views`",
    PAIR_KEY: "backbone/mode: the Hyperband and the Optuna study the trial belongs to",
    "cpus": "the Ray CPUs the trial holds, for compute hours",
    "gpus": "the Ray GPUs the trial holds, for GPU-hours",
}
# A uniform head as a search draws it; `to_flat` writes the lists `head_widths` and
# `head_dropouts`, which hold any head.
HEAD_SHORTHAND = ("width", "depth", "dropout")


@dataclass(frozen=True)
class HeadSpec:
    """[Linear(width) -> ReLU -> Dropout] per entry of `widths`, then Linear(classes).

    The first seed's head is `HeadSpec((512, 256), (0.5, 0.3))`; the second seed's
    `HeadSpec((width,), (dropout,))`.
    """

    widths: tuple[int, ...] = (256,)
    dropouts: tuple[float, ...] = (0.3,)

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.dropouts):
            raise ValueError(f"head: {len(self.widths)} widths but {len(self.dropouts)} dropouts")
        if any(w < 1 for w in self.widths) or any(not 0 <= d < 1 for d in self.dropouts):
            raise ValueError(f"head: widths must be >= 1 and dropouts in [0, 1): {self}")

    @classmethod
    def uniform(cls, width: int, depth: int, dropout: float) -> HeadSpec:
        return cls((width,) * depth, (dropout,) * depth)


@dataclass(frozen=True)
class AugmentSpec:
    """hflip/vflip: flip with probability 0.5; rotate: uniform angle in +-degrees."""

    hflip: bool = False
    vflip: bool = False
    rotate: float = 0.0

    @property
    def active(self) -> bool:
        return self.hflip or self.vflip or self.rotate > 0

    @classmethod
    def parse(cls, text: str) -> AugmentSpec:
        """'none', or parts joined by '+': 'hflip', 'vflip', 'rotate10' (degrees)."""
        if text in ("", "none"):
            return cls()
        options: dict[str, object] = {}
        for part in text.split("+"):
            if part in ("hflip", "vflip"):
                options[part] = True
            elif part.startswith("rotate") and part[6:].replace(".", "", 1).isdigit():
                options["rotate"] = float(part[6:])
            else:
                raise ValueError(
                    f"augmentation {text!r}: expected 'none' or parts joined by '+' from "
                    "hflip, vflip, rotate<degrees> (e.g. hflip+rotate10)"
                )
        return cls(**options)  # type: ignore[arg-type]

    def __str__(self) -> str:
        parts = [p for p, on in (("hflip", self.hflip), ("vflip", self.vflip)) if on]
        if self.rotate > 0:
            parts.append(f"rotate{self.rotate:g}")
        return "+".join(parts) or "none"


@dataclass(frozen=True)
class UnfreezeRule:
    """The most of the backbone fine-tuning may train: shares of its layers and of its
    parameters (the seed's rule: a third of each)."""

    max_layer_share: float = 1 / 3
    max_parameter_share: float = 1 / 3


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


def flat_keys() -> frozenset[str]:
    """Every key a flat config may hold: what `TrialConfig.to_flat` writes, the uniform
    head's shorthand a search draws (`width`, `depth`, `dropout`), and `SEARCH_KEYS`."""
    protocol = TrialConfig(backbone="any").to_flat()
    return frozenset([*protocol, *HEAD_SHORTHAND, *SEARCH_KEYS])


def check_flat(flat: Mapping[str, Any]) -> TrialConfig:
    """The configuration a search's flat config describes, checked whole.

    Raises:
        ValueError: a key nothing reads (a misspelt range of a space, say), named with the
            keys there are; or a value out of range.
    """
    unknown = sorted(set(flat) - flat_keys())
    if unknown:
        raise ValueError(
            f"trial config: unknown keys {', '.join(unknown)}; "
            f"a flat config holds {', '.join(sorted(flat_keys()))}"
        )
    return TrialConfig.from_flat(flat)
