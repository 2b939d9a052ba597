"""Starting a sandboxed process and taking it down again: the one way, for every caller.

Both the job runner (:class:`~ftdojo.sandbox.runner.SandboxRunner`) and the untrusted
agent's host (:class:`~ftdojo.sandbox.untrusted.UntrustedAgent`) start their child

- with the same command: the launcher (enter the pids cgroup, shield bubblewrap from
  SIGTERM), then the isolation prefix (:func:`~ftdojo.sandbox.isolation.isolation_prefix`),
  then the program (:func:`sandboxed_command`);
- in a new session, so that it leads its own process group and everything it forks can
  be signalled at once; the start is shielded from cancellation (:func:`open_process_group`);
- and end it the same way: SIGTERM to the group, a grace period, SIGKILL to the group,
  then reap (:func:`terminate_group`, :func:`kill_group`, :func:`close_process`).

A process that leaves the group on purpose (``setsid``) escapes the signals; the pid
namespace of a bubblewrapped job, which dies with the job, is what catches it there.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
import anyio.abc
import attrs

from ftdojo.sandbox.isolation import BUBBLEWRAP, FilesystemView, Isolation, isolation_prefix

__all__ = [
    "DRAIN_SECONDS",
    "REAP_SECONDS",
    "SandboxedCommand",
    "close_process",
    "kill_group",
    "launcher",
    "open_process_group",
    "process_group",
    "python_module",
    "sandboxed_command",
    "signal_group",
    "terminate_group",
    "wait_for_exit",
]

#: How long a process may take to be reaped after SIGKILL.
REAP_SECONDS = 30.0
#: How long its pipes may take to reach end-of-file once it is gone; only a process that
#: escaped the group can hold them open that long.
DRAIN_SECONDS = 2.0
_POLL_MAX_SECONDS = 0.05


# -- the command ---------------------------------------------------------------------------


def launcher(*, cgroup: Path | None, ignore_sigterm: bool) -> list[str]:
    """A ``sh`` prefix that enters ``cgroup`` (before anything can fork) and/or starts the
    rest with SIGTERM ignored.

    bubblewrap dies of SIGTERM and takes the namespace down with it, which would rob the
    job of its grace period. Started with SIGTERM ignored (kept across exec), it lives on
    while the job, which resets the signal, gets it from the process group.
    """
    steps = []
    if cgroup is not None:
        steps.append(f"echo $$ > {shlex.quote(str(cgroup / 'cgroup.procs'))} || exit 125")
    if ignore_sigterm:
        steps.append('trap "" TERM')
    if not steps:
        return []
    return ["/bin/sh", "-c", "; ".join([*steps, 'exec "$0" "$@"'])]


def python_module(python: str, module: str, *args: str) -> list[str]:
    """``python -m module args...``."""
    return [python, "-m", module, *args]


@attrs.frozen(kw_only=True)
class SandboxedCommand:
    """A command line that runs a program in the sandbox, and how to read its exit status."""

    argv: tuple[str, ...]
    #: bubblewrap runs the program: it exits 128+N when the program was killed by signal N.
    bubblewrapped: bool

    def returncode(self, raw: int | None) -> int | None:
        """The program's own return code (negative: killed by that signal) from the
        command's ``raw`` one."""
        if self.bubblewrapped and raw is not None and 128 < raw <= 128 + 64:
            return -(raw - 128)
        return raw


def sandboxed_command(
    isolation: Isolation,
    view: FilesystemView | None,
    *,
    workdir: Path,
    cgroup: Path | None,
    program: Sequence[str],
) -> SandboxedCommand:
    """Launcher + isolation prefix + ``program`` (e.g. :func:`python_module`)."""
    prefix = isolation_prefix(isolation, view, workdir=workdir)
    wrapped = isolation.backend == BUBBLEWRAP and bool(prefix)
    start = launcher(cgroup=cgroup, ignore_sigterm=wrapped)
    return SandboxedCommand(argv=(*start, *prefix, *program), bubblewrapped=wrapped)


# -- the process ---------------------------------------------------------------------------


async def open_process_group(
    command: Sequence[str],
    *,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE,
    stderr: int | None = subprocess.PIPE,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> anyio.abc.Process:
    """Start ``command`` as the leader of a new session (and so of its own process group).

    Shielded: a cancellation landing mid-start would leave a child the caller has no
    handle on; this way the start completes and the cancellation lands in the caller's
    next await, inside the ``try`` that takes the group down.
    """
    with anyio.CancelScope(shield=True):
        process = await anyio.open_process(
            list(command),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            env=env,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    return process


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pgid``; a group that is gone already is no error."""
    # PermissionError is how macOS answers for a group of zombies.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def wait_for_exit(process: anyio.abc.Process, seconds: float | None) -> bool:
    """Whether ``process`` exited (and was reaped) within ``seconds`` (``None``: no limit)."""
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


async def terminate_group(process: anyio.abc.Process, grace_seconds: float) -> bool:
    """SIGTERM to the group of ``process``; whether it exited within ``grace_seconds``."""
    signal_group(process.pid, signal.SIGTERM)
    return await wait_for_exit(process, grace_seconds)


async def kill_group(process: anyio.abc.Process, reap_seconds: float = REAP_SECONDS) -> bool:
    """SIGKILL to the group of ``process`` (also after the leader exited: whatever it left
    running goes too); whether the leader was reaped within ``reap_seconds``."""
    signal_group(process.pid, signal.SIGKILL)
    return await wait_for_exit(process, reap_seconds)


async def close_process(process: anyio.abc.Process) -> None:
    """Close the pipes of a process that is gone, giving them :data:`DRAIN_SECONDS`."""
    with anyio.move_on_after(DRAIN_SECONDS):
        await process.aclose()


@contextlib.asynccontextmanager
async def process_group(
    command: Sequence[str],
    *,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE,
    stderr: int | None = subprocess.PIPE,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[anyio.abc.Process]:
    """:func:`open_process_group`, and however the block ends (cancellation included), the
    group killed, the leader reaped and the pipes closed, shielded from cancellation."""
    process = await open_process_group(command, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd, env=env)
    try:
        yield process
    finally:
        with anyio.CancelScope(shield=True):
            await kill_group(process)
            await close_process(process)
