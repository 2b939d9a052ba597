"""A trial as stages: build the data, train, check the artifacts, validate.

:class:`TrialPipeline` reads top to bottom, one method per stage, each a sandboxed job
(the artifact check runs here, on files, before anything loads them). A
:class:`StageLedger` gathers what every stage cost (seconds, peak memory, how its job
was launched, warnings) and the feedback levels as they arrive, and builds the one
:class:`~ftdojo.feedback.ExecutionFeedback` of the trial. A stage that fails raises
:class:`_StageFailed` with the trial's feedback, so the failure carries every level
gathered before it: a trial failure is data, never an exception out of the pipeline.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import attrs

from ftdojo.artifacts import check_model_artifacts
from ftdojo.budget import BudgetClock
from ftdojo.cards import DataCatalog
from ftdojo.errors import SchemaError
from ftdojo.evaluator import HeldOutEvaluator
from ftdojo.feedback import (
    DataFeedback,
    ErrorKind,
    EvaluationFeedback,
    ExecutionFeedback,
    Feedback,
    Stage,
    TrainingFeedback,
)
from ftdojo.jobs.contracts import BuildJob, BuildResult, EvalResult, TrainJob, TrainResult
from ftdojo.models import ModelInfo
from ftdojo.plans import Plan, TrainConfig
from ftdojo.results import Trial
from ftdojo.sandbox.backend import JobLauncher
from ftdojo.sandbox.isolation import FilesystemView
from ftdojo.sandbox.jobs import JobOutcome, Limits
from ftdojo.serialization import structure, unstructure
from ftdojo.tasks.registry import task_reference
from ftdojo.tasks.spec import TaskSpec

__all__ = [
    "JobEntries",
    "PreparedTask",
    "StageLedger",
    "StageLimits",
    "TrialPipeline",
    "TrialServices",
    "smoke_config",
    "stage_limits",
]

GiB = 2**30

_R = TypeVar("_R")

#: Called with the trial id, the stage and what the sandbox saw, for the run's journal.
ViolationRecorder = Callable[[str | None, Stage | None, Sequence[Mapping[str, Any]]], None]


@attrs.frozen(kw_only=True)
class StageLimits:
    """Per-stage sandbox limits; a stage never runs past the budget's wall time left."""

    build: Limits = attrs.field(factory=lambda: Limits(wall_seconds=600, memory_bytes=8 * GiB))
    train: Limits = attrs.field(factory=lambda: Limits(wall_seconds=4 * 3600, memory_bytes=16 * GiB))
    evaluate: Limits = attrs.field(factory=lambda: Limits(wall_seconds=3600, memory_bytes=16 * GiB))
    #: Records and optimiser steps of a smoke run (see :func:`smoke_config`).
    smoke_records: int = 100
    smoke_steps: int = 2
    eval_batch_size: int = 64
    error_samples: int = 10


@attrs.frozen(kw_only=True)
class JobEntries:
    """The job each sandboxed stage runs (``"package.module:function"``).

    The evaluate job is the held-out evaluator's own (:data:`ftdojo.evaluator.EVALUATE_ENTRY`)
    and cannot be replaced: it alone reads a split. Whatever a replaced trainer leaves is
    checked before anything loads it (see :mod:`ftdojo.artifacts`).
    """

    build: str = "ftdojo.jobs.build:build_data"
    train: str = "ftdojo.jobs.train:train"


@attrs.frozen
class PreparedTask:
    """A task made ready for a model: its catalogue, source files and model folder."""

    task: TaskSpec
    model_name: str
    model_path: Path
    info: ModelInfo
    catalog: DataCatalog
    source_paths: dict[str, str]


@attrs.frozen(kw_only=True)
class TrialServices:
    """What the Dojo lends every trial: its launcher, limits, jobs, views and evaluator."""

    launch: JobLauncher
    limits: StageLimits
    entries: JobEntries
    evaluator: HeldOutEvaluator
    #: The filesystem view of a build or train job with these writable folders.
    trial_view: Callable[[PreparedTask, Sequence[Path]], FilesystemView]
    threads: int | None = None


