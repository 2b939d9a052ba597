"""What the Dojo tells the agent about a trial, in four levels.

* execution — did it run, where did it stop, what kind of failure, a short root cause;
* data — what the build kept and dropped at each step, lengths, duplicates;
* training — the loss curve, gradient norms, throughput;
* evaluation — the validation score, per-category scores, format compliance, and up
  to ten validation error samples.

Nothing here ever carries the test split: the held-out score lives only in the
journal and the :class:`ftdojo.RunResult`.
"""

from __future__ import annotations

import enum
import math

import attrs

from ftdojo.errors import SchemaError

__all__ = [
    "DataFeedback",
    "ErrorKind",
    "ErrorSample",
    "EvaluationFeedback",
    "ExecutionFeedback",
    "Feedback",
    "LossPoint",
    "Stage",
    "StepCount",
    "TrainingFeedback",
]


class ErrorKind(str, enum.Enum):
    """Why a trial failed, in the classes the reference system uses."""

    CONFIG = "CONFIG"  #: the plan or its configuration cannot work
    OOM = "OOM"  #: out of memory (a limit was hit or the kernel killed the process)
    DATA = "DATA"  #: the data build failed or produced nothing usable
    ENV = "ENV"  #: the environment: a crash, a missing library, an unreadable model
    TIMEOUT = "TIMEOUT"  #: the stage ran past its wall-clock limit
    DIVERGED = "DIVERGED"  #: the loss became NaN or infinite
    VIOLATION = "VIOLATION"  #: the trial tried to cross the sandbox (see RunResult.violations)
    DISK = "DISK"  #: the job's folders grew past their disk quota


class Stage(str, enum.Enum):
    """The sandboxed stages of a trial, in order."""

    BUILD = "build"
    TRAIN = "train"
    EVALUATE = "evaluate"


@attrs.frozen(kw_only=True)
class ExecutionFeedback:
    ok: bool
    #: The stage that failed, or ``None`` when the trial ran through.
    failed_stage: Stage | None = None
    error_kind: ErrorKind | None = None
    #: A short excerpt that names the root cause (the last exception, not the whole log).
    root_cause: str = ""
    exit_code: int | None = None
    duration_s: float = 0.0
    stage_seconds: dict[str, float] = attrs.field(factory=dict)
    peak_memory_mb: dict[str, float] = attrs.field(factory=dict)
    #: How each stage's worker was started: ``"fork"`` (from the preloaded fork server, no
    #: import cost) or ``"spawn"`` (a fresh interpreter); why a fork was not possible is
    #: in ``warnings``.
    launch: dict[str, str] = attrs.field(factory=dict)
    warnings: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class StepCount:
    """Records entering and leaving one step of the data build."""

    step: str
    records_in: int
    records_out: int


@attrs.frozen(kw_only=True)
class DataFeedback:
    records: int
    tokens: int
    steps: tuple[StepCount, ...] = ()
    per_source: dict[str, int] = attrs.field(factory=dict)
    duplicates_removed: int = 0
    #: Records dropped because they were longer than the training ``max_length``.
    too_long_dropped: int = 0
    failed_verification: int = 0
    #: Per source, records whose answer was checked, and of those, failed (``verified_only``).
    verified_per_source: dict[str, int] = attrs.field(factory=dict)
    failed_verification_per_source: dict[str, int] = attrs.field(factory=dict)
    length_p50: float = 0.0
    length_p99: float = 0.0
    length_max: int = 0
    template: str = ""
    #: Hash of the template text; the evaluator refuses a model trained with another.
    template_hash: str = ""


@attrs.frozen(kw_only=True)
class LossPoint:
    step: int
    loss: float
    learning_rate: float | None = None
    grad_norm: float | None = None


@attrs.frozen(kw_only=True)
class TrainingFeedback:
    steps: int
    epochs: float
    tokens_trained: int
    losses: tuple[LossPoint, ...] = ()
    tokens_per_second: float = 0.0
    trainable_parameters: int = 0
    total_parameters: int = 0
    diverged: bool = False
    stopped_early_reason: str = ""

    @property
    def first_loss(self) -> float | None:
        return self.losses[0].loss if self.losses else None

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1].loss if self.losses else None


@attrs.frozen(kw_only=True)
class ErrorSample:
    """A validation item the model got wrong, shown to the agent."""

    prompt: str
    expected: str
    output: str
    prediction: str | None
    category: str = ""


@attrs.frozen(kw_only=True)
class EvaluationFeedback:
    metric: str
    score: float
    n: int
    secondary: dict[str, float] = attrs.field(factory=dict)
    per_category: dict[str, float] = attrs.field(factory=dict)
    #: Share of outputs from which an answer in the required format could be read.
    format_compliance: float = 0.0
    errors: tuple[ErrorSample, ...] = ()
    samples_per_second: float = 0.0

    def __attrs_post_init__(self) -> None:
        if not (math.isfinite(self.score) and 0.0 <= self.score <= 1.0):
            raise SchemaError(f"must be in [0, 1], got {self.score!r}", field="score")


@attrs.frozen(kw_only=True)
class Feedback:
    """Everything the agent learns about one trial."""

    trial_id: str
    execution: ExecutionFeedback
    data: DataFeedback | None = None
    training: TrainingFeedback | None = None
    evaluation: EvaluationFeedback | None = None

    @property
    def ok(self) -> bool:
        return self.execution.ok

    @property
    def score(self) -> float | None:
        """The validation score, or ``None`` when the trial did not reach evaluation."""
        return self.evaluation.score if self.evaluation is not None else None
