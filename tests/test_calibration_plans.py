"""The hand-tuned calibration plans in ``benchmarks/calibration/`` stay valid for the suite.

The calibration takes hours, so a plan that names a source a task no longer has, or a
recipe or training field that does not exist, must fail here and not an hour into a run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

from ftdojo import DataRecipe, SourceSelection, TrainConfig
from ftdojo.tasks.registry import SUITE, get_task

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
MODELS = ("tiny", "smollm2-135m")


def _calibrate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ftdojo_calibrate", BENCHMARKS / "calibrate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # attrs classes in the module look themselves up here
    spec.loader.exec_module(module)
    return module


CALIBRATE = _calibrate()
BEST: dict[str, dict[str, Any]] = CALIBRATE.load_best()


def test_every_suite_task_has_a_hand_tuned_plan() -> None:
    assert sorted(BEST) == sorted(SUITE)


@pytest.mark.parametrize("task", SUITE)
def test_each_plan_builds_a_valid_recipe_and_training_config(task: str) -> None:
    sources = {source.source_id for source in get_task(task).raw_sources()}
    overrides = BEST[task].get("train", {})
    assert set(overrides) <= set(MODELS), f"{task}: training overrides for unknown models {set(overrides)}"
    for model in MODELS:
        recipe = CALIBRATE.recipe_for(BEST[task], model)
        assert set(recipe["sources"]) <= sources, (
            f"{task}: unknown sources {set(recipe['sources']) - sources}"
        )
        knobs = {k: v for k, v in recipe.items() if k != "sources"}
        DataRecipe(sources=tuple(SourceSelection(source=s) for s in recipe["sources"]), **knobs)
        attrs.evolve(TrainConfig(), **overrides.get(model, {}))


def test_a_model_recipe_overrides_only_its_own_model() -> None:
    best = {"sources": ["a"], "max_records": 3000, "recipe": {"tiny": {"max_records": 10}}}
    assert CALIBRATE.recipe_for(best, "tiny") == {"sources": ["a"], "max_records": 10}
    assert CALIBRATE.recipe_for(best, "smollm2-135m") == {"sources": ["a"], "max_records": 3000}
