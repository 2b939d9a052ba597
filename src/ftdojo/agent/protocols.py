"""The seams of FT-Agent: each strategy is a Protocol with a working default."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from ftdojo.cards import DataCatalog, TaskCard
from ftdojo.feedback import Feedback
from ftdojo.models import ModelInfo
from ftdojo.plans import Plan
from ftdojo.results import BudgetLeft, Trial

if TYPE_CHECKING:
    from ftdojo.session import Session

__all__ = [
    "Diagnosis",
    "FeedbackAnalyzer",
    "Finding",
    "FindingKind",
    "Memory",
    "Planner",
    "PlanningContext",
    "Validator",
    "Verdict",
]


class FindingKind(str, enum.Enum):
    FORMAT_NONCOMPLIANCE = "format_noncompliance"
    UNDERFITTING = "underfitting"
    OVERFITTING = "overfitting"
    DIVERGENCE = "divergence"
    OUT_OF_MEMORY = "out_of_memory"
    TIMEOUT = "timeout"
    #: The plan would train on more tokens than the budget has left.
    TOKEN_BUDGET = "token_budget"
    DATA_FAILURE = "data_failure"
    CONFIG_FAILURE = "config_failure"
    ENV_FAILURE = "env_failure"
    SANDBOX_VIOLATION = "sandbox_violation"
    DISK_QUOTA = "disk_quota"
    NOISY_SOURCE = "noisy_source"
    TRUNCATION = "truncation"
    WEAK_CATEGORY = "weak_category"
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"


@attrs.frozen(kw_only=True)
class Finding:
    """One typed observation about a trial, with the evidence it rests on."""

    kind: FindingKind
    evidence: str
    #: Optional subject of the finding: a category, a source id.
    subject: str = ""
    #: What a practitioner would change in answer (a suggestion for the planner).
    action: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.evidence.strip():
            raise ValueError("a finding needs evidence")


@attrs.frozen(kw_only=True)
class Diagnosis:
    trial_id: str
    findings: tuple[Finding, ...] = ()

    def has(self, kind: FindingKind) -> bool:
        return any(f.kind == kind for f in self.findings)

    def of(self, kind: FindingKind) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == kind)

    @property
    def summary(self) -> str:
        return "; ".join(f"{f.kind.value}: {f.evidence}" for f in self.findings) or "no findings"


@attrs.frozen(kw_only=True)
class Verdict:
    """The validator's answer: run the plan, or reject it with reasons."""

    ok: bool
    #: Why the plan was rejected, for people and for an LLM planner's prompt.
    reasons: tuple[str, ...] = ()
    #: The same rejection as typed findings, from what the validator checked (the static
    #: checks, the smoke run's feedback), for a planner that changes what they point at.
    findings: tuple[Finding, ...] = ()
    smoke: Feedback | None = None
    #: How long validation took.
    seconds: float = 0.0
    #: How long the full trial would have taken (projected; ``None`` if unknown).
    projected_seconds: float | None = None


@attrs.frozen(kw_only=True)
class PlanningContext:
    """What a planner reads to propose the next plan."""

    card: TaskCard
    catalog: DataCatalog
    model: ModelInfo
    memory: Memory
    budget_left: BudgetLeft
    #: The validator's verdicts on the plans it rejected in this iteration.
    rejections: tuple[Verdict, ...] = ()
    #: Reads one raw source's records (:meth:`ftdojo.Session.read_source`), for planners
    #: that look past the catalogue; ``None`` where the caller offers no raw access.
    read_source: Callable[[str], Iterable[dict[str, Any]]] | None = attrs.field(
        default=None, eq=False, repr=False
    )

    @property
    def rejection_reasons(self) -> tuple[str, ...]:
        """Every reason of :attr:`rejections`, in order."""
        return tuple(reason for verdict in self.rejections for reason in verdict.reasons)


@runtime_checkable
class Memory(Protocol):
    """The tree of trials (parent → children) and what was learnt from each."""

    def record(self, trial: Trial, diagnosis: Diagnosis) -> None: ...
    def mark_tried(self, plan: Plan) -> None: ...
    def tried(self, plan: Plan) -> bool: ...
    def best(self) -> Trial | None: ...
    def diagnosis(self, trial_id: str) -> Diagnosis | None: ...
    def children(self, trial_id: str | None) -> tuple[Trial, ...]: ...
    def get(self, trial_id: str) -> Trial | None:
        """The trial recorded under ``trial_id``, or ``None``."""
        ...

    @property
    def trials(self) -> tuple[Trial, ...]: ...


@runtime_checkable
class Planner(Protocol):
    def propose(self, context: PlanningContext) -> Plan | None:
        """The next plan, or ``None`` to stop."""
        ...


@runtime_checkable
class Validator(Protocol):
    async def validate(self, plan: Plan, session: Session) -> Verdict: ...


@runtime_checkable
class FeedbackAnalyzer(Protocol):
    def analyze(self, trial: Trial, parent: Trial | None) -> Diagnosis:
        """Must be deterministic: a resumed run re-derives its memory from the history."""
        ...
