"""A pids cgroup per job: caps how many processes (and threads) a job may have at once.

Where this process may create groups under a pids hierarchy
(:func:`~ftdojo.sandbox.isolation.pids_cgroup_root`), every job, and every untrusted
agent's process, gets a group of its own, entered by the launcher before anything can
fork; elsewhere a fork bomb is bounded only by the wall-clock limit.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

import structlog

from ftdojo.sandbox.isolation import pids_cgroup_root

__all__ = ["make_cgroup", "remove_cgroup"]

_log = structlog.get_logger(__name__)


def make_cgroup(max_processes: int) -> Path | None:
    """A fresh group capped at ``max_processes``, or ``None`` where none can be made."""
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


def remove_cgroup(group: Path) -> None:
    """Remove ``group`` once its processes are gone (blocking: call it from a worker thread)."""
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
