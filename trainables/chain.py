"""A backbone's `forward_features` as a chain of modules, so it can be cut in two: a frozen
prefix whose output can be computed once and shared, and a trainable top.

The chain is found by trying, not by knowing architectures: a module is replaced by the
modules it calls when running those one after the other gives its own output on a probe
input. Sequential stages and residual blocks split this way; blocks that concatenate or
branch (DenseNet's dense blocks, Inception's mixed blocks) and transformers, whose forward
does more than call children, stay whole or give no chain at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainables.unfreeze import architecture_key, probe_size

__all__ = ["Chain", "feature_chain"]


@dataclass(frozen=True)
class Chain:
    """Modules whose composition is the backbone's `forward_features`, in order."""

    units: tuple[tuple[str, nn.Module], ...]

    def cut_before(self, layer_names: tuple[str, ...] | list[str]) -> int:
        """Index of the first unit holding any of `layer_names` (module names in the
        backbone); len(units) when none does (everything is frozen)."""
        for index, (name, _) in enumerate(self.units):
            prefix = f"{name}." if name else ""
            if any(layer == name or layer.startswith(prefix) for layer in layer_names):
                return index
        return len(self.units)

    def run(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Apply units [start, stop) to x."""
        for _, module in self.units[start:stop]:
            x = module(x)
        return x


_KNOWN: dict[tuple[str, int], tuple[str, ...] | None] = {}  # architecture -> unit names


def feature_chain(backbone: nn.Module, size: int | None = None) -> Chain | None:
    """The finest chain equal to `forward_features` on a probe (`size` px, default
    `probe_size`), or None where the backbone's top level is not a chain of modules (e.g.
    vision transformers). Found once per architecture and process, then looked up."""
    size = size or probe_size(backbone)
    architecture = (architecture_key(backbone), size)
    if architecture not in _KNOWN:
        found = _find_chain(backbone, size)
        _KNOWN[architecture] = None if found is None else tuple(n for n, _ in found.units)
    names = _KNOWN[architecture]
    if names is None:
        return None
    modules = dict(backbone.named_modules())
    return Chain(tuple((name, modules[name]) for name in names))


def _find_chain(backbone: nn.Module, size: int) -> Chain | None:
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            device = next(backbone.parameters()).device
            probe = torch.randn(2, 3, size, size, generator=_generator()).to(device)
            units = _split(backbone, backbone.forward_features, probe, "")
            return Chain(tuple(units)) if units else None
    finally:
        backbone.train(was_training)


def _split(module: nn.Module, call, x: torch.Tensor, prefix: str):
    """The finest chain of `module`'s descendants whose composition is `call(x)`, or None
    when the children `call` runs do not compose to it."""
    children = _called_children(module, call, x)
    if not children or not _same(_compose(children, x), call(x)):
        return None
    units: list[tuple[str, nn.Module]] = []
    for child_name, child in children:
        units += _expand(prefix + child_name, child, x)
        x = child(x)
    return units


def _expand(name: str, module: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """`module` split into the finest chain of its descendants that gives its output. A
    module with parameters or buffers of its own (BatchNormAct2d) uses them in its forward
    and stays whole: a check on a probe cannot see that while they are at identity values."""
    if any(True for _ in module.parameters(recurse=False)) or any(
        True for _ in module.buffers(recurse=False)
    ):
        return [(name, module)]
    return _split(module, module, x, f"{name}.") or [(name, module)]


def _called_children(module: nn.Module, call, x: torch.Tensor):
    """(name, child) in the order `call(x)` first runs them; None if a child returns
    something other than a tensor or runs more than once."""
    order: list[str] = []
    named = dict(module.named_children())
    hooks = [
        child.register_forward_hook(lambda m, i, o, n=n: order.append(n if _tensor(o) else "!"))
        for n, child in named.items()
    ]
    try:
        call(x)
    finally:
        for hook in hooks:
            hook.remove()
    if "!" in order or len(order) != len(set(order)):
        return None
    return [(n, named[n]) for n in order]


def _compose(children: list[tuple[str, nn.Module]], x: torch.Tensor) -> torch.Tensor | None:
    try:
        for _, child in children:
            x = child(x)
    except (RuntimeError, ValueError, TypeError):  # not a chain: shapes do not follow
        return None
    return x


def _same(a: torch.Tensor | None, b: torch.Tensor) -> bool:
    return a is not None and a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def _tensor(value: object) -> bool:
    return isinstance(value, torch.Tensor)


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)
