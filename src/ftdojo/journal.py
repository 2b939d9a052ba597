"""The run journal: append-only JSON lines, each fsynced before the call returns.

A finished trial is on disk before the agent hears of it, so a run that is killed
resumes without losing it. A torn last line (the process died mid-write) is
ignored on reading and cut off before the next append; any other corrupt line is an
error that names the line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ftdojo.errors import JournalError

__all__ = ["Journal"]


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._tail_checked = False
        #: Bytes of a torn last record cut off before this journal's first append.
        self.torn_bytes_dropped = 0

    def _drop_torn_tail(self) -> None:
        # A record torn by a crash has no newline; appending after it would glue the next
        # record onto it, and the journal would no longer read. Cut it off first.
        self._tail_checked = True
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0:
            return
        with self.path.open("rb+") as handle:
            handle.seek(max(0, size - 1))
            if handle.read(1) == b"\n":
                return
            handle.seek(0)
            keep = handle.read().rfind(b"\n") + 1
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        self.torn_bytes_dropped = size - keep

    def append(self, kind: str, **fields: Any) -> None:
        if not self._tail_checked:
            self._drop_torn_tail()
        record = {"kind": kind, "time": time.time(), **fields}
        line = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        lines = self.path.read_bytes().split(b"\n")
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                if number == len(lines):  # torn final write: the record never completed
                    return
                raise JournalError(f"{self.path}, line {number}: corrupt journal record: {exc}") from exc
            if not isinstance(record, dict) or "kind" not in record:
                raise JournalError(f"{self.path}, line {number}: not a journal record")
            yield record
