"""Child processes for every data build, training and evaluation of ftdojo.

A :class:`JobRunner` runs a :class:`Job` under :class:`Limits` and reports a
:class:`JobOutcome`; :class:`SandboxRunner` is the one that ships (child processes of
this machine). The job's entry function receives a :class:`WorkerContext` to stream
events, and may raise :class:`JobFailure` to end with a given error kind.

The names are loaded on first use: the child imports this package before it has applied
its resource limits, and must not pay for anyio and structlog there.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftdojo.sandbox.backend import JobRunner
    from ftdojo.sandbox.environment import scrubbed_environment
    from ftdojo.sandbox.jobs import Job, JobOutcome, Limits
    from ftdojo.sandbox.protocol import JobFailure, WorkerContext
    from ftdojo.sandbox.runner import SandboxRunner

__all__ = [
    "Job",
    "JobFailure",
    "JobOutcome",
    "JobRunner",
    "Limits",
    "SandboxRunner",
    "WorkerContext",
    "scrubbed_environment",
]

_WHERE = {
    "Job": "ftdojo.sandbox.jobs",
    "JobOutcome": "ftdojo.sandbox.jobs",
    "Limits": "ftdojo.sandbox.jobs",
    "JobRunner": "ftdojo.sandbox.backend",
    "SandboxRunner": "ftdojo.sandbox.runner",
    "scrubbed_environment": "ftdojo.sandbox.environment",
    "JobFailure": "ftdojo.sandbox.protocol",
    "WorkerContext": "ftdojo.sandbox.protocol",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
