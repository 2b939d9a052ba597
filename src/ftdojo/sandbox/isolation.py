"""What the kernel enforces around a sandboxed job, detected once per process.

Three protections, in the order they matter for a benchmark's integrity:

- **network off**: a network namespace of the job's own (only a loopback device);
- **filesystem view**: a mount namespace where the whole system is read-only, the job's
  own folders are the only writable places, and the folders it must never see (the
  private evaluation splits, the run journals, the evaluator's workspaces) are replaced
  by empty in-memory folders: the files do not exist in the job's view at all;
- **process isolation**: a pid namespace (no other process, the Dojo included, is
  visible through ``/proc``) and no capabilities (so the job cannot unmount what hides
  the private files, or remount anything writable).

`bubblewrap <https://github.com/containers/bubblewrap>`_ (``bwrap``) gives all three, as
root or as an ordinary user where the kernel allows user namespaces. Without it,
``unshare`` gives the network namespace alone. What was reached is an
:class:`Isolation` record, logged and kept in every run; ``Dojo(strict_isolation=True)``
refuses to start with less than all three.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TypeAlias

import attrs

from ftdojo.sandbox.paths import is_under

__all__ = [
    "BUBBLEWRAP",
    "NONE",
    "UNSHARE",
    "FilesystemView",
    "Isolation",
    "IsolationBackend",
    "detect_isolation",
    "gpu_device_nodes",
    "isolation_prefix",
    "network_isolation_prefix",
    "pids_cgroup_root",
]

#: The name of what isolates a job, as recorded in :attr:`Isolation.backend`. Open, so
#: that a :class:`~ftdojo.sandbox.backend.JobRunner` of another kind (containers, a
#: remote machine) can name its own; the ones this module detects are the constants
#: below, strongest first.
IsolationBackend: TypeAlias = str
#: bubblewrap: network, filesystem view and pid namespace, no capabilities.
BUBBLEWRAP: IsolationBackend = "bubblewrap"
#: ``unshare``: a network namespace only.
UNSHARE: IsolationBackend = "unshare"
#: Nothing: the job runs as the Dojo's user, with the Dojo's network.
NONE: IsolationBackend = "none"

_PROBE_SECONDS = 10.0


@attrs.frozen(kw_only=True)
class FilesystemView:
    """The filesystem a job sees: read-only, except ``writable``; ``hidden`` do not exist.

    ``readable`` re-exposes, read-only, folders that lie inside a hidden one (a trial's
    model inside the hidden runs folder, for the evaluator). Paths are absolute; hidden
    ones that do not exist on the host are skipped.
    """

    writable: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    readable: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        writable: Sequence[Path | str] = (),
        hidden: Sequence[Path | str] = (),
        readable: Sequence[Path | str] = (),
    ) -> FilesystemView:
        def absolute(paths: Sequence[Path | str]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(str(Path(p).absolute()) for p in paths))

        return cls(writable=absolute(writable), hidden=absolute(hidden), readable=absolute(readable))

    def is_hidden(self, path: str) -> bool:
        """Whether ``path`` (absolute) lies in a hidden folder and is not re-exposed."""
        inside = is_under(path, self.hidden)
        return inside and not is_under(path, self.writable) and not is_under(path, self.readable)

    def is_writable(self, path: str) -> bool:
        return is_under(path, self.writable)


@attrs.frozen(kw_only=True)
class Isolation:
    """The isolation a sandboxed job gets on this machine, as detected and as configured."""

    backend: IsolationBackend
    #: The job runs in a network namespace with no route out.
    network_off: bool
    #: Hidden paths do not exist in the job's view; everything but its folders is read-only.
    filesystem_view: bool
    #: Other processes are invisible and the job holds no capabilities.
    process_isolation: bool
    #: Network access was allowed on purpose (``SandboxRunner(allow_network=True)``).
    network_allowed: bool = False
    #: How the number of processes a job may start is capped: ``"pids cgroup"`` or
    #: ``"none"`` (then a fork bomb is bounded only by the wall-clock limit).
    process_limit: str = "none"
    #: Why a protection is missing, as the probes saw it.
    notes: tuple[str, ...] = ()

    @property
    def gaps(self) -> tuple[str, ...]:
        """The protections this run goes without, in words; empty when fully isolated."""
        gaps = []
        if not self.network_off:
            gaps.append(
                "network access allowed on purpose (allow_network=True)"
                if self.network_allowed
                else "no network namespace: jobs can reach the network"
            )
        if not self.filesystem_view:
            gaps.append("no filesystem view: jobs can read every file the Dojo's user can")
        if not self.process_isolation:
            gaps.append("no pid namespace or capability drop: jobs can see the Dojo's processes")
        return tuple(gaps)

    @property
    def complete(self) -> bool:
        return not self.gaps

    def describe(self) -> str:
        if self.complete:
            return f"{self.backend}: network off, private filesystem view, pid namespace, no capabilities"
        return f"{self.backend}: " + "; ".join(self.gaps)


def _probe(command: Sequence[str]) -> str | None:
    """``None`` when ``command`` ran and exited 0, else why not."""
    try:
        probe = subprocess.run(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=_PROBE_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{command[0]}: {exc}"
    if probe.returncode != 0:
        message = probe.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"{' '.join(command[:2])}...: exit {probe.returncode}: {message[-1] if message else ''}"
    return None


_BWRAP_BASE = (
    "--die-with-parent",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--cap-drop",
    "ALL",
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
)


@functools.cache
def _probe_backends() -> tuple[str | None, tuple[str, ...] | None, tuple[str, ...]]:
    """(bwrap path if it works with a network namespace, unshare prefix, notes)."""
    notes: list[str] = []
    bwrap = shutil.which("bwrap")
    working_bwrap = None
    if bwrap is None:
        notes.append("bubblewrap (bwrap) is not installed")
    else:
        why = _probe([bwrap, *_BWRAP_BASE, "--unshare-net", "--", "true"])
        if why is None:
            working_bwrap = bwrap
        else:
            notes.append(f"bubblewrap cannot create namespaces here ({why})")
    unshare = shutil.which("unshare")
    working_unshare = None
    if unshare is None:
        notes.append("unshare is not installed")
    else:
        candidates = (
            [(unshare, "-n"), (unshare, "-r", "-n")] if os.geteuid() == 0 else [(unshare, "-r", "-n")]
        )
        for prefix in candidates:
            why = _probe([*prefix, "true"])
            if why is None:
                working_unshare = prefix
                break
            notes.append(f"unshare cannot create a network namespace ({why})")
    return working_bwrap, working_unshare, tuple(notes)


def network_isolation_prefix() -> tuple[str, ...] | None:
    """The ``unshare`` prefix that runs a command without network, or ``None`` where unavailable.

    Probed once per process: ``unshare -n`` needs CAP_SYS_ADMIN (root), ``unshare -r -n``
    needs unprivileged user namespaces; containers often allow neither. Sandboxed jobs use
    :func:`isolation_prefix`, which prefers bubblewrap.
    """
    return _probe_backends()[1]


def detect_isolation(*, allow_network: bool = False) -> Isolation:
    """The strongest isolation this machine allows (probed once per process)."""
    bwrap, unshare, notes = _probe_backends()
    cgroups = pids_cgroup_root()
    if cgroups is None:
        notes = (*notes, "no writable pids cgroup: the number of processes a job starts is not capped")
    isolation = _detect(bwrap, unshare, notes, allow_network)
    return attrs.evolve(isolation, process_limit="pids cgroup" if cgroups else "none")


def _detect(
    bwrap: str | None, unshare: tuple[str, ...] | None, notes: tuple[str, ...], allow_network: bool
) -> Isolation:
    if bwrap is not None:
        return Isolation(
            backend=BUBBLEWRAP,
            network_off=not allow_network,
            filesystem_view=True,
            process_isolation=True,
            network_allowed=allow_network,
            notes=notes,
        )
    if unshare is not None:
        return Isolation(
            backend=UNSHARE,
            network_off=not allow_network,
            filesystem_view=False,
            process_isolation=False,
            network_allowed=allow_network,
            notes=notes,
        )
    return Isolation(
        backend=NONE,
        network_off=False,
        filesystem_view=False,
        process_isolation=False,
        network_allowed=allow_network,
        notes=notes,
    )


def gpu_device_nodes() -> list[str]:
    """The host's NVIDIA device nodes (``/dev/nvidiactl``, ``/dev/nvidia0``, ``/dev/nvidia-uvm``,
    the ``/dev/nvidia-caps`` folder, ...); empty on a machine without an NVIDIA GPU."""
    return sorted(str(path) for path in Path("/dev").glob("nvidia*"))


def isolation_prefix(isolation: Isolation, view: FilesystemView | None, *, workdir: Path) -> list[str]:
    """The command prefix that starts a job under ``isolation`` with filesystem ``view``.

    ``view`` ``None`` keeps the host's filesystem as it is (for the Dojo's own trusted
    jobs, such as converting a model into the cache); the network and process
    protections still apply.
    """
    bwrap, unshare, _notes = _probe_backends()
    if isolation.backend == BUBBLEWRAP and bwrap is not None:
        command = [
            bwrap,
            "--die-with-parent",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
        ]
        if isolation.network_off:
            command.append("--unshare-net")
        command += ["--cap-drop", "ALL"]
        if view is None:
            command += ["--bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        else:
            command += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        # ``--dev`` gives the job a fresh /dev with only null, zero, random, tty and the
        # like: without the GPU's device nodes CUDA finds no device and training quietly
        # falls back to the CPU. They are bound back (device access only: the files the
        # job may read or write are still decided by the view).
        for node in gpu_device_nodes():
            command += ["--dev-bind", node, node]
        if view is not None:
            # Later mounts cover earlier ones, and sources are resolved on the host: the
            # hidden folders first, then what is re-exposed inside them.
            for path in view.hidden:
                if os.path.isdir(path):
                    command += ["--tmpfs", path]
            for path in view.readable:
                if os.path.exists(path):
                    command += ["--ro-bind", path, path]
            for path in view.writable:
                if os.path.exists(path):
                    command += ["--bind", path, path]
        command += ["--chdir", str(workdir), "--"]
        return command
    if isolation.network_off and unshare is not None:
        return list(unshare)
    return []


_CGROUP_CANDIDATES = ("/sys/fs/cgroup/pids",)


@functools.cache
def pids_cgroup_root() -> Path | None:
    """A cgroup (v1) pids hierarchy this process may create groups in, or ``None``."""
    for candidate in _CGROUP_CANDIDATES:
        root = Path(candidate)
        _remove_stale_groups(root)
        probe = root / f"ftdojo-probe-{os.getpid()}"
        try:
            probe.mkdir()
        except OSError:
            continue
        try:
            (probe / "pids.max").write_text("64")
            return root
        except OSError:
            continue
        finally:
            with contextlib.suppress(OSError):
                probe.rmdir()
    return None


def _remove_stale_groups(root: Path) -> None:
    # Groups of runners that were killed before they could clean up (named after their
    # pid); an empty group is removed, one still in use refuses.
    with contextlib.suppress(OSError):
        for group in root.glob("ftdojo-*"):
            owner = group.name.split("-")[1]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                with contextlib.suppress(OSError):
                    group.rmdir()
