"""The budget clock: what a run has spent and what is left of its :class:`~ftdojo.Budget`.

The Dojo enforces the budget, it does not trust the agent with it: ``submit`` asks the
clock before a trial starts, each stage runs under the wall time left, and training
stops at the tokens left. A resumed run starts its clock with what the journal says
the run spent before.
"""

from __future__ import annotations

import math
import time

from ftdojo.results import Budget, BudgetLeft, BudgetUsage

__all__ = ["BudgetClock"]


class BudgetClock:
    """Tracks what a run has spent, including what a resumed run spent before."""

    def __init__(
        self, budget: Budget, *, seconds_before: float = 0.0, trials: int = 0, tokens: int = 0
    ) -> None:
        self.budget = budget
        self.started = time.monotonic() - seconds_before
        self.stopped: float | None = None
        self.trials = trials
        self.tokens = tokens

    def stop(self) -> None:
        """Freeze the clock: the final test evaluation and the baseline are the Dojo's time."""
        self.stopped = time.monotonic()

    @property
    def seconds(self) -> float:
        return (self.stopped or time.monotonic()) - self.started

    def seconds_left(self) -> float:
        """Seconds left; ``math.inf`` without a time limit (it is compared, not shown)."""
        if self.budget.max_seconds is None:
            return math.inf
        return self.budget.max_seconds - self.seconds

    def out_of_time(self) -> bool:
        return self.seconds_left() <= 0

    def tokens_left(self) -> int | None:
        return None if self.budget.max_train_tokens is None else self.budget.max_train_tokens - self.tokens

    def exhausted(self) -> str | None:
        """Why no further trial may start, or ``None`` while every axis has some left."""
        if self.budget.max_trials is not None and self.trials >= self.budget.max_trials:
            return f"trial budget spent ({self.trials}/{self.budget.max_trials} trials)"
        if self.seconds_left() <= 0:
            return f"time budget spent ({self.seconds:.0f}s of {self.budget.max_seconds:.0f}s)"
        left = self.tokens_left()
        if left is not None and left <= 0:
            return f"token budget spent ({self.tokens} of {self.budget.max_train_tokens} tokens)"
        return None

    def usage(self) -> BudgetUsage:
        return BudgetUsage(trials=self.trials, seconds=round(self.seconds, 3), train_tokens=self.tokens)

    def left(self) -> BudgetLeft:
        """What is left on each axis (``None`` where the axis has no limit, never negative)."""
        b = self.budget
        tokens = self.tokens_left()
        return BudgetLeft(
            trials=None if b.max_trials is None else max(0, b.max_trials - self.trials),
            seconds=None if b.max_seconds is None else max(0.0, round(self.seconds_left(), 3)),
            train_tokens=None if tokens is None else max(0, tokens),
        )
