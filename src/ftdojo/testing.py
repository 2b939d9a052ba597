"""Fakes for testing code built on ftdojo (and ftdojo's own tests).

* :class:`ScriptedAgent` submits a fixed list of plans, one trial each, and keeps
  every feedback — for checking a task, a sandbox set-up or failure handling without
  an agent's judgement in the way.
* :class:`ObservingAgent` wraps any agent and records everything the session showed
  it, so a test can search it (for example for held-out data that must not be there).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ftdojo.errors import BudgetExhausted
from ftdojo.feedback import Feedback
from ftdojo.plans import Plan

if TYPE_CHECKING:
    from ftdojo.dojo import Agent, Session

__all__ = ["ObservingAgent", "ScriptedAgent"]


class ScriptedAgent:
    """Submits ``plans`` in order (stopping early if the budget runs out)."""

    def __init__(self, plans: Iterable[Plan], *, smoke_first: bool = False) -> None:
        self.plans = list(plans)
        self.smoke_first = smoke_first
        self.feedback: list[Feedback] = []
        self.smoke_feedback: list[Feedback] = []

    async def run(self, session: Session) -> None:
        for plan in self.plans:
            if self.smoke_first:
                self.smoke_feedback.append(await session.smoke(plan))
            try:
                self.feedback.append(await session.submit(plan))
            except BudgetExhausted:
                return


class _RecordingSession:
    """Passes every call through to the real session and keeps what came back."""

    def __init__(self, session: Session, seen: list[Any]) -> None:
        self._session = session
        self._seen = seen

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._session, name)
        if callable(value) and name in {"smoke", "submit"}:

            async def recorded(*args: Any, **kwargs: Any) -> Any:
                result = await value(*args, **kwargs)
                self._seen.append(result)
                return result

            return recorded
        if callable(value):

            def recorded_sync(*args: Any, **kwargs: Any) -> Any:
                result = value(*args, **kwargs)
                self._seen.append(result)
                return result

            return recorded_sync
        self._seen.append(value)
        return value


class ObservingAgent:
    """Runs ``inner`` and records every object the session handed it in ``seen``."""

    def __init__(self, inner: Agent) -> None:
        self.inner = inner
        self.seen: list[Any] = []

    async def run(self, session: Session) -> None:
        await self.inner.run(_RecordingSession(session, self.seen))  # type: ignore[arg-type]
