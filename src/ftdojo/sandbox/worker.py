"""The child side of the sandbox: ``python -m ftdojo.sandbox.worker JOB_JSON``.

Order matters here. Resource limits are applied before anything that may allocate much
is imported, so that an entry importing torch already runs under ``RLIMIT_AS``. Then
the event channel is moved off fd 1, so that whatever libraries print goes to stderr and
only the worker writes events. Only then is the job's entry imported and called.

Exit status: 0 after a ``result`` event, 1 after an ``error`` event, 2 on a bad command
line. Anything else (a signal, a crash before the channel existed) is for the parent to
read from stderr.
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib
import json
import os
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftdojo.feedback import ErrorKind, Stage
    from ftdojo.sandbox.protocol import WorkerContext

__all__ = ["apply_limits", "classify_exception", "main"]

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_MESSAGE_LIMIT = 4000
# Released when a MemoryError is being reported, so that the report itself has room.
_RESERVE_BYTES = 1024 * 1024
_OOM_FALLBACK = b'{"type":"error","kind":"OOM","message":"MemoryError (report failed)"}\n'
_ENV_FALLBACK = b'{"type":"error","kind":"ENV","message":"(report failed)"}\n'


def _set_limit(which: int, value: int) -> None:
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    # The hard limit is lowered too, so that the job cannot lift the soft one again.
    resource.setrlimit(which, (value, value))


def _memory_rlimit() -> tuple[str, int]:
    """The limit ``Limits.memory_bytes`` is put on: the address space, or where an NVIDIA
    GPU is visible, the process's private writable memory.

    The CUDA driver reserves address space with nothing behind it when it starts (about
    14 GiB on an H100 80GB). Under the stages' 16 GiB RLIMIT_AS that does not fit: a job
    forked from the fork server (which already holds about 6 GiB) saw
    ``torch.cuda.is_available()`` False and trained on the CPU without a word; a bare
    ``import torch`` saw True, then "CUDA error: out of memory" at its first allocation.
    RLIMIT_DATA leaves such reservations out and still counts what a job's host-side
    tensors and buffers fill.
    """
    if os.path.exists("/dev/nvidiactl"):
        return "RLIMIT_DATA", resource.RLIMIT_DATA
    return "RLIMIT_AS", resource.RLIMIT_AS


def apply_limits(limits: Mapping[str, Any]) -> list[str]:
    """Apply a job's :class:`~ftdojo.sandbox.Limits` (as a dict) to this process, hard
    limits included; returns what could not be applied, in words."""
    problems: list[str] = []
    wanted: list[tuple[str, int, int | None]] = [
        (*_memory_rlimit(), limits.get("memory_bytes")),
        ("RLIMIT_FSIZE", resource.RLIMIT_FSIZE, limits.get("file_size_bytes")),
        ("RLIMIT_CORE", resource.RLIMIT_CORE, 0),
    ]
    for name, which, value in wanted:
        if value is None:
            continue
        try:
            _set_limit(which, int(value))
        except (ValueError, OSError) as exc:
            problems.append(f"could not set {name} to {value}: {exc}")
    threads = limits.get("threads")
    if threads is not None:
        for variable in _THREAD_VARIABLES:
            os.environ[variable] = str(int(threads))
    return problems


def _drop_workspace_from_path(workspace: Path) -> None:
    # ``python -m`` puts the working directory (the workspace) first on sys.path, so a
    # ``datasets.py`` written there by a data build would shadow the real library.
    # PYTHONSAFEPATH prevents that on 3.11+; this covers 3.10.
    if getattr(sys.flags, "safe_path", False) or not sys.path:
        return
    first = sys.path[0]
    if first == "" or Path(first).resolve() == workspace:
        del sys.path[0]


def _take_event_channel() -> int:
    sys.stdout.flush()
    events_fd = os.dup(1)  # not inheritable: exec'd grandchildren cannot write events
    os.dup2(2, 1)
    return events_fd


def _peak_rss_mb() -> float:
    # Linux keeps ru_maxrss across execve: a worker forked from a parent holding 1 GiB
    # would report at least 1 GiB whatever it used. VmHWM belongs to the address space,
    # which exec replaces, so it measures this job alone.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _load_entry(entry: str) -> Callable[..., Any]:
    from ftdojo.feedback import ErrorKind
    from ftdojo.sandbox.protocol import JobFailure

    module_name, sep, attribute = entry.partition(":")
    if not sep or not module_name or not attribute:
        raise JobFailure(ErrorKind.ENV, f"entry {entry!r} is not of the form 'package.module:function'")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ImportError(f"cannot import {attribute!r} from {module_name!r}") from None
    if not callable(target):
        raise JobFailure(ErrorKind.ENV, f"entry {entry!r} is not callable")
    return target  # type: ignore[no-any-return]


def _limit_torch_threads(threads: int | None) -> None:
    # Never import torch here: only adjust it when the entry module already did.
    torch = sys.modules.get("torch")
    if threads is None or torch is None:
        return
    try:
        torch.set_num_threads(int(threads))
    except Exception as exc:  # a broken torch must not hide the job's own outcome
        print(f"ftdojo worker: torch.set_num_threads({threads}) failed: {exc}", file=sys.stderr)


def classify_exception(exc: BaseException, stage: Stage) -> ErrorKind:
    """The error kind of an exception a job raised in ``stage``."""
    from ftdojo.errors import ConfigError, DataError
    from ftdojo.feedback import ErrorKind, Stage
    from ftdojo.sandbox.protocol import OOM_MARKERS, JobFailure

    if isinstance(exc, JobFailure):
        return exc.kind
    if isinstance(exc, MemoryError):
        return ErrorKind.OOM
    if isinstance(exc, RuntimeError):
        text = _safe_str(exc).lower()
        if any(marker in text for marker in OOM_MARKERS):
            return ErrorKind.OOM
    if isinstance(exc, ImportError):
        return ErrorKind.ENV
    if isinstance(exc, ConfigError):
        return ErrorKind.CONFIG
    if isinstance(exc, (DataError, json.JSONDecodeError, UnicodeDecodeError)):
        return ErrorKind.DATA
    return {Stage.BUILD: ErrorKind.DATA, Stage.TRAIN: ErrorKind.CONFIG}.get(stage, ErrorKind.ENV)


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<unprintable exception>"


def _describe(exc: BaseException) -> str:
    from ftdojo.sandbox.protocol import JobFailure

    text = _safe_str(exc)
    if not isinstance(exc, JobFailure):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if len(text) > _MESSAGE_LIMIT:
        text = text[: _MESSAGE_LIMIT - 3] + "..."
    return text


def _innermost_frame(tb: TracebackType | None) -> str:
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return f"{code.co_filename}:{tb.tb_lineno} in {code.co_name}"


def _report_failure(ctx: WorkerContext, exc: Exception, stage: Stage) -> int:
    out_of_memory = isinstance(exc, MemoryError)
    fallback = _OOM_FALLBACK if out_of_memory else _ENV_FALLBACK
    try:
        if out_of_memory:
            # The job's frames often hold what filled the memory; drop their locals now.
            traceback.clear_frames(exc.__traceback__)
        kind = classify_exception(exc, stage)
        fallback = b'{"type":"error","kind":"%s","message":"(report failed)"}\n' % kind.value.encode()
        ctx._write_raw(
            _encode(
                {
                    "type": "error",
                    "time": time.time(),
                    "kind": kind.value,
                    "message": _describe(exc),
                    "where": _innermost_frame(exc.__traceback__),
                    "peak_rss_mb": _peak_rss_mb(),
                }
            )
        )
    except BaseException:
        # If even this fails, the parent still sees exit status 1 and the traceback below.
        with contextlib.suppress(BaseException):
            ctx._write_raw(fallback)
    try:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
        sys.stderr.flush()
    except BaseException:
        pass
    return 1


def _encode(event: dict[str, Any]) -> bytes:
    from ftdojo.sandbox.protocol import encode_event

    return encode_event(event)


def _report_result(ctx: WorkerContext, result: dict[str, Any]) -> None:
    from ftdojo.sandbox.protocol import MAX_EVENT_BYTES, RESULT_FILE

    base: dict[str, Any] = {"type": "result", "time": time.time(), "peak_rss_mb": _peak_rss_mb()}
    line = _encode({**base, "result": result})
    if len(line) > MAX_EVENT_BYTES:
        # Too big for the channel: hand it over through the workspace instead.
        path = ctx.workspace / RESULT_FILE
        path.write_bytes(_encode(result))
        line = _encode({**base, "result_file": RESULT_FILE})
    ctx._write_raw(line)


def _install_guard(view: Mapping[str, Any] | None, ctx: WorkerContext) -> None:
    from ftdojo.sandbox.guard import Guard

    def report(kind: str, detail: str) -> None:
        ctx._write_raw(_encode({"type": "violation", "time": time.time(), "kind": kind, "detail": detail}))

    Guard(view, report).install()


def main(argv: list[str] | None = None) -> int:
    """Run the job described by the JSON file named on the command line; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ftdojo.sandbox.worker JOB_JSON", file=sys.stderr)
        return 2
    # Inherited as ignored from the launcher that shields bubblewrap from SIGTERM; the job
    # itself must get the parent's SIGTERM (and may handle it in its grace period).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    job_path = Path(args[0]).resolve()
    spec = json.loads(job_path.read_text(encoding="utf-8"))
    limits: Mapping[str, Any] = spec.get("limits") or {}
    problems = apply_limits(limits)
    workspace = job_path.parent
    _drop_workspace_from_path(workspace)
    events_fd = _take_event_channel()
    faulthandler.enable()
    reserve = bytearray(_RESERVE_BYTES)

    from ftdojo.feedback import ErrorKind, Stage
    from ftdojo.sandbox.protocol import JobFailure, WorkerContext

    stage = Stage(spec["stage"])
    ctx = WorkerContext(workspace=workspace, stage=stage, events_fd=events_fd)
    for problem in problems:
        print(f"ftdojo worker: {problem}", file=sys.stderr)
        ctx.emit("warning", message=problem)
    _install_guard(spec.get("view"), ctx)
    try:
        function = _load_entry(str(spec["entry"]))
        _limit_torch_threads(limits.get("threads"))
        result = function(spec.get("payload") or {}, ctx)
        if not isinstance(result, dict):
            raise JobFailure(
                ErrorKind.ENV,
                f"entry {spec['entry']!r} returned {type(result).__name__}, expected a dict",
            )
        _report_result(ctx, result)
    except Exception as exc:
        reserve.clear()
        return _report_failure(ctx, exc, stage)
    return 0


if __name__ == "__main__":
    sys.exit(main())
