"""The in-process session and the state of one run.

:class:`RunState` holds what one run has done (its trials, rejections, annotations and
violations, its budget clock and journal) and runs its trials through the
:class:`~ftdojo.pipeline.TrialPipeline`; :class:`LocalSession` is its public face, the
:class:`~ftdojo.session.Session` an agent in the Dojo's own process holds. Every record
is journalled, and fsynced, before the agent hears of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import structlog

from ftdojo.budget import BudgetClock
from ftdojo.cards import DataCatalog, TaskCard
from ftdojo.datarepo import RawDataRepository
from ftdojo.errors import AgentError, BudgetExhausted
from ftdojo.feedback import Feedback, Stage
from ftdojo.journal import (
    AnnotationRecord,
    Journal,
    RejectionRecord,
    RunRecord,
    SmokeRecord,
    TrialRecord,
    ViolationRecord,
)
from ftdojo.models import ModelInfo
from ftdojo.pipeline import PreparedTask, TrialPipeline, TrialServices
from ftdojo.plans import Plan
from ftdojo.results import Budget, BudgetLeft, Rejection, Trial, Violation
from ftdojo.sandbox.isolation import Isolation

__all__ = ["LocalSession", "RunState"]

log = structlog.get_logger("ftdojo")


class LocalSession:
    """The in-process :class:`~ftdojo.session.Session`: the agent's door to one run.

    It never holds or returns anything of the evaluation splits beyond validation
    scores and validation error samples.
    """

    def __init__(self, run: RunState) -> None:
        self.__run = run

    @property
    def card(self) -> TaskCard:
        return self.__run.card

    @property
    def catalog(self) -> DataCatalog:
        return self.__run.prepared.catalog

    @property
    def model(self) -> ModelInfo:
        return self.__run.prepared.info

    @property
    def history(self) -> tuple[Trial, ...]:
        return tuple(self.__run.trials)

    @property
    def budget(self) -> Budget:
        return self.__run.clock.budget

    @property
    def memory_limit_bytes(self) -> int | None:
        """The training stage's memory limit in the sandbox; ``None`` when unlimited."""
        return self.__run.services.limits.train.memory_bytes

    @property
    def budget_left(self) -> BudgetLeft:
        """What is left on each axis of the budget; ``None`` where the axis has no limit."""
        return self.__run.clock.left()

    def open_source(self, source_id: str) -> BinaryIO:
        """The raw bytes of one source, opened read-only."""
        return self.__run.repository.open_source(self.catalog, source_id)

    def read_source(self, source_id: str) -> Iterator[dict[str, Any]]:
        """The records of one source (JSONL)."""
        return self.__run.repository.read_records(self.catalog, source_id)

    async def smoke(self, plan: Plan) -> Feedback:
        """A cheap check in the sandbox: build ~100 records, train a few steps, no evaluation."""
        return await self.__run.smoke(plan)

    async def submit(self, plan: Plan) -> Feedback:
        """Run a full trial; raises :class:`BudgetExhausted` once the budget is spent."""
        return await self.__run.submit(plan)

    def choose_final(self, trial_id: str) -> None:
        """Pick the trial scored on the test split (default: best validation score)."""
        self.__run.choose_final(trial_id)

    def annotate(self, trial_id: str, key: str, value: Any) -> None:
        """Journal what the agent made of a trial under ``key`` (see :class:`~ftdojo.session.Session`)."""
        self.__run.annotate(trial_id, key, value)

    def annotations(self, trial_id: str) -> dict[str, Any]:
        """The annotations of one trial, this run and before a resume."""
        return dict(self.__run.annotations.get(trial_id, {}))

    @property
    def rejections(self) -> tuple[Rejection, ...]:
        """Plans rejected before they ran, this run and before a resume."""
        return tuple(self.__run.rejections)

    def record_rejection(
        self, plan: Plan, reasons: Sequence[str], *, seconds: float, projected_seconds: float | None = None
    ) -> Rejection:
        """Journal a plan the agent's validator rejected (see :class:`~ftdojo.session.Session`)."""
        return self.__run.record_rejection(
            plan, tuple(reasons), seconds=seconds, projected_seconds=projected_seconds
        )


