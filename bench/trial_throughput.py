"""Seconds per trial: the naive reference (bench/naive_reference.py) against the project's
trainable, on the same data, in one process; with peak memory, the irreducible bound and
a small search.

    .venv/bin/python bench/trial_throughput.py                 # resnet18, k=3, dual, CPU-sized
    .venv/bin/python bench/trial_throughput.py --full          # the paper's 100 + 30 epochs
    .venv/bin/python bench/trial_throughput.py --no-search     # one configuration only
    .venv/bin/python bench/trial_throughput.py --folds 5       # cross-validated trials

With --folds K every trial is cross-validated over all the patients: the naive reference
runs once per fold (each its own trial), the project's trainable trains the K fold models
of one trial from one frozen pass, and the bound is that pass once plus each fold's own
irreducible work. --naive-folds N times the naive reference on N of the K folds only and
scales it by K / N (every fold has the same epochs and, within one, the same patients).

Figures are printed; docs/performance.md records them with the machine they came from.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from naive_reference import MapFiles, run_naive_trial

from search.data import TRIAD, load_dataset
from search.data.map_cache import MapCache
from search.data.normalize import backbone_input, normalize_maps
from search.data.preprocess import PreprocessSpec, preprocess_dataset
from search.synth import write_synthetic_dataset
from trainables.chain import feature_chain
from trainables.config import HeadSpec, TrialConfig
from trainables.frozen_store import FrozenWorkStore
from trainables.model import PolarMapNet
from trainables.protocol import FoldedData, TrialData, run_protocol
from trainables.unfreeze import plan_unfreezing
from trainables.weights import create_backbone


def main() -> None:
    args = parse_args()
    if args.repeats is None:
        args.repeats = 1 if args.full else 3
    torch.set_num_threads(args.threads)
    work = args.work
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU only"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {device}; "
        f"torch {torch.__version__}, {args.threads} threads; fastest of {args.repeats} runs"
    )
    data = prepare(work, args)
    base = TrialConfig(
        backbone=args.backbone,
        views=data["views"],
        head=HeadSpec.uniform(256, 1, 0.3),
        a=3.5,
        unfreeze=args.unfreeze,
        warmup_epochs=100 if args.full else args.warmup_epochs,
        finetune_epochs=30 if args.full else args.finetune_epochs,
        batch_size=args.batch_size,
        threads=args.threads,
    )
    if args.folds:
        patients = (
            f"{len(data['train_y']) + len(data['val_y'])} patients in {args.folds} "
            f"folds (the naive reference timed on {args.naive_folds or args.folds})"
        )
    else:
        patients = f"{len(data['train_y'])} train / {len(data['val_y'])} validation patients"
    print(f"\none configuration: {base.backbone}, k={base.unfreeze}, mode {'+'.join(base.views)}, "
          f"{data['size']} px, {patients}, {base.warmup_epochs} + {base.finetune_epochs} "
          "epochs")  # fmt: skip

    repeats = args.repeats
    naive_s, naive_mb = measure(lambda: run_naive(base, data), repeats)
    naive_s *= naive_scale(data)
    project_s, project_mb = measure(lambda: run_project(base, data), repeats)
    _, frozen_s, bound_s = fastest_bound(base, data, repeats)
    print(f"  naive reference   {naive_s:8.1f} s   peak +{naive_mb:6.0f} MB")
    print(f"  project           {project_s:8.1f} s   peak +{project_mb:6.0f} MB")
    print(f"  speed-up          {naive_s / project_s:8.1f} x")
    print(f"  irreducible bound {bound_s:8.1f} s   project = {project_s / bound_s:.1f} x bound")
    print(f"  frozen pass       {frozen_s:8.1f} s   (once per trial alone; once per search)")

    if args.search:
        configs = small_search(base)
        print(f"\nsmall search: {len(configs)} trials (a, k, width, epochs): "
              + ", ".join(f"({c.a:.2f}, {c.unfreeze}, {c.head.widths[0]}, "
                          f"{c.warmup_epochs}+{c.finetune_epochs})" for c in configs))  # fmt: skip
        naive_s, _ = measure(lambda: [run_naive(c, data) for c in configs], repeats)
        naive_s *= naive_scale(data)
        project_s, _ = measure(lambda: [run_project(c, data) for c in configs], repeats)

        def shared_search() -> None:  # a new store each time: the search pays its frozen pass
            store = FrozenWorkStore(tempfile.mkdtemp(prefix="frozen-", dir=work))
            for config in configs:
                run_project(config, data, store)

        shared_s, _ = measure(shared_search, repeats)
        print(f"  naive reference   {naive_s:8.1f} s")
        print(f"  project, frozen work once per trial   {project_s:8.1f} s "
              f"({naive_s / project_s:.1f} x)")  # fmt: skip
        print(f"  project, frozen work shared by trials {shared_s:8.1f} s "
              f"({naive_s / shared_s:.1f} x)")  # fmt: skip
        bounds = [fastest_bound(c, data, repeats) for c in configs]
        frozen_s = sum({cut: s for cut, s, _ in bounds}.values())  # once per cut
        bound_s = frozen_s + sum(s for _, _, s in bounds)
        print(f"  search bound: the frozen pass once per cut {frozen_s:.1f} s + the trials' "
              f"own work {bound_s - frozen_s:.1f} s = {bound_s:.1f} s")  # fmt: skip
        print(f"  shared = {shared_s / bound_s:.1f} x the search bound; "
              f"naive / search bound = {naive_s / bound_s:.1f} x")  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--unfreeze", type=int, default=3)
    parser.add_argument("--patients", type=int, default=48, help="synthetic patients")
    parser.add_argument("--warmup-epochs", type=int, default=4)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="the paper's 100 + 30 epochs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeats", type=int, help="runs of each measurement, the fastest counts "
        "(this machine is shared; default 3, 1 with --full)",
    )  # fmt: skip
    parser.add_argument("--no-search", dest="search", action="store_false")
    parser.add_argument("--folds", type=int, default=None, help="cross-validated trials")
    parser.add_argument(
        "--naive-folds", type=int, default=None,
        help="with --folds: time the naive reference on this many folds, scaled to all",
    )  # fmt: skip
    parser.add_argument("--work", type=Path, default=Path("/tmp/polarmap-bench"))
    return parser.parse_args()


def prepare(work: Path, args: argparse.Namespace) -> dict:
    """Synthetic exports -> cleaned maps (cache) -> PNG files for the naive path, and
    the same maps as arrays for the project's path. Not timed."""
    manifest = work / "data" / "manifest.csv"
    if not manifest.exists():
        write_synthetic_dataset(
            work / "data", TRIAD, args.patients, seed=0, canvas=(820, 534),
            balance={"Infarction": 1, "Ischemia": 1, "Normal": 2},
        )  # fmt: skip
    dataset = load_dataset(manifest, splittable=False)
    spec = backbone_input(args.backbone)
    cleaned = preprocess_dataset(dataset, PreprocessSpec(spec.size), MapCache(work / "cache"))
    files = []
    for i, patient in enumerate(dataset.patients):
        row = []
        for j, view in enumerate(cleaned.views):
            path = work / "maps" / f"{patient.patient_id}_{view}.png"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(cleaned.maps[i, j]).save(path)
            row.append(path)
        files.append(row)
    labels = [p.label for p in dataset.patients]
    cut = len(labels) * 3 // 4
    maps = normalize_maps(cleaned.maps, spec)
    trial = TrialData(
        maps[:cut], torch.tensor(labels[:cut]), maps[cut:], torch.tensor(labels[cut:]), TRIAD.names
    )
    trial.pool.digests  # noqa: B018 -- once, as a search does before sending the data to trials
    data = {
        "views": cleaned.views,
        "size": spec.size,
        "spec": spec,
        "train_files": files[:cut],
        "val_files": files[cut:],
        "train_y": labels[:cut],
        "val_y": labels[cut:],
        "trial": trial,
    }
    if args.folds:
        data.update(cross_validated(data, maps, files, labels, args))
    return data


