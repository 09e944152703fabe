"""The on-disk cache of cleaned maps: keys, invalidation, damage, killed writers, readers."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import search
from search.data.clean import CLEANING_VERSION, CropBox
from search.data.map_cache import CleaningParams, MapCache
from search.data.preprocess import clean_file
from search.synth.render import render_export
from search.synth.uptake import draw_patient, uptake_maps

REPO = Path(search.__file__).resolve().parents[1]
SHA = hashlib.sha256(b"an export").hexdigest()
PARAMS = CleaningParams(size=32)


def random_map(size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def export_pixels() -> np.ndarray:
    rng = np.random.default_rng(3)
    truth = draw_patient("Ischemia", rng, 0.5)
    uptake = uptake_maps(truth, 128, rng, 0.5)["rest"]
    names = ("REST AC", "KHAN, SARA", "2024-01-02", "GE Discovery NM 530c")
    return render_export(uptake, *names, rng, (820, 534), text_over_map=True).image


def save_png(pixels: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")
    return path


def npy_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, pixels, allow_pickle=False)
    return buffer.getvalue()


def entry_bytes(pixels: np.ndarray, scratch: Path) -> bytes:
    """What the cache writes for `pixels`: its header (checksum, shape, dtype), then the
    .npy file."""
    return MapCache(scratch).store(SHA, CleaningParams(pixels.shape[0]), pixels).read_bytes()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_store_then_load_gives_the_same_map(tmp_path):
    cache = MapCache(tmp_path)
    pixels = random_map()
    path = cache.store(SHA, PARAMS, pixels)
    assert path == cache.path(SHA, PARAMS) and path.is_file()
    assert path.is_relative_to(tmp_path) and path.parent.name == SHA[:2]
    loaded = cache.load(SHA, PARAMS)
    assert loaded is not None and loaded.dtype == np.uint8
    assert np.array_equal(loaded, pixels)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_absent_entry_loads_as_none(tmp_path):
    cache = MapCache(tmp_path)
    assert cache.load(SHA, PARAMS) is None
    cache.store(SHA, PARAMS, random_map())
    assert cache.load(hashlib.sha256(b"another export").hexdigest(), PARAMS) is None
    assert cache.load(SHA, CleaningParams(size=64)) is None


def test_every_cleaning_parameter_is_part_of_the_key(tmp_path):
    cache = MapCache(tmp_path)
    variants = [
        CleaningParams(224),
        CleaningParams(299),
        CleaningParams(224, CropBox(0, 0, 500, 500)),
        CleaningParams(224, CropBox(0, 0, 500, 501)),
        CleaningParams(224, version=CLEANING_VERSION + 1),
    ]
    paths = {cache.path(SHA, p) for p in variants}
    digests = {p.digest() for p in variants}
    assert len(paths) == len(digests) == len(variants)
    other = hashlib.sha256(b"another export").hexdigest()
    assert cache.path(other, variants[0]) != cache.path(SHA, variants[0])


def test_digest_is_stable():
    params = CleaningParams(224, CropBox(10, 20, 300, 400))
    digest = params.digest()
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert params.digest() == digest
    assert CleaningParams(224, CropBox.parse("10,20,300,400")).digest() == digest
    assert CleaningParams(224).digest() == CleaningParams(224, None, CLEANING_VERSION).digest()
    # The same in a fresh interpreter: nothing process-specific (hash seeds, ids) leaks in.
    code = (
        "from search.data.clean import CropBox; from search.data.map_cache import "
        "CleaningParams; print(CleaningParams(224, CropBox(10, 20, 300, 400)).digest())"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), check=True
    )
    assert fresh.stdout.strip() == digest


def test_a_changed_pixel_gives_a_new_entry(tmp_path, export_pixels):
    cache = MapCache(tmp_path / "cache")
    path = save_png(export_pixels, tmp_path / "images" / "export.png")

    first, fraction = clean_file(path, PARAMS, cache)
    assert fraction is not None and first.shape == (32, 32, 3)
    first_entry = cache.path(sha256_of(path), PARAMS)
    assert first_entry.is_file()

    again, fraction = clean_file(path, PARAMS, cache)
    assert fraction is None  # unchanged file: from the cache
    assert np.array_equal(again, first)

    changed = export_pixels.copy()
    changed[0, 0, 0] ^= 1  # one pixel, one level: still a valid PNG
    save_png(changed, path)
    assert sha256_of(path) != first_entry.name.split("-")[0]
    _, fraction = clean_file(path, PARAMS, cache)
    assert fraction is not None  # cleaned afresh, not the stale entry
    assert cache.path(sha256_of(path), PARAMS).is_file()
    assert sorted(tmp_path.joinpath("cache").rglob("*.npy")) == sorted(
        [first_entry, cache.path(sha256_of(path), PARAMS)]
    )
    _, fraction = clean_file(path, PARAMS, cache)
    assert fraction is None


def test_other_parameters_clean_the_same_file_again(tmp_path, export_pixels):
    cache = MapCache(tmp_path / "cache")
    path = save_png(export_pixels, tmp_path / "export.png")
    clean_file(path, PARAMS, cache)
    bigger, fraction = clean_file(path, CleaningParams(48), cache)
    assert fraction is not None and bigger.shape == (48, 48, 3)
    assert clean_file(path, CleaningParams(48), cache)[1] is None


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


DAMAGE = {
    "empty": lambda path: _truncate(path, 0),
    "cut-in-magic": lambda path: _truncate(path, 4),
    "cut-in-header": lambda path: _truncate(path, 60),
    "cut-in-data": lambda path: _truncate(path, path.stat().st_size // 2),
    "one-byte-short": lambda path: _truncate(path, path.stat().st_size - 1),
    "garbage": lambda path: path.write_bytes(b"\x00\xff" * 500),
    "wrong-shape": lambda path: np.save(path, np.zeros((16, 16, 3), np.uint8)),
    "grey": lambda path: np.save(path, np.zeros((32, 32), np.uint8)),
    "wrong-dtype": lambda path: np.save(path, np.zeros((32, 32, 3), np.float32)),
    "pickled": lambda path: np.save(path, np.array([{"a": 1}], dtype=object)),
    "folder": lambda path: (path.unlink(), path.mkdir()),
    # the same size, bytes flipped in the pixels: only a checksum sees it
    "garbled": lambda path: path.write_bytes(
        path.read_bytes()[:-100] + bytes(b ^ 0xFF for b in path.read_bytes()[-100:])
    ),
    "plain-npy": lambda path: np.save(path.open("wb"), random_map(seed=7)),  # no checksum
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_entry_loads_as_none(tmp_path, damage):
    cache = MapCache(tmp_path)
    path = cache.store(SHA, PARAMS, random_map())
    DAMAGE[damage](path)
    assert cache.load(SHA, PARAMS) is None


@pytest.mark.parametrize("damage", ["garbled", "plain-npy", "wrong-shape", "cut-in-data"])
def test_a_damaged_entry_is_reported_in_one_line_and_deleted(tmp_path, damage, capsys):
    cache = MapCache(tmp_path)
    path = cache.store(SHA, PARAMS, random_map())
    DAMAGE[damage](path)
    assert cache.load(SHA, PARAMS) is None
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"warning: map cache entry {path} is damaged (")
    assert line.endswith("deleted, the map is cleaned again")
    assert not path.exists()


@pytest.mark.parametrize("damage", ["cut-in-data", "wrong-shape"])
def test_damaged_entry_is_cleaned_again(tmp_path, export_pixels, damage):
    cache = MapCache(tmp_path / "cache")
    path = save_png(export_pixels, tmp_path / "export.png")
    first, _ = clean_file(path, PARAMS, cache)
    DAMAGE[damage](cache.path(sha256_of(path), PARAMS))

    rebuilt, fraction = clean_file(path, PARAMS, cache)
    assert fraction is not None  # cleaned, not read
    assert np.array_equal(rebuilt, first)
    loaded = cache.load(sha256_of(path), PARAMS)
    assert loaded is not None and np.array_equal(loaded, first)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


# Stores one large entry, but blocks (then is killed) at `where`: half-way through writing
# the temporary file, at its fsync (fully written), or at the rename into place.
KILLED_WRITER = """
import os, sys, time
from pathlib import Path
import numpy as np
from search.data.map_cache import CleaningParams, MapCache

