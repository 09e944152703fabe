"""A search space: which backbones and input modes to search, and the ranges each trial's
hyperparameters are drawn from.

Ranges are data (so `polarmap spaces show` can print them and a search can record them),
drawn define-by-run through an Optuna trial (so a range may depend on the backbone, as the
unfreeze depth does: up to what the seed's one-third rule allows for that backbone).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

__all__ = ["Choice", "FloatRange", "IntRange", "Ranges", "SearchSpace", "suggest_config"]


class Suggester(Protocol):
    """The part of `optuna.trial.Trial` a space draws from (FixedTrial has it too)."""

    def suggest_int(self, name: str, low: int, high: int) -> int: ...
    def suggest_float(self, name: str, low: float, high: float) -> float: ...
    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class IntRange:
    """Integers low..high inclusive; for unfreeze, high None: what the backbone allows."""

    low: int
    high: int | None

    def __str__(self) -> str:
        return f"{self.low} .. {'rule maximum' if self.high is None else self.high}"


@dataclass(frozen=True)
class FloatRange:
    """Uniform in [low, high]."""

    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.low:g} .. {self.high:g}"


@dataclass(frozen=True)
class Choice:
    """One of `values`; a single value is fixed."""

    values: tuple[Any, ...]

    def __str__(self) -> str:
        return " | ".join(str(v) for v in self.values)


@dataclass(frozen=True)
class Ranges:
    """What a trial draws, hyperparameter by hyperparameter."""

    width: IntRange | Choice = Choice((64, 128, 256, 512))
    depth: IntRange | Choice = Choice((1,))
    dropout: FloatRange | Choice = FloatRange(0.0, 0.5)
    a: FloatRange | Choice = FloatRange(3.0, 4.0)
    unfreeze: IntRange | Choice = IntRange(1, None)
    batch_size: IntRange | Choice = Choice((32,))
    augment: Choice = Choice(("none",))

    def describe(self) -> list[tuple[str, str]]:
        return [(name, str(value)) for name, value in vars(self).items()]


@dataclass(frozen=True)
class SearchSpace:
    """Backbones x input modes, each pair searched with its own Hyperband and sampler.

    Attributes:
        name: what the space is selected by.
        description: what it is for and where it comes from.
        backbones: timm model names.
        modes: input modes: stress, rest, dual.
        classes: the class set the data must have: triad, binary, or names.
        warmup_epochs, finetune_epochs: the protocol's budget per trial (Hyperband's max_t
            is their sum).
        samples: trials per (backbone, mode) pair.
        ranges: what each trial draws.
        pretrained: start from ImageNet weights; False: randomly initialised backbones
            (tests, the demo).
        max_layer_share, max_param_share: the one-third rule of the seeds (at most this
            share of the backbone's layers and of its parameters fine-tune).
        class_weighted: weigh the loss by inverse class size.
    """

    name: str
    description: str
    backbones: tuple[str, ...]
    modes: tuple[str, ...]
    classes: str
    warmup_epochs: int
    finetune_epochs: int
    samples: int
    ranges: Ranges = field(default_factory=Ranges)
    pretrained: bool = True
    max_layer_share: float = 1 / 3
    max_param_share: float = 1 / 3
    class_weighted: bool = False

    @property
    def max_epochs(self) -> int:
        return self.warmup_epochs + self.finetune_epochs

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """(backbone, mode) pairs in a fixed order."""
        return [(b, m) for b in self.backbones for m in self.modes]

    def digest(self) -> str:
        """SHA-256 of the definition: searches with equal digests searched the same space."""
        text = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def suggest_config(trial: Suggester, ranges: Ranges, max_unfreeze: int) -> dict[str, Any]:
    """Draw one trial's hyperparameters, flat, as `TrialConfig.from_flat` reads them.
    `max_unfreeze` is the largest k the one-third rule allows for the trial's backbone."""
    return {name: _draw(trial, name, spec, max_unfreeze) for name, spec in vars(ranges).items()}


def _draw(trial: Suggester, name: str, spec: Any, max_unfreeze: int) -> Any:
    if isinstance(spec, IntRange):
        high = max_unfreeze if spec.high is None else spec.high
        return trial.suggest_int(name, min(spec.low, high), high)
    if isinstance(spec, FloatRange):
        return trial.suggest_float(name, spec.low, spec.high)
    if len(spec.values) == 1:
        return spec.values[0]
    return trial.suggest_categorical(name, list(spec.values))
