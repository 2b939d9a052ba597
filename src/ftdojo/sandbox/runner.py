"""The parent side of the sandbox: start a job in a child process and supervise it.

The child is started in a new session, so it leads its own process group and every
process it forks can be signalled at once with ``os.killpg``. Whatever happens — a
result, a crash, a timeout, the caller's cancellation — the group is sent SIGKILL before
:meth:`SandboxRunner.run` returns, so no job leaves processes behind. (A process that
leaves the group on purpose, with ``setsid``, escapes this; pid namespaces would be
needed to catch it.)
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import re
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import attrs
import structlog

from ftdojo.artifacts import open_plain_file
from ftdojo.errors import ConfigError, SandboxError
from ftdojo.feedback import ErrorKind, Stage
from ftdojo.sandbox.forkserver import DEFAULT_PRELOAD
from ftdojo.sandbox.isolation import (
    BUBBLEWRAP,
    FilesystemView,
    Isolation,
    _probe_backends,
    detect_isolation,
    isolation_prefix,
    launcher,
    pids_cgroup_root,
)
from ftdojo.sandbox.preloaded import CLIENT_SCRIPT, ForkServer, fork_server
from ftdojo.sandbox.protocol import JOB_FILE, MAX_EVENT_BYTES, MAX_VIOLATIONS, WORKER_MODULE

__all__ = [
    "MAX_EVENTS",
    "Job",
    "JobOutcome",
    "Limits",
    "SandboxRunner",
    "network_isolation_prefix",
    "preload_from_environment",
    "scrubbed_environment",
]

_log = structlog.get_logger(__name__)

#: Events kept in :attr:`JobOutcome.events`; later ones are counted and dropped (the
#: final ``result``/``error`` event is always kept).
MAX_EVENTS = 20_000
_HEAD_BYTES = 8 * 1024
_ROOT_CAUSE_CHARS = 1500
# How long the readers may take to reach end-of-file after the group was killed; only a
# process that escaped the group can hold the pipes open that long.
_DRAIN_SECONDS = 2.0
_REAP_SECONDS = 30.0
_POLL_MAX_SECONDS = 0.05
_EXCEPTION_LINES = 10
# Output beyond the cap that no honest job writes: recorded as a flooding attempt.
_FLOOD_BYTES = 64 * 2**20
_DISK_POLL_SECONDS = 1.0
# Address space a forked job needs beyond what it inherits from the fork server before a
# memory limit is worth forking under (below it, the job is spawned instead).
_FORK_MEMORY_ROOM = 512 * 2**20

# The GPU a user chose reaches the job (CUDA_VISIBLE_DEVICES and friends).
_ALLOWED_VARIABLES = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
)
_ALLOWED_PREFIXES = ("OPENBLAS_",)
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
_SECRET_PREFIXES = ("AWS_", "OPENAI_", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
_OOM_OUTPUT = re.compile(
    r"MemoryError|can't allocate memory|cannot allocate memory|out of memory", re.IGNORECASE
)


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


def _looks_secret(key: str) -> bool:
    upper = key.upper()
    return any(word in upper for word in _SECRET_WORDS) or upper.startswith(_SECRET_PREFIXES)


def _check_extra(extra: Mapping[str, str]) -> None:
    for key in extra:
        if _looks_secret(key):
            raise ConfigError(
                f"environment variable {key!r} looks like a secret; "
                "secrets are never passed to sandboxed jobs"
            )


def scrubbed_environment(
    *, workspace: Path, limits: Limits, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The child's environment, built from an allowlist rather than the parent's environment.

    Nothing else of the parent's environment (API keys, tokens, proxies) reaches the job.
    ``extra`` is added last; a key that looks like a secret raises :class:`ConfigError`.
    Creates ``workspace/"tmp"`` for TMPDIR.
    """
    env = {key: value for key, value in os.environ.items() if key in _ALLOWED_VARIABLES}
    env.update((key, value) for key, value in os.environ.items() if key.startswith(_ALLOWED_PREFIXES))
    # Only passed through when set: running from a source checkout relies on it to find
    # ftdojo (and the entry's package) in the child, and setting it to anything when it
    # is unset would change the child's import path.
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    tmp = workspace / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(workspace),
        TMPDIR=str(tmp),
        HF_HOME=str(workspace / ".hf"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
        # ``python -m`` would otherwise put the workspace first on sys.path, where files
        # written by a job could shadow real modules (honoured by Python 3.11+).
        PYTHONSAFEPATH="1",
    )
    if limits.threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(limits.threads)
    if extra:
        _check_extra(extra)
        env.update(extra)
    return env


