"""FT-Agent: plan → validate → run → analyse → remember, over swappable strategies."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.to_thread
import structlog

from ftdojo.agent.analyzer import RuleAnalyzer
from ftdojo.agent.memory import TrialTree
from ftdojo.agent.planner import RulePlanner
from ftdojo.agent.protocols import (
    Diagnosis,
    FeedbackAnalyzer,
    Memory,
    Planner,
    PlanningContext,
    Validator,
    Verdict,
)
from ftdojo.agent.validator import FailFastValidator
from ftdojo.errors import BudgetExhausted, SchemaError
from ftdojo.serialization import structure, unstructure

if TYPE_CHECKING:
    from ftdojo.plans import Plan
    from ftdojo.results import Trial
    from ftdojo.session import Session

__all__ = ["FTAgent"]

log = structlog.get_logger("ftdojo.agent")


class FTAgent:
    """The reference agent. Each strategy can be replaced by anything that fits its Protocol.

    ``max_repairs`` bounds how many rejected plans one iteration may go through
    before the agent gives up on the iteration. ``seed`` seeds the default planner's plans
    (data sampling and training), for repeated runs such as a benchmark's.
    """

    def __init__(
        self,
        *,
        planner: Planner | None = None,
        validator: Validator | None = None,
        analyzer: FeedbackAnalyzer | None = None,
        memory: Memory | None = None,
        max_repairs: int = 3,
        seed: int = 0,
    ) -> None:
        self.planner = planner or RulePlanner(seed=seed)
        self.validator = validator or FailFastValidator()
        self.analyzer = analyzer or RuleAnalyzer()
        self.memory = memory or TrialTree()
        self.max_repairs = max_repairs
        #: Every plan the validator rejected, with its verdict: the reasons, how long the
        #: rejection took and how long the full trial would have taken.
        self.rejected: list[tuple[Plan, Verdict]] = []

    def _journalled_diagnosis(self, session: Session, trial: Trial, parent: Trial | None) -> Diagnosis:
        stored = session.annotations(trial.trial_id).get("diagnosis")
        if stored is not None:
            try:
                return structure(stored, Diagnosis)
            except SchemaError as exc:  # written by another version: analyse afresh
                log.warning("journalled diagnosis unreadable", trial_id=trial.trial_id, error=str(exc))
        return self.analyzer.analyze(trial, parent)

    async def run(self, session: Session) -> None:
        # A resumed run: rebuild the tree from the journal's trials and their journalled
        # diagnoses (re-analysing only a trial whose diagnosis was never written).
        known = {t.trial_id for t in self.memory.trials}
        for trial in session.history:
            if trial.trial_id not in known:
                parent = next((t for t in self.memory.trials if t.trial_id == trial.plan.parent), None)
                self.memory.record(trial, self._journalled_diagnosis(session, trial, parent))
        # Plans rejected before the resume stay rejected: proposing them again costs a validation.
        for rejection in session.rejections:
            self.memory.mark_tried(rejection.plan)
        while True:
            left = session.budget_left
            if left.trials == 0 or left.train_tokens == 0 or (left.seconds is not None and left.seconds < 1):
                # Planning (and smoke-testing) a plan that cannot run wastes the run's time.
                log.info("budget spent", trials_left=left.trials, tokens_left=left.train_tokens)
                return
            rejections: list[Verdict] = []
            plan = None
            for _ in range(self.max_repairs + 1):
                context = PlanningContext(
                    card=session.card,
                    catalog=session.catalog,
                    model=session.model,
                    memory=self.memory,
                    budget_left=session.budget_left,
                    rejections=tuple(rejections),
                    read_source=session.read_source,
                )
                # In a worker thread: a planner may block (an LLM planner waits on HTTP,
                # bounded by its timeout), and the event loop must keep serving the run.
                candidate = await anyio.to_thread.run_sync(self.planner.propose, context)
                if candidate is None:
                    break
                verdict = await self.validator.validate(candidate, session)
                if verdict.ok:
                    plan = candidate
                    break
                self.rejected.append((candidate, verdict))
                session.record_rejection(
                    candidate,
                    verdict.reasons,
                    seconds=verdict.seconds,
                    projected_seconds=verdict.projected_seconds,
                )
                log.info(
                    "plan rejected",
                    reasons=verdict.reasons,
                    seconds=round(verdict.seconds, 2),
                    projected_trial_seconds=(
                        None if verdict.projected_seconds is None else round(verdict.projected_seconds)
                    ),
                )
                rejections.append(verdict)
                self.memory.mark_tried(candidate)
            if plan is None:
                log.info("planner has nothing left to try", rejections=len(rejections))
                return
            try:
                feedback = await session.submit(plan)
            except BudgetExhausted:
                return
            trial = next(t for t in session.history if t.trial_id == feedback.trial_id)
            parent = next((t for t in self.memory.trials if t.trial_id == plan.parent), None)
            diagnosis = self.analyzer.analyze(trial, parent)
            self.memory.record(trial, diagnosis)
            # The tree lives in the journal: trials (plan, feedback, parent) and diagnoses.
            session.annotate(trial.trial_id, "diagnosis", unstructure(diagnosis))
            log.info(
                "trial analysed", trial_id=trial.trial_id, score=trial.score, diagnosis=diagnosis.summary
            )
