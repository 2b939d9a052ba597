"""Baseline agents, the yardsticks FT-Agent is measured against.

- :class:`NaiveAgent` — naive fine-tuning as the FT-Dojo paper defines it: one trial on
  *all* raw data with the default data recipe and the model's default training
  configuration, no curation and no iteration.
- :class:`RandomSearchAgent` — random search over data mix and training configuration
  (:class:`~ftdojo.agent.search.RandomPlanner`) in FT-Agent's loop, so that it spends the
  same budget the same way and differs from FT-Agent only in how it plans.

The base model without training is not an agent: :meth:`ftdojo.Dojo.baseline` scores it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ftdojo.agent.ftagent import FTAgent
from ftdojo.agent.heuristics import assess_sources, default_train_config
from ftdojo.agent.search import RandomPlanner
from ftdojo.errors import BudgetExhausted
from ftdojo.plans import DataRecipe, Plan, SourceSelection, TrainConfig

if TYPE_CHECKING:
    from ftdojo.session import Session

__all__ = ["NaiveAgent", "RandomSearchAgent", "naive_plan"]


def naive_plan(session: Session, *, train: TrainConfig | None = None, seed: int = 0) -> Plan:
    """Every raw source, the default :class:`DataRecipe`, and ``train`` or the model's default.

    The default training configuration is :func:`default_train_config` for the session's
    model, with ``max_length`` wide enough for the longest source (its 99th percentile),
    as a first trial would get it. ``seed`` seeds data sampling and training.
    """
    assessments = assess_sources(session.catalog)
    if train is None:
        train = default_train_config(session.model, max((a.length_p99 for a in assessments), default=0.0))
    return Plan(
        data=DataRecipe(sources=tuple(SourceSelection(source=a.source_id) for a in assessments), seed=seed),
        train=attrs.evolve(train, seed=seed),
        hypothesis="naive fine-tuning: every raw source, default recipe and training configuration",
    )


@attrs.define
class NaiveAgent:
    """Submits :func:`naive_plan` once and stops.

    ``train`` replaces the model's default training configuration (for a naive baseline
    trained exactly like some other plan, so that only the data differs).
    """

    train: TrainConfig | None = None
    seed: int = 0

    async def run(self, session: Session) -> None:
        try:
            await session.submit(naive_plan(session, train=self.train, seed=self.seed))
        except BudgetExhausted:  # a budget too small for one trial leaves the run empty
            return


class RandomSearchAgent(FTAgent):
    """Random search: seeded random plans, validated and run in FT-Agent's loop until the budget ends."""

    def __init__(self, *, seed: int = 0, max_repairs: int = 3) -> None:
        super().__init__(planner=RandomPlanner(seed=seed), max_repairs=max_repairs)
        self.seed = seed
