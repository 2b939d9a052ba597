"""FT-Agent on the math task with the tiny model: it must beat the base model, and the
held-out test split must never reach the agent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from ftdojo import Budget, Dojo, FTAgent
from ftdojo.serialization import unstructure
from ftdojo.testing import ObservingAgent

pytestmark = pytest.mark.anyio


def _as_text(obj: Any) -> str:
    """Everything an object holds, as text, whatever its type."""
    if attrs.has(type(obj)):
        return json.dumps(unstructure(obj), default=repr)
    if isinstance(obj, (list, tuple)):
        return "\n".join(_as_text(o) for o in obj)
    if hasattr(obj, "read"):  # a raw source handle: read what the agent could read
        return repr(obj)
    return repr(obj)


async def test_ftagent_beats_the_base_model_and_never_sees_the_test_split(
    ftdojo_home: Path, tmp_path: Path
) -> None:
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny", threads=2)
    agent = ObservingAgent(FTAgent())
    result = await dojo.run(
        "math",
        agent,
        budget=Budget(max_trials=2, max_seconds=1200, max_train_tokens=900_000),
        with_baseline=True,
    )

    assert result.baseline is not None
    assert result.final_trial_id is not None
    assert result.validation_score is not None
    assert result.test_score is not None
    assert result.validation_score > result.baseline.validation_score
    assert result.test_score > result.baseline.test_score
    # The agent's plans are a tree: the second trial refines the first.
    assert result.trials[1].plan.parent == "t001"

    # Walk every observation and feedback the agent received and search it.
    prepared = next(iter(dojo._prepared.values()))
    test_path = dojo._evaluator._split_path(prepared.task, "test")
    validation_path = dojo._evaluator._split_path(prepared.task, "validation")
    test_items = [json.loads(line) for line in test_path.read_text().splitlines()]
    seen = "\n".join(_as_text(o) for o in agent.seen)
    assert seen, "the agent observed nothing?"
    assert str(test_path) not in seen
    assert str(test_path.parent) not in seen
    leaked = [item["prompt"] for item in test_items if item["prompt"].split("\n")[0] in seen]
    assert leaked == []
    # Validation error samples do reach the agent (they are meant to).
    validation_prompts = [json.loads(line)["prompt"] for line in validation_path.read_text().splitlines()]
    assert any(p.split("\n")[0] in seen for p in validation_prompts)

    # The tree of trials is in the journal: each trial with its diagnosis.
    from ftdojo.agent import Diagnosis, RuleAnalyzer
    from ftdojo.serialization import structure

    assert set(result.annotations) == {"t001", "t002"}
    first = structure(result.annotations["t001"]["diagnosis"], Diagnosis)
    assert first == RuleAnalyzer().analyze(result.trials[0], None)

    # A resumed FT-Agent continues from the journal: the same tree, diagnoses included,
    # and no trial run twice (the budget is spent, so it runs none).
    class _PoisonedAnalyzer(RuleAnalyzer):
        def analyze(self, trial: Any, parent: Any) -> Any:
            raise AssertionError("a journalled diagnosis must be reused, not recomputed")

    resumed_agent = FTAgent(analyzer=_PoisonedAnalyzer())
    resumed = await dojo.run(
        "math",
        resumed_agent,
        budget=Budget(max_trials=2, max_seconds=1200, max_train_tokens=900_000),
        run_id=result.run_id,
    )
    assert [t.trial_id for t in resumed.trials] == ["t001", "t002"]
    assert [t.trial_id for t in resumed_agent.memory.trials] == ["t001", "t002"]
    assert resumed_agent.memory.diagnosis("t001") == first
    assert resumed.test_score == result.test_score
