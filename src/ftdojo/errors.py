"""The one exception tree of ftdojo.

Every error ftdojo raises on purpose derives from :class:`FTDojoError`. Where the
meaning matches a builtin, the error also subclasses it, so ``except ValueError``
keeps working for callers that do not know ftdojo::

    FTDojoError
    ├── ConfigError (ValueError)            a setting, plan or budget is invalid
    │   └── SchemaError                     data (a worker result, a record) does not fit its type
    │       └── PlanError                   a plan (often an LLM's) does not fit the schema
    ├── TaskError                           something about a task
    │   ├── UnknownTaskError (KeyError)     no task of that name in the registry
    │   └── TaskSpecError (ValueError)      a task definition or task folder is broken
    ├── DataError (ValueError)              raw data is missing, corrupt or unusable
    │   └── UnknownSourceError (KeyError)   no raw source with that id for this task
    ├── IntegrityError                      a checksum does not match what was stored
    ├── ModelError (OSError)                a model cannot be resolved, built or loaded
    ├── SandboxError (RuntimeError)         a child process could not be run as asked
    │   ├── SandboxTimeout (TimeoutError)   it ran past its wall-clock limit
    │   └── IsolationError                  the sandbox cannot isolate as strictly as asked
    ├── JobFailure                          a sandbox job ends itself with an error kind (sandbox.protocol)
    ├── ChartExecutorError (RuntimeError)   the chart scorer's executor failed (scoring.charts)
    ├── BudgetExhausted                     the run's budget is spent; no more trials
    ├── JournalError                        a run directory or journal is unreadable
    └── AgentError                          an agent broke the session protocol
        └── LLMError                        an LLM endpoint failed or never gave a valid answer

Failures *inside* a trial (a crash, a timeout, an out-of-memory kill, a NaN loss)
are not raised: they come back to the agent as :class:`ftdojo.Feedback` with an
error kind, so that a run goes on to its next trial.
"""

from __future__ import annotations

__all__ = [
    "AgentError",
    "BudgetExhausted",
    "ConfigError",
    "DataError",
    "FTDojoError",
    "IntegrityError",
    "IsolationError",
    "JournalError",
    "LLMError",
    "ModelError",
    "PlanError",
    "SandboxError",
    "SandboxTimeout",
    "SchemaError",
    "TaskError",
    "TaskSpecError",
    "UnknownSourceError",
    "UnknownTaskError",
]


class FTDojoError(Exception):
    """Base class of every error ftdojo raises on purpose."""


class ConfigError(FTDojoError, ValueError):
    """A setting, plan field or budget has an invalid value."""


class SchemaError(ConfigError):
    """Data does not fit the type it should build (see :func:`ftdojo.serialization.structure`).

    ``field`` names the offending field (dotted path) when it is known.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message if field is None else f"{field}: {message}")
        self.field = field


class PlanError(SchemaError):
    """A plan (or a part of one) does not fit the :class:`ftdojo.Plan` schema."""


class TaskError(FTDojoError):
    """Something is wrong with a task."""


class UnknownTaskError(TaskError, KeyError):
    """No task of that name is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TaskSpecError(TaskError, ValueError):
    """A task definition or bring-your-own task folder is broken."""


class DataError(FTDojoError, ValueError):
    """Raw data is missing, corrupt or unusable."""


class UnknownSourceError(DataError, KeyError):
    """No raw source with that id exists for the task."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class IntegrityError(FTDojoError):
    """Stored content does not match its recorded checksum."""


class ModelError(FTDojoError, OSError):
    """A model cannot be resolved, built or loaded."""


class SandboxError(FTDojoError, RuntimeError):
    """A child process could not be started or driven as asked."""


class SandboxTimeout(SandboxError, TimeoutError):
    """A child process ran past its wall-clock limit and was killed."""


class IsolationError(SandboxError):
    """The sandbox cannot give the isolation asked for (``Dojo(strict_isolation=True)``)."""


class BudgetExhausted(FTDojoError):
    """The run's budget (trials, wall time or trained tokens) is spent."""


class JournalError(FTDojoError):
    """A run directory or its journal cannot be read or written."""


class AgentError(FTDojoError):
    """An agent broke the session protocol (for example chose an unknown trial)."""


class LLMError(AgentError):
    """An LLM endpoint failed (timeout, rate limit, server error) or never gave a valid answer."""
