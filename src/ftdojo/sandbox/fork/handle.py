"""The runner's handle on a fork server (:mod:`ftdojo.sandbox.fork.server`).

One server per interpreter, modules and Python, shared by every :class:`SandboxRunner`
of the process and started on first use: its imports are paid once per process, not
once per runner. It is a plain :class:`subprocess.Popen` (no event loop owns it, so runs
in different event loops share it) and it ends when this process does: it serves until
its stdin, a pipe held only here, closes.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
import structlog

from ftdojo.sandbox.fork.server import DEFAULT_PRELOAD

__all__ = [
    "CLIENT_SCRIPT",
    "ForkServer",
    "fork_server",
    "preload_from_environment",
    "shutdown_fork_servers",
]

_log = structlog.get_logger(__name__)

#: How long the server may take to import what it preloads (torch, transformers, peft
#: take about 9 s on 2 cores; a loaded machine takes longer).
READY_SECONDS = 180.0
CLIENT_SCRIPT = str(Path(__file__).with_name("client.py"))


@attrs.define(eq=False)
class ForkServer:
    """A running fork server, or why there is none (``ready`` false, ``why`` set)."""

    python: str
    modules: tuple[str, ...]
    ready: bool = False
    why: str | None = None
    preload_seconds: float | None = None
    #: The server's virtual memory: a job inherits it, so its RLIMIT_AS must leave room.
    vm_bytes: int = 0
    _process: subprocess.Popen[bytes] | None = None
    _folder: Path | None = None

    @property
    def socket_path(self) -> Path:
        assert self._folder is not None
        return self._folder / "server.sock"

    def alive(self) -> bool:
        return self.ready and self._process is not None and self._process.poll() is None

    def connect(self) -> socket.socket:
        """A fresh connection for one job (the job's client inherits it)."""
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(str(self.socket_path))
        except OSError:
            conn.close()
            raise
        return conn

    def start(self, env: dict[str, str]) -> None:
        # Hidden from every job: the folder is only readable by this user, and it lives in
        # a fresh temporary folder whose name no job is told.
        self._folder = Path(tempfile.mkdtemp(prefix="ftdojo-forkserver-"))
        os.chmod(self._folder, 0o700)
        server_env = {**env, "HOME": str(self._folder), "TMPDIR": str(self._folder)}
        server_env["HF_HOME"] = str(self._folder / "hf")
        # numpy's OpenBLAS starts a thread pool when it is loaded, and a process with
        # threads must not fork; jobs do their heavy math in torch, not in numpy.
        server_env["OPENBLAS_NUM_THREADS"] = "1"
        # pyarrow (under datasets) loads a jemalloc that starts a purging thread otherwise.
        server_env["JE_ARROW_MALLOC_CONF"] = "background_thread:false"
        # An import that asks torch.cuda.is_available() would initialize the CUDA driver in
        # the server, and a forked job could not use the GPU; torch's NVML check does not.
        server_env["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            server_env.pop(variable, None)  # each job sets its own
        command = [self.python, "-m", "ftdojo.sandbox.fork.server", str(self.socket_path), *self.modules]
        started = time.monotonic()
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=server_env,
                cwd=self._folder,
                start_new_session=True,
            )
        except OSError as exc:
            self.why = f"cannot start the fork server: {exc}"
            return
        line = _read_line(self._process, READY_SECONDS)
        try:
            status = json.loads(line) if line else {}
        except ValueError:
            status = {}
        self.ready = bool(status.get("ready"))
        self.why = status.get("why") or (None if self.ready else f"the fork server did not start: {line!r}")
        self.preload_seconds = status.get("preload_seconds", time.monotonic() - started)
        self.vm_bytes = int(status.get("vm_bytes") or 0)
        if not self.ready:
            self.stop()
        else:
            _log.debug(
                "fork server ready", preload_seconds=self.preload_seconds, missing=status.get("missing")
            )

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(OSError):
                assert self._process.stdin is not None
                self._process.stdin.close()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def _read_line(process: subprocess.Popen[bytes], seconds: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + seconds
    data = b""
    while b"\n" not in data and time.monotonic() < deadline:
        readable, _, _ = select.select([process.stdout], [], [], 0.5)
        if readable:
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            data += chunk
        elif process.poll() is not None:
            break
    return data.decode("utf-8", "replace").strip()


_servers: dict[tuple[str, tuple[str, ...]], ForkServer] = {}
_lock = threading.Lock()


def fork_server(
    env: dict[str, str], *, python: str = sys.executable, modules: Sequence[str] = DEFAULT_PRELOAD
) -> ForkServer:
    """The process's fork server for ``python`` and ``modules``, started on first use
    (blocking: call it from a worker thread). A server that died is started again."""
    key = (python, tuple(modules))
    with _lock:
        server = _servers.get(key)
        if server is None or (server.ready and not server.alive()):
            server = ForkServer(python=python, modules=tuple(modules))
            server.start(env)
            _servers[key] = server
        return server


@atexit.register
def shutdown_fork_servers() -> None:
    """Stop every fork server of this process (also done at exit)."""
    with _lock:
        for server in _servers.values():
            server.stop()
        _servers.clear()


def preload_from_environment() -> bool:
    """Whether runners preload by default: ``FTDOJO_PRELOAD=0`` turns it off (on by default
    on Linux, where forking is safe; elsewhere every job is spawned)."""
    value = os.environ.get("FTDOJO_PRELOAD", "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    return sys.platform.startswith("linux")
