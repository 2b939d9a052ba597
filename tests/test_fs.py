"""write_atomic: a reader sees the old content or the new, and a failed write changes nothing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ftdojo import _fs
from ftdojo._fs import write_atomic


@pytest.mark.parametrize("durable", [False, True])
def test_write_atomic_writes_text_and_bytes_and_replaces_the_old_file(tmp_path: Path, durable: bool) -> None:
    path = tmp_path / "report.html"
    write_atomic(path, "first ✓", durable=durable)
    assert path.read_text(encoding="utf-8") == "first ✓"
    write_atomic(path, b"\x00second", durable=durable)
    assert path.read_bytes() == b"\x00second"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left


def test_write_atomic_sets_the_mode_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "object"
    write_atomic(path, b"x", durable=True, mode=0o444)
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_a_durable_write_flushes_the_file_and_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(_fs.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    write_atomic(tmp_path / "a", "x")
    assert synced == []
    write_atomic(tmp_path / "a", "y", durable=True)
    assert len(synced) == 2  # the file, then the folder


@pytest.mark.parametrize("failing", ["replace", "fsync", "chmod"])
def test_a_failed_write_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "bench.json"
    path.write_text("old")

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_fs.os, failing, fail)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, "new", durable=True)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]


def test_a_write_into_a_missing_folder_raises_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "report.html", "x")
    assert list(tmp_path.iterdir()) == []
