"""What nesting costs: a nested run (`--outer-folds 4 --folds 3`) against one
cross-validated search (`--split 75/0/25 --folds 3`) on the same data and space, each
from an empty frozen-work store, with the map cache warmed first (both read the same
cleaned maps); and how many frozen-work entries each made (the nested run's outer
searches should find the first one's work, not make their own).

Data: the first seed's shape, 87 patients (65 Normal, 18 Ischemia, 4 Infarction), the
test suite's plain 64 px bullseyes with a `site` column; space `tiny` with test_resnet,
stress and dual, 6 trials a pair (docs/performance.md: measured at 3 + 18 epochs).

    .venv/bin/python bench/nested_cost.py [--work /tmp/polarmap-nested-bench]
                                          [--outer-parallel N]

With `--outer-parallel N` the nested run is timed a second time with N outer searches at
once (each a Ray task under the one driver), from an empty store again: the entries show
whether concurrent outer searches still compute each piece of frozen work once.

Figures are printed; docs/performance.md records them with the machine they came from.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from results import load_table  # noqa: E402
from tests.conftest import write_example_dataset  # noqa: E402  (the suite's data recipe)

FIRST_SEED = {"Infarction": 4, "Ischemia": 18, "Normal": 65}
POLARMAP = [sys.executable, "-m", "search"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/polarmap-nested-bench"))
    parser.add_argument("--outer-parallel", type=int, default=None, metavar="N")
    options = parser.parse_args()
    work = options.work
    shutil.rmtree(work, ignore_errors=True)
    manifest = write_example_dataset(work / "data", size=64, counts=FIRST_SEED, sites=4)
    common = ["search", "run", "--data", str(manifest), "--space", "tiny", "--backbones",
              "test_resnet", "--modes", "stress,dual", "--seed", "0", "--quiet"]  # fmt: skip
    env = {**os.environ, "POLARMAP_CACHE": str(work / "cache")}
    cv = [*common, "--split", "75/0/25", "--folds", "3", "--storage", str(work / "cv")]
    run([*cv, "--name", "warm", "--dry-run"], env, work / "frozen-warm")  # cleans the maps
    seconds_cv = run([*cv, "--name", "cv"], env, work / "frozen-cv")
    nested = [*common, "--outer-folds", "4", "--folds", "3", "--storage", str(work / "nested")]
    seconds_nested = run([*nested, "--name", "nest"], env, work / "frozen-nested")
    entries = {k: len(list((work / f"frozen-{k}").rglob("*.pt"))) for k in ("cv", "nested")}
    print(f"one cross-validated search   {seconds_cv:7.1f} s   frozen entries {entries['cv']}")
    print(f"nested, 4 outer searches     {seconds_nested:7.1f} s   frozen entries "
          f"{entries['nested']}")  # fmt: skip
    print(f"nested / (4 x one search)    {seconds_nested / (4 * seconds_cv):7.2f}")
    for name, folder, search in (("one search", "cv", "cv"), ("nested", "nested", "nest-outer-")):
        read, computed = store_counts(work / folder / "results", search)
        print(f"frozen store, {name}: {computed} entries computed, {read} read (hits)")
    if options.outer_parallel:
        n = options.outer_parallel
        at_once = [*nested, "--name", "nest-at-once", "--outer-parallel", str(n)]
        seconds = run(at_once, env, work / "frozen-at-once")
        made = len(list((work / "frozen-at-once").rglob("*.pt")))
        print(f"nested, {n} outer at once     {seconds:7.1f} s   frozen entries {made}")
        read, computed = store_counts(work / "nested" / "results", "nest-at-once-outer-")
        print(f"frozen store, at once: {computed} entries computed, {read} read (hits)")
        print(f"at once / one at a time      {seconds / seconds_nested:7.2f}")


def store_counts(results: Path, search: str) -> tuple[int, int]:
    """The frozen-work entries the trials of `search` (or of its outer searches) read from
    the store, and computed."""
    trials = load_table(results, "trials")
    trials = trials[trials["search"].str.startswith(search)]
    return int(trials["frozen_read"].sum()), int(trials["frozen_computed"].sum())


def run(args: list[str], env: dict[str, str], frozen: Path) -> float:
    started = time.perf_counter()
    subprocess.run([*POLARMAP, *args], env={**env, "POLARMAP_FROZEN": str(frozen)},
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
