"""What a search will do and what is wrong with it, known before Ray starts."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path

import pytest
from ray.tune.schedulers import HyperBandScheduler

from search.tuning import SearchProblems, SearchSettings, check_search, hyperband_brackets
from search.tuning.settings import epoch_budget, pair_brackets, settings_problems
from spaces import get_space


def settings(data: Path, **changes) -> SearchSettings:
    space_changes = {k: changes.pop(k) for k in list(changes) if k in ("backbones", "modes")}
    space = replace(get_space("tiny"), **space_changes)
    return SearchSettings(space=space, data=data, name="t", storage="runs", **changes)


@pytest.mark.parametrize(("max_t", "eta"), [(9, 3), (27, 3), (130, 3), (16, 2), (81, 3)])
def test_brackets_are_the_ones_rays_hyperband_builds(max_t, eta):
    ray_scheduler = HyperBandScheduler(time_attr="epoch", max_t=max_t, reduction_factor=eta)
    ours = hyperband_brackets(max_t, eta)
    expected = [
        (ray_scheduler._get_n0(s), ray_scheduler._get_r0(s))
        for s in range(ray_scheduler._s_max_1)
        if ray_scheduler._get_r0(s) > 0
    ]
    assert [(b.trials, b.rungs[0]) for b in ours] == expected
    for s, bracket in enumerate(ours):
        assert len(bracket.rungs) == s + 1 and bracket.rungs[-1] <= max_t


def test_with_100_plus_30_epochs_only_the_last_rungs_reach_fine_tune():
    rungs = [b.rungs for b in hyperband_brackets(130, 3)]
    assert rungs[0] == (130,)
    assert rungs[-1] == (1, 3, 9, 27, 81)  # this bracket never fine-tunes
    for bracket in rungs:
        assert sum(r > 100 for r in bracket) <= 1


def test_the_epoch_budget_counts_each_rung_once():
    # max_t 9, eta 3, 6 trials: one bracket of 6 at 3 epochs, ceil(6 / 3) = 2 go on to 9
    assert epoch_budget(6, 9, 3, "hyperband") == 6 * 3 + 2 * 6
    assert epoch_budget(6, 9, 3, "asha") == 54


@pytest.mark.parametrize(("samples", "max_t"), [(2, 27), (6, 27), (6, 130), (30, 130), (48, 27)])
def test_a_pair_too_small_for_a_round_gets_one_bracket_that_stops_trials(samples, max_t):
    (bracket,) = pair_brackets(samples, max_t, 3)
    assert bracket.trials == samples and bracket.rungs[-1] == max_t
    assert list(bracket.rungs) == sorted(set(bracket.rungs))  # every rung further on
    kept = bracket.kept()
    assert kept[0] == samples and kept[-1] < samples  # some stop early
    assert all(later == math.ceil(earlier / 3) for earlier, later in itertools.pairwise(kept))
    assert 3 ** (len(bracket.rungs) - 1) <= max(samples, 3)  # as many halvings as trials allow


def test_a_pair_with_trials_for_whole_rounds_gets_rays_brackets():
    round_size = sum(b.trials for b in hyperband_brackets(27, 3))
    assert pair_brackets(round_size, 27, 3) == hyperband_brackets(27, 3)


def test_every_settings_problem_is_listed_at_once(tmp_path):
    problems = settings_problems(
        settings(
            tmp_path, backbones=("test_resnet", "no_such_net"), modes=("stress", "rest+rest"),
            scheduler="bohb", reduction_factor=1, cpus_per_trial=999, gpus_per_trial=1,
            max_concurrent=0, time_budget_s=-1,
        ),
        local_gpus=0,
    )  # fmt: skip
    text = "\n".join(problems)
    for expected in (
        "no_such_net", "rest+rest", "bohb", "reduction factor", "cpus per trial 999",
        "gpus per trial 1: this machine has 0 GPUs", "max concurrent", "time budget",
    ):  # fmt: skip
        assert expected in text, expected
    assert len(problems) == 8


def test_how_many_outer_searches_run_at_once(tmp_path):
    from search.data import SplitSpec
    from search.tuning.settings import outer_parallel

    nested = SplitSpec(folds=2, outer_folds=4)
    local = settings(tmp_path, split=nested)
    assert outer_parallel(local, 4) == 1  # this machine's slots: one at a time
    assert outer_parallel(replace(local, address="auto"), 4) == 4  # a cluster: all at once
    assert outer_parallel(replace(local, outer_parallel=2, address="auto"), 4) == 2
    assert outer_parallel(replace(local, outer_parallel=9), 4) == 4
    assert settings_problems(replace(local, outer_parallel=2), local_gpus=0) == []
    assert settings_problems(replace(local, outer_parallel=0), local_gpus=0) == [
        "outer parallel: need at least 1, got 0"]  # fmt: skip
    plain = settings(tmp_path, outer_parallel=2)
    assert settings_problems(plain, local_gpus=0) == [
        "outer parallel: only a nested run (--outer-folds) has outer searches"]  # fmt: skip


def test_outer_searches_register_their_trainables_under_names_of_their_own(tmp_path):
    """Ray keeps one trainable registry per job: outer searches running at once as tasks of
    one driver overwrote each other's trainable (with its data), so a trial of outer search
    0 could train on outer search 1's folds and predict outer fold 0's patients."""
    from search.data import SplitSpec
    from search.tuning.nested import outer_settings
    from search.tuning.runner import trainable_name

    nested = settings(tmp_path, split=SplitSpec(folds=2, outer_folds=3))
    names = {trainable_name(outer_settings(nested, m)) for m in range(3)}
    assert len(names) == 3
    assert trainable_name(settings(tmp_path)) == "polarmap_trainable"  # resumes as before


def test_missing_pretrained_weights_are_found_before_the_search(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "test_resnet.safetensors").write_bytes(b"x")
    space = replace(get_space("tiny"), pretrained=True)
    problems = settings_problems(
        SearchSettings(space=space, data=tmp_path, name="t", storage="r", weights=str(folder)),
        local_gpus=0,
    )
    assert len(problems) == 1 and "test_efficientnet" in problems[0]


def test_data_problems_join_the_settings_problems(edit_manifest, manifest):
    def lose_an_image(rows):
        rows[3][rows[0].index("rest_path")] = "images/nowhere.png"

    with pytest.raises(SearchProblems) as caught:
        check_search(settings(manifest, scheduler="bohb", modes=("stress", "sideways")))
    text = str(caught.value)
    assert "bohb" in text and "needs view 'sideways'" in text and str(manifest) in text
    edit_manifest(lose_an_image)
    with pytest.raises(SearchProblems) as caught:
        check_search(settings(manifest, scheduler="bohb"))
    assert "bohb" in str(caught.value) and "nowhere.png" in str(caught.value)


def test_a_good_search_passes_its_check(manifest):
    dataset = check_search(settings(manifest))
    assert len(dataset) == 40


def test_missing_pretrained_weights_on_s3_name_the_backbone_and_the_uri(tmp_path, s3_storage):
    from search.files import join_location, open_location, write_file

    prefix = join_location(s3_storage, tmp_path.name)
    fs, path = open_location(join_location(prefix, "test_resnet.safetensors"))
    write_file(fs, path, b"x")
    space = replace(get_space("tiny"), pretrained=True)
    problems = settings_problems(
        SearchSettings(space=space, data=tmp_path, name="t", storage="r", weights=prefix),
        local_gpus=0,
    )
    assert len(problems) == 1  # test_resnet's file is found, nothing was downloaded
    assert f"backbone 'test_efficientnet' not found in {prefix}" in problems[0]
    assert join_location(prefix, "test_efficientnet.safetensors") in problems[0]


def test_a_storage_that_cannot_be_written_is_listed_with_the_other_problems(manifest, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("a file where the storage should be")
    for storage, problem in (
        (taken, f"storage {taken}: is a file, not a folder"),
        (taken / "runs", f"storage {taken / 'runs'}: cannot make the folder: {taken} is a file"),
    ):
        with pytest.raises(SearchProblems) as caught:
            check_search(replace(settings(manifest, scheduler="bohb"), storage=str(storage)))
        assert problem in str(caught.value) and "bohb" in str(caught.value)
        assert not caught.value.data_only  # a usage error (2), not the data's (1)


def test_a_storage_a_search_can_write_is_left_as_it_was(manifest, tmp_path):
    storage = tmp_path / "new" / "runs"
    check_search(replace(settings(manifest), storage=str(storage)))
    assert not (tmp_path / "new").exists()  # made for the probe, gone again
