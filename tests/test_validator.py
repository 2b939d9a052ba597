"""Fail-fast validation: static checks and the projected cost of the trial a rejection saves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from ftdojo import Budget, BudgetUsage, DataRecipe, Plan, SourceSelection, TrainConfig
from ftdojo.agent import FailFastValidator
from ftdojo.agent.planner import PARAMETER_TOKENS_PER_SECOND
from ftdojo.agent.validator import projected_seconds, projected_tokens, static_problems
from test_planner import CATALOG, TINY  # tests/ is on sys.path (rootdir-less test files)


@attrs.define
class _Session:
    """The parts of a session the static checks read (no smoke run is asked for here)."""

    catalog: Any = CATALOG
    model: Any = TINY
    budget_left: BudgetUsage = attrs.field(
        factory=lambda: BudgetUsage(trials=3, seconds=600.0, train_tokens=-1)
    )
    history: tuple[Any, ...] = ()


def _plan(source: str = "worked", **train: Any) -> Plan:
    return Plan(
        data=DataRecipe(sources=(SourceSelection(source=source),), max_records=500),
        train=TrainConfig(method="full", **train),
    )


def test_a_bad_plan_is_rejected_in_well_under_a_second_with_the_trial_it_saves() -> None:
    plan = _plan("nowhere", max_length=4096)
    verdict = anyio.run(FailFastValidator(smoke="never").validate, plan, _Session())
    assert not verdict.ok
    assert any("no source 'nowhere'" in r for r in verdict.reasons)
    assert any("exceeds the model's context of 512" in r for r in verdict.reasons)
    assert verdict.seconds < 0.5
    assert verdict.projected_seconds is None  # an unknown source has no size


def test_the_projection_uses_the_catalogue_and_a_throughput_prior() -> None:
    plan = _plan(epochs=2.0)
    session = _Session()
    tokens = 500 * (3 * 40.0) * 2.0  # records x (three fields of 40 tokens) x epochs
    assert projected_tokens(plan, session) == pytest.approx(tokens)
    throughput = PARAMETER_TOKENS_PER_SECOND / TINY.parameters
    assert projected_seconds(plan, session) == pytest.approx(tokens / throughput / 0.7)
    verdict = anyio.run(FailFastValidator(smoke="never").validate, plan, session)
    assert verdict.ok
    assert verdict.projected_seconds == pytest.approx(tokens / throughput / 0.7)
    assert verdict.seconds < verdict.projected_seconds


def test_the_projection_never_exceeds_the_token_budget_left() -> None:
    session = _Session(budget_left=BudgetUsage(trials=3, seconds=600.0, train_tokens=1000))
    assert projected_tokens(_plan(epochs=4.0), session) == 1000
    problems = static_problems(_plan(epochs=4.0), session)
    assert any("only 1,000 are left" in p for p in problems)


class _OnePlanPlanner:
    """Proposes one plan unless memory says it was tried (as RulePlanner does)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.proposed = 0

    def propose(self, context: Any) -> Plan | None:
        if context.memory.tried(self.plan):
            return None
        self.proposed += 1
        return self.plan


@pytest.mark.anyio
async def test_rejections_are_journalled_with_their_cost_and_survive_a_resume(
    ftdojo_home: Path, tmp_path: Path
) -> None:
    from ftdojo import Dojo, FTAgent, Rejection

    bad = Plan(data=DataRecipe(sources=[SourceSelection(source="nowhere")]), train=TrainConfig(method="full"))
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny")
    planner = _OnePlanPlanner(bad)
    result = await dojo.run("math", FTAgent(planner=planner), budget=Budget(max_trials=2, max_seconds=600))
    assert result.trials == ()
    assert planner.proposed == 1
    [rejection] = result.rejections
    assert isinstance(rejection, Rejection)
    assert rejection.plan == bad
    assert any("no source 'nowhere'" in r for r in rejection.reasons)
    assert 0 <= rejection.seconds < 0.5
    journal = [json.loads(line) for line in (Path(result.run_dir) / "journal.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in journal].count("rejection") == 1

    # A resumed agent knows the plan was rejected and does not validate it again.
    resumed_planner = _OnePlanPlanner(bad)
    resumed = await dojo.run(
        "math",
        FTAgent(planner=resumed_planner),
        budget=Budget(max_trials=2, max_seconds=600),
        run_id=result.run_id,
    )
    assert resumed_planner.proposed == 0
    assert resumed.rejections == result.rejections


def test_a_rejection_says_what_it_saved() -> None:
    from ftdojo import Rejection

    plan = _plan()
    assert Rejection(plan=plan, reasons=("x",), seconds=2.0, projected_seconds=90.0).seconds_saved == 88.0
    assert Rejection(plan=plan, reasons=("x",), seconds=2.0).seconds_saved is None
