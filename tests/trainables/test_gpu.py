"""The trial on a GPU (bf16 autocast, channels_last); skipped where there is none (CI)."""

from __future__ import annotations

import gc

import pytest
import torch

from trainables.config import TrialConfig
from trainables.protocol import TrialData, run_protocol

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_gpu
def test_a_trial_runs_on_the_gpu_and_frees_its_memory():
    generator = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (64,), generator=generator)
    x = torch.randn(64, 2, 3, 64, 64, generator=generator)
    x[:, 1, 0] += y.view(-1, 1, 1).float()
    data = TrialData(x[:48], y[:48], x[48:], y[48:], ("A", "B", "C"))
    config = TrialConfig("test_resnet", warmup_epochs=2, finetune_epochs=2, batch_size=16)
    before = torch.cuda.memory_allocated()
    result = run_protocol(config, data)
    assert next(result.model.parameters()).is_cuda
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    assert all(0 <= r["val_balanced_accuracy"] <= 1 for r in result.history)
    del result
    gc.collect()
    torch.cuda.empty_cache()
    assert torch.cuda.memory_allocated() <= before + 1024
