"""Name → task class, filled from the built-in suite and the ``ftdojo.tasks`` entry points.

Workers re-create a task from its name and constructor parameters, so a task class
must be importable by name in a fresh process: registration happens at import of
its module (built-ins) or through an entry point (plugins).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from ftdojo.errors import TaskSpecError, UnknownTaskError
from ftdojo.tasks.spec import TaskSpec

__all__ = [
    "HUB",
    "SUITE",
    "available_tasks",
    "get_task",
    "get_task_class",
    "register_task",
    "task_from_reference",
    "task_reference",
]

#: The built-in suite: 13 generated tasks in 5 domains, mirroring FT-Dojo's benchmark.
SUITE: dict[str, str] = {
    "math": "ftdojo.tasks.math:MathWordProblems",
    "patent_prior_art": "ftdojo.tasks.patent:PriorArtRetrieval",
    "patent_paragraph": "ftdojo.tasks.patent:ParagraphIdentification",
    "patent_novelty": "ftdojo.tasks.patent:NoveltyDecision",
    "chem_understanding": "ftdojo.tasks.chemistry:MoleculeUnderstanding",
    "chem_editing": "ftdojo.tasks.chemistry:MoleculeEditing",
    "chem_optimization": "ftdojo.tasks.chemistry:MoleculeOptimization",
    "chem_reaction": "ftdojo.tasks.chemistry:ReactionPrediction",
    "finance_exam": "ftdojo.tasks.finance:FinanceExam",
    "table_analysis": "ftdojo.tasks.tables:TableDataAnalysis",
    "table_fact_check": "ftdojo.tasks.tables:TableFactCheck",
    "table_numerical": "ftdojo.tasks.tables:TableNumericalReasoning",
    "table_visualization": "ftdojo.tasks.charts:TableVisualization",
}
#: The paper's own datasets, loaded from the Hugging Face hub (see ``docs/hub-tasks.md``).
HUB: dict[str, str] = {
    "hub_aime": "ftdojo.tasks.hub.math:HubAimeMath",
    "hub_patent_prior_art": "ftdojo.tasks.hub.patent:HubPatentPriorArt",
    "hub_patent_paragraph": "ftdojo.tasks.hub.patent:HubPatentParagraph",
    "hub_patent_novelty": "ftdojo.tasks.hub.patent:HubPatentNovelty",
    "hub_chem_understanding": "ftdojo.tasks.hub.chemistry:HubChemUnderstanding",
    "hub_chem_editing": "ftdojo.tasks.hub.chemistry:HubChemEditing",
    "hub_chem_optimization": "ftdojo.tasks.hub.chemistry:HubChemOptimization",
    "hub_chem_reaction": "ftdojo.tasks.hub.chemistry:HubChemReaction",
    "hub_finance_exam": "ftdojo.tasks.hub.finance:HubFinanceIQExam",
    "hub_table_analysis": "ftdojo.tasks.hub.tables:HubTableDataAnalysis",
    "hub_table_fact_check": "ftdojo.tasks.hub.tables:HubTableFactCheck",
    "hub_table_numerical": "ftdojo.tasks.hub.tables:HubTableNumericalReasoning",
    "hub_table_visualization": "ftdojo.tasks.hub.tables:HubTableVisualization",
}
_registry: dict[str, str] = {**SUITE, **HUB}
_plugins_loaded = False


def register_task(name: str, import_path: str) -> None:
    """Register ``module:Class`` under ``name`` (a later registration replaces an earlier one)."""
    if ":" not in import_path:
        raise TaskSpecError(f"task {name!r}: import path must look like 'module:Class', got {import_path!r}")
    _registry[name] = import_path


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group="ftdojo.tasks"):
        _registry.setdefault(ep.name, ep.value)


def available_tasks() -> tuple[str, ...]:
    _load_plugins()
    return tuple(sorted(_registry))


def _load_class(name: str, import_path: str) -> type[TaskSpec]:
    module_name, _, attr = import_path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise TaskSpecError(f"task {name!r}: cannot import {import_path}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, TaskSpec)):
        raise TaskSpecError(f"task {name!r}: {import_path} is not a TaskSpec subclass")
    return cls


def get_task_class(name: str) -> type[TaskSpec]:
    """The class registered under ``name`` (its card attributes need no instance)."""
    _load_plugins()
    if name not in _registry:
        raise UnknownTaskError(f"no task named {name!r}; known tasks: {', '.join(available_tasks())}")
    return _load_class(name, _registry[name])


def get_task(name: str, **params: Any) -> TaskSpec:
    """A task instance from its registered name and constructor parameters."""
    cls = get_task_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise TaskSpecError(f"task {name!r}: bad parameters {params!r}: {exc}") from exc


def task_reference(task: TaskSpec) -> dict[str, Any]:
    """What a worker needs to re-create ``task``: name, class import path and constructor parameters.

    The import path lets a worker re-create a task that is not registered under its name
    in a fresh process (a folder task, or one registered at run time by user code).
    """
    cls = type(task)
    return {
        "name": task.name,
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "params": dict(task.params),
    }


def task_from_reference(reference: dict[str, Any]) -> TaskSpec:
    """The task a :func:`task_reference` describes."""
    name = reference["name"]
    params = reference.get("params", {})
    import_path = reference.get("class")
    _load_plugins()
    if import_path is None or _registry.get(name) == import_path:
        return get_task(name, **params)
    cls = _load_class(name, import_path)
    try:
        return cls(**params)
    except TypeError as exc:
        raise TaskSpecError(f"task {name!r}: bad parameters {params!r}: {exc}") from exc
