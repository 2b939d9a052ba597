"""The run journal: append-only JSON lines, each fsynced before the call returns.

A finished trial is on disk before the agent hears of it, so a run that is killed
resumes without losing it. A torn last line (the process died mid-write) is
ignored on reading; any other corrupt line is an error that names the line.
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

    def append(self, kind: str, **fields: Any) -> None:
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
