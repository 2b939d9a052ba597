"""The fork server: a process that has imported torch, transformers and peft once and
forks a fresh process for every job (the preloaded workers).

A plain spawn spends 6-10 s importing before a job does any work. The fork server pays
that once; each job is still a new process with its own limits, namespaces, cgroup and
workspace, so every guarantee of :mod:`ftdojo.sandbox.isolation` holds:

1. The runner connects to the server's socket (in a folder no job can see) and hands the
   connected socket to the job's usual launch chain: ``sh`` (cgroup, SIGTERM)
   → bubblewrap (namespaces, filesystem view, no capabilities) → the *client*
   (:mod:`ftdojo.sandbox.fork.client`, standard library only, started in milliseconds).
2. The client sends one request: the job file, its working directory and environment,
   its stdin/stdout/stderr (``SCM_RIGHTS``) and its pid (``SCM_CREDENTIALS``: the kernel
   checks it and translates it into the server's pid namespace, so a job cannot claim to
   be another process).
3. The server forks a *keeper*, which joins the client's cgroup and namespaces
   (``setns``, user namespace first), takes the client's root as its own (``chroot``), and
   forks the job process: in the job's pid namespace, with the client's file
   descriptors and environment, every capability dropped and ``no_new_privs`` set. The
   job process runs :func:`ftdojo.sandbox.worker.main` exactly as a spawned worker would.
4. The keeper reports the job's pid (for the client to forward SIGTERM) and its exit
   status; the client exits the same way, so the runner sees what it sees for a spawned
   worker. If the client dies (the runner killed the launch chain), the keeper kills the
   job.

One request per connection: a job that got hold of the client could not ask for a
second process with other limits. The server never starts a thread, touches CUDA or
runs a torch operation: forking is only safe while it holds no threads, which it checks
(``/proc/self/task``) before it says it is ready and before every fork.

Run as ``python -m ftdojo.sandbox.fork.server SOCKET_PATH [MODULE ...]``; it prints one
JSON line on stdout (``{"ready": true, ...}`` or ``{"ready": false, "why": ...}``) and
serves until its stdin closes.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_PRELOAD", "main", "threads_of_this_process"]

#: Imported by the server before it forks: what every training and evaluation job needs.
DEFAULT_PRELOAD = (
    "torch",
    "transformers",
    "transformers.trainer",
    "peft",
    "datasets",
    "accelerate",
    "ftdojo.sandbox.worker",
    "ftdojo.sandbox.guard",
    "ftdojo.sandbox.protocol",
    "ftdojo.jobs.build",
    "ftdojo.jobs.train",
    "ftdojo.jobs.evaluate",
)

# The order matters: the user namespace first (it grants the capabilities the others
# need when the sandbox runs as an ordinary user), the mount namespace last (after it,
# /proc is the job's).
_NAMESPACES = (
    ("user", 0x10000000),
    ("cgroup", 0x02000000),
    ("ipc", 0x08000000),
    ("uts", 0x04000000),
    ("net", 0x40000000),
    ("pid", 0x20000000),
    ("mnt", 0x00020000),
)
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_MAX_REQUEST = 1024 * 1024
_REAP_SECONDS = 0.5


def threads_of_this_process() -> int:
    """Kernel threads of this process (Python's own count misses native thread pools)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _join_cgroups(pid: int) -> None:
    """Enter the cgroups ``pid`` is in where they differ from ours (the job's pids cap)."""
    mine = _cgroup_paths(os.getpid())
    for hierarchy, path in _cgroup_paths(pid).items():
        if mine.get(hierarchy) == path:
            continue
        root = Path("/sys/fs/cgroup") if hierarchy == "" else Path("/sys/fs/cgroup") / hierarchy
        (root / path.lstrip("/") / "cgroup.procs").write_text(str(os.getpid()))


def _cgroup_paths(pid: int) -> dict[str, str]:
    paths: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _id, controllers, path = line.split(":", 2)
        # Only the pids controller (v1) and the unified hierarchy (v2) cap a job; other v1
        # controllers are left as they are.
        if controllers == "" or "pids" in controllers.split(","):
            paths["pids" if controllers else ""] = path
    return paths


def _enter(pid: int, cwd: str) -> None:
    """Join ``pid``'s cgroup and namespaces and take its root: the keeper's half of a job."""
    libc = _libc()
    root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY)
    joins: list[tuple[str, int, int]] = []
    for name, flag in _NAMESPACES:
        theirs = f"/proc/{pid}/ns/{name}"
        try:
            if os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                continue
        except FileNotFoundError:  # a kernel without this kind of namespace
            continue
        joins.append((name, os.open(theirs, os.O_RDONLY), flag))
    _join_cgroups(pid)
    for name, fd, flag in joins:
        _check(libc.setns(fd, flag), f"setns({name})")
        os.close(fd)
    os.fchdir(root)
    os.chroot(".")
    os.close(root)
    os.chdir(cwd)


