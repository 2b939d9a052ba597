"""How a sandboxed job ended, read from what its process left: the events it sent, its
exit status, its captured output and what the runner saw (:class:`RunState`).

The classification into an :class:`~ftdojo.ErrorKind` happens here, and so does the
root cause: a short excerpt (the last traceback's last frame and exception, or the
output's tail) instead of the whole log.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import attrs

from ftdojo.artifacts import open_plain_file
from ftdojo.feedback import ErrorKind
from ftdojo.sandbox.jobs import JobOutcome, Limits
from ftdojo.sandbox.protocol import MAX_EVENT_BYTES, OOM_MARKERS

__all__ = ["MAX_EVENTS", "OutputCapture", "RunState", "job_outcome", "root_cause_from_output"]

#: Events kept in :attr:`JobOutcome.events`; later ones are counted and dropped (the
#: final ``result``/``error`` event is always kept).
MAX_EVENTS = 20_000
_HEAD_BYTES = 8 * 1024
_ROOT_CAUSE_CHARS = 1500
_EXCEPTION_LINES = 10
# Output beyond the cap that no honest job writes: recorded as a flooding attempt.
_FLOOD_BYTES = 64 * 2**20


class OutputCapture:
    """Keeps the head and the tail of a byte stream, counting what is dropped between."""

    def __init__(self, limit: int) -> None:
        self._head_limit = min(_HEAD_BYTES, limit // 2)
        self._tail_limit = limit - self._head_limit
        self._head = bytearray()
        self._tail = bytearray()
        self._after_head = 0

    def feed(self, chunk: bytes) -> None:
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self._after_head += len(chunk)
        self._tail += chunk
        # Trimmed in batches so that each byte is copied a bounded number of times.
        if len(self._tail) > 2 * self._tail_limit + 65536:
            del self._tail[: len(self._tail) - self._tail_limit]

    @property
    def dropped(self) -> int:
        return self._after_head - min(len(self._tail), self._tail_limit)

    def text(self) -> str:
        tail = bytes(self._tail[len(self._tail) - self._tail_limit :]) if self._tail_limit else b""
        head = bytes(self._head)
        if self.dropped:
            head += f"\n... [{self.dropped} bytes dropped] ...\n".encode()
        return (head + tail).decode("utf-8", errors="replace")


@attrs.define
class RunState:
    """What the runner saw while a job ran, filled in as it goes: the input of :func:`job_outcome`."""

    output: OutputCapture
    events: list[dict[str, Any]] = attrs.Factory(list)
    violations: list[dict[str, Any]] = attrs.Factory(list)
    events_dropped: int = 0
    bad_lines: int = 0
    oversized_lines: int = 0
    terminal: dict[str, Any] | None = None
    warnings: list[str] = attrs.Factory(list)
    timed_out: bool = False
    killed_by_us: bool = False
    #: Stop the job at its first violation (jobs with a filesystem view).
    stop_on_violation: bool = False
    stopped_for_violation: bool = False
    #: The bytes found in the job's folders when it went over its disk quota.
    over_quota: int | None = None
    callback_error: BaseException | None = None
    #: Set when a fork client had to spawn the worker after all (its ``launch`` event).
    spawned_instead: str | None = None


def _is_marker_line(stripped: str) -> bool:
    # The ``^^^^`` / ``~~~`` lines Python 3.11+ puts under the failing expression.
    return set(stripped) <= set("^~ ")


def _last_traceback(text: str) -> str | None:
    start = text.rfind("Traceback (most recent call last):")
    if start < 0:
        return None
    lines = text[start:].splitlines()[1:]
    frame: list[str] = []
    index = 0
    while index < len(lines) and (lines[index].startswith(" ") or not lines[index].strip()):
        stripped = lines[index].strip()
        if stripped.startswith("File "):
            frame = [stripped]
        elif stripped and len(frame) == 1 and not _is_marker_line(stripped):
            frame.append(stripped)
        index += 1
    exception: list[str] = []
    for line in lines[index : index + _EXCEPTION_LINES]:
        if not line.strip() or line.startswith(("During handling", "The above exception", "Traceback")):
            break
        exception.append(line)
    if not exception:
        return None
    return "\n".join([*frame, *exception])


def _tail_lines(text: str, limit: int) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) + 1 > limit and kept:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(reversed(kept))


def _cap(text: str, limit: int = _ROOT_CAUSE_CHARS) -> str:
    if len(text) <= limit:
        return text
    # The end of an excerpt (the exception line) is what names the cause.
    return "..." + text[-(limit - 3) :]


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "the process did not exit"
    if returncode < 0:
        return f"killed by signal {-returncode} ({_signal_name(-returncode)})"
    return f"exited with code {returncode}"


def root_cause_from_output(output: str, returncode: int | None) -> str:
    """The last traceback reduced to its last frame and exception, or the output's tail."""
    # faulthandler ends a crash dump with every loaded extension module on one line: no
    # cause there (and in a job forked from the preloaded server, a very long line).
    output = "\n".join(line for line in output.splitlines() if not line.startswith("Extension modules:"))
    excerpt = _last_traceback(output)
    if excerpt is None:
        excerpt = _tail_lines(output, _ROOT_CAUSE_CHARS)
    headline = _describe_exit(returncode)
    # The headline (which signal) is kept whole; the excerpt is cut from its start.
    return f"{headline}\n{_cap(excerpt, _ROOT_CAUSE_CHARS - len(headline) - 1)}" if excerpt else headline