root, sha, size, where, ready = sys.argv[1:]
size = int(size)

def block(*args, **kwargs):
    Path(ready).write_text(where)
    time.sleep(60)

if where == "write":
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, file):
            self.file = file
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.file.__exit__(*exc)
        def __getattr__(self, name):
            return getattr(self.file, name)
        def write(self, data):
            self.file.write(data[: len(data) // 2])
            self.file.flush()
            block()

    os.fdopen = lambda fd, *args, **kwargs: HalfWriter(real_fdopen(fd, *args, **kwargs))
else:
    setattr(os, where, block)
pixels = np.full((size, size, 3), 200, dtype=np.uint8)
MapCache(root).store(sha, CleaningParams(size), pixels)
print("stored, not blocked", flush=True)
"""

BIG = 1024  # a 3 MiB entry


@pytest.mark.parametrize(
    ("where", "earlier"),
    [("write", False), ("fsync", True), ("replace", False), ("replace", True)],
)
def test_killed_writer_leaves_no_partial_entry(tmp_path, where, earlier):
    cache = MapCache(tmp_path / "cache")
    params = CleaningParams(BIG)
    final = cache.path(SHA, params)
    previous = random_map(BIG, seed=1)
    if earlier:
        cache.store(SHA, params, previous)
        previous_bytes = final.read_bytes()

    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(cache.root), SHA, str(BIG), where, str(ready)],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if child.poll() is not None:
                out, err = child.communicate()
                pytest.fail(f"writer exited {child.returncode} before blocking:\n{out}\n{err}")
            assert time.monotonic() < deadline, "writer never reached the blocking point"
            time.sleep(0.01)
        temporaries = [p for p in final.parent.iterdir() if p != final]
        assert len(temporaries) == 1, temporaries
        size = temporaries[0].stat().st_size
        whole = len(entry_bytes(previous, tmp_path / "scratch"))  # the whole entry
        assert (0 < size < whole) if where == "write" else size == whole
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL

    if earlier:
        assert final.read_bytes() == previous_bytes  # the complete earlier entry, intact
        loaded = cache.load(SHA, params)
        assert loaded is not None and np.array_equal(loaded, previous)
    else:
        assert not final.exists()
        assert cache.load(SHA, params) is None

    replacement = random_map(BIG, seed=2)
    cache.store(SHA, params, replacement)
    loaded = cache.load(SHA, params)
    assert loaded is not None and np.array_equal(loaded, replacement)


def test_readers_never_see_a_partial_entry(tmp_path):
    cache = MapCache(tmp_path)
    params = CleaningParams(256)
    maps = (random_map(256, seed=1), random_map(256, seed=2))
    cache.store(SHA, params, maps[0])
    stop = threading.Event()
    writes = [0]
    seen: list[str] = []
    errors: list[BaseException] = []

    def write():
        try:
            while not stop.is_set():
                cache.store(SHA, params, maps[writes[0] % 2])
                writes[0] += 1
        except BaseException as error:  # reported below
            errors.append(error)

    def read():
        try:
            while not stop.is_set():
                loaded = cache.load(SHA, params)
                if loaded is None:
                    seen.append("none")
                elif np.array_equal(loaded, maps[0]):
                    seen.append("first")
                elif np.array_equal(loaded, maps[1]):
                    seen.append("second")
                else:
                    seen.append("other")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert writes[0] > 10 and len(seen) > 30
    assert seen.count("other") == 0
    # The entry existed before the readers started and is only ever renamed over.
    assert seen.count("none") == 0
    assert {"first", "second"} <= set(seen)
