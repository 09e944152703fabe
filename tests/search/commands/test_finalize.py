"""`polarmap finalize` as a user runs it: where it writes is checked before any retraining."""

from __future__ import annotations

import pytest

from search.cli import main


@pytest.fixture
def no_retraining(monkeypatch):
    from search.finalize import nested

    def retrained(*args, **kwargs):
        raise AssertionError("finalize retrained before its outputs were checked")

    monkeypatch.setattr(nested, "finalize_any", retrained)


@pytest.mark.usefixtures("no_retraining")
def test_an_out_folder_that_is_a_file_is_refused_before_any_retraining(
    example_store, tmp_path, capsys
):
    out = tmp_path / "report.html"
    out.write_text("a file")
    with pytest.raises(SystemExit) as exited:
        main(["finalize", str(example_store), "--search", "s1", "--out", str(out)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"--out {out}: is a file, not a folder" in err
    assert "usage:" in err and "Traceback" not in err


@pytest.mark.usefixtures("no_retraining")
def test_result_tables_that_cannot_be_written_are_refused_before_any_retraining(
    example_store, tmp_path, monkeypatch, capsys
):
    from search import files

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(files, "write_atomic", refuse)  # a read-only disk, even for root
    with pytest.raises(SystemExit) as exited:
        main(["finalize", str(example_store), "--search", "s1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"result tables {example_store}: cannot write there (Permission denied)" in err
    finals = tmp_path / "finals"
    assert f"finals folder {finals}: cannot write there (Permission denied)" in err
    assert not finals.exists()  # made for the probe, gone again