class RunState:
    """The state of one run: its trials, budget clock, journal and records; the session is
    its public face, the Dojo its owner."""

    def __init__(
        self,
        *,
        prepared: PreparedTask,
        run_dir: Path,
        budget: Budget,
        journal: Journal,
        earlier: RunRecord | None,
        isolation: Isolation | None,
        services: TrialServices,
        repository: RawDataRepository,
        emit: Callable[[dict[str, Any]], None],
    ) -> None:
        self.services = services
        self.repository = repository
        self.emit = emit
        self.isolation = isolation
        self.prepared = prepared
        self.run_id = run_dir.name
        self.run_dir = run_dir
        self.journal = journal
        # What a resumed run did before: every finished trial, counted once.
        self.trials: list[Trial] = list(earlier.trials) if earlier else []
        self.rejections: list[Rejection] = list(earlier.rejections) if earlier else []
        self.violations: list[Violation] = list(earlier.violations) if earlier else []
        self.annotations: dict[str, dict[str, Any]] = (
            {k: dict(v) for k, v in earlier.annotations.items()} if earlier else {}
        )
        self.clock = BudgetClock(
            budget,
            seconds_before=earlier.seconds_spent if earlier else 0.0,
            trials=len(self.trials),
            tokens=earlier.tokens_spent if earlier else 0,
        )
        self.final_choice: str | None = None
        self.smokes = 0
        task = prepared.task
        self.card = TaskCard(
            name=task.name,
            domain=task.domain,
            description=task.description,
            output_format=task.output_format,
            metric=task.metric,
            base_model=prepared.model_name,
            categories=task.categories,
            validation_size=services.evaluator.split_size(task, "validation"),
            max_context=prepared.info.context_length,
        )

    def choose_final(self, trial_id: str) -> None:
        if not any(t.trial_id == trial_id and t.feedback.ok for t in self.trials):
            raise AgentError(f"cannot choose {trial_id!r}: no successful trial has that id")
        self.final_choice = trial_id

    def annotate(self, trial_id: str, key: str, value: Any) -> None:
        if not any(t.trial_id == trial_id for t in self.trials):
            raise AgentError(f"cannot annotate {trial_id!r}: no trial of this run has that id")
        if not isinstance(key, str) or not key:
            raise AgentError(f"an annotation key must be a non-empty string, got {key!r}")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise AgentError(f"annotation {key!r} of {trial_id} is not JSON data: {exc}") from exc
        self.annotations.setdefault(trial_id, {})[key] = value
        self.journal.write(AnnotationRecord(trial_id=trial_id, key=key, value=value))

    def record_rejection(
        self, plan: Plan, reasons: tuple[str, ...], *, seconds: float, projected_seconds: float | None
    ) -> Rejection:
        if not isinstance(plan, Plan):
            raise AgentError(f"record_rejection needs a Plan, got {type(plan).__name__}")
        rejection = Rejection(
            plan=plan,
            reasons=tuple(str(r) for r in reasons),
            seconds=float(seconds),
            projected_seconds=None if projected_seconds is None else float(projected_seconds),
            at=time.time(),
        )
        self.rejections.append(rejection)
        self.journal.write(RejectionRecord(rejection=rejection))
        return rejection

    def record_violations(
        self, trial_id: str | None, stage: Stage | None, found: Sequence[Mapping[str, Any]]
    ) -> None:
        for item in found:
            violation = Violation(
                kind=str(item.get("kind", "unknown")),
                detail=str(item.get("detail", "")),
                trial_id=trial_id,
                stage=stage.value if stage is not None else None,
                at=time.time(),
            )
            self.violations.append(violation)
            self.journal.write(ViolationRecord(violation=violation))
            log.warning(
                "sandbox violation",
                run_id=self.run_id,
                trial_id=trial_id,
                stage=violation.stage,
                kind=violation.kind,
                detail=violation.detail[:200],
            )

    def _next_trial_id(self) -> str:
        return f"t{len(self.trials) + 1:03d}"

    def _pipeline(self, plan: Plan, trial_id: str, *, smoke: bool) -> TrialPipeline:
        return TrialPipeline(
            plan=plan,
            trial_id=trial_id,
            smoke=smoke,
            prepared=self.prepared,
            run_dir=self.run_dir,
            clock=self.clock,
            earlier=tuple(self.trials),
            record_violations=self.record_violations,
            services=self.services,
            tags={"run_id": self.run_id, "trial_id": trial_id},
        )

    async def submit(self, plan: Plan) -> Feedback:
        reason = self.clock.exhausted()
        if reason is not None:
            raise BudgetExhausted(reason)
        if plan.parent is not None and not any(t.trial_id == plan.parent for t in self.trials):
            raise AgentError(f"plan.parent {plan.parent!r} is not a trial of this run")
        trial_id = self._next_trial_id()
        self.clock.trials += 1
        started = time.time()
        self.emit({"type": "trial_started", "run_id": self.run_id, "trial_id": trial_id})
        # Every log line of the trial, the Dojo's and the sandbox runner's, names it.
        with structlog.contextvars.bound_contextvars(trial_id=trial_id):
            log.info("trial started", hypothesis=plan.hypothesis[:200])
            feedback = await self._pipeline(plan, trial_id, smoke=False).run()
        trial = Trial(
            trial_id=trial_id, plan=plan, feedback=feedback, started_at=started, finished_at=time.time()
        )
        self.trials.append(trial)
        # On disk before the agent hears of it: a killed run resumes with this trial.
        self.journal.write(
            TrialRecord(trial=trial, tokens_total=self.clock.tokens, seconds=self.clock.seconds)
        )
        self.emit(
            {
                "type": "trial_finished",
                "run_id": self.run_id,
                "trial_id": trial_id,
                "ok": feedback.ok,
                "score": feedback.score,
                "error_kind": feedback.execution.error_kind.value if feedback.execution.error_kind else None,
            }
        )
        log.info(
            "trial finished",
            run_id=self.run_id,
            trial_id=trial_id,
            ok=feedback.ok,
            score=feedback.score,
            error_kind=feedback.execution.error_kind,
        )
        return feedback

    async def smoke(self, plan: Plan) -> Feedback:
        if self.clock.out_of_time():
            raise BudgetExhausted("time budget spent")
        self.smokes += 1
        smoke_id = f"smoke{self.smokes:03d}"
        with structlog.contextvars.bound_contextvars(trial_id=smoke_id):
            feedback = await self._pipeline(plan, smoke_id, smoke=True).run()
        self.journal.write(SmokeRecord(plan=plan, feedback=feedback))
        return feedback