def cross_validated(data: dict, maps, files: list, labels: list[int], args) -> dict:
    """Every patient in one of `args.folds` folds, stratified (dealt round the folds in
    label order): the folded data for the project's path, and each fold as a train /
    validation split of its own for the naive path and the bound."""
    order = sorted(range(len(labels)), key=lambda i: (labels[i], i))
    assignment = np.empty(len(labels), dtype=np.int64)
    assignment[order] = np.arange(len(labels)) % args.folds
    y = torch.tensor(labels)
    ids = tuple(str(i) for i in range(len(labels)))
    folded = FoldedData(maps, y, ids, assignment[None], TRIAD.names)
    folded.pool.digests  # noqa: B018 -- once, as a search does
    views = []
    for fold in folded.pool.folds:
        train, val = fold.train_rows.tolist(), fold.val_rows.tolist()
        trial = TrialData(maps[train], y[train], maps[val], y[val], TRIAD.names)
        views.append({
            **data, "train_files": [files[i] for i in train], "val_files": [files[i] for i in val],
            "train_y": [labels[i] for i in train], "val_y": [labels[i] for i in val],
            "trial": trial,
        })  # fmt: skip
    return {"folded": folded, "fold_views": views, "naive_folds": args.naive_folds or args.folds}


def run_naive(config: TrialConfig, data: dict) -> None:
    """One naive trial; cross-validated, one per fold timed (`naive_folds` of them)."""
    if "fold_views" in data:
        for fold in data["fold_views"][: data["naive_folds"]]:
            run_naive(config, fold)
        return
    spec = data["spec"]
    train = MapFiles(data["train_files"], data["train_y"], spec.size, spec.mean, spec.std)
    val = MapFiles(data["val_files"], data["val_y"], spec.size, spec.mean, spec.std)
    run_naive_trial(config, train, val, num_classes=3)


