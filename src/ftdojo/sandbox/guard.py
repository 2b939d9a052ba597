"""The worker's audit hook: sees attempts to cross the sandbox and reports them as violations.

The kernel is what stops a job (see :mod:`ftdojo.sandbox.isolation`): in the job's
filesystem view the private files do not exist, everything outside its folders is
read-only, and there is no network. This hook is what *notices* the attempt, so that a
run can record it: Python raises an audit event before every ``open``, socket
connection, link, process start and native library load, and the hook compares it with
the job's view. It also refuses the clearest attempts (a hidden path, a connection
out) with ``PermissionError``, which is all the protection a machine without namespaces
has against a careless recipe. It is no security boundary on its own: native code
(``ctypes``) can call the kernel without raising audit events, which is why loading
native code from an untrusted recipe is reported too.

Standard library only (and :mod:`ftdojo.sandbox.paths`): installed in the child before
the job's entry is imported.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ftdojo.sandbox.paths import is_under

__all__ = ["Guard", "untrusted_code"]

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
#: Written to by libraries in the normal course of things; never a way out.
_HARMLESS_WRITES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/shm", "/proc/self")
_SPAWN_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.fork", "os.forkpty", "os.spawn"}
)
_CHANGE_EVENTS = {
    "os.remove": 0,
    "os.rmdir": 0,
    "os.truncate": 0,
    "os.chmod": 0,
    "os.chown": 0,
    "os.mkdir": 0,
    "os.rename": 1,
    "shutil.rmtree": 0,
}
_NETWORK_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.bind"})
_MAX_REPORTS = 100
_PROC_WINDOWS = frozenset({"root", "cwd", "fd", "environ", "mem", "maps", "map_files", "exe", "cmdline"})

#: The guard of this process, once the worker installed one.
_active: Guard | None = None


def _loopback(address: tuple[Any, ...]) -> bool:
    host = str(address[0]) if address else ""
    return host in ("localhost", "::1") or host.startswith("127.")


def _as_path(value: Any) -> str | None:
    if isinstance(value, int):  # a file descriptor: already opened
        return None
    try:
        path = os.fsdecode(os.fspath(value))
    except TypeError:
        return None
    return os.path.abspath(path)


class Guard:
    """An audit hook for one job: ``view`` as in :class:`FilesystemView` (``None``: no view)."""

    def __init__(
        self,
        view: Mapping[str, Sequence[str]] | None,
        report: Callable[[str, str], None],
    ) -> None:
        self.hidden = tuple(view.get("hidden", ())) if view else ()
        self.writable = tuple(view.get("writable", ())) if view else ()
        self.readable = tuple(view.get("readable", ())) if view else ()
        self.has_view = view is not None
        #: Set while untrusted code (a recipe's ``transform_code``) runs.
        self.untrusted = False
        self._report = report
        self._seen: set[tuple[str, str]] = set()
        # Per thread: the hook's own calls (realpath, the report) must not re-enter it,
        # but another thread's events must still be seen.
        self._local = threading.local()

    def install(self) -> None:
        global _active
        _active = self
        sys.addaudithook(self.hook)

    def _flag(self, kind: str, detail: str) -> None:
        key = (kind, detail)
        if key in self._seen or len(self._seen) >= _MAX_REPORTS:
            return
        self._seen.add(key)
        self._report(kind, detail)

    def _hidden(self, path: str) -> bool:
        return (
            is_under(path, self.hidden)
            and not is_under(path, self.writable)
            and not is_under(path, self.readable)
        )

    def _may_write(self, path: str) -> bool:
        return not self.has_view or is_under(path, self.writable) or path.startswith(_HARMLESS_WRITES)

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            self._check(event, args)
        except PermissionError:
            raise
        except Exception:  # a bug here must never break the job it watches
            pass
        finally:
            self._local.busy = False

    def _check(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            self._check_open(args)
        elif event in _NETWORK_EVENTS:
            address = args[1] if len(args) > 1 else None
            # An internet address off this host: unix sockets and the loopback device (in a
            # network namespace, the job's own) lead nowhere.
            if isinstance(address, tuple) and not _loopback(address):
                self._flag("network", f"{event} to {address!r}")
                raise PermissionError(f"ftdojo sandbox: no network for jobs ({event} {address!r})")
        elif event in ("os.symlink", "os.link"):
            self._check_link(event, args)
        elif event in _CHANGE_EVENTS:
            target = args[_CHANGE_EVENTS[event]] if len(args) > _CHANGE_EVENTS[event] else None
            path = _as_path(target)
            if path is not None and self._hidden(path):
                self._flag("write_hidden", f"{event} {path}")
                raise PermissionError(f"ftdojo sandbox: {path} is not in this job's view")
            if path is not None and not self._may_write(path):
                self._flag("write_outside", f"{event} {path}")
        elif self.untrusted and event in _SPAWN_EVENTS:
            self._flag("spawn", f"{event} {str(args[0])[:200] if args else ''}")
        elif self.untrusted and event == "ctypes.dlopen":
            self._flag("native_code", f"ctypes.dlopen {args[0] if args else ''}")

    def _check_open(self, args: tuple[Any, ...]) -> None:
        path = _as_path(args[0]) if args else None
        if path is None:
            return
        if path.startswith("/proc/"):
            self._check_proc(path)
        mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        writing = any(c in mode for c in "wax+") or bool(flags & _WRITE_FLAGS)
        if self._hidden(path):
            self._flag("write_hidden" if writing else "read_hidden", path)
            raise PermissionError(f"ftdojo sandbox: {path} is not in this job's view")
        if writing and not self._may_write(path):
            self._flag("write_outside", path)
            return
        if self.has_view and is_under(path, self.writable):
            # A link placed in the job's own folder can point anywhere.
            real = os.path.realpath(path)
            if real != path and self._hidden(real):
                self._flag("link_escape", f"{path} -> {real}")
                raise PermissionError(f"ftdojo sandbox: {path} leads out of this job's view")

    def _check_proc(self, path: str) -> None:
        # /proc/PID/root, /cwd, /fd, /environ of another process are windows into its
        # files and secrets (the Dojo's, where there is no pid namespace).
        parts = path.split("/")
        if (
            len(parts) > 3
            and parts[2].isdigit()
            and int(parts[2]) != os.getpid()
            and parts[3] in _PROC_WINDOWS
        ):
            self._flag("proc_snoop", path)
            raise PermissionError(f"ftdojo sandbox: {path} belongs to another process")

    def _check_link(self, event: str, args: tuple[Any, ...]) -> None:
        source, destination = (_as_path(a) for a in args[:2]) if len(args) >= 2 else (None, None)
        if source is None or destination is None:
            return
        if event == "os.symlink" and not os.path.isabs(os.fsdecode(os.fspath(args[0]))):
            source = os.path.abspath(os.path.join(os.path.dirname(destination), os.fsdecode(args[0])))
        if self._hidden(source) or (self.has_view and not is_under(source, (*self.writable, *self.readable))):
            self._flag("link", f"{event} {destination} -> {source}")


@contextlib.contextmanager
def untrusted_code() -> Iterator[None]:
    """Marks code the plan brought (a recipe's transform): process starts and native
    libraries inside are reported as violations."""
    guard = _active
    if guard is None:
        yield
        return
    before = guard.untrusted
    guard.untrusted = True
    try:
        yield
    finally:
        guard.untrusted = before
