"""A damaged table file (cut short, emptied, overwritten, a flipped byte) is never
skipped: every reader of the tables (the Python API, the results commands, finalize)
fails naming the file and the repair, `polarmap results ingest STORAGE/NAME`, with exit
status 2 and no traceback; files of other searches are still read."""

from __future__ import annotations

import pickle
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from results import leaderboard, learning_curves, load_trials, search_summaries
from results.store import ResultStore
from search.cli import main
from search.errors import DamagedTable, SearchStateError


def cut_short(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_a_page_byte(path: Path) -> None:
    """One byte flipped inside the first column's pages, the footer left intact (bit rot)."""
    chunk = pq.read_metadata(path).row_group(0).column(0)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(path.read_bytes())
    data[start + chunk.total_compressed_size - 1] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = {
    "cut-short": cut_short,
    "empty": lambda path: path.write_bytes(b""),
    "not-parquet": lambda path: path.write_text("<html>503 Service Unavailable</html>"),
    "flipped-byte": flip_a_page_byte,
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_trial_file_is_named_with_the_repair_not_skipped(example_store, damage):
    damaged = example_store / "trials" / "search=s1" / "trial-t1.parquet"  # s1's best trial
    DAMAGES[damage](damaged)
    with pytest.raises(DamagedTable) as caught:
        ResultStore(example_store).table("trials")
    message = str(caught.value)
    assert str(damaged) in message and caught.value.files == (str(damaged),)
    assert f"polarmap results ingest {example_store.parent / 's1'}" in message
    assert isinstance(caught.value, SearchStateError) and caught.value.exit_status == 2
    assert pickle.loads(pickle.dumps(caught.value)).files == caught.value.files
    # another search's files are still read, and its reads stay one pass over them
    assert ResultStore(example_store).table("trials", search="s2").num_rows == 1
    assert list(leaderboard(str(example_store), "s2")["trial_id"]) == ["t9"]


def test_every_reader_of_the_tables_fails_on_a_damaged_file(example_store):
    cut_short(example_store / "trials" / "search=s1" / "trial-t1.parquet")
    for read in (
        lambda: load_trials(example_store, "s1"),
        lambda: leaderboard(str(example_store)),
        lambda: search_summaries(str(example_store), "s1"),
    ):
        with pytest.raises(DamagedTable, match=r"trial-t1\.parquet"):
            read()
    cut_short(example_store / "epochs" / "search=s1" / "trial-t2.parquet")
    with pytest.raises(DamagedTable, match=r"epochs/search=s1/trial-t2\.parquet"):
        learning_curves(example_store, "t2", "s1")


def test_every_damaged_file_is_named_at_once(example_store):
    paths = [example_store / "trials" / f"search={s}" / f"trial-{t}.parquet"
             for s, t in (("s1", "t1"), ("s1", "t3"), ("s2", "t9"))]  # fmt: skip
    for path in paths:
        cut_short(path)
    with pytest.raises(DamagedTable) as caught:
        ResultStore(example_store).table("trials")
    assert caught.value.files == tuple(str(p) for p in paths)
    message = str(caught.value)
    for search in ("s1", "s2"):
        assert f"polarmap results ingest {example_store.parent / search}" in message


def test_a_damaged_finals_file_is_repaired_by_finalize_again(example_store):
    folder = example_store / "comparisons" / "search=s1"
    folder.mkdir(parents=True)
    (folder / "comparisons.parquet").write_bytes(b"PAR1")
    with pytest.raises(DamagedTable) as caught:
        ResultStore(example_store).table("comparisons")
    assert f"polarmap finalize {example_store} --search s1" in str(caught.value)


@pytest.mark.parametrize(
    ("action", "options", "table", "file"),
    [
        ("leaderboard", ["--no-plot"], "trials", "trial-t1.parquet"),
        ("curves", ["--search", "s1", "--no-plot"], "epochs", "trial-t1.parquet"),
        ("summary", [], "trials", "trial-t2.parquet"),
    ],
)
def test_the_results_commands_exit_2_naming_the_file(
    example_store, capsys, action, options, table, file
):
    damaged = example_store / table / "search=s1" / file
    cut_short(damaged)
    with pytest.raises(SystemExit) as exited:
        main(["results", action, str(example_store), *options])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert str(damaged) in err and "polarmap results ingest" in err
    assert "Traceback" not in err


def test_finalize_exits_2_naming_a_damaged_searches_file(example_store, capsys):
    folder = example_store / "searches" / "search=s1"
    folder.mkdir(parents=True)
    (folder / "search.parquet").write_bytes(b"PAR1 cut off")
    with pytest.raises(SystemExit) as exited:
        main(["finalize", str(example_store), "--search", "s1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert str(folder / "search.parquet") in err and "Traceback" not in err


def test_curves_of_a_trial_whose_epochs_file_was_moved_away_exit_2(example_store, capsys):
    # the other repair the message offers: the tables read without the file's rows
    (example_store / "epochs" / "search=s1" / "trial-t1.parquet").unlink()
    with pytest.raises(SystemExit) as exited:
        main(["results", "curves", str(example_store), "--search", "s1", "--no-plot"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "no epochs of trial 't1'" in err and "Traceback" not in err