def naive_scale(data: dict) -> float:
    """What the timed naive runs are multiplied by: all folds over the folds timed."""
    return len(data["fold_views"]) / data["naive_folds"] if "fold_views" in data else 1.0


def run_project(config: TrialConfig, data: dict, store: FrozenWorkStore | None = None) -> None:
    run_protocol(config, data.get("folded", data["trial"]), store=store)


def fastest_bound(config: TrialConfig, data: dict, repeats: int) -> tuple[str, float, float]:
    """`irreducible_seconds`, each figure the fastest of `repeats` runs; cross-validated,
    the frozen pass once (every fold's maps are all the maps) and every fold's own work."""
    if "fold_views" in data:
        folds = [fastest_bound(config, fold, repeats) for fold in data["fold_views"]]
        return folds[0][0], min(f[1] for f in folds), sum(f[2] for f in folds)
    runs = [irreducible_seconds(config, data) for _ in range(repeats)]
    return runs[0][0], min(r[1] for r in runs), min(r[2] for r in runs)


def irreducible_seconds(config: TrialConfig, data: dict) -> tuple[str, float, float]:
    """(cut, frozen seconds, trial seconds). Frozen: the backbone below the cut on every
    map, and the pooled features from there, once: what a search needs once per backbone.
    Trial: only the work no sharing can remove: the head on pooled features for warm-up;
    for fine-tune, forward and backward from the activations entering the block that holds
    the first unfrozen layer, less the forward time of that block's frozen layers."""
    torch.manual_seed(0)
    model = PolarMapNet(create_backbone(config.backbone), len(config.views), 3, config.head)
    model = model.to(memory_format=torch.channels_last).eval()
    trial = data["trial"]
    train_y, val_y, views = trial.train_y, trial.val_y, len(config.views)
    chain = feature_chain(model.backbone)
    cut = chain.cut_before(plan_unfreezing(model.layers, config.unfreeze, config.rule).layers)
    started = time.perf_counter()
    with torch.no_grad():
        train_a = chain.run(trial.train_x.flatten(0, 1), 0, cut)
        val_a = chain.run(trial.val_x.flatten(0, 1), 0, cut)
        train_f = model.features_from(train_a.unflatten(0, (len(train_y), views)), chain, cut)
        val_f = model.features_from(val_a.unflatten(0, (len(val_y), views)), chain, cut)
    frozen = time.perf_counter() - started

    batch = config.batch_size
    started = time.perf_counter()
    optimizer = torch.optim.Adam(model.head.parameters(), config.warmup_lr)
    for _ in range(config.warmup_epochs):
        for s in range(0, len(train_y), batch):
            loss = F.cross_entropy(model.head(train_f[s : s + batch]), train_y[s : s + batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            model.head(val_f)
    warmup = time.perf_counter() - started

    model.unfreeze_top(config.unfreeze, config.rule)
    frozen_in_top = [
        m for _, unit in chain.units[cut:] for m in unit.modules()
        if any(True for _ in m.parameters(recurse=False))
        and not any(p.requires_grad for p in m.parameters(recurse=False))
    ]  # fmt: skip
    clock = ForwardClock(frozen_in_top)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, config.finetune_lr)
    started = time.perf_counter()
    for _ in range(config.finetune_epochs):
        model.train()
        for s in range(0, len(train_y), batch):
            a = train_a[s * views : (s + batch) * views]
            pooled = chain.run(a, cut).mean(dim=(2, 3)).reshape(len(a) // views, -1)
            loss = F.cross_entropy(model.head(pooled), train_y[s : s + batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            model.head(chain.run(val_a, cut).mean(dim=(2, 3)).reshape(len(val_y), -1))
    finetune = time.perf_counter() - started - clock.seconds
    clock.close()
    cut_name = chain.units[cut][0] if cut < len(chain.units) else "backbone-output"
    return cut_name, frozen, warmup + finetune


class ForwardClock:
    """Adds up the time `modules` spend in their forward passes."""

    def __init__(self, modules: list[torch.nn.Module]):
        self.seconds = 0.0
        self._started: dict[int, float] = {}
        self._hooks = [m.register_forward_pre_hook(self._start) for m in modules]
        self._hooks += [m.register_forward_hook(self._stop) for m in modules]

    def _start(self, module, inputs) -> None:
        self._started[id(module)] = time.perf_counter()

    def _stop(self, module, inputs, output) -> None:
        self.seconds += time.perf_counter() - self._started[id(module)]

    def close(self) -> None:
        for hook in self._hooks:
            hook.remove()


def measure(run, repeats: int = 1) -> tuple[float, float]:
    """Wall seconds of the fastest of `repeats` runs, and the highest peak resident memory
    above the start of a run, in MB (sampled every 5 ms)."""
    results = [_measure_once(run) for _ in range(repeats)]
    return min(s for s, _ in results), max(mb for _, mb in results)


def _measure_once(run) -> tuple[float, float]:
    start_rss = resident_bytes()
    peak = [start_rss]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], resident_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return seconds, (peak[0] - start_rss) / 2**20


def resident_bytes() -> int:
    """This process's resident memory now (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def small_search(base: TrialConfig) -> list[TrialConfig]:
    """A fixed list of configurations with Hyperband-like epoch budgets (most trials short,
    a few run longer), the same for both paths."""
    budgets = [(1, 0), (1, 0), (1, 0), (1, 0), (3, 1), (3, 1), (base.warmup_epochs,
               base.finetune_epochs)]  # fmt: skip
    rng = np.random.default_rng(0)
    configs = []
    for warmup, finetune in budgets:
        configs.append(
            replace(
                base,
                a=float(rng.uniform(3, 4)),
                unfreeze=int(rng.integers(1, base.unfreeze + 1)),
                head=HeadSpec.uniform(int(rng.choice([64, 128, 256])), 1, 0.3),
                warmup_epochs=warmup,
                finetune_epochs=finetune,
            )
        )
    return configs


if __name__ == "__main__":
    main()