def stage_limits(base: Limits, seconds_left: float, threads: int | None) -> Limits:
    """``base`` within the wall time left (at least a second), with the Dojo's thread count."""
    wall = min(base.wall_seconds, seconds_left) if math.isfinite(seconds_left) else base.wall_seconds
    return attrs.evolve(base, wall_seconds=max(1.0, wall), threads=threads or base.threads)


def smoke_config(train: TrainConfig) -> TrainConfig:
    """The plan's training settings as a smoke run trains them.

    Each of its steps is one micro-batch (no gradient accumulation: it multiplies the
    cost, not the peak memory), and every step runs at the plan's peak learning rate
    (no warm-up, no decay). Its first batch holds the longest record (the trainer's
    length-grouped sampler puts it first), so the first step reaches the plan's peak
    memory and allocates the optimiser state; the second step's loss, taken after
    one update at the peak rate, tells the validator whether that rate is too high.
    With the plan's warm-up the first step would train at a rate near zero and the
    loss would say nothing.
    """
    return attrs.evolve(train, grad_accum=1, warmup_ratio=0.0, lr_scheduler="constant")


class _StageFailed(Exception):
    """Ends a pipeline early; carries the trial's feedback (never leaves this module)."""

    def __init__(self, feedback: Feedback) -> None:
        super().__init__(feedback.execution.root_cause)
        self.feedback = feedback


class StageLedger:
    """What each stage of one trial cost, and the feedback levels gathered so far."""

    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id
        self.started = time.monotonic()
        self.stage_seconds: dict[str, float] = {}
        self.peak_memory_mb: dict[str, float] = {}
        self.launch: dict[str, str] = {}
        self.warnings: list[str] = []
        self.data: DataFeedback | None = None
        self.training: TrainingFeedback | None = None
        self.evaluation: EvaluationFeedback | None = None

    def account(self, stage: Stage, outcome: JobOutcome) -> None:
        self.stage_seconds[stage.value] = round(outcome.duration_s, 3)
        if outcome.peak_memory_mb is not None:
            self.peak_memory_mb[stage.value] = round(outcome.peak_memory_mb, 1)
        self.launch[stage.value] = outcome.launch
        self.warnings.extend(outcome.warnings)
        if outcome.launch_note:
            self.warnings.append(f"{stage.value} job spawned, not forked: {outcome.launch_note}")

    def _feedback(self, execution: ExecutionFeedback) -> Feedback:
        return Feedback(
            trial_id=self.trial_id,
            execution=execution,
            data=self.data,
            training=self.training,
            evaluation=self.evaluation,
        )

    def failed(
        self, stage: Stage, outcome: JobOutcome | None, *, kind: ErrorKind | None = None, cause: str = ""
    ) -> Feedback:
        """The trial's feedback when ``stage`` failed (``outcome`` is its job, if one ran)."""
        return self._feedback(
            ExecutionFeedback(
                ok=False,
                failed_stage=stage,
                error_kind=kind or (outcome.error_kind if outcome else None) or ErrorKind.ENV,
                root_cause=cause or (outcome.root_cause if outcome else ""),
                exit_code=outcome.exit_code if outcome else None,
                duration_s=time.monotonic() - self.started,
                stage_seconds=self.stage_seconds,
                peak_memory_mb=self.peak_memory_mb,
                launch=self.launch,
                warnings=tuple(self.warnings),
            )
        )

    def succeeded(self) -> Feedback:
        return self._feedback(
            ExecutionFeedback(
                ok=True,
                duration_s=round(time.monotonic() - self.started, 3),
                stage_seconds=self.stage_seconds,
                peak_memory_mb=self.peak_memory_mb,
                launch=self.launch,
                warnings=tuple(self.warnings),
            )
        )


