"""Budgets, trials and the result of a run."""

from __future__ import annotations

import math
from typing import Any

import attrs

from ftdojo.contamination import ContaminationAudit
from ftdojo.errors import ConfigError
from ftdojo.feedback import Feedback
from ftdojo.plans import Plan
from ftdojo.sandbox.isolation import Isolation

__all__ = [
    "BaselineResult",
    "Budget",
    "BudgetLeft",
    "BudgetUsage",
    "Rejection",
    "RunResult",
    "Trial",
    "Violation",
]


def _positive_or_none(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
        raise ConfigError(f"budget.{attribute.name} must be positive, got {value!r}")


@attrs.frozen(kw_only=True)
class Budget:
    """What a run may spend. ``None`` means no limit on that axis.

    The Dojo enforces it: a stage never runs past the wall time left, training stops
    at the token limit, and ``submit`` refuses a trial once any axis is spent.
    """

    max_trials: int | None = attrs.field(default=5, validator=_positive_or_none)
    max_seconds: float | None = attrs.field(default=1800.0, validator=_positive_or_none)
    max_train_tokens: int | None = attrs.field(default=None, validator=_positive_or_none)

    def __attrs_post_init__(self) -> None:
        if self.max_trials is None and self.max_seconds is None and self.max_train_tokens is None:
            raise ConfigError("a budget needs at least one limit (trials, seconds or tokens)")


@attrs.frozen(kw_only=True)
class BudgetUsage:
    """What a run has spent on each axis of its budget."""

    trials: int
    seconds: float
    train_tokens: int


@attrs.frozen(kw_only=True)
class BudgetLeft:
    """What is left on each axis of a budget; ``None`` where the axis has no limit.

    Never negative: an axis that is spent reads 0.
    """

    trials: int | None
    seconds: float | None
    train_tokens: int | None


@attrs.frozen(kw_only=True)
class Trial:
    """One plan the Dojo ran, and what came of it."""

    trial_id: str
    plan: Plan
    feedback: Feedback
    started_at: float
    finished_at: float

    @property
    def score(self) -> float | None:
        return self.feedback.score


@attrs.frozen(kw_only=True)
class Rejection:
    """A plan the agent's validator turned down before it cost a trial, and what that saved."""

    plan: Plan
    reasons: tuple[str, ...]
    #: How long validation took to reject the plan (static checks, and a smoke run if any).
    seconds: float
    #: How long the full trial would have taken, projected; ``None`` when unknown.
    projected_seconds: float | None = None
    at: float = 0.0

    @property
    def seconds_saved(self) -> float | None:
        if self.projected_seconds is None:
            return None
        return max(0.0, self.projected_seconds - self.seconds)


@attrs.frozen(kw_only=True)
class Violation:
    """An attempt to cross the sandbox, seen in a trial's job or in what it left behind.

    ``kind`` is one of ``read_hidden``, ``write_hidden``, ``write_outside``, ``link``,
    ``link_escape``, ``network``, ``spawn``, ``native_code`` (seen by the worker's audit
    hook), or ``pickle_artifact``, ``foreign_model``, ``unexpected_file``,
    ``missing_model``, ``unreadable_model`` (found in the trial's saved model).
    """

    kind: str
    detail: str
    trial_id: str | None = None
    stage: str | None = None
    at: float = 0.0


@attrs.frozen(kw_only=True)
class BaselineResult:
    """The untouched base model, scored on both splits."""

    task: str
    model: str
    validation_score: float
    test_score: float


@attrs.frozen(kw_only=True)
class RunResult:
    """Everything a run produced. ``test_score`` is the held-out score of the final trial."""

    run_id: str
    task: str
    model: str
    run_dir: str
    trials: tuple[Trial, ...]
    final_trial_id: str | None
    validation_score: float | None
    test_score: float | None
    usage: BudgetUsage
    stop_reason: str
    baseline: BaselineResult | None = None
    #: Plans rejected before they ran, in order (see :meth:`ftdojo.Session.record_rejection`).
    rejections: tuple[Rejection, ...] = ()
    #: What the agent journalled about each trial (trial id -> key -> JSON value), such as
    #: FT-Agent's diagnosis; see :meth:`ftdojo.Session.annotate`.
    annotations: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    #: Attempts to cross the sandbox, this run and before a resume; each failed its trial.
    violations: tuple[Violation, ...] = ()
    #: What the sandbox enforced on this machine for this run.
    isolation: Isolation | None = None
    #: How much of the test split the final trial's training data contains.
    contamination: ContaminationAudit | None = None

    @property
    def final_trial(self) -> Trial | None:
        for trial in self.trials:
            if trial.trial_id == self.final_trial_id:
                return trial
        return None
