"""What the Dojo needs of a sandbox backend: the :class:`JobRunner` protocol.

:class:`~ftdojo.sandbox.runner.SandboxRunner` (child processes on this machine) is the
one that ships. Another backend (containers, a remote GPU machine) satisfies the same two
members and is passed as ``Dojo(runner=...)``; it records what it isolates in an
:class:`~ftdojo.sandbox.isolation.Isolation`, whose ``backend`` names it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ftdojo.feedback import Stage
from ftdojo.sandbox.isolation import FilesystemView, Isolation
from ftdojo.sandbox.jobs import Job, JobOutcome, Limits

__all__ = ["EventCallback", "JobLauncher", "JobRunner"]

#: Receives every event of a running job as it arrives; awaited when it returns an
#: awaitable. An exception it raises stops the job and propagates from ``run``.
EventCallback = Callable[[dict[str, Any]], object]


@runtime_checkable
class JobRunner(Protocol):
    """Runs a :class:`~ftdojo.sandbox.Job` somewhere the Dojo's process is out of its reach."""

    @property
    def isolation(self) -> Isolation:
        """What this runner's jobs get (recorded in every run; ``Dojo(strict_isolation=True)``
        refuses to start when it has gaps)."""
        ...

    async def run(
        self,
        job: Job,
        *,
        workspace: Path,
        limits: Limits,
        on_event: EventCallback | None = None,
    ) -> JobOutcome:
        """Run ``job`` with ``workspace`` as its working directory under ``limits``.

        A failure of the job comes back as a :class:`~ftdojo.sandbox.JobOutcome` that is
        not ``ok``, never as an exception; cancelling the call stops the job before the
        cancellation propagates.
        """
        ...


class JobLauncher(Protocol):
    """How the Dojo's parts start one job: through its runner, within its worker limit,
    with the job's events forwarded to the run's listeners under ``tags``.

    The evaluator, the trial pipeline and the model store take one instead of a runner,
    so that every job the Dojo starts counts against the same limit.
    """

    def __call__(
        self,
        entry: str,
        payload: dict[str, Any],
        stage: Stage,
        workspace: Path,
        limits: Limits,
        tags: Mapping[str, Any],
        view: FilesystemView | None = None,
    ) -> Awaitable[JobOutcome]: ...