def job_outcome(
    *,
    returncode: int | None,
    state: RunState,
    limits: Limits,
    duration: float,
    workspace: Path,
) -> JobOutcome:
    """The outcome of a job whose process ended with ``returncode`` after ``duration`` seconds
    (negative: killed by that signal), classified in this order: over its disk quota,
    stopped at a violation, timed out, a result, an error event, SIGKILL from outside (the
    kernel's OOM killer), then whatever its output says."""
    output = state.output.text()
    warnings = list(state.warnings)
    if state.output.dropped:
        warnings.append(f"output truncated: {state.output.dropped} bytes dropped")
    if state.events_dropped:
        warnings.append(f"events dropped: {state.events_dropped} beyond the first {MAX_EVENTS}")
    if state.bad_lines:
        warnings.append(f"ignored {state.bad_lines} event line(s) that were not JSON objects with a type")
    if state.oversized_lines:
        warnings.append(f"ignored {state.oversized_lines} event line(s) over {MAX_EVENT_BYTES} bytes")

    terminal = state.terminal or {}
    peak = terminal.get("peak_rss_mb")
    exit_code = returncode if returncode is not None and returncode >= 0 else None
    sig = -returncode if returncode is not None and returncode < 0 else None
    result = _result(terminal, workspace, warnings) if terminal.get("type") == "result" else None

    if state.output.dropped > _FLOOD_BYTES:
        state.violations.append(
            {"kind": "output_flood", "detail": f"{state.output.dropped} bytes of output beyond the cap"}
        )
    kind: ErrorKind | None
    if state.over_quota is not None and not state.stopped_for_violation:
        kind = ErrorKind.DISK
        root_cause = (
            f"its folders grew to {state.over_quota / 2**20:.0f} MiB, past the disk quota of "
            f"{(limits.disk_bytes or 0) / 2**20:.0f} MiB; killed"
        )
    elif state.stopped_for_violation:
        first = state.violations[0] if state.violations else {"kind": "unknown", "detail": ""}
        kind = ErrorKind.VIOLATION
        root_cause = _cap(f"stopped at its first sandbox violation: {first['kind']}: {first['detail']}")
    elif state.timed_out:
        kind = ErrorKind.TIMEOUT
        root_cause = f"ran past its wall-clock limit of {limits.wall_seconds:g} s and was killed"
        if state.killed_by_us:
            root_cause += f" (ignored SIGTERM for {limits.grace_seconds:g} s; sent SIGKILL)"
    elif result is not None and returncode == 0:
        kind, root_cause = None, ""
    elif terminal.get("type") == "error":
        try:
            kind = ErrorKind(terminal.get("kind"))
        except ValueError:
            kind = ErrorKind.ENV
        root_cause = str(terminal.get("message") or "the job failed without a message")
        if terminal.get("where"):
            root_cause += f"\n  at {terminal['where']}"
        root_cause = _cap(root_cause)
    elif sig == signal.SIGKILL and not state.killed_by_us:
        kind = ErrorKind.OOM
        root_cause = "killed by SIGKILL (likely the kernel's out-of-memory killer)"
    else:
        lowered = output.lower()
        kind = ErrorKind.OOM if any(marker in lowered for marker in OOM_MARKERS) else ErrorKind.ENV
        if returncode == 0:
            root_cause = _cap("exited without reporting a result\n" + _tail_lines(output, 1000))
        else:
            root_cause = root_cause_from_output(output, returncode)
            if result is not None:
                root_cause = _cap(f"reported a result, then {root_cause}")

    ok = kind is None
    return JobOutcome(
        ok=ok,
        result=result if ok else None,
        error_kind=kind,
        root_cause=root_cause,
        exit_code=exit_code,
        signal=sig,
        timed_out=state.timed_out,
        duration_s=duration,
        peak_memory_mb=float(peak) if isinstance(peak, (int, float)) else None,
        events=tuple(state.events),
        output=output,
        warnings=tuple(warnings),
        violations=tuple(state.violations),
    )


def _result(terminal: dict[str, Any], workspace: Path, warnings: list[str]) -> dict[str, Any] | None:
    if "result_file" in terminal:
        # Only a bare name inside the workspace is honoured.
        path = workspace / Path(str(terminal["result_file"])).name
        try:
            with open_plain_file(path) as handle:
                loaded = json.loads(handle.read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            warnings.append(f"cannot read the result file {path.name}: {exc}")
            return None
    else:
        loaded = terminal.get("result")
    if not isinstance(loaded, dict):
        warnings.append("the result event did not hold a JSON object")
        return None
    return loaded
