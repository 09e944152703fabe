"""Downloading a search space's pretrained weights once, where the model hub is reachable,
into a folder or an s3:// prefix that `--weights` then reads: no trial reaches the hub.

Each backbone is built by timm with its pretrained weights (`timm.create_model(name,
pretrained=True, num_classes=0)`: the hub, a release URL or a custom format, as timm
knows it for that tag), and the backbone's state dict (without the ImageNet classifier)
is saved as `<name>.safetensors`, the first file `weight_candidates` looks for. Before
anything is written, each file is loaded back the way trials load it and compared with
what timm built. Every backbone is downloaded into a temporary folder first, so a failure
(the hub unreachable) leaves the destination as it was; each file is then written whole.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from search import errors
from search.files import join_location, open_location, write_file
from trainables.weights import create_backbone

__all__ = ["FetchError", "Fetched", "fetch_weights", "weights_file_name"]


class FetchError(errors.PolarmapError, RuntimeError):
    """A backbone's pretrained weights could not be downloaded; nothing was written."""


@dataclass(frozen=True)
class Fetched:
    """One backbone's weights file at the destination.

    Attributes:
        backbone: the timm name, as the space gives it.
        location: the file's path or URI.
        size: bytes.
        fetched: downloaded now (False: it was there already and left alone).
    """

    backbone: str
    location: str
    size: int
    fetched: bool


def weights_file_name(backbone: str) -> str:
    """The file `fetch_weights` writes for `backbone`: `<name>.safetensors`."""
    return f"{backbone}.safetensors"


def fetch_weights(
    backbones: Iterable[str],
    to: str,
    force: bool = False,
    log: Callable[[str], None] = lambda line: None,
) -> list[Fetched]:
    """Download each backbone's pretrained weights and write them into `to`, a folder or a
    URI (s3://bucket/prefix), skipping files already there unless `force`.

    Raises:
        ValueError: timm does not know a backbone (before any download).
        FetchError: a download failed (the message names the backbone); nothing was written.
    """
    import pyarrow.fs as pafs
    import timm

    backbones = list(dict.fromkeys(backbones))
    for name in backbones:
        if not timm.is_model(name.split(".")[0]):
            raise ValueError(f"unknown timm backbone {name!r} (see timm.list_models())")
    fs, root = open_location(to)
    targets = {name: f"{root}/{weights_file_name(name)}" for name in backbones}
    present = {}
    if not force:
        for name, info in zip(backbones, fs.get_file_info(list(targets.values())), strict=True):
            if info.type == pafs.FileType.File:
                present[name] = info.size
    with tempfile.TemporaryDirectory(prefix="polarmap-weights-") as staging:
        staged = {}
        for name in backbones:
            if name not in present:
                log(f"downloading {name} ...")
                staged[name] = _download(name, Path(staging))
        fetched = []
        for name in backbones:
            location = join_location(to, weights_file_name(name))
            if name in present:
                fetched.append(Fetched(name, location, present[name], fetched=False))
                continue
            data = staged[name].read_bytes()
            write_file(fs, targets[name], data)
            fetched.append(Fetched(name, location, len(data), fetched=True))
    return fetched


def _download(name: str, folder: Path) -> Path:
    """`name`'s backbone with timm's pretrained weights, saved under `folder` and checked."""
    import timm
    from safetensors.torch import save_file

    try:
        model = timm.create_model(name, pretrained=True, num_classes=0)
    except Exception as exc:  # no network, no such tag, hub errors: all end the fetch
        raise FetchError(
            f"could not download the pretrained weights of backbone {name!r} "
            f"({type(exc).__name__}: {exc}); run this where the model hub is reachable "
            "(huggingface.co; a few older weights come from GitHub release URLs)"
        ) from exc
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    cfg = getattr(model, "pretrained_cfg", None) or {}
    source = cfg.get("hf_hub_id") or cfg.get("url") or "timm"
    path = folder / weights_file_name(name)
    save_file(
        state, str(path), metadata={"backbone": name, "source": source, "timm": timm.__version__}
    )
    loaded = create_backbone(name, pretrained=True, weights=path).state_dict()
    if loaded.keys() != state.keys() or any(not torch.equal(loaded[k], state[k]) for k in state):
        raise FetchError(
            f"backbone {name!r}: the saved weights do not load back as timm built them "
            "(its checkpoint filter changes them); use the hub for this backbone"
        )
    return path
