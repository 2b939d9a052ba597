"""ftdojo: an environment and a reference agent for autonomous LLM fine-tuning.

    import anyio
    from ftdojo import Budget, Dojo, FTAgent

    result = anyio.run(lambda: Dojo().run("math", FTAgent(), budget=Budget(max_trials=3)))
    print(result.validation_score, result.test_score)

``import ftdojo`` stays light: torch, transformers and peft are imported only in the
sandbox workers that train and evaluate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftdojo._version import __version__

if TYPE_CHECKING:
    from ftdojo.agent import FTAgent
    from ftdojo.cards import CatalogEntry, DataCatalog, TaskCard, TokenStats
    from ftdojo.dojo import Dojo, RunEvents
    from ftdojo.errors import (
        AgentError,
        BudgetExhausted,
        ConfigError,
        DataError,
        FTDojoError,
        IntegrityError,
        IsolationError,
        JournalError,
        LLMError,
        ModelError,
        PlanError,
        SandboxError,
        SandboxTimeout,
        SchemaError,
        TaskError,
        TaskSpecError,
        UnknownSourceError,
        UnknownTaskError,
    )
    from ftdojo.feedback import (
        DataFeedback,
        ErrorKind,
        ErrorSample,
        EvaluationFeedback,
        ExecutionFeedback,
        Feedback,
        LossPoint,
        Stage,
        StepCount,
        TrainingFeedback,
    )
    from ftdojo.models import ModelInfo
    from ftdojo.pipeline import StageLimits
    from ftdojo.plans import DataRecipe, Plan, SourceSelection, TrainConfig
    from ftdojo.results import (
        BaselineResult,
        Budget,
        BudgetLeft,
        BudgetUsage,
        Rejection,
        RunResult,
        Trial,
        Violation,
    )
    from ftdojo.sandbox.isolation import Isolation
    from ftdojo.sandbox.untrusted import UntrustedAgent
    from ftdojo.session import Agent, Session
    from ftdojo.tasks.spec import Task

# Names resolve on first use: the sandbox worker imports this package before it
# applies its memory limit, and a script that needs only the types should not pay
# for the agent and the Dojo.
_LAZY = {
    "Agent": "ftdojo.session",
    "AgentError": "ftdojo.errors",
    "BaselineResult": "ftdojo.results",
    "Budget": "ftdojo.results",
    "BudgetExhausted": "ftdojo.errors",
    "BudgetLeft": "ftdojo.results",
    "BudgetUsage": "ftdojo.results",
    "CatalogEntry": "ftdojo.cards",
    "ConfigError": "ftdojo.errors",
    "DataCatalog": "ftdojo.cards",
    "DataError": "ftdojo.errors",
    "DataFeedback": "ftdojo.feedback",
    "DataRecipe": "ftdojo.plans",
    "Dojo": "ftdojo.dojo",
    "ErrorKind": "ftdojo.feedback",
    "ErrorSample": "ftdojo.feedback",
    "EvaluationFeedback": "ftdojo.feedback",
    "ExecutionFeedback": "ftdojo.feedback",
    "FTAgent": "ftdojo.agent",
    "FTDojoError": "ftdojo.errors",
    "Feedback": "ftdojo.feedback",
    "IntegrityError": "ftdojo.errors",
    "IsolationError": "ftdojo.errors",
    "Isolation": "ftdojo.sandbox.isolation",
    "JournalError": "ftdojo.errors",
    "LLMError": "ftdojo.errors",
    "LossPoint": "ftdojo.feedback",
    "ModelError": "ftdojo.errors",
    "ModelInfo": "ftdojo.models",
    "Plan": "ftdojo.plans",
    "PlanError": "ftdojo.errors",
    "Rejection": "ftdojo.results",
    "RunEvents": "ftdojo.dojo",
    "RunResult": "ftdojo.results",
    "Violation": "ftdojo.results",
    "UntrustedAgent": "ftdojo.sandbox.untrusted",
    "SandboxError": "ftdojo.errors",
    "SandboxTimeout": "ftdojo.errors",
    "SchemaError": "ftdojo.errors",
    "Session": "ftdojo.session",
    "SourceSelection": "ftdojo.plans",
    "Stage": "ftdojo.feedback",
    "StageLimits": "ftdojo.pipeline",
    "StepCount": "ftdojo.feedback",
    "Task": "ftdojo.tasks.spec",
    "TaskCard": "ftdojo.cards",
    "TaskError": "ftdojo.errors",
    "TaskSpecError": "ftdojo.errors",
    "TokenStats": "ftdojo.cards",
    "TrainConfig": "ftdojo.plans",
    "TrainingFeedback": "ftdojo.feedback",
    "Trial": "ftdojo.results",
    "UnknownSourceError": "ftdojo.errors",
    "UnknownTaskError": "ftdojo.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ftdojo' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Agent",
    "AgentError",
    "BaselineResult",
    "Budget",
    "BudgetExhausted",
    "BudgetLeft",
    "BudgetUsage",
    "CatalogEntry",
    "ConfigError",
    "DataCatalog",
    "DataError",
    "DataFeedback",
    "DataRecipe",
    "Dojo",
    "ErrorKind",
    "ErrorSample",
    "EvaluationFeedback",
    "ExecutionFeedback",
    "FTAgent",
    "FTDojoError",
    "Feedback",
    "IntegrityError",
    "Isolation",
    "IsolationError",
    "JournalError",
    "LLMError",
    "LossPoint",
    "ModelError",
    "ModelInfo",
    "Plan",
    "PlanError",
    "Rejection",
    "RunEvents",
    "RunResult",
    "SandboxError",
    "SandboxTimeout",
    "SchemaError",
    "Session",
    "SourceSelection",
    "Stage",
    "StageLimits",
    "StepCount",
    "Task",
    "TaskCard",
    "TaskError",
    "TaskSpecError",
    "TokenStats",
    "TrainConfig",
    "TrainingFeedback",
    "Trial",
    "UnknownSourceError",
    "UnknownTaskError",
    "UntrustedAgent",
    "Violation",
    "__version__",
]