def preload_from_environment() -> bool:
    """Whether runners preload by default: ``FTDOJO_PRELOAD=0`` turns it off (on by default
    on Linux, where forking is safe; elsewhere every job is spawned)."""
    value = os.environ.get("FTDOJO_PRELOAD", "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    return sys.platform.startswith("linux")


def network_isolation_prefix() -> tuple[str, ...] | None:
    """The ``unshare`` prefix that runs a command without network, or ``None`` where unavailable.

    Probed once per process: ``unshare -n`` needs CAP_SYS_ADMIN (root), ``unshare -r -n``
    needs unprivileged user namespaces; containers often allow neither. Sandboxed jobs use
    :func:`~ftdojo.sandbox.isolation.isolation_prefix`, which prefers bubblewrap.
    """
    return _probe_backends()[1]


class _OutputCapture:
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
class _RunState:
    output: _OutputCapture
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


def _signal_group(pgid: int, sig: int) -> None:
    # Gone already (PermissionError is how macOS answers for a group of zombies).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _wait_for_exit(process: anyio.abc.Process, seconds: float | None) -> bool:
    # Polls the return code instead of ``process.wait()``: with some anyio versions, on
    # asyncio, wait() also waits for the pipes to close, which a leftover grandchild
    # would delay until the timeout.
    deadline = None if seconds is None else time.monotonic() + seconds
    delay = 0.002
    while process.returncode is None:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            delay = min(delay, remaining)
        await anyio.sleep(delay)
        delay = min(delay * 2, _POLL_MAX_SECONDS)
    return True


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


def _root_cause_from_output(output: str, returncode: int | None) -> str:
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


def _bytes_under(folders: list[Path]) -> int:
    """Bytes allocated to the files under ``folders`` (links not followed)."""
    total = 0
    stack = [str(folder) for folder in folders]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                stack.append(entry.path)
            else:
                total += info.st_blocks * 512
    return total


def _make_cgroup(max_processes: int) -> Path | None:
    root = pids_cgroup_root()
    if root is None:
        return None
    group = root / f"ftdojo-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        group.mkdir()
        (group / "pids.max").write_text(str(max_processes))
    except OSError as exc:
        _log.warning("cannot create a pids cgroup; the job's processes are not capped", error=str(exc))
        with contextlib.suppress(OSError):
            group.rmdir()
        return None
    return group


def _remove_cgroup(group: Path) -> None:
    # Empty once every process of the job is reaped, which the runner waited for; a
    # straggler still exiting gets a moment.
    for _ in range(250):
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
    _log.warning("pids cgroup still busy; left in place", cgroup=str(group))


class SandboxRunner:
    """Runs :class:`Job` s in child processes under :class:`Limits`.

    Every child runs under the strongest isolation the machine allows
    (:func:`~ftdojo.sandbox.isolation.detect_isolation`): without network, in the
    :class:`~ftdojo.sandbox.isolation.FilesystemView` its job asks for, unable to see
    other processes. Network access is only ever given by ``allow_network=True``, which
    :attr:`isolation` records. ``extra_env`` is added to every child's scrubbed
    environment.
    """

    def __init__(
        self,
        *,
        python: str = sys.executable,
        extra_env: Mapping[str, str] | None = None,
        allow_network: bool = False,
        preload: bool | Sequence[str] | None = None,
    ) -> None:
        if extra_env:
            _check_extra(extra_env)
        self._python = python
        self._extra_env = dict(extra_env or {})
        self._allow_network = allow_network
        if preload is None:
            preload = preload_from_environment()
        #: The modules a fork server imports once (``True``: torch, transformers, peft and
        #: ftdojo's jobs); ``False`` spawns a fresh interpreter for every job.
        self._preload: tuple[str, ...] = (
            tuple(DEFAULT_PRELOAD) if preload is True else tuple(preload) if preload else ()
        )
        self._isolation: Isolation | None = None
        self._warned = False

    @property
    def isolation(self) -> Isolation:
        """What this runner's children get on this machine (probed on first use)."""
        if self._isolation is None:
            self._isolation = detect_isolation(allow_network=self._allow_network)
        return self._isolation

    async def _command(
        self, job: Job, workspace: Path, cgroup: Path | None, server: ForkServer | None, fd: int | None
    ) -> tuple[list[str], bool]:
        """The command line, and whether bubblewrap wraps it (it reports signals as 128+N).

        With a fork ``server``, the last step is the fork client on connection ``fd``
        instead of a fresh worker; everything before it (cgroup, namespaces, view) is the same.
        """
        isolation = await anyio.to_thread.run_sync(lambda: self.isolation)
        if isolation.gaps and not self._warned:
            self._warned = True
            _log.warning(
                "sandbox isolation incomplete", isolation=isolation.describe(), notes=isolation.notes
            )
        view = job.view
        if view is not None and server is not None:
            # The server's socket must not be reachable from a job, which would otherwise
            # ask for a process of its own with other limits.
            view = attrs.evolve(view, hidden=(*view.hidden, str(server.socket_path.parent)))
        prefix = isolation_prefix(isolation, view, workdir=workspace)
        wrapped = isolation.backend == BUBBLEWRAP and bool(prefix)
        start = launcher(cgroup=cgroup, ignore_sigterm=wrapped)
        job_file = str(workspace / JOB_FILE)
        spawned = [self._python, "-m", WORKER_MODULE, job_file]
        if server is not None and fd is not None:
            # -I -S: no site-packages, no environment: the client needs the standard library
            # only. After "--", what it runs instead if the server cannot fork this job.
            client = [self._python, "-I", "-S", CLIENT_SCRIPT, str(fd), job_file, "--", *spawned]
            return [*start, *prefix, *client], wrapped
        return [*start, *prefix, *spawned], wrapped

    async def _fork_server(self, env: dict[str, str], limits: Limits) -> tuple[ForkServer | None, str]:
        """The fork server to start this job from, or ``None`` and why it is spawned instead."""
        if not self._preload:
            return None, ""
        server = await anyio.to_thread.run_sync(
            functools.partial(fork_server, env, python=self._python, modules=self._preload)
        )
        if not server.ready:
            return None, server.why or "the fork server is not ready"
        if limits.memory_bytes is not None and limits.memory_bytes < server.vm_bytes + _FORK_MEMORY_ROOM:
            return None, (
                f"the memory limit ({limits.memory_bytes / 2**20:.0f} MiB) leaves too little room above "
                f"the {server.vm_bytes / 2**20:.0f} MiB a forked job inherits"
            )
        return server, ""

    async def run(
        self,
        job: Job,
        *,
        workspace: Path,
        limits: Limits,
        on_event: Callable[[dict[str, Any]], object] | None = None,
    ) -> JobOutcome:
        """Run ``job`` in a child process with ``workspace`` as its working directory and home.

        ``on_event`` receives every event as it arrives (awaited when it returns an
        awaitable); an exception it raises kills the child and propagates. Cancelling the
        call kills the child's whole process group before the cancellation propagates.
        """
        workspace, env = await anyio.to_thread.run_sync(
            functools.partial(self._prepare, job, workspace=workspace, limits=limits)
        )
        cgroup = await anyio.to_thread.run_sync(_make_cgroup, limits.max_processes)
        try:
            return await self._run(job, workspace, env, limits, on_event, cgroup)
        finally:
            if cgroup is not None:
                await anyio.to_thread.run_sync(_remove_cgroup, cgroup)

    async def _run(
        self,
        job: Job,
        workspace: Path,
        env: dict[str, str],
        limits: Limits,
        on_event: Callable[[dict[str, Any]], object] | None,
        cgroup: Path | None,
    ) -> JobOutcome:
        started = time.monotonic()
        server, launch_note = await self._fork_server(env, limits)
        connection: socket.socket | None = None
        if server is not None:
            try:
                connection = await anyio.to_thread.run_sync(server.connect)
            except OSError as exc:
                server, launch_note = None, f"cannot reach the fork server: {exc}"
        if launch_note:
            _log.debug("sandbox job spawned", why=launch_note)
        fd = connection.fileno() if connection is not None else None
        command, wrapped = await self._command(job, workspace, cgroup, server, fd)

        state = _RunState(output=_OutputCapture(limits.output_bytes), stop_on_violation=job.view is not None)
        try:
            # Shielded: a cancellation landing mid-start would leave a child we have no handle
            # on; this way it lands inside the try below, which kills it.
            with anyio.CancelScope(shield=True):
                process = await anyio.open_process(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    cwd=workspace,
                    env=env,
                    start_new_session=True,
                    pass_fds=(fd,) if fd is not None else (),
                )
        except OSError as exc:
            raise SandboxError(f"cannot start {command[0]!r}: {exc}") from exc
        finally:
            if connection is not None:
                connection.close()  # the client holds it now
        log = _log.bind(entry=job.entry, stage=job.stage.value, pid=process.pid)
        log.debug("sandbox job started", workspace=str(workspace))

        finished = False
        try:
            stdout_done, stderr_done = anyio.Event(), anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._read_events, process, state, on_event, stdout_done)
                tg.start_soon(self._read_output, process, state, stderr_done)
                if limits.disk_bytes is not None:
                    folders = [Path(p) for p in job.view.writable] if job.view is not None else [workspace]
                    tg.start_soon(self._watch_disk, process, state, folders, limits.disk_bytes)
                await self._supervise(process, limits, state, started)
                with anyio.move_on_after(_DRAIN_SECONDS):
                    await stdout_done.wait()
                    await stderr_done.wait()
                if not (stdout_done.is_set() and stderr_done.is_set()):
                    state.warnings.append(
                        "a process outside the job's process group kept its output open; stopped reading"
                    )
                tg.cancel_scope.cancel()
            finished = True
        finally:
            with anyio.CancelScope(shield=True):
                if not finished:
                    # Cancelled (or failed) while the job may still run: take it all down.
                    state.killed_by_us = True
                    _signal_group(process.pid, signal.SIGKILL)
                    await _wait_for_exit(process, _REAP_SECONDS)
                    log.info("sandbox job killed", reason="run was cancelled or failed")
                with anyio.move_on_after(_DRAIN_SECONDS):
                    await process.aclose()

        if state.callback_error is not None:
            raise state.callback_error
        returncode = process.returncode
        if wrapped and returncode is not None and 128 < returncode <= 128 + 64:
            # bubblewrap exits 128+N when the job it runs was killed by signal N.
            returncode = -(returncode - 128)
        outcome = self._outcome(returncode, state, limits, time.monotonic() - started, workspace)
        if server is not None and state.spawned_instead is not None:
            server, launch_note = None, state.spawned_instead
        outcome = attrs.evolve(
            outcome, launch="fork" if server is not None else "spawn", launch_note=launch_note
        )
        log.info(
            "sandbox job finished",
            ok=outcome.ok,
            error_kind=outcome.error_kind.value if outcome.error_kind else None,
            exit_code=outcome.exit_code,
            signal=outcome.signal,
            duration_s=round(outcome.duration_s, 3),
        )
        return outcome

    def _prepare(self, job: Job, *, workspace: Path, limits: Limits) -> tuple[Path, dict[str, str]]:
        workspace = Path(workspace).absolute()
        workspace.mkdir(parents=True, exist_ok=True)
        try:
            text = json.dumps(
                {
                    "entry": job.entry,
                    "payload": job.payload,
                    "stage": job.stage.value,
                    "limits": attrs.asdict(limits),
                    "view": attrs.asdict(job.view) if job.view is not None else None,
                },
                allow_nan=True,
                indent=1,
            )
        except (TypeError, ValueError) as exc:
            raise SandboxError(f"the payload of job {job.entry!r} is not JSON-serializable: {exc}") from exc
        (workspace / JOB_FILE).write_text(text, encoding="utf-8")
        return workspace, scrubbed_environment(workspace=workspace, limits=limits, extra=self._extra_env)

    async def _supervise(
        self, process: anyio.abc.Process, limits: Limits, state: _RunState, started: float
    ) -> None:
        remaining = limits.wall_seconds - (time.monotonic() - started)
        if not await _wait_for_exit(process, remaining):
            state.timed_out = True
            _log.warning("sandbox job timed out", pid=process.pid, wall_seconds=limits.wall_seconds)
            _signal_group(process.pid, signal.SIGTERM)
            if not await _wait_for_exit(process, limits.grace_seconds):
                state.killed_by_us = True
        # Also after a clean exit: whatever the job left running in its group goes now.
        _signal_group(process.pid, signal.SIGKILL)
        if not await _wait_for_exit(process, _REAP_SECONDS):
            state.warnings.append(f"the child (pid {process.pid}) did not exit after SIGKILL")

    async def _watch_disk(
        self, process: anyio.abc.Process, state: _RunState, folders: list[Path], quota: int
    ) -> None:
        while process.returncode is None:
            await anyio.sleep(_DISK_POLL_SECONDS)
            used = await anyio.to_thread.run_sync(_bytes_under, folders)
            if used > quota and process.returncode is None:
                state.over_quota = used
                state.killed_by_us = True
                _signal_group(process.pid, signal.SIGKILL)
                return

    async def _read_output(self, process: anyio.abc.Process, state: _RunState, done: anyio.Event) -> None:
        assert process.stderr is not None
        try:
            async for chunk in process.stderr:
                state.output.feed(chunk)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            done.set()

    async def _read_events(
        self,
        process: anyio.abc.Process,
        state: _RunState,
        on_event: Callable[[dict[str, Any]], object] | None,
        done: anyio.Event,
    ) -> None:
        assert process.stdout is not None
        pending = bytearray()
        skipping = False  # inside a line that was too long, until its newline
        try:
            async for chunk in process.stdout:
                pending += chunk
                if b"\n" in chunk:
                    *lines, rest = bytes(pending).split(b"\n")
                    pending = bytearray(rest)
                    for line in lines:
                        if skipping:
                            skipping = False
                            continue
                        if not await self._handle_line(line, process, state, on_event):
                            return
                if len(pending) > MAX_EVENT_BYTES:
                    if not skipping:
                        state.oversized_lines += 1
                    skipping = True
                    pending.clear()
            if pending and not skipping:
                await self._handle_line(bytes(pending), process, state, on_event)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            done.set()

    async def _handle_line(
        self,
        line: bytes,
        process: anyio.abc.Process,
        state: _RunState,
        on_event: Callable[[dict[str, Any]], object] | None,
    ) -> bool:
        """Record one line of the channel; ``False`` when on_event failed and reading must stop."""
        if len(line) > MAX_EVENT_BYTES:
            state.oversized_lines += 1
            return True
        if not line.strip():
            return True
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            state.bad_lines += 1
            return True
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            state.bad_lines += 1
            return True
        if event["type"] in ("result", "error"):
            state.terminal = event
            state.events.append(event)
        elif event["type"] == "launch" and event.get("launch") == "spawn" and not state.events:
            # Only as the channel's first line: that is where the fork client writes it.
            state.spawned_instead = (
                str(event.get("note", ""))[:500] or "the fork server could not fork the job"
            )
        elif event["type"] == "violation":
            if state.stop_on_violation and not state.stopped_for_violation:
                # No reason to let a job that tried to cross the sandbox go on.
                state.stopped_for_violation = state.killed_by_us = True
                _signal_group(process.pid, signal.SIGKILL)
            if len(state.violations) < MAX_VIOLATIONS:
                state.violations.append(
                    {
                        "kind": str(event.get("kind", "unknown"))[:64],
                        "detail": str(event.get("detail", ""))[:500],
                    }
                )
        elif len(state.events) < MAX_EVENTS:
            state.events.append(event)
        else:
            state.events_dropped += 1
        if event["type"] == "warning" and isinstance(event.get("message"), str):
            state.warnings.append(f"worker: {event['message']}")
        if on_event is None:
            return True
        try:
            returned = on_event(event)
            if inspect.isawaitable(returned):
                await returned
        except Exception as exc:
            state.callback_error = exc
            state.killed_by_us = True
            _signal_group(process.pid, signal.SIGKILL)
            return False
        return True

    def _outcome(
        self,
        returncode: int | None,
        state: _RunState,
        limits: Limits,
        duration: float,
        workspace: Path,
    ) -> JobOutcome:
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
        result = self._result(terminal, workspace, warnings) if terminal.get("type") == "result" else None

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
            kind = ErrorKind.OOM if _OOM_OUTPUT.search(output) else ErrorKind.ENV
            if returncode == 0:
                root_cause = _cap("exited without reporting a result\n" + _tail_lines(output, 1000))
            else:
                root_cause = _root_cause_from_output(output, returncode)
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

    def _result(
        self, terminal: dict[str, Any], workspace: Path, warnings: list[str]
    ) -> dict[str, Any] | None:
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
