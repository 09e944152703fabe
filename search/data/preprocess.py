"""Cleaning every export of a checked data set, through the on-disk cache.

The result is one uint8 array of maps (patients x views x size x size x 3) in the data
set's patient order: what the trials feed to the backbone after `normalize_maps`.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from itertools import repeat
from pathlib import Path

import numpy as np

from search.data.clean import CropBox, clean_export
from search.data.dataset import Dataset
from search.data.images import ImageProblem, read_export
from search.data.map_cache import CleaningParams, MapCache
from search.data.pdf import PdfProblem, chosen_page, is_pdf
from search.data.problems import DataError, Problem

__all__ = ["CleanedMaps", "PreprocessSpec", "clean_file", "preprocess_dataset"]


@dataclass(frozen=True)
class PreprocessSpec:
    """How exports become maps: output size (the backbone's input size) and, per view,
    an optional crop box that replaces the automatic disc finder."""

    size: int = 224
    crops: Mapping[str, CropBox] = field(default_factory=dict)

    def params(
        self,
        view: str,
        position: str | None = None,
        frame: int | None = None,
        page: int | None = None,
    ) -> CleaningParams:
        """The cleaning of one view's exports; `position`: which disc of a several-map
        export is the view's (a patient's, or the data set's layout); `frame`: which
        frame of a multi-frame DICOM file; `page`: which page of a PDF."""
        crop = self.crops.get(view)
        return CleaningParams(self.size, crop, position=position, frame=frame, page=page)


@dataclass(frozen=True)
class CleanedMaps:
    """Cleaned maps of a data set.

    Args:
        maps: patients x views x size x size x 3 uint8, in `patient_ids` and `views` order.
        text_fractions: patients x views, share of each disc that was text and filled in.
        cache: the cache folder the maps came from.
        from_cache: how many maps were already cached; the rest were cleaned now.
        seconds: wall time taken.
    """

    patient_ids: tuple[str, ...]
    views: tuple[str, ...]
    maps: np.ndarray
    text_fractions: np.ndarray
    cache: Path
    from_cache: int
    seconds: float

    def index(self) -> dict[str, int]:
        """patient id -> row of `maps`."""
        return {pid: i for i, pid in enumerate(self.patient_ids)}


def clean_file(
    path: Path, params: CleaningParams, cache: MapCache
) -> tuple[np.ndarray, float | None]:
    """One export's cleaned map, from the cache or cleaned now and cached.

    Returns:
        The map, and its text fraction (None when it came from the cache).

    Raises:
        ValueError: the image holds no findable disc, or the crop box does not fit.
    """
    data = Path(path).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        if params.page is None and is_pdf(data):  # its only page (checked data says so)
            params = replace(params, page=chosen_page(data))
        cached = cache.load(sha, params)
        if cached is not None:
            return cached, None
        pixels = read_export(data, params.frame, params.page)
    except (ImageProblem, PdfProblem) as exc:
        raise ValueError(str(exc)) from None
    cleaned = clean_export(pixels, params.size, params.crop, params.position)
    cache.store(sha, params, cleaned.pixels)
    return cleaned.pixels, cleaned.text_fraction


def pool_context() -> multiprocessing.context.BaseContext:
    """How the cleaning pool starts its workers: forked (fast) from a process that runs
    only its main thread; from a fork server once other threads run (Ray's, gRPC's, a
    logger's, as after a search in the same process), since a child forked while another
    thread held a lock can wait for it for ever (the demo hung so, cleaning its second
    vendor's exports after its search)."""
    if _threads() == 1 or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver")


def _threads() -> int:
    """The process's threads, those started outside Python too (Ray's and gRPC's run in
    C++, unseen by `threading`)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def preprocess_dataset(
    dataset: Dataset,
    spec: PreprocessSpec,
    cache: MapCache | None = None,
    views: tuple[str, ...] | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CleanedMaps:
    """Clean every export of `views` (default: the data set's views), in parallel.

    Raises:
        DataError: listing every export that could not be cleaned, with its row and
            column; maps of the others are cached all the same.
    """
    started = time.perf_counter()
    cache = cache or MapCache()
    cache.remove_stale()
    views = views or dataset.views
    jobs = [(i, j, p.images[v],
             spec.params(v, p.positions.get(v), p.frames.get(v), p.pages.get(v)))
            for i, p in enumerate(dataset.patients) for j, v in enumerate(views)]  # fmt: skip
    maps = np.zeros((len(dataset), len(views), spec.size, spec.size, 3), dtype=np.uint8)
    fractions = np.full((len(dataset), len(views)), np.nan)
    problems: list[Problem] = []
    from_cache = 0

    workers = workers or min(os.cpu_count() or 1, 8)
    pool = ProcessPoolExecutor(workers, mp_context=pool_context()) if workers > 1 else None
    with pool or nullcontext():
        mapper = pool.map if pool else map
        paths, params = [job[2] for job in jobs], [job[3] for job in jobs]
        results = mapper(_try_clean, paths, params, repeat(cache, len(jobs)))
        for done, ((i, j, path, _), (cleaned, error)) in enumerate(zip(jobs, results, strict=True)):
            if error is not None:
                patient = dataset.patients[i]
                problems.append(
                    Problem(str(path), f"cannot clean: {error}", patient.row, f"{views[j]}_path")
                )
                continue
            maps[i, j], fraction = cleaned
            if fraction is None:
                from_cache += 1
            else:
                fractions[i, j] = fraction
            if progress:
                progress(done + 1, len(jobs))
    if problems:
        raise DataError(problems, summary=f"{dataset.source}: exports that cannot be cleaned")
    return CleanedMaps(
        tuple(p.patient_id for p in dataset.patients),
        tuple(views),
        maps,
        fractions,
        cache.root,
        from_cache,
        time.perf_counter() - started,
    )


def _try_clean(path: Path, params: CleaningParams, cache: MapCache):
    """`clean_file`'s result and None, or None and why it failed (one bad export must not
    stop the others, and the error crosses the process boundary as text)."""
    try:
        return clean_file(path, params, cache), None
    except (OSError, ValueError) as exc:
        return None, str(exc)
