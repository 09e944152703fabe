"""Trials share the frozen work through the on-disk store, without changing results."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch

from trainables.config import HeadSpec, TrialConfig, UnfreezeRule
from trainables.frozen_store import FrozenWorkStore, tensor_digest
from trainables.protocol import TrialData, run_protocol
from trainables.weight_files import weights_digest

CONFIG = TrialConfig(
    "test_resnet",
    views=("rest", "stress"),
    head=HeadSpec((16,), (0.1,)),
    a=2.5,
    unfreeze=3,
    warmup_epochs=2,
    finetune_epochs=2,
    batch_size=8,
    seed=5,
)


@pytest.fixture(scope="module")
def data() -> TrialData:
    generator = torch.Generator().manual_seed(2)
    y = torch.randint(0, 3, (36,), generator=generator)
    x = torch.randn(36, 2, 3, 48, 48, generator=generator)
    return TrialData(x[:24], y[:24], x[24:], y[24:], ("A", "B", "C"))


def entries(store: FrozenWorkStore) -> set[str]:
    return {p.name for p in store.root.rglob("*.pt")}


def without_timing(history):
    return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in history]


def test_a_second_trial_reads_the_first_ones_frozen_work(data, tmp_path):
    store = FrozenWorkStore(tmp_path)
    computed = run_protocol(CONFIG, data, store=store)
    first = entries(store)
    assert len(first) == 4  # prefix and pooled features of all maps (train + val), two views
    assert computed.frozen_store == {"read": 0, "computed": 4}  # the store's misses

    other = replace(CONFIG, a=3.5, head=HeadSpec((32,), (0.3,)))  # same backbone and cut
    shared = run_protocol(other, data, store=store)
    assert entries(store) == first
    assert shared.frozen_store == {"read": 4, "computed": 0}  # its hits
    alone = run_protocol(other, data)
    assert without_timing(shared.history) == without_timing(alone.history)


class CountingStore(FrozenWorkStore):
    """Notes every entry written."""

    def __init__(self, root):
        super().__init__(root)
        self.written: list[str] = []

    def store(self, key, tensor):
        self.written.append(key)
        return super().store(key, tensor)


def test_concurrent_trials_compute_each_entry_once(data, tmp_path):
    store = CountingStore(tmp_path)
    start = threading.Barrier(2)
    histories, counts = [], []  # (threads share torch's random state: figures are
    # compared elsewhere)

    def trial(config):
        start.wait()  # both miss every entry at first
        result = run_protocol(config, data, store=store)
        histories.append(without_timing(result.history))
        counts.append(result.frozen_store)

    other = replace(CONFIG, a=3.5)  # same backbone and cut: the same entries
    threads = [threading.Thread(target=trial, args=(c,)) for c in (CONFIG, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(histories) == 2
    assert sorted(store.written) == sorted(entries_keys(store)) and len(store.written) == 4
    assert sum(c["computed"] for c in counts) == 4 and sum(c["read"] for c in counts) == 4


def entries_keys(store: FrozenWorkStore) -> set[str]:
    return {p.stem for p in store.root.rglob("*.pt")}


def test_what_the_frozen_work_depends_on_gives_new_entries(data, tmp_path):
    store = FrozenWorkStore(tmp_path)
    run_protocol(CONFIG, data, store=store)
    count = len(entries(store))
    deeper = replace(CONFIG, unfreeze=12, rule=UnfreezeRule(1.0, 1.0))  # cut in layer3
    assert run_protocol(deeper, data, store=store).compute_path["finetune"].endswith("layer3.0")
    assert len(entries(store)) > count
    count = len(entries(store))
    run_protocol(replace(CONFIG, seed=6), data, store=store)  # other random weights
    assert len(entries(store)) == count + 4


def test_single_view_trials_read_what_a_dual_trial_stored(data, tmp_path):
    store = FrozenWorkStore(tmp_path)
    run_protocol(CONFIG, data, store=store)
    dual = entries(store)
    for view, name in enumerate(CONFIG.views):
        one = TrialData(
            data.train_x[:, [view]], data.train_y, data.val_x[:, [view]], data.val_y,
            data.class_names,
        )  # fmt: skip
        config = replace(CONFIG, views=(name,), a=3.0)
        shared = run_protocol(config, one, store=store)
        assert entries(store) == dual
        assert without_timing(shared.history) == without_timing(run_protocol(config, one).history)


def test_the_exact_mode_does_not_use_the_store(data, tmp_path):
    store = FrozenWorkStore(tmp_path)
    run_protocol(replace(CONFIG, feature_cache=False), data, store=store)
    assert not entries(store)


def test_store_round_trip_and_damaged_entries(tmp_path):
    store = FrozenWorkStore(tmp_path)
    key = FrozenWorkStore.key(kind="prefix", inputs="abc")
    assert store.load(key) is None
    value = torch.randn(3, 4)
    store.store(key, value)
    assert torch.equal(store.load(key), value)
    store.path(key).write_bytes(store.path(key).read_bytes()[:20])
    assert store.load(key) is None


def test_digests_follow_what_they_describe(tmp_path):
    x = torch.zeros(2, 3)
    assert tensor_digest(x) == tensor_digest(x.clone())
    assert tensor_digest(x) != tensor_digest(torch.zeros(3, 2))
    y = x.clone()
    y[1, 2] = 1e-6
    assert tensor_digest(x) != tensor_digest(y)
    assert weights_digest("resnet18", False, None, 1) != weights_digest("resnet18", False, None, 2)
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"1234")
    before = weights_digest("resnet18", True, str(path), 0)
    path.write_bytes(b"12345")
    assert weights_digest("resnet18", True, str(path), 0) != before


def garble(path) -> None:
    """Flip bytes in the middle of a file, keeping its size: what a failing disk or a
    bad copy leaves, and what a size check cannot see."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))


def test_damaged_frozen_work_is_reported_deleted_and_computed_again(data, tmp_path, caplog):
    store = FrozenWorkStore(tmp_path)
    clean = run_protocol(CONFIG, data, store=store)
    paths = sorted(store.root.rglob("*.pt"))
    garble(paths[0])
    torch.save(torch.zeros(3, 7), paths[1])  # another tensor, written by hand: no checksum
    with caplog.at_level("WARNING", logger="trainables.frozen_store"):
        again = run_protocol(CONFIG, data, store=store)
    damaged = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert len(damaged) == 2 and all("deleted, computed again" in m for m in damaged)
    assert without_timing(again.history) == without_timing(clean.history)  # never trained on
    assert all(store.load(p.stem) is not None for p in paths)  # rewritten whole


def test_an_entry_of_the_wrong_length_is_refused(tmp_path):
    store = FrozenWorkStore(tmp_path)
    key = FrozenWorkStore.key(kind="pooled", split="train")
    store.store(key, torch.ones(5, 2, 8))  # well formed, but for 5 maps
    assert store.load(key, rows=24) is None
    assert not store.path(key).exists()
    store.store(key, torch.ones(24, 2, 8))
    assert torch.equal(store.load(key, rows=24), torch.ones(24, 2, 8))
