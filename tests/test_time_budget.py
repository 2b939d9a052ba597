"""A trial that would outrun the time budget stops training in time and is still evaluated."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftdojo import Budget, DataRecipe, Dojo, Plan, SourceSelection, TrainConfig
from ftdojo.testing import ScriptedAgent

pytestmark = pytest.mark.anyio


async def test_training_stops_at_the_soft_deadline_and_the_trial_keeps_its_model(
    ftdojo_home: Path, tmp_path: Path
) -> None:
    # 50 epochs of 400 records would take minutes; the budget is 80 seconds.
    plan = Plan(
        data=DataRecipe(sources=[SourceSelection(source="worked_solutions")], max_records=400),
        train=TrainConfig(method="full", learning_rate=1e-3, epochs=50.0, batch_size=8, max_length=256),
    )
    agent = ScriptedAgent([plan])
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny", threads=2)
    result = await dojo.run("math", agent, budget=Budget(max_trials=1, max_seconds=80))
    [feedback] = agent.feedback
    assert feedback.ok, feedback.execution.root_cause
    assert feedback.training is not None
    assert feedback.training.stopped_early_reason.startswith("time budget reached")
    assert feedback.training.epochs < 50
    assert feedback.evaluation is not None  # evaluated within the budget
    assert result.final_trial_id == "t001"
    assert (Path(result.run_dir) / "trials" / "t001" / "model").is_dir()
