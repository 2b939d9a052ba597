"""Budgets, trials and the result of a run."""

from __future__ import annotations

import math
from typing import Any

import attrs

from ftdojo.errors import ConfigError
from ftdojo.feedback import Feedback
from ftdojo.plans import Plan

__all__ = ["BaselineResult", "Budget", "BudgetUsage", "RunResult", "Trial"]


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
    trials: int
    seconds: float
    train_tokens: int


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

    @property
    def final_trial(self) -> Trial | None:
        for trial in self.trials:
            if trial.trial_id == self.final_trial_id:
                return trial
        return None
