"""Where a backbone's pretrained weights come from: a local file, a folder holding files
named after the backbone, or an s3:// prefix with a folder's layout, whose file is copied
once per node into a local cache and read from there.

Offline clusters and this project's machines cannot reach the model hub, so weights can
come from a file or a folder (for example one filled by `polarmap weights fetch`), or from
object storage. Remote files are found with a metadata request per candidate, in order,
until one is there; the cache entry for it is named by a digest of its location, size and
time of change, so a replaced object is fetched again and never mixed up with the old
one. Trials on one node take a lock on the entry's folder, so one downloads while the
others wait; the bytes land in a temporary file beside the target, checked against the
object's size, flushed and renamed: a reader never sees a partial file, and a killed
download leaves only a hidden temporary file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from search import errors
from search.files import atomic_output, exclusive_lock, join_location, open_location
from search.layout import weights_cache_dir
from trainables.packaged_weights import packaged_file

__all__ = [
    "SUFFIXES",
    "RemoteWeights",
    "WeightsNotFound",
    "cached_weights",
    "find_remote_weights",
    "local_weights",
    "weight_candidates",
    "weights_digest",
    "weights_source",
]

SUFFIXES = (".safetensors", ".pth", ".bin")
CHUNK = 16 << 20  # bytes per read of a download

log = logging.getLogger(__name__)


class WeightsNotFound(errors.PolarmapError, FileNotFoundError):
    """Pretrained weights were asked for and are not where they were looked for."""


def weight_candidates(name: str, folder: Path) -> list[Path]:
    """Where a folder may hold the weights of backbone `name` (optionally `arch.tag`), in
    the order they are tried: `<name>.<suffix>`, `<arch>.<suffix>`, and the Hugging Face
    layout `<name>/model.safetensors` or `<name>/pytorch_model.bin`."""
    arch = name.split(".")[0]
    stems = list(dict.fromkeys([name, arch]))
    paths = [folder / f"{stem}{suffix}" for stem in stems for suffix in SUFFIXES]
    for stem in stems:
        paths += [folder / stem / "model.safetensors", folder / stem / "pytorch_model.bin"]
    return paths


def local_weights(name: str, weights: str | Path) -> Path:
    """The local file of `name`'s weights: `weights` itself, or found in a folder with
    `weight_candidates`, or downloaded once from a URI into this node's cache.

    Raises:
        WeightsNotFound: the file is missing (the message names the backbone and every
            path searched), or a remote one cannot be read or downloaded.
    """
    if _is_remote(weights):
        return cached_weights(name, str(weights))
    return _find_weights(name, Path(weights))


def weights_digest(backbone: str, pretrained: bool, weights: str | Path | None, seed: int) -> str:
    """What decides the backbone's weights: the file found for it (local path or URI, size,
    time of change; a URI's file is not downloaded), an installed package's file
    (`trainables.packaged_weights`), the hub tag, or the seed of a random initialisation.

    Raises:
        WeightsNotFound: no file where `weights` points (as `local_weights`).
    """
    if not pretrained:
        return f"{backbone}:random-init:{seed}"
    if weights is None:
        packaged = packaged_file(backbone)
        if packaged is None:
            return f"{backbone}:hub"
        stat = packaged.stat()
        return f"{backbone}:package:{packaged.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    if _is_remote(weights):
        _, remote = find_remote_weights(backbone, str(weights))
        return f"{backbone}:{remote.location}:{remote.size}:{remote.mtime_ns}"
    path = _find_weights(backbone, Path(weights)).resolve()
    stat = path.stat()
    return f"{backbone}:{path}:{stat.st_size}:{stat.st_mtime_ns}"


def weights_source(backbone: str, pretrained: bool, weights: str | Path | None) -> str:
    """Where a backbone's starting weights came from, in words for a report: random, a
    weights file or folder (the file found), an installed package's file, or the hub."""
    if not pretrained:
        return "random initialisation (no pretrained weights)"
    if weights is not None:
        try:
            found = weights if _is_remote(weights) else _find_weights(backbone, Path(weights))
        except WeightsNotFound:  # moved since: say what was given
            found = weights
        return f"ImageNet weights from {found}"
    packaged = packaged_file(backbone)
    if packaged is not None:
        return f"ImageNet weights from {packaged} (installed with its Python package)"
    return f"ImageNet weights from the timm model hub ({backbone})"


def _is_remote(weights: str | Path) -> bool:
    return isinstance(weights, str) and "://" in weights


