"""What a sandboxed job is: the function to run and its payload (:class:`Job`), the limits
it runs under (:class:`Limits`) and how it ended (:class:`JobOutcome`).

Plain values, shared by every :class:`~ftdojo.sandbox.backend.JobRunner`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ftdojo.errors import ConfigError
from ftdojo.feedback import ErrorKind, Stage
from ftdojo.sandbox.isolation import FilesystemView

__all__ = ["Job", "JobOutcome", "Limits"]


def _positive(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if value is not None and not value > 0:
            raise ConfigError(f"Limits.{name} must be positive, got {value!r}")

    return check


@attrs.frozen(kw_only=True)
class Limits:
    """Resource limits of one sandboxed child process."""

    #: Wall-clock timeout of the whole child.
    wall_seconds: float = attrs.field(default=600.0, validator=_positive("wall_seconds"))
    #: RLIMIT_AS, applied in the child before any heavy import.
    memory_bytes: int | None = attrs.field(default=8 * 2**30, validator=_positive("memory_bytes"))
    #: Captured stderr kept: the first 8 KiB and the rest from the end.
    output_bytes: int = attrs.field(default=64 * 1024, validator=_positive("output_bytes"))
    #: Between SIGTERM and SIGKILL when the wall-clock limit is hit.
    grace_seconds: float = attrs.field(default=5.0)
    #: OMP_NUM_THREADS / MKL_NUM_THREADS / torch threads in the child.
    threads: int | None = attrs.field(default=None, validator=_positive("threads"))
    #: The most processes (and threads) the job may have at once, where a pids cgroup
    #: is available (see :attr:`ftdojo.Isolation.process_limit`).
    max_processes: int = attrs.field(default=512, validator=_positive("max_processes"))
    #: The most bytes the job's writable folders may hold (its workspace, or its
    #: filesystem view's writable folders); checked every second, the job is killed past it.
    disk_bytes: int | None = attrs.field(default=32 * 2**30, validator=_positive("disk_bytes"))
    #: RLIMIT_FSIZE: the largest file the child may write.
    file_size_bytes: int | None = attrs.field(default=16 * 2**30, validator=_positive("file_size_bytes"))

    @grace_seconds.validator
    def _check_grace(self, _attribute: Any, value: float) -> None:
        if value < 0:
            raise ConfigError(f"Limits.grace_seconds must not be negative, got {value!r}")


def _check_entry(_instance: Any, _attribute: Any, value: str) -> None:
    module, sep, function = value.partition(":")
    if not sep or not module or not function:
        raise ConfigError(f"Job.entry must look like 'package.module:function', got {value!r}")


@attrs.frozen(kw_only=True)
class Job:
    """What to run in the child: an importable function and its JSON payload."""

    #: ``"package.module:function"``, imported in the child and called as ``f(payload, ctx)``.
    entry: str = attrs.field(validator=_check_entry)
    #: JSON-serializable input of the function.
    payload: dict[str, Any]
    #: The stage the job belongs to; it decides the error kind of unclassified exceptions.
    stage: Stage
    #: What the job may see and write; ``None`` leaves the host's filesystem as it is
    #: (for the Dojo's own trusted jobs). Only enforced where the isolation has a
    #: filesystem view; everywhere, the worker reports attempts to cross it as violations.
    view: FilesystemView | None = None


@attrs.frozen(kw_only=True)
class JobOutcome:
    """How a sandboxed job ended, classified into an :class:`~ftdojo.ErrorKind` when it failed."""

    ok: bool
    #: What the entry function returned; ``None`` on failure.
    result: dict[str, Any] | None
    error_kind: ErrorKind | None
    #: A short excerpt naming the cause; empty when ok.
    root_cause: str
    exit_code: int | None
    #: The signal that ended the child, if one did.
    signal: int | None
    timed_out: bool
    duration_s: float
    #: The worker's own peak RSS, from its final event.
    peak_memory_mb: float | None
    events: tuple[dict[str, Any], ...]
    #: Captured stderr, head and tail.
    output: str
    warnings: tuple[str, ...]
    #: Attempts the worker saw to cross the sandbox (read a hidden path, write outside the
    #: workspace, open a socket, ...); each a dict with ``kind`` and ``detail``.
    violations: tuple[dict[str, Any], ...] = ()
    #: How the worker process was started: ``"fork"`` (from the preloaded fork server) or
    #: ``"spawn"`` (a fresh interpreter).
    launch: str = "spawn"
    #: Why a runner that preloads spawned this job instead (empty when it forked).
    launch_note: str = ""
