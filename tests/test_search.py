"""The search planners: seeded random search and TPE over one data-and-training space."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftdojo import (
    EvaluationFeedback,
    ExecutionFeedback,
    Feedback,
    Plan,
    Trial,
)
from ftdojo.agent import (
    FTAgent,
    RandomPlanner,
    RandomSearchAgent,
    RuleAnalyzer,
    RulePlanner,
    SearchSpace,
    TPEPlanner,
    TrialTree,
)
from ftdojo.errors import ConfigError
from test_planner import BIG, CATALOG, TINY, _context  # tests/ is on sys.path (rootdir-less test files)


def _run(memory: TrialTree, plan: Plan, score: float | None) -> Trial:
    trial_id = f"t{len(memory.trials) + 1:03d}"
    feedback = Feedback(
        trial_id=trial_id,
        execution=ExecutionFeedback(ok=score is not None),
        evaluation=None if score is None else EvaluationFeedback(metric="accuracy", score=score, n=100),
    )
    trial = Trial(trial_id=trial_id, plan=plan, feedback=feedback, started_at=0, finished_at=1)
    memory.record(trial, RuleAnalyzer().analyze(trial, None))
    return trial


@pytest.mark.parametrize("model", [TINY, BIG], ids=["full", "lora"])
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_a_sampled_point_makes_a_plan_that_reads_back_to_it(model, seed: int) -> None:  # type: ignore[no-untyped-def]
    space = SearchSpace.for_context(_context(TrialTree(), model=model))
    params = space.sample(random.Random(seed))
    plan = space.plan(params, hypothesis="h")
    assert plan.train.method == ("full" if model is TINY else "lora")
    back = space.params(plan)
    assert back is not None
    if not any(params[f"use:{s}"] for s in space.sources):
        # No source switched on means every source.
        params = {**params, **{f"use:{s}": True for s in space.sources}}
    assert back == params


def test_a_plan_from_elsewhere_lies_outside_the_space() -> None:
    context = _context(TrialTree())
    space = SearchSpace.for_context(context)
    rule_plan = RulePlanner().propose(context)
    assert rule_plan is not None
    # The rule planner's first plan keeps 2000 records (a search choice) but trains 3
    # epochs with its own warm-up: outside only if something differs from the space's plan.
    inside = space.params(rule_plan)
    if inside is not None:
        assert space.plan(inside, hypothesis=rule_plan.hypothesis) == rule_plan
    odd = attrs.evolve(rule_plan, data=attrs.evolve(rule_plan.data, max_records=1234))
    assert space.params(odd) is None
    assert (
        space.params(attrs.evolve(rule_plan, data=attrs.evolve(rule_plan.data, transform_code="x"))) is None
    )


def test_a_point_missing_a_parameter_or_out_of_range_is_a_config_error() -> None:
    space = SearchSpace.for_context(_context(TrialTree()))
    params = space.sample(random.Random(0))
    with pytest.raises(ConfigError, match="'batch_size' is missing"):
        space.plan({k: v for k, v in params.items() if k != "batch_size"}, hypothesis="h")
    with pytest.raises(ConfigError, match="'learning_rate'"):
        space.plan({**params, "learning_rate": 5.0}, hypothesis="h")
    with pytest.raises(ConfigError, match="true or false"):
        space.plan({**params, "dedupe": "yes"}, hypothesis="h")


@pytest.mark.parametrize("planner_type", [RandomPlanner, TPEPlanner])
def test_search_is_seeded_and_never_repeats_a_plan(planner_type) -> None:  # type: ignore[no-untyped-def]
    def proposals(seed: int) -> list[Plan]:
        memory = TrialTree()
        planner = planner_type(seed=seed)
        plans = []
        for k in range(6):
            plan = planner.propose(_context(memory))
            assert plan is not None
            plans.append(plan)
            _run(memory, plan, score=(k % 3) / 10)
        return plans

    first, again, other = proposals(1), proposals(1), proposals(2)
    assert first == again
    assert first != other
    assert len({p.fingerprint() for p in first}) == len(first)
    for plan in first:
        assert {s.source for s in plan.data.sources} <= set(CATALOG.source_ids)


@pytest.mark.parametrize("planner_type", [RandomPlanner, TPEPlanner])
def test_search_fits_each_plan_to_its_share_of_the_budget(planner_type) -> None:  # type: ignore[no-untyped-def]
    plan = planner_type(seed=0).propose(_context(TrialTree(), tokens=50_000, trials=2))
    assert plan is not None
    # The catalogue's mean tokens per record (40 per field), plus half the template allowance.
    per_record = [40 * len(CATALOG[s.source].fields) + 24 for s in plan.data.sources]
    records = min(plan.data.max_records, 1000 * len(plan.data.sources))
    # Even split for search: half of the 50K for each of the 2 trials left.
    tokens = plan.train.epochs * records * sum(per_record) / len(per_record)
    assert tokens <= 25_000 * 1.03


def test_tpe_learns_from_the_trials_in_memory() -> None:
    """Trials that scored well pull TPE's proposals towards their settings."""
    memory = TrialTree()
    space = SearchSpace.for_context(_context(memory))
    rng = random.Random(7)
    # 30 finished trials: the score is high exactly when the clean 'worked' source is used
    # and the off-domain 'trivia' is not.
    for _ in range(30):
        params = space.sample(rng)
        plan = space.plan(params, hypothesis="seen")
        if memory.tried(plan):
            continue
        used = {s.source for s in plan.data.sources}
        good = "worked" in used and "trivia" not in used
        _run(memory, plan, score=0.9 if good else 0.1)
    proposals = []
    planner = TPEPlanner(seed=3)
    for _ in range(12):
        plan = planner.propose(_context(memory))
        assert plan is not None
        proposals.append(plan)
        memory.mark_tried(plan)
    with_worked = sum("worked" in {s.source for s in p.data.sources} for p in proposals)
    without_trivia = sum("trivia" not in {s.source for s in p.data.sources} for p in proposals)
    # Uniform sampling would give about half for each.
    assert with_worked >= 9
    assert without_trivia >= 9


