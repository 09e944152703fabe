"""A search's summary: trials by status, compute hours weighted by the resources each
trial held, the best trial so far."""

from __future__ import annotations

import pytest

from results import format_summary, search_summaries


def test_a_summary_counts_trials_hours_and_the_best(example_store):
    s1, s2 = search_summaries(example_store)
    assert (s1.search, s2.search) == ("s1", "s2")
    assert s1.trials == {"completed": 1, "stopped": 1, "errored": 1}
    assert s1.epochs == 3 + 2 + 1
    # t1: 3 epochs of 600 s; t2: 2 of 2 s; t3: 1 of 2 s; each with 0.5 GPU and 2 CPUs
    assert s1.trial_hours == pytest.approx((1800 + 4 + 2) / 3600)
    assert s1.gpu_hours == pytest.approx(0.5 * s1.trial_hours)
    assert s1.cpu_hours == pytest.approx(2 * s1.trial_hours)
    assert s1.best["trial_id"] == "t1" and s1.best["best_selection"] == pytest.approx(0.6)
    assert s1.devices == ["NVIDIA H100"]
    assert s1.status is None and s1.elapsed_hours is None  # no searches row was written
    text = format_summary(s1)
    assert "1 completed, 1 stopped, 1 errored" in text and "0.251 GPU-hours" in text
    assert "resnet18/dual trial t1: balanced_accuracy 0.600 at epoch 2" in text


def test_a_summary_takes_the_searches_row_when_there_is_one(example_store):
    from datetime import UTC, datetime

    from results.store import ResultStore

    start = datetime(2027, 1, 1, 8, 0, tzinfo=UTC)
    ResultStore(example_store).write_search(
        {"search": "s2", "space": "paper-binary", "status": "completed", "started": start,
         "ended": datetime(2027, 1, 1, 9, 30, tzinfo=UTC)}
    )  # fmt: skip
    (summary,) = search_summaries(example_store, "s2")
    assert summary.space == "paper-binary" and summary.elapsed_hours == pytest.approx(1.5)
    assert "completed started 2027-01-01 08:00 UTC, 1:30:00 elapsed" in format_summary(summary)


def test_an_unknown_search_is_named(example_store):
    with pytest.raises(LookupError, match="no search named 's7'"):
        search_summaries(example_store, "s7")