def _drop_privileges() -> None:
    """No capabilities, now or after an exec, as bubblewrap's ``--cap-drop ALL`` gives."""
    libc = _libc()
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for capability in range(64):
        # EINVAL past the last capability this kernel knows; EPERM when it is already gone.
        libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0)
    header = struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0)
    data = bytes(24)  # two of {effective, permitted, inheritable}, all zero
    _check(libc.capset(ctypes.c_char_p(header), ctypes.c_char_p(data)), "capset")
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def _reseed() -> None:
    # A forked process inherits the server's random states; a spawned one starts fresh.
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        with contextlib.suppress(Exception):
            numpy.random.seed()
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            torch.seed()


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(message).encode() + b"\n")


def _run_job(conn: socket.socket, request: dict[str, Any], fds: Sequence[int]) -> int:
    """The job process: take the client's descriptors and environment, then be a worker."""
    for target, fd in zip((0, 1, 2), fds, strict=False):
        os.dup2(fd, target)
    # Nothing of the server's reaches the job: not its listening socket, not its pipes.
    os.closerange(3, conn.fileno())
    os.closerange(conn.fileno() + 1, 1 << 16)
    _drop_privileges()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(request.get("env") or {}).items()})
    _reseed()
    _send(conn, {"pid": os.getpid()})
    conn.close()
    # sys.stdin/stdout/stderr wrap fds 0-2, which now are the job's.
    sys.argv = ["ftdojo-worker", str(request["job"])]
    from ftdojo.sandbox.worker import main as worker_main

    return worker_main([str(request["job"])])


def _keep(conn: socket.socket, request: dict[str, Any], fds: Sequence[int], peer: int) -> None:
    """The keeper: enter the client's sandbox, fork the job, report how it ended."""
    try:
        _enter(peer, str(request["cwd"]))
    except (OSError, KeyError, ValueError) as exc:
        _send(conn, {"error": f"cannot enter the job's sandbox: {exc}"})
        os._exit(0)
    job = os.fork()
    if job == 0:
        code = 1
        try:
            code = _run_job(conn, request, fds)
        except BaseException:
            with contextlib.suppress(BaseException):
                traceback.print_exc()
        finally:
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    for fd in fds:
        os.close(fd)
    # A pidfd is readable when the job ends: no polling delay on the way out.
    try:
        ended = [os.pidfd_open(job)]
    except (AttributeError, OSError):
        ended = []
    while True:
        done, status = os.waitpid(job, os.WNOHANG)
        if done:
            if os.WIFSIGNALED(status):
                _send(conn, {"signal": os.WTERMSIG(status)})
            else:
                _send(conn, {"code": os.waitstatus_to_exitcode(status)})
            os._exit(0)
        readable, _, _ = select.select([conn.fileno(), *ended], [], [], _REAP_SECONDS)
        if conn.fileno() in readable and not conn.recv(1):
            # The client is gone: the runner stopped the job's launch chain.
            with contextlib.suppress(OSError):
                os.kill(job, signal.SIGKILL)
            os.waitpid(job, 0)
            os._exit(0)


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int], int]:
    """One request: (the JSON, the client's three descriptors, its pid in our namespace)."""
    fd_space = socket.CMSG_SPACE(3 * array.array("i").itemsize)
    cred_space = socket.CMSG_SPACE(struct.calcsize("3i"))
    data, ancillary, _flags, _address = conn.recvmsg(65536, fd_space + cred_space)
    fds: list[int] = []
    peer = -1
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            received = array.array("i")
            received.frombytes(payload[: len(payload) - len(payload) % received.itemsize])
            fds.extend(received)
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            peer = struct.unpack("3i", payload[: struct.calcsize("3i")])[0]
    while not data.endswith(b"\n") and len(data) < _MAX_REQUEST:
        more = conn.recv(65536)
        if not more:
            break
        data += more
    request = json.loads(data)
    if len(fds) != 3 or peer <= 0 or not isinstance(request, dict):
        for fd in fds:
            os.close(fd)
        raise ValueError("a request needs three descriptors, the sender's credentials and a JSON object")
    return request, fds, peer