class TrialPipeline:
    """One trial, or one smoke run (``smoke=True``: ~100 records, a few steps, no evaluation)."""

    def __init__(
        self,
        *,
        plan: Plan,
        trial_id: str,
        smoke: bool,
        prepared: PreparedTask,
        run_dir: Path,
        clock: BudgetClock,
        earlier: Sequence[Trial],
        record_violations: ViolationRecorder,
        services: TrialServices,
        tags: Mapping[str, Any],
    ) -> None:
        self.plan = plan
        self.trial_id = trial_id
        self.smoke = smoke
        self.prepared = prepared
        self.run_dir = run_dir
        self.workspace = run_dir / "trials" / trial_id
        self.clock = clock
        self.earlier = earlier
        self.record_violations = record_violations
        self.services = services
        self.tags = dict(tags)
        self.ledger = StageLedger(trial_id)
        self._template = ""
        self._template_hash = ""

    async def run(self) -> Feedback:
        """Every stage in turn; the trial's feedback, failures included."""
        if self.workspace.exists():  # left over by a killed attempt that never reached the journal
            shutil.rmtree(self.workspace)
        self.workspace.mkdir(parents=True)
        try:
            await self.build()
            await self.train()
            if self.smoke:
                return self.ledger.succeeded()
            await self.check_artifacts()
            await self.validate()
        except _StageFailed as failure:
            return failure.feedback
        return self.ledger.succeeded()

    # -- the stages -------------------------------------------------------------------

    async def build(self) -> None:
        self._check_time(Stage.BUILD)
        services, prepared, workspace = self.services, self.prepared, self.workspace
        job = BuildJob(
            task=task_reference(prepared.task),
            sources=prepared.source_paths,
            source_formats={e.source_id: e.format for e in prepared.catalog.entries},
            recipe=self.plan.data,
            max_length=min(self.plan.train.max_length, prepared.info.context_length),
            model_path=str(prepared.model_path),
            output_dir=str(workspace / "data"),
            limit_records=services.limits.smoke_records if self.smoke else None,
        )
        outcome = await services.launch(
            services.entries.build,
            unstructure(job),
            Stage.BUILD,
            workspace / "build",
            self._limits(services.limits.build),
            self.tags,
            view=services.trial_view(prepared, (workspace / "build", workspace / "data")),
        )
        self._settle(Stage.BUILD, outcome)
        result = self._result(Stage.BUILD, outcome, BuildResult)
        self.ledger.data = result.data
        self._template, self._template_hash = result.template, result.template_hash

    async def train(self) -> None:
        self._check_time(Stage.TRAIN)
        services, prepared, workspace = self.services, self.prepared, self.workspace
        job = TrainJob(
            train=smoke_config(self.plan.train) if self.smoke else self.plan.train,
            data_path=str(workspace / "data" / "train.jsonl"),
            output_dir=str(workspace),
            model_path=str(prepared.model_path),
            max_train_tokens=self.clock.tokens_left(),
            stop_after_seconds=None if self.smoke else self._training_deadline(),
            max_steps=services.limits.smoke_steps if self.smoke else None,
            save=not self.smoke,
            threads=services.threads,
        )
        outcome = await services.launch(
            services.entries.train,
            unstructure(job),
            Stage.TRAIN,
            workspace / "train",
            self._limits(services.limits.train),
            self.tags,
            view=services.trial_view(prepared, (workspace,)),
        )
        # The training level comes from the result or, when the job failed after training
        # (a diverged loss), from the summary it sent before failing.
        summary = next((e for e in reversed(outcome.events) if e.get("type") == "training_summary"), None)
        if outcome.ok and outcome.result is not None:
            self.ledger.training = self._result(Stage.TRAIN, outcome, TrainResult).training
        elif summary is not None:
            self.ledger.training = structure(summary["training"], TrainingFeedback)
        if self.ledger.training is not None and not self.smoke:
            self.clock.tokens += self.ledger.training.tokens_trained
        self._settle(Stage.TRAIN, outcome)

    async def check_artifacts(self) -> None:
        """The saved model must be data derived from the base model before anything loads it."""
        problems = await anyio.to_thread.run_sync(
            check_model_artifacts, self.workspace / "model", self.prepared.model_path
        )
        if problems:
            self._crossed(
                Stage.EVALUATE, None, [{"kind": kind, "detail": detail} for kind, detail in problems]
            )

    async def validate(self) -> None:
        """Score the trained model on the validation split, in a Dojo-owned workspace
        outside the trial's folder."""
        self._check_time(Stage.EVALUATE)
        outcome = await self.services.evaluator.evaluate(
            self.prepared.task,
            "validation",
            model_path=self.prepared.model_path,
            trained_path=self.workspace / "model",
            template=self._template,
            template_hash=self._template_hash,
            workspace=self.run_dir / ".evaluator" / self.trial_id,
            seconds_left=self.clock.seconds_left(),
            tags=self.tags,
        )
        self._settle(Stage.EVALUATE, outcome)
        self.ledger.evaluation = self._result(Stage.EVALUATE, outcome, EvalResult).evaluation

    # -- helpers ------------------------------------------------------------------------

    def _limits(self, base: Limits) -> Limits:
        return stage_limits(base, self.clock.seconds_left(), self.services.threads)

    def _training_deadline(self) -> float | None:
        """When training should stop so that saving and evaluating still fit in the budget.

        The evaluation's share is what this run's evaluations took so far (a fifth of the
        time left before any), and saving gets a tenth of the rest; without a time budget
        there is no deadline beyond the stage's own limit.
        """
        left = self.clock.seconds_left()
        if not math.isfinite(left):
            return None
        evaluations = [
            t.feedback.execution.stage_seconds.get(Stage.EVALUATE.value, 0.0) for t in self.earlier
        ]
        reserve = max(evaluations) if any(evaluations) else 0.2 * left
        stop = min(left, self.services.limits.train.wall_seconds) - reserve
        # Less the imports before the job starts counting (about 10 s for torch and transformers).
        return max(1.0, stop * 0.9 - 10.0)

    def _check_time(self, stage: Stage) -> None:
        if self.clock.out_of_time():
            raise _StageFailed(
                self.ledger.failed(
                    stage, None, kind=ErrorKind.TIMEOUT, cause="the run's time budget is spent"
                )
            )

    def _settle(self, stage: Stage, outcome: JobOutcome) -> None:
        """Account for a stage's job; end the trial if it crossed the sandbox or failed."""
        self.ledger.account(stage, outcome)
        if outcome.violations:
            self._crossed(stage, outcome)
        if not outcome.ok or outcome.result is None:
            raise _StageFailed(self.ledger.failed(stage, outcome))

    def _result(self, stage: Stage, outcome: JobOutcome, contract: type[_R]) -> _R:
        """A job's result as its contract; a result that does not fit fails the stage (a
        replaced trainer, a job from another ftdojo version), it does not end the run."""
        try:
            return structure(outcome.result, contract)
        except SchemaError as exc:
            raise _StageFailed(
                self.ledger.failed(
                    stage,
                    outcome,
                    kind=ErrorKind.ENV,
                    cause=f"the {stage.value} job's result does not fit {contract.__name__}: {exc}"[:500],
                )
            ) from exc

    def _crossed(
        self, stage: Stage, outcome: JobOutcome | None, found: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        # A trial that tried to cross the sandbox fails, whatever it produced.
        found = tuple(found) or (outcome.violations if outcome else ())
        self.record_violations(self.trial_id, stage, found)
        first = found[0]
        raise _StageFailed(
            self.ledger.failed(
                stage,
                outcome,
                kind=ErrorKind.VIOLATION,
                cause=f"sandbox violation ({len(found)}): {first.get('kind')}: "
                f"{str(first.get('detail'))[:300]}",
            )
        )
