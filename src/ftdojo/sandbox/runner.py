"""The job runner that ships: each :class:`~ftdojo.sandbox.Job` in a child process of
this machine, under the strongest isolation the machine allows.

The child is started in a new session (:mod:`ftdojo.sandbox.process`), so it leads its
own process group and every process it forks can be signalled at once. Whatever happens
— a result, a crash, a timeout, the caller's cancellation — the group is sent SIGKILL
before :meth:`SandboxRunner.run` returns, so no job leaves processes behind. (A process
that leaves the group on purpose, with ``setsid``, escapes this; pid namespaces would be
needed to catch it.)
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import attrs
import structlog

from ftdojo.errors import SandboxError
from ftdojo.sandbox.backend import EventCallback
from ftdojo.sandbox.cgroups import make_cgroup, remove_cgroup
from ftdojo.sandbox.environment import check_extra_environment, scrubbed_environment
from ftdojo.sandbox.fork.handle import CLIENT_SCRIPT, ForkServer, fork_server, preload_from_environment
from ftdojo.sandbox.fork.server import DEFAULT_PRELOAD
from ftdojo.sandbox.isolation import Isolation, detect_isolation
from ftdojo.sandbox.jobs import Job, JobOutcome, Limits
from ftdojo.sandbox.outcome import MAX_EVENTS, OutputCapture, RunState, job_outcome
from ftdojo.sandbox.process import (
    DRAIN_SECONDS,
    SandboxedCommand,
    close_process,
    kill_group,
    open_process_group,
    python_module,
    sandboxed_command,
    signal_group,
    terminate_group,
    wait_for_exit,
)
from ftdojo.sandbox.protocol import JOB_FILE, MAX_EVENT_BYTES, MAX_VIOLATIONS, WORKER_MODULE

__all__ = ["SandboxRunner"]

_log = structlog.get_logger(__name__)

_DISK_POLL_SECONDS = 1.0
# Address space a forked job needs beyond what it inherits from the fork server before a
# memory limit is worth forking under (below it, the job is spawned instead).
_FORK_MEMORY_ROOM = 512 * 2**20


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
            check_extra_environment(extra_env)
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
    ) -> SandboxedCommand:
        """The command line of a fresh worker in the job's sandbox.

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
        job_file = str(workspace / JOB_FILE)
        program = spawned = python_module(self._python, WORKER_MODULE, job_file)
        if server is not None and fd is not None:
            # -I -S: no site-packages, no environment: the client needs the standard library
            # only. After "--", what it runs instead if the server cannot fork this job.
            program = [self._python, "-I", "-S", CLIENT_SCRIPT, str(fd), job_file, "--", *spawned]
        return sandboxed_command(isolation, view, workdir=workspace, cgroup=cgroup, program=program)

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
        on_event: EventCallback | None = None,
    ) -> JobOutcome:
        """Run ``job`` in a child process with ``workspace`` as its working directory and home.

        ``on_event`` receives every event as it arrives (awaited when it returns an
        awaitable); an exception it raises kills the child and propagates. Cancelling the
        call kills the child's whole process group before the cancellation propagates.
        """
        workspace, env = await anyio.to_thread.run_sync(
            functools.partial(self._prepare, job, workspace=workspace, limits=limits)
        )
        cgroup = await anyio.to_thread.run_sync(make_cgroup, limits.max_processes)
        try:
            return await self._run(job, workspace, env, limits, on_event, cgroup)
        finally:
            if cgroup is not None:
                await anyio.to_thread.run_sync(remove_cgroup, cgroup)

    async def _run(
        self,
        job: Job,
        workspace: Path,
        env: dict[str, str],
        limits: Limits,
        on_event: EventCallback | None,
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
        command = await self._command(job, workspace, cgroup, server, fd)

        state = RunState(output=OutputCapture(limits.output_bytes), stop_on_violation=job.view is not None)
        try:
            # The start is shielded from cancellation, which lands inside the try below
            # (that kills the group) instead of leaving a child we have no handle on.
            process = await open_process_group(
                command.argv, cwd=workspace, env=env, pass_fds=(fd,) if fd is not None else ()
            )
        except OSError as exc:
            raise SandboxError(f"cannot start {command.argv[0]!r}: {exc}") from exc
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
                with anyio.move_on_after(DRAIN_SECONDS):
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
                    await kill_group(process)
                    log.info("sandbox job killed", reason="run was cancelled or failed")
                await close_process(process)

        if state.callback_error is not None:
            raise state.callback_error
        outcome = job_outcome(
            returncode=command.returncode(process.returncode),
            state=state,
            limits=limits,
            duration=time.monotonic() - started,
            workspace=workspace,
        )
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
        self, process: anyio.abc.Process, limits: Limits, state: RunState, started: float
    ) -> None:
        remaining = limits.wall_seconds - (time.monotonic() - started)
        if not await wait_for_exit(process, remaining):
            state.timed_out = True
            _log.warning("sandbox job timed out", pid=process.pid, wall_seconds=limits.wall_seconds)
            if not await terminate_group(process, limits.grace_seconds):
                state.killed_by_us = True
        # Also after a clean exit: whatever the job left running in its group goes now.
        if not await kill_group(process):
            state.warnings.append(f"the child (pid {process.pid}) did not exit after SIGKILL")

    async def _watch_disk(
        self, process: anyio.abc.Process, state: RunState, folders: list[Path], quota: int
    ) -> None:
        while process.returncode is None:
            await anyio.sleep(_DISK_POLL_SECONDS)
            used = await anyio.to_thread.run_sync(_bytes_under, folders)
            if used > quota and process.returncode is None:
                state.over_quota = used
                state.killed_by_us = True
                signal_group(process.pid, signal.SIGKILL)
                return

    async def _read_output(self, process: anyio.abc.Process, state: RunState, done: anyio.Event) -> None:
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
        state: RunState,
        on_event: EventCallback | None,
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
        state: RunState,
        on_event: EventCallback | None,
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
                signal_group(process.pid, signal.SIGKILL)
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
            signal_group(process.pid, signal.SIGKILL)
            return False
        return True