def _serve_one(conn: socket.socket) -> int | None:
    """Read the request on ``conn`` and fork its keeper; the keeper's pid, or ``None``."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    conn.settimeout(10.0)
    try:
        request, fds, peer = _receive(conn)
    except (OSError, ValueError) as exc:
        _send(conn, {"error": f"bad request: {exc}"})
        return None
    conn.settimeout(None)
    if threads_of_this_process() > 1:
        _send(conn, {"error": "the fork server holds threads: forking is unsafe"})
        for fd in fds:
            os.close(fd)
        return None
    keeper = os.fork()
    if keeper == 0:
        try:
            _keep(conn, request, fds, peer)
        finally:
            os._exit(0)
    for fd in fds:
        os.close(fd)
    return keeper


def _preload(modules: Iterable[str]) -> list[str]:
    missing = []
    for name in modules:
        try:
            __import__(name)
        except ImportError as exc:
            missing.append(f"{name}: {exc}")
    return missing


def _vm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _unsafe_reason() -> str | None:
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return f"fork servers need Linux (this is {sys.platform})"
    torch = sys.modules.get("torch")
    if torch is not None and getattr(torch.cuda, "is_initialized", lambda: False)():
        return "CUDA was initialized while preloading"
    threads = threads_of_this_process()
    if threads > 1:
        return f"preloading started {threads - 1} threads: forking would copy them half-done"
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m ftdojo.sandbox.fork.server SOCKET_PATH [MODULE ...]", file=sys.stderr)
        return 2
    # ``python -m`` put the working directory first on sys.path; every job would inherit it.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    started = time.monotonic()
    missing = _preload(args[1:] or DEFAULT_PRELOAD)
    why = _unsafe_reason()
    status = {
        "ready": why is None,
        "why": why,
        "preload_seconds": round(time.monotonic() - started, 3),
        # A job's RLIMIT_AS counts what it inherits: below this, it must be spawned.
        "vm_bytes": _vm_bytes(),
        "missing": missing,
        "pid": os.getpid(),
    }
    if why is not None:
        print(json.dumps(status), flush=True)
        return 0
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(args[0])
    os.chmod(args[0], 0o600)
    listener.listen(64)
    print(json.dumps(status), flush=True)
    keepers: set[int] = set()
    try:
        while True:
            readable, _, _ = select.select([listener, sys.stdin], [], [], _REAP_SECONDS)
            if sys.stdin in readable and not os.read(sys.stdin.fileno(), 4096):
                return 0  # the runner is gone: so is the server
            if listener in readable:
                conn, _address = listener.accept()
                with conn:
                    keeper = _serve_one(conn)
                if keeper is not None:
                    keepers.add(keeper)
            for keeper in list(keepers):
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(keeper, os.WNOHANG)[0]:
                        keepers.discard(keeper)
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(args[0])


if __name__ == "__main__":
    sys.exit(main())
