"""Budget accounting invariants (Hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ftdojo import Budget
from ftdojo.budget import BudgetClock

budgets = (
    st.tuples(
        st.none() | st.integers(1, 20), st.none() | st.floats(1.0, 1e5), st.none() | st.integers(1, 10**9)
    )
    .filter(lambda axes: any(a is not None for a in axes))
    .map(lambda axes: Budget(max_trials=axes[0], max_seconds=axes[1], max_train_tokens=axes[2]))
)


@given(budgets, st.integers(0, 30), st.floats(0.0, 2e5), st.integers(0, 2 * 10**9))
def test_a_spent_axis_always_stops_the_run_and_nothing_left_is_negative(
    budget: Budget, trials: int, seconds: float, tokens: int
) -> None:
    budgeter = BudgetClock(budget, seconds_before=seconds, trials=trials, tokens=tokens)
    budgeter.stop()  # freeze the clock so the check sees exactly `seconds`
    spent = (
        (budget.max_trials is not None and trials >= budget.max_trials)
        or (budget.max_seconds is not None and budgeter.seconds >= budget.max_seconds)
        or (budget.max_train_tokens is not None and tokens >= budget.max_train_tokens)
    )
    assert (budgeter.exhausted() is not None) == spent
    left = budgeter.left()
    # "No limit" is None, never a number: an axis with a limit is never negative.
    for value, limit in (
        (left.trials, budget.max_trials),
        (left.seconds, budget.max_seconds),
        (left.train_tokens, budget.max_train_tokens),
    ):
        assert (value is None) == (limit is None)
        assert value is None or value >= 0


def test_the_clock_stops_when_the_agent_returns() -> None:
    budgeter = BudgetClock(Budget(max_seconds=100.0), seconds_before=10.0)
    budgeter.stop()
    first = budgeter.seconds
    assert budgeter.seconds == first
    assert 10.0 <= first < 11.0
