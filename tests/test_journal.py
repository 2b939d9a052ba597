from __future__ import annotations

from pathlib import Path

import pytest

from ftdojo import JournalError
from ftdojo.journal import Journal


def test_append_and_read_back(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "run" / "journal.jsonl")
    journal.append("a", x=1)
    journal.append("b", y=float("nan"))
    records = list(journal.records())
    assert [r["kind"] for r in records] == ["a", "b"]
    assert records[0]["x"] == 1


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("a", x=1)
    with journal.path.open("ab") as fh:
        fh.write(b'{"kind": "trial", "tri')  # the process died mid-write
    assert [r["kind"] for r in journal.records()] == ["a"]


def test_a_torn_last_line_is_cut_off_before_the_next_append(tmp_path: Path) -> None:
    Journal(tmp_path / "journal.jsonl").append("a", x=1)
    with (tmp_path / "journal.jsonl").open("ab") as fh:
        fh.write(b'{"kind": "trial", "tri')  # the process died mid-write
    resumed = Journal(tmp_path / "journal.jsonl")  # as a resumed run opens it
    resumed.append("b")
    assert resumed.torn_bytes_dropped == len(b'{"kind": "trial", "tri')
    assert [r["kind"] for r in Journal(tmp_path / "journal.jsonl").records()] == ["a", "b"]


def test_a_corrupt_middle_line_names_the_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("a")
    with journal.path.open("ab") as fh:
        fh.write(b"garbage\n")
    journal.append("b")
    with pytest.raises(JournalError, match="line 2"):
        list(journal.records())