def _find_weights(name: str, weights: Path) -> Path:
    if weights.is_file():
        return weights
    searched = weight_candidates(name, weights) if weights.is_dir() else [weights]
    for path in searched:
        if path.is_file():
            return path
    raise WeightsNotFound(
        f"pretrained weights for backbone {name!r} not found; searched:\n"
        + "\n".join(f"  {path}" for path in searched)
    )


@dataclass(frozen=True)
class RemoteWeights:
    """One weights file on object storage.

    Attributes:
        location: its URI (the query of the prefix's URI kept, credentials hidden).
        path: its path in the file system `open_location` gives.
        relative: its path under the prefix (the file's name for a file URI).
        size, mtime_ns: what the store says of it; they name its cache entry.
    """

    location: str
    path: str
    relative: str
    size: int
    mtime_ns: int | None

    @property
    def digest(self) -> str:
        text = f"{self.location}|{self.size}|{self.mtime_ns}"
        return hashlib.sha256(text.encode()).hexdigest()


def find_remote_weights(name: str, uri: str):
    """(file system, `RemoteWeights`) of backbone `name` under `uri`, without downloading.

    Raises:
        WeightsNotFound: no candidate file is there (the message names the backbone, the
            URI and every location searched), or the location cannot be read.
    """
    import pyarrow.fs as pafs

    shown = _shown(uri)
    try:
        fs, root = open_location(uri)
        if PurePosixPath(root).suffix in SUFFIXES:  # a file's URI
            relatives, paths = [PurePosixPath(root).name], [root]
        else:  # a folder's: its candidates in order, one request each until one is there
            relatives = [p.as_posix() for p in weight_candidates(name, Path())]
            paths = [f"{root}/{r}" for r in relatives]
        for relative, path in zip(relatives, paths, strict=True):
            found = fs.get_file_info(path)
            if found.type == pafs.FileType.File:
                location = _shown(join_location(uri, relative)) if path != root else shown
                return fs, RemoteWeights(location, path, relative, found.size, found.mtime_ns)
        empty = fs.get_file_info(root).type == pafs.FileType.NotFound
    except (OSError, ValueError) as exc:
        raise WeightsNotFound(
            f"pretrained weights for backbone {name!r}: {shown} could not be read "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    searched = [shown] if paths == [root] else [_shown(join_location(uri, r)) for r in relatives]
    raise WeightsNotFound(
        f"pretrained weights for backbone {name!r} not found in {shown}"
        + (" (nothing is stored there)" if empty else "")
        + "; searched:\n"
        + "\n".join(f"  {location}" for location in searched)
        + "\n(`polarmap weights fetch` fills such a location)"
    )


def cached_weights(name: str, uri: str, cache: str | os.PathLike[str] | None = None) -> Path:
    """The local copy of backbone `name`'s weights file under `uri`, downloaded into this
    node's cache (`cache`, default `weights_cache_dir()`) the first time it is asked for.

    Raises:
        WeightsNotFound: as `find_remote_weights`, or the download failed.
    """
    fs, remote = find_remote_weights(name, uri)
    folder = Path(cache) if cache is not None else weights_cache_dir()
    folder = folder / remote.digest[:24]
    target = folder.joinpath(*PurePosixPath(remote.relative).parts)
    if _complete(target, remote.size):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(folder / ".lock"):
        if not _complete(target, remote.size):  # another trial may have finished it
            log.info("downloading the weights of %s from %s", name, remote.location)
            try:
                _download(fs, remote, target)
            except OSError as exc:
                raise WeightsNotFound(
                    f"pretrained weights for backbone {name!r}: {remote.location} could not "
                    f"be downloaded to {target} ({type(exc).__name__}: {exc})"
                ) from exc
    return target


def _complete(target: Path, size: int) -> bool:
    try:
        return target.stat().st_size == size
    except OSError:
        return False


def _download(fs, remote: RemoteWeights, target: Path) -> None:
    """Copy the object to `target`: a temporary file beside it, size checked, renamed."""
    with atomic_output(target) as out, fs.open_input_stream(remote.path) as stream:
        written = 0
        while chunk := stream.read(CHUNK):
            out.write(chunk)
            written += len(chunk)
        if written != remote.size:
            raise OSError(f"got {written} bytes of {remote.size}")


def _shown(location: str) -> str:
    """`location` with any credentials in it (scheme://key:secret@...) hidden."""
    return re.sub(r"^([a-z0-9+.-]+://)[^/@?]*@", r"\1***@", str(location), flags=re.I)
