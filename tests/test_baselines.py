"""Baseline agents: naive fine-tuning takes every source with the defaults, once."""

from __future__ import annotations

from typing import Any

import anyio
import attrs

from ftdojo import BudgetExhausted, DataRecipe, Plan, SourceSelection, TrainConfig
from ftdojo.agent import NaiveAgent, naive_plan
from ftdojo.agent.heuristics import default_train_config
from test_planner import BIG, CATALOG, TINY


@attrs.define
class _Session:
    """What the baseline reads from a session, and its submissions."""

    catalog: Any = CATALOG
    model: Any = TINY
    submitted: list[Plan] = attrs.field(factory=list)
    refuse: bool = False

    async def submit(self, plan: Plan) -> None:
        if self.refuse:
            raise BudgetExhausted("no trial left")
        self.submitted.append(plan)


def _session(**fields: Any) -> Any:
    """A fake session, typed as Any: it stands in for :class:`ftdojo.Session`."""
    return _Session(**fields)


def test_naive_plan_takes_every_source_with_the_default_recipe() -> None:
    plan = naive_plan(_session())
    # Every source, and every other recipe setting at its default.
    assert plan.data == DataRecipe(
        sources=tuple(SourceSelection(source=s) for s in ("worked", "answers", "forum", "trivia"))
    )
    # The model's default configuration, wide enough for the longest source (p99 3 x 80 tokens).
    assert plan.train == default_train_config(TINY, 240.0)
    assert plan.train.max_length >= 240


def test_naive_plan_follows_the_model() -> None:
    assert naive_plan(_session(model=BIG)).train.method == "lora"
    assert naive_plan(_session(model=TINY)).train.method == "full"


def test_naive_agent_submits_exactly_one_plan() -> None:
    session = _session()
    anyio.run(NaiveAgent().run, session)
    assert session.submitted == [naive_plan(session)]


def test_naive_agent_takes_a_given_training_configuration() -> None:
    session = _session()
    train = TrainConfig(method="full", learning_rate=5e-4, epochs=1.0, batch_size=4, max_length=256)
    anyio.run(NaiveAgent(train=train).run, session)
    assert [p.train for p in session.submitted] == [train]


def test_naive_agent_stops_quietly_when_the_budget_is_spent() -> None:
    session = _session(refuse=True)
    anyio.run(NaiveAgent().run, session)
    assert session.submitted == []
