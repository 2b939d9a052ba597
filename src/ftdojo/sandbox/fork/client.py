"""The job's stand-in inside its sandbox when a fork server runs the job.

Started by path (``python -I -S .../fork/client.py FD JOB_JSON``) at the end of the usual launch
chain, so it is already in the job's cgroup, namespaces and filesystem view. It uses the
standard library only, and imports nothing of ftdojo: it starts in milliseconds.

It sends one request on ``FD`` (the connection the runner made to the fork server): the
job file, its working directory, its environment, its stdin/stdout/stderr and, through
the kernel, its pid. Then it forwards SIGTERM and SIGINT to the job and ends as the job
ended: the same exit status, or killed by the same signal (bubblewrap then reports
128+N, as for a spawned worker).

Where the server refuses the job or goes away before it forked one (a kernel that will
not let it join the sandbox's namespaces, say), the client replaces itself with the
command after ``--``, a spawned worker in the same sandbox, and first tells the runner
so on the event channel (a ``launch`` event): the job runs either way, and its feedback
says how.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import json
import os
import signal
import socket
import struct
import sys
from typing import NoReturn

_PR_SET_DUMPABLE = 4
#: Exit status when the fork server refused the job or went away (the launcher's 125).
LOST = 125


def _spawn_instead(fallback: list[str], saved: tuple[int, int], why: str) -> NoReturn:
    """Run ``fallback`` (a spawned worker) in this process, on the job's own stdin/stdout."""
    os.dup2(saved[0], 0)
    os.dup2(saved[1], 1)
    os.write(1, json.dumps({"type": "launch", "launch": "spawn", "note": why[:500]}).encode() + b"\n")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execv(fallback[0], fallback)


def main(argv: list[str]) -> int:
    fallback: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, fallback = argv[:at], argv[at + 1 :]
    if len(argv) != 2 or not argv[0].isdigit():
        print("usage: client.py FD JOB_JSON [-- FALLBACK_COMMAND ...]", file=sys.stderr)
        return 2
    fd, job = int(argv[0]), argv[1]
    # Not dumpable: the job, in the same pid namespace, cannot ptrace this process to
    # reach the connection.
    ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    conn = socket.socket(fileno=fd)
    request = json.dumps({"job": job, "cwd": os.getcwd(), "env": dict(os.environ)}).encode() + b"\n"
    credentials = struct.pack("3i", os.getpid(), os.getuid(), os.getgid())
    try:
        conn.sendmsg(
            [request],
            [
                (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]).tobytes()),
                (socket.SOL_SOCKET, socket.SCM_CREDENTIALS, credentials),
            ],
        )
    except OSError as exc:
        if fallback:
            _spawn_instead(fallback, (0, 1), f"cannot reach the fork server: {exc}")
        print(f"ftdojo: cannot reach the fork server: {exc}", file=sys.stderr)
        return LOST
    # The job writes events on what was our stdout; holding it would not matter, but the
    # runner's reader should see it close when the job ends.
    # Kept until the job exists: without a job, the fallback worker needs them.
    saved = (os.dup(0), os.dup(1))
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)

    job_pid: list[int] = []

    def forward(sig: int, _frame: object) -> None:
        if job_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(job_pid[0], sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    buffer = b""
    while True:
        try:
            chunk = conn.recv(4096)
        except InterruptedError:  # pragma: no cover - retried by Python itself (PEP 475)
            continue
        if not chunk:
            if not job_pid and fallback:
                return _spawn_instead(fallback, saved, "the fork server went away before it forked the job")
            print("ftdojo: the fork server went away before the job ended", file=sys.stderr)
            return LOST
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            message = json.loads(line)
            if "pid" in message:
                job_pid.append(int(message["pid"]))
                for kept in saved:
                    os.close(kept)
                saved = (-1, -1)
            elif "error" in message:
                if not job_pid and fallback:
                    return _spawn_instead(
                        fallback, saved, f"the fork server refused the job: {message['error']}"
                    )
                print(f"ftdojo: the fork server refused the job: {message['error']}", file=sys.stderr)
                return LOST
            elif "signal" in message:
                sig = int(message["signal"])
                if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those cannot be handled anyway
                    signal.signal(sig, signal.SIG_DFL)
                os.kill(os.getpid(), sig)
                return 128 + sig  # not reached for a deadly signal
            elif "code" in message:
                return int(message["code"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