def test_tpe_keeps_its_study_in_a_file_when_asked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import optuna

    memory = TrialTree()
    path = tmp_path / "study.log"
    planner = TPEPlanner(seed=0, study_path=path)
    for k in range(3):
        plan = planner.propose(_context(memory))
        assert plan is not None
        _run(memory, plan, score=k / 10)
    planner.propose(_context(memory))
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    study = optuna.load_study(study_name="ftdojo-math", storage=storage)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.value for t in finished) == [0.0, 0.1, 0.2]


def test_a_failed_trial_counts_as_zero_and_outside_plans_are_skipped() -> None:
    memory = TrialTree()
    context = _context(memory)
    rule_plan = RulePlanner().propose(context)
    assert rule_plan is not None
    _run(memory, attrs.evolve(rule_plan, data=attrs.evolve(rule_plan.data, max_records=1234)), score=0.5)
    plan = TPEPlanner(seed=0).propose(_context(memory))
    assert plan is not None
    _run(memory, plan, score=None)
    study = TPEPlanner(seed=0)._study(SearchSpace.for_context(context), _context(memory))
    assert [t.value for t in study.trials] == [0.0]


def test_random_search_agent_is_ft_agent_with_a_random_planner() -> None:
    agent = RandomSearchAgent(seed=4)
    assert isinstance(agent, FTAgent)
    assert isinstance(agent.planner, RandomPlanner)
    assert agent.planner.seed == 4


@pytest.mark.parametrize(
    "planner", [RulePlanner(seed=5), RandomPlanner(seed=5), TPEPlanner(seed=5)], ids=["rule", "random", "tpe"]
)
def test_a_planners_seed_seeds_data_sampling_and_training(planner) -> None:  # type: ignore[no-untyped-def]
    plan = planner.propose(_context(TrialTree()))
    assert plan is not None
    assert plan.data.seed == 5
    assert plan.train.seed == 5


def test_ft_agent_seeds_its_default_planner() -> None:
    agent = FTAgent(seed=9)
    assert isinstance(agent.planner, RulePlanner)
    assert agent.planner.seed == 9
