"""What the sandbox's parent and child agree on: the event channel and the job API.

This module is imported by the child before the job's entry function, so it must stay
cheap: the standard library and ftdojo's own light modules only.

The channel is one JSON object per line, each with a ``"type"``. Two types are
terminal and written by the worker itself: ``"result"`` (``result`` holds what the
entry function returned, or ``result_file`` names a file in the workspace when it was
too big for one line) and ``"error"`` (``kind``, ``message``, ``where``). Both carry
``peak_rss_mb``. ``"warning"`` events (``message``) end up in the outcome's warnings,
``"violation"`` events (``kind``, ``detail``, sent by :mod:`ftdojo.sandbox.guard`) in its
violations.
Everything else is the job's own, sent with :meth:`WorkerContext.emit`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from ftdojo.errors import FTDojoError
from ftdojo.feedback import ErrorKind, Stage

__all__ = [
    "JOB_FILE",
    "MAX_EVENT_BYTES",
    "MAX_VIOLATIONS",
    "OOM_MARKERS",
    "RESULT_FILE",
    "WORKER_MODULE",
    "JobFailure",
    "WorkerContext",
    "encode_event",
]

#: The module the parent runs with ``python -m``.
WORKER_MODULE = "ftdojo.sandbox.worker"
#: Name of the job description the parent writes into the workspace.
JOB_FILE = "job.json"
#: Where a result too large for one event line is written instead, in the workspace.
RESULT_FILE = "result.json"
#: The longest event line the parent accepts; longer lines are dropped with a warning.
MAX_EVENT_BYTES = 1024 * 1024
#: ``"violation"`` events (``kind``, ``detail``) kept per job.
MAX_VIOLATIONS = 100
#: Lower-case text that names an out-of-memory failure: in the message of a job's
#: ``RuntimeError`` (the worker) and in a crashed job's output (the runner). "cannot
#: allocate memory" is strerror(ENOMEM), e.g. from a failed mmap; "defaultcpuallocator"
#: is torch's CPU allocator failing.
OOM_MARKERS = (
    "memoryerror",
    "can't allocate memory",
    "cannot allocate memory",
    "out of memory",
    "defaultcpuallocator",
)


class JobFailure(FTDojoError):
    """Raised by a job to end with a specific error kind, e.g. ``DIVERGED`` on a NaN loss.

    The message is reported as the root cause as it is, without the exception's type.
    """

    def __init__(self, kind: ErrorKind | str, message: str) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.kind, self.message))


def _json_default(obj: Any) -> Any:
    # Jobs naturally emit Paths, sets and numpy/torch scalars (``loss`` as a 0-d tensor);
    # converting them here saves every job from a class of "not JSON serializable" crashes.
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def encode_event(event: dict[str, Any]) -> bytes:
    """One event as a line of the channel. NaN and infinities are kept (as JSON extensions)."""
    text = json.dumps(event, allow_nan=True, default=_json_default, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


class WorkerContext:
    """Handed to a job's entry function in the child: where it runs and how to report.

    ``emit`` streams an event to the parent as soon as it is called; the parent passes it
    live to its ``on_event`` callback. It is safe to call from several threads.
    """

    def __init__(self, *, workspace: Path, stage: Stage, events_fd: int) -> None:
        self.workspace = workspace
        self.stage = stage
        self._events_fd = events_fd
        self._lock = threading.Lock()

    def emit(self, type: str, **fields: Any) -> None:
        """Send ``{"type": type, "time": <unix time>, **fields}`` to the parent.

        Raises ``TypeError`` for fields that cannot be serialized and ``ValueError`` for
        an event larger than :data:`MAX_EVENT_BYTES`.
        """
        line = encode_event({"type": type, "time": time.time(), **fields})
        if len(line) > MAX_EVENT_BYTES:
            raise ValueError(f"event {type!r} is {len(line)} bytes; the limit is {MAX_EVENT_BYTES}")
        self._write_raw(line)

    def _write_raw(self, data: bytes) -> None:
        # Private: writes bytes to the channel as they are. The worker uses it for its own
        # events, and ftdojo.testing.jobs to check that the parent survives garbage.
        view = memoryview(data)
        with self._lock:
            while view:
                written = os.write(self._events_fd, view)
                view = view[written:]
