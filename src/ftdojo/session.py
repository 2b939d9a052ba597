"""The seam between the Dojo and an agent: the :class:`Agent` and :class:`Session` protocols.

The agent drives; the Dojo enforces. ``Dojo.run`` hands the agent a session, its only
door to the environment, and the agent calls it as often as its budget allows. Three
sessions satisfy the protocol: the Dojo's in-process one (:class:`ftdojo.dojo.LocalSession`),
the one an untrusted agent holds in its own process (``RemoteSession`` in
:mod:`ftdojo.sandbox.agent_host`), and the recorder of :mod:`ftdojo.testing`. A test keeps
the three in step with this declaration.

Agents and their strategies import this module and the values (plans, feedback, cards,
results), never the Dojo itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, Protocol, runtime_checkable

from ftdojo.cards import DataCatalog, TaskCard
from ftdojo.feedback import Feedback
from ftdojo.models import ModelInfo
from ftdojo.plans import Plan
from ftdojo.results import Budget, BudgetLeft, Rejection, Trial

__all__ = ["Agent", "Session"]


@runtime_checkable
class Session(Protocol):
    """The agent's only door to the environment during one run.

    It exposes the task card, the raw-data catalogue, facts about the base model,
    read-only raw sources, smoke runs, full trials and the history. It never holds or
    returns anything of the evaluation splits beyond validation scores and validation
    error samples.
    """

    @property
    def card(self) -> TaskCard:
        """The task card: description, output format, metric, base model."""
        ...

    @property
    def catalog(self) -> DataCatalog:
        """The raw-data catalogue: one entry per source."""
        ...

    @property
    def model(self) -> ModelInfo:
        """Facts about the base model: parameters, context length, chat template."""
        ...

    @property
    def history(self) -> tuple[Trial, ...]:
        """Every trial of this run so far, a resumed run's earlier ones included."""
        ...

    @property
    def budget(self) -> Budget:
        """The run's budget."""
        ...

    @property
    def budget_left(self) -> BudgetLeft:
        """What is left on each axis of the budget; ``None`` where the axis has no limit."""
        ...

    @property
    def memory_limit_bytes(self) -> int | None:
        """The training stage's memory limit in the sandbox; ``None`` when unlimited."""
        ...

    @property
    def rejections(self) -> tuple[Rejection, ...]:
        """Plans rejected before they ran, this run and before a resume."""
        ...

    def open_source(self, source_id: str) -> BinaryIO:
        """The raw bytes of one source, opened read-only."""
        ...

    def read_source(self, source_id: str) -> Iterator[dict[str, Any]]:
        """The records of one source."""
        ...

    async def smoke(self, plan: Plan) -> Feedback:
        """A cheap check in the sandbox: build ~100 records, train a few steps, no evaluation."""
        ...

    async def submit(self, plan: Plan) -> Feedback:
        """Run a full trial; raises :class:`~ftdojo.errors.BudgetExhausted` once the budget is spent."""
        ...

    def choose_final(self, trial_id: str) -> None:
        """Pick the trial scored on the test split (default: best validation score)."""
        ...

    def annotate(self, trial_id: str, key: str, value: Any) -> None:
        """Journal what the agent made of a trial (its diagnosis, a note) under ``key``.

        ``value`` must be JSON data. Annotations survive a resume (:meth:`annotations`)
        and come back in :attr:`ftdojo.RunResult.annotations`; a later value replaces an
        earlier one under the same key.
        """
        ...

    def annotations(self, trial_id: str) -> dict[str, Any]:
        """The annotations of one trial, this run and before a resume."""
        ...

    def record_rejection(
        self, plan: Plan, reasons: Sequence[str], *, seconds: float, projected_seconds: float | None = None
    ) -> Rejection:
        """Journal a plan the agent's validator rejected: why, how long rejecting it took, and
        how long the full trial would have taken. A resumed run keeps them (so a resumed agent
        need not try the plan again) and the :class:`~ftdojo.RunResult` lists them."""
        ...


@runtime_checkable
class Agent(Protocol):
    """Anything that can solve a task through a session."""

    async def run(self, session: Session) -> None: ...
