"""The Dojo: runs an agent on a task, enforces the budget, keeps the held-out split.

The agent drives; the Dojo enforces. ``Dojo.run`` hands the agent a :class:`Session`,
the only door to the environment. Every data build, training and evaluation runs in
a sandboxed child process; the validation split is read only by the Dojo's
evaluator, and the test split only when the final trial is scored, in its own
process. In the default (trusted) mode the agent runs in the caller's process: that
is no security boundary against a hostile agent, only a clean interface.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

import anyio
import anyio.to_thread
import attrs
import structlog

from ftdojo.artifacts import check_model_artifacts
from ftdojo.cards import DataCatalog, TaskCard
from ftdojo.contamination import ContaminationAudit, audit_contamination, read_training_rows, record_text
from ftdojo.errors import AgentError, BudgetExhausted, ConfigError, IsolationError, JournalError, ModelError
from ftdojo.feedback import (
    DataFeedback,
    ErrorKind,
    EvaluationFeedback,
    ExecutionFeedback,
    Feedback,
    Stage,
    TrainingFeedback,
)
from ftdojo.journal import Journal
from ftdojo.models import (
    DEFAULT_MODEL,
    EMBEDDED_MODELS,
    ModelInfo,
    TinySpec,
    checksum_ok,
    default_home,
    fetch_gguf,
    locate_gguf,
    model_info,
    resolve_local_model,
)
from ftdojo.plans import Plan, TrainConfig
from ftdojo.results import BaselineResult, Budget, BudgetUsage, Rejection, RunResult, Trial, Violation
from ftdojo.rundir import best_validated
from ftdojo.sandbox import Job, JobOutcome, JobRunner, Limits, SandboxRunner
from ftdojo.sandbox.isolation import FilesystemView, Isolation
from ftdojo.serialization import structure, to_json, unstructure
from ftdojo.tasks.registry import get_task, task_from_reference, task_reference
from ftdojo.tasks.spec import EvalItem, TaskSpec

__all__ = ["Agent", "Dojo", "EventHandler", "RunEvents", "Session", "StageLimits"]

log = structlog.get_logger("ftdojo")

EventHandler = Callable[[dict[str, Any]], None]

GiB = 2**30


@runtime_checkable
class Agent(Protocol):
    """Anything that can solve a task through a session."""

    async def run(self, session: Session) -> None: ...


@attrs.frozen(kw_only=True)
class StageLimits:
    """Per-stage sandbox limits; a stage never runs past the budget's wall time left."""

    build: Limits = attrs.field(factory=lambda: Limits(wall_seconds=600, memory_bytes=8 * GiB))
    train: Limits = attrs.field(factory=lambda: Limits(wall_seconds=4 * 3600, memory_bytes=16 * GiB))
    evaluate: Limits = attrs.field(factory=lambda: Limits(wall_seconds=3600, memory_bytes=16 * GiB))
    #: Records and optimiser steps of a smoke run (see ``Dojo._smoke_config``).
    smoke_records: int = 100
    smoke_steps: int = 2
    eval_batch_size: int = 64
    error_samples: int = 10


@attrs.frozen
class _Prepared:
    task: TaskSpec
    model_name: str
    model_path: Path
    info: ModelInfo
    catalog: DataCatalog
    source_paths: dict[str, str]
    validation_path: Path
    test_path: Path


def _write_items(path: Path, items: list[EvalItem]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as fh:
        for item in items:
            fh.write(json.dumps(unstructure(item), sort_keys=True) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class _Budgeter:
    """Tracks what a run has spent, including what a resumed run spent before."""

    def __init__(
        self, budget: Budget, *, seconds_before: float = 0.0, trials: int = 0, tokens: int = 0
    ) -> None:
        self.budget = budget
        self.started = time.monotonic() - seconds_before
        self.stopped: float | None = None
        self.trials = trials
        self.tokens = tokens

    def stop(self) -> None:
        """Freeze the clock: the final test evaluation and the baseline are the Dojo's time."""
        self.stopped = time.monotonic()

    @property
    def seconds(self) -> float:
        return (self.stopped or time.monotonic()) - self.started

    def seconds_left(self) -> float:
        if self.budget.max_seconds is None:
            return math.inf
        return self.budget.max_seconds - self.seconds

    def tokens_left(self) -> int | None:
        return None if self.budget.max_train_tokens is None else self.budget.max_train_tokens - self.tokens

    def exhausted(self) -> str | None:
        if self.budget.max_trials is not None and self.trials >= self.budget.max_trials:
            return f"trial budget spent ({self.trials}/{self.budget.max_trials} trials)"
        if self.seconds_left() <= 0:
            return f"time budget spent ({self.seconds:.0f}s of {self.budget.max_seconds:.0f}s)"
        left = self.tokens_left()
        if left is not None and left <= 0:
            return f"token budget spent ({self.tokens} of {self.budget.max_train_tokens} tokens)"
        return None

    def usage(self) -> BudgetUsage:
        return BudgetUsage(trials=self.trials, seconds=round(self.seconds, 3), train_tokens=self.tokens)

    def left(self) -> BudgetUsage:
        """What is left on each axis (``-1`` where the axis has no limit)."""
        b = self.budget
        return BudgetUsage(
            trials=-1 if b.max_trials is None else max(0, b.max_trials - self.trials),
            seconds=-1.0 if b.max_seconds is None else max(0.0, round(self.seconds_left(), 3)),
            train_tokens=-1 if b.max_train_tokens is None else max(0, b.max_train_tokens - self.tokens),
        )


class Session:
    """The agent's only door to the environment during one run.

    It exposes the task card, the raw-data catalogue, facts about the base model,
    read-only raw sources, smoke runs, full trials and the history. It never holds
    or returns anything of the evaluation splits beyond validation scores and
    validation error samples.
    """

    def __init__(self, run: _Run) -> None:
        self.__run = run

    @property
    def card(self) -> TaskCard:
        return self.__run.card

    @property
    def catalog(self) -> DataCatalog:
        return self.__run.prepared.catalog

    @property
    def model(self) -> ModelInfo:
        return self.__run.prepared.info

    @property
    def history(self) -> tuple[Trial, ...]:
        return tuple(self.__run.trials)

    @property
    def budget(self) -> Budget:
        return self.__run.budgeter.budget

    @property
    def memory_limit_bytes(self) -> int | None:
        """The training stage's memory limit in the sandbox; ``None`` when unlimited."""
        return self.__run.dojo.limits.train.memory_bytes

    @property
    def budget_left(self) -> BudgetUsage:
        """What is left on each axis of the budget; ``-1`` where the axis has no limit."""
        return self.__run.budgeter.left()

    def open_source(self, source_id: str) -> BinaryIO:
        """The raw bytes of one source, opened read-only."""
        return self.__run.dojo._repository.open_source(self.catalog, source_id)

    def read_source(self, source_id: str) -> Iterator[dict[str, Any]]:
        """The records of one source (JSONL)."""
        return self.__run.dojo._repository.read_records(self.catalog, source_id)

    async def smoke(self, plan: Plan) -> Feedback:
        """A cheap check in the sandbox: build ~100 records, train a few steps, no evaluation."""
        return await self.__run.smoke(plan)

    async def submit(self, plan: Plan) -> Feedback:
        """Run a full trial; raises :class:`BudgetExhausted` once the budget is spent."""
        return await self.__run.submit(plan)

    def choose_final(self, trial_id: str) -> None:
        """Pick the trial scored on the test split (default: best validation score)."""
        self.__run.choose_final(trial_id)

    def annotate(self, trial_id: str, key: str, value: Any) -> None:
        """Journal what the agent made of a trial (its diagnosis, a note) under ``key``.

        ``value`` must be JSON data. Annotations survive a resume (:meth:`annotations`)
        and come back in :attr:`RunResult.annotations`; a later value replaces an earlier
        one under the same key.
        """
        self.__run.annotate(trial_id, key, value)

    def annotations(self, trial_id: str) -> dict[str, Any]:
        """The annotations of one trial, this run and before a resume."""
        return dict(self.__run.annotations.get(trial_id, {}))

    @property
    def rejections(self) -> tuple[Rejection, ...]:
        """Plans rejected before they ran, this run and before a resume."""
        return tuple(self.__run.rejections)

    def record_rejection(
        self, plan: Plan, reasons: Sequence[str], *, seconds: float, projected_seconds: float | None = None
    ) -> Rejection:
        """Journal a plan the agent's validator rejected: why, how long rejecting it took, and
        how long the full trial would have taken. A resumed run keeps them (so a resumed agent
        need not try the plan again) and the :class:`RunResult` lists them."""
        return self.__run.record_rejection(
            plan, tuple(reasons), seconds=seconds, projected_seconds=projected_seconds
        )

    # -- for ftdojo.untrusted only: the Dojo side of an agent in its own process ----

    def _run_for_untrusted_agent(self) -> _Run:
        return self.__run

    def _report_violations(self, found: Sequence[Mapping[str, Any]]) -> None:
        self.__run.record_violations(None, None, found)


class _Run:
    """The state of one run; the session is its public face."""

    def __init__(
        self,
        dojo: Dojo,
        prepared: _Prepared,
        run_dir: Path,
        budget: Budget,
        journal: Journal,
        trials: list[Trial],
        seconds_before: float,
        tokens_before: int,
        rejections: list[Rejection] | None = None,
        annotations: dict[str, dict[str, Any]] | None = None,
        violations: list[Violation] | None = None,
        isolation: Isolation | None = None,
    ) -> None:
        self.dojo = dojo
        self.violations: list[Violation] = violations if violations is not None else []
        self.isolation = isolation
        self.rejections: list[Rejection] = rejections if rejections is not None else []
        self.annotations: dict[str, dict[str, Any]] = annotations if annotations is not None else {}
        self.prepared = prepared
        self.run_id = run_dir.name
        self.run_dir = run_dir
        self.journal = journal
        self.trials = trials
        self.budgeter = _Budgeter(
            budget, seconds_before=seconds_before, trials=len(trials), tokens=tokens_before
        )
        self.final_choice: str | None = None
        self.smokes = 0
        task = prepared.task
        self.card = TaskCard(
            name=task.name,
            domain=task.domain,
            description=task.description,
            output_format=task.output_format,
            metric=task.metric,
            base_model=prepared.model_name,
            categories=task.categories,
            validation_size=len(prepared.validation_path.read_text().splitlines()),
            max_context=prepared.info.context_length,
        )

    def choose_final(self, trial_id: str) -> None:
        if not any(t.trial_id == trial_id and t.feedback.ok for t in self.trials):
            raise AgentError(f"cannot choose {trial_id!r}: no successful trial has that id")
        self.final_choice = trial_id

    def annotate(self, trial_id: str, key: str, value: Any) -> None:
        if not any(t.trial_id == trial_id for t in self.trials):
            raise AgentError(f"cannot annotate {trial_id!r}: no trial of this run has that id")
        if not isinstance(key, str) or not key:
            raise AgentError(f"an annotation key must be a non-empty string, got {key!r}")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise AgentError(f"annotation {key!r} of {trial_id} is not JSON data: {exc}") from exc
        self.annotations.setdefault(trial_id, {})[key] = value
        self.journal.append("annotation", trial_id=trial_id, key=key, value=value)

    def record_rejection(
        self, plan: Plan, reasons: tuple[str, ...], *, seconds: float, projected_seconds: float | None
    ) -> Rejection:
        if not isinstance(plan, Plan):
            raise AgentError(f"record_rejection needs a Plan, got {type(plan).__name__}")
        rejection = Rejection(
            plan=plan,
            reasons=tuple(str(r) for r in reasons),
            seconds=float(seconds),
            projected_seconds=None if projected_seconds is None else float(projected_seconds),
            at=time.time(),
        )
        self.rejections.append(rejection)
        self.journal.append("rejection", rejection=unstructure(rejection))
        return rejection

    def record_violations(
        self, trial_id: str | None, stage: Stage | None, found: Sequence[Mapping[str, Any]]
    ) -> None:
        for item in found:
            violation = Violation(
                kind=str(item.get("kind", "unknown")),
                detail=str(item.get("detail", "")),
                trial_id=trial_id,
                stage=stage.value if stage is not None else None,
                at=time.time(),
            )
            self.violations.append(violation)
            self.journal.append("violation", violation=unstructure(violation))
            log.warning(
                "sandbox violation",
                run_id=self.run_id,
                trial_id=trial_id,
                stage=violation.stage,
                kind=violation.kind,
                detail=violation.detail[:200],
            )

    def _next_trial_id(self) -> str:
        return f"t{len(self.trials) + 1:03d}"

    async def submit(self, plan: Plan) -> Feedback:
        reason = self.budgeter.exhausted()
        if reason is not None:
            raise BudgetExhausted(reason)
        if plan.parent is not None and not any(t.trial_id == plan.parent for t in self.trials):
            raise AgentError(f"plan.parent {plan.parent!r} is not a trial of this run")
        trial_id = self._next_trial_id()
        self.budgeter.trials += 1
        started = time.time()
        self.dojo._emit({"type": "trial_started", "run_id": self.run_id, "trial_id": trial_id})
        # Every log line of the trial, the Dojo's and the sandbox runner's, names it.
        with structlog.contextvars.bound_contextvars(trial_id=trial_id):
            log.info("trial started", hypothesis=plan.hypothesis[:200])
            feedback = await self.dojo._run_trial(self, plan, trial_id, smoke=False)
        trial = Trial(
            trial_id=trial_id, plan=plan, feedback=feedback, started_at=started, finished_at=time.time()
        )
        self.trials.append(trial)
        # On disk before the agent hears of it: a killed run resumes with this trial.
        self.journal.append(
            "trial",
            trial=unstructure(trial),
            tokens_total=self.budgeter.tokens,
            seconds=self.budgeter.seconds,
        )
        self.dojo._emit(
            {
                "type": "trial_finished",
                "run_id": self.run_id,
                "trial_id": trial_id,
                "ok": feedback.ok,
                "score": feedback.score,
                "error_kind": feedback.execution.error_kind.value if feedback.execution.error_kind else None,
            }
        )
        log.info(
            "trial finished",
            run_id=self.run_id,
            trial_id=trial_id,
            ok=feedback.ok,
            score=feedback.score,
            error_kind=feedback.execution.error_kind,
        )
        return feedback

    async def smoke(self, plan: Plan) -> Feedback:
        if self.budgeter.seconds_left() <= 0:
            raise BudgetExhausted("time budget spent")
        self.smokes += 1
        smoke_id = f"smoke{self.smokes:03d}"
        with structlog.contextvars.bound_contextvars(trial_id=smoke_id):
            feedback = await self.dojo._run_trial(self, plan, smoke_id, smoke=True)
        self.journal.append("smoke", plan=unstructure(plan), feedback=unstructure(feedback))
        return feedback


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    """Hold an exclusive lock file, waiting for it without blocking the event loop.

    Each attempt runs in a worker thread with a finite timeout. filelock refuses an
    unbounded acquire in a thread whose registry says another instance holds the
    path, and anyio reuses worker threads, so two Dojos in one process would trip
    that check; short attempts never do. The attempt is shielded so a cancellation
    can never drop a lock that was just taken.
    """
    import anyio
    import anyio.lowlevel
    import anyio.to_thread
    from filelock import FileLock, Timeout

    lock = FileLock(str(path), thread_local=False)

    def attempt() -> bool:
        try:
            lock.acquire(timeout=0.5)
        except Timeout:
            return False
        return True

    while True:
        with anyio.CancelScope(shield=True):
            taken = await anyio.to_thread.run_sync(attempt)
        if taken:
            break
        await anyio.lowlevel.checkpoint()
    try:
        yield
    finally:
        lock.release()


class Dojo:
    """The environment: task registry, raw-data repository, sandboxed trainer, held-out evaluator.

    ``home`` holds caches (built models, the raw-data repository, the private
    evaluation splits); ``runs_dir`` holds one directory per run.

    ``train_entry`` names the trainer job (``"package.module:function"``); a subclass may
    set its own, as the adversarial tests do to play a compromised trainer. Whatever it
    leaves is checked before anything loads it (see :mod:`ftdojo.artifacts`).

    Every job runs under the strongest isolation the machine allows (see
    :attr:`isolation`); where a protection is missing the Dojo warns, and with
    ``strict_isolation=True`` it refuses to start a run instead.

    Several runs may share one Dojo (start them in a task group): at most
    ``max_workers`` sandboxed jobs run at once across all of them, the others wait
    their turn. The default, one, suits a CPU, where two training jobs at once run far
    slower than one after the other; raise it for a machine with GPUs or many cores.
    """

    train_entry: str = "ftdojo.jobs.train:train"

    def __init__(
        self,
        *,
        home: Path | str | None = None,
        runs_dir: Path | str | None = None,
        model: str = DEFAULT_MODEL,
        limits: StageLimits | None = None,
        runner: JobRunner | None = None,
        threads: int | None = None,
        on_event: EventHandler | None = None,
        strict_isolation: bool = False,
        max_workers: int = 1,
    ) -> None:
        from ftdojo.datarepo import RawDataRepository

        if not structlog.is_configured():
            # structlog's unconfigured default prints every debug line to stdout; a
            # library should be quiet unless asked (FTDOJO_LOG_LEVEL or configure_logging).
            from ftdojo.logs import configure_logging

            configure_logging(level=os.environ.get("FTDOJO_LOG_LEVEL", "warning"))
        # Absolute, because every worker runs with its workspace as working directory.
        self.home = (Path(home).expanduser() if home is not None else default_home()).resolve()
        self.runs_dir = (
            Path(runs_dir).expanduser() if runs_dir is not None else Path("ftdojo-runs")
        ).resolve()
        self.default_model = model
        self.limits = limits or StageLimits()
        self.runner = runner or SandboxRunner()
        self.strict_isolation = strict_isolation
        if max_workers < 1:
            raise ConfigError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self._limiters: dict[object, anyio.CapacityLimiter] = {}
        self.threads = threads
        self._handlers: list[EventHandler] = [on_event] if on_event is not None else []
        # Handlers of one run (``run(on_event=...)``, :meth:`stream`), by run id: a Dojo
        # may run several at once, and each listener hears only its own.
        self._run_handlers: dict[str, list[EventHandler]] = {}
        self._repository = RawDataRepository(self.home / "data")
        self._prepared: dict[tuple[str, str], _Prepared] = {}
        self._verified_models: set[str] = set()
        self._raw_overlap: dict[str, float] = {}

    # -- events -------------------------------------------------------------------

    def add_event_handler(self, handler: EventHandler) -> None:
        """Call ``handler`` with every event of every run of this Dojo (see :meth:`stream`)."""
        self._handlers.append(handler)

    def _emit(self, event: dict[str, Any]) -> None:
        for handler in (*self._handlers, *self._run_handlers.get(str(event.get("run_id")), ())):
            try:
                handler(event)
            except Exception as exc:  # a listener's bug must not fail the trial it listens to
                log.warning("event handler failed", handler=repr(handler)[:200], error=repr(exc)[:300])

    # -- preparation --------------------------------------------------------------

    def _training_deadline(self, run: _Run) -> float | None:
        """When training should stop so that saving and evaluating still fit in the budget.

        The evaluation's share is what this run's evaluations took so far (a fifth of the
        time left before any), and saving gets a tenth of the rest; without a time budget
        there is no deadline beyond the stage's own limit.
        """
        left = run.budgeter.seconds_left()
        if not math.isfinite(left):
            return None
        evaluations = [t.feedback.execution.stage_seconds.get(Stage.EVALUATE.value, 0.0) for t in run.trials]
        reserve = max(evaluations) if any(evaluations) else 0.2 * left
        stop = min(left, self.limits.train.wall_seconds) - reserve
        # Less the imports before the job starts counting (about 10 s for torch and transformers).
        return max(1.0, stop * 0.9 - 10.0)

    def _limits(self, base: Limits, seconds_left: float) -> Limits:
        wall = min(base.wall_seconds, seconds_left) if math.isfinite(seconds_left) else base.wall_seconds
        return attrs.evolve(base, wall_seconds=max(1.0, wall), threads=self.threads or base.threads)

    async def _job(
        self,
        entry: str,
        payload: dict[str, Any],
        stage: Stage,
        workspace: Path,
        limits: Limits,
        tags: Mapping[str, Any],
        view: FilesystemView | None = None,
    ) -> JobOutcome:
        workspace.mkdir(parents=True, exist_ok=True)

        def forward(event: dict[str, Any]) -> None:
            self._emit({**event, **tags, "stage": stage.value, "worker_event": event.get("type")})

        async with self._worker_limiter():
            return await self.runner.run(
                Job(entry=entry, payload=payload, stage=stage, view=view),
                workspace=workspace,
                limits=limits,
                on_event=forward,
            )

    def _worker_limiter(self) -> anyio.CapacityLimiter:
        # One per event loop: a Dojo may outlive the loop it first ran in (run_sync twice).
        import anyio.lowlevel

        token = anyio.lowlevel.current_token()
        limiter = self._limiters.get(token)
        if limiter is None:
            self._limiters = {token: anyio.CapacityLimiter(self.max_workers)}
            limiter = self._limiters[token]
        return limiter

    # -- isolation ----------------------------------------------------------------

    @property
    def isolation(self) -> Isolation:
        """What every sandboxed job of this Dojo gets on this machine."""
        return self.runner.isolation

    async def _check_isolation(self) -> Isolation:
        isolation = await anyio.to_thread.run_sync(lambda: self.runner.isolation)
        if isolation.gaps:
            if self.strict_isolation:
                raise IsolationError(
                    "strict isolation asked for, but this machine gives jobs only "
                    f"{isolation.describe()} ({'; '.join(isolation.notes) or 'no details'}); "
                    "install bubblewrap (bwrap) or allow user namespaces"
                )
            log.warning("sandbox isolation incomplete", isolation=isolation.describe(), notes=isolation.notes)
        return isolation

    def _hidden_paths(self) -> tuple[Path, ...]:
        """What no job may see: the private splits, every run's journal and trials, scratch."""
        return (self.home / "private", self.runs_dir, self.home / "tmp")

    def _trial_view(self, prepared: _Prepared, writable: Sequence[Path]) -> FilesystemView:
        for path in writable:
            path.mkdir(parents=True, exist_ok=True)
        return FilesystemView.of(
            writable=writable,
            hidden=self._hidden_paths(),
            # Re-exposed in case the user put the caches inside the runs folder.
            readable=(self.home / "data", prepared.model_path),
        )

    async def ensure_model(self, name: str) -> Path:
        """The local folder of model ``name``, building an embedded model on first use.

        Safe when several processes ask at once: one builds, the others wait for it.
        A built folder is checked against its CHECKSUM once per Dojo; a corrupt one is
        rebuilt (it is a cache, and its source is pinned).
        """
        import anyio.to_thread

        local = resolve_local_model(name, self.home)
        if local is None:
            return self._download_model(name)
        if name not in EMBEDDED_MODELS or name in self._verified_models:
            return local
        if await anyio.to_thread.run_sync(checksum_ok, local):
            self._verified_models.add(name)
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        # A second process (or a second Dojo in this one) waits for the first build
        # instead of building twice, without blocking the event loop.
        async with _file_lock(local.parent / f".{local.name}.lock"):
            if await anyio.to_thread.run_sync(checksum_ok, local):
                self._verified_models.add(name)
                return local
            if local.exists():
                log.warning("model folder fails its checksum; rebuilding", model=name, path=str(local))
                shutil.rmtree(local)
            await self._build_embedded(name, local)
            if not await anyio.to_thread.run_sync(checksum_ok, local):
                raise ModelError(f"model {name!r} was built at {local} but does not match its checksum")
            self._verified_models.add(name)
            return local

    async def _build_embedded(self, name: str, local: Path) -> None:
        import anyio.to_thread

        spec = EMBEDDED_MODELS[name]
        workspace = self.home / "tmp" / f"build-{name}-{os.getpid()}"
        log.info("building embedded model", model=name, path=str(local))
        if isinstance(spec, TinySpec):
            entry, payload = (
                "ftdojo.jobs.models:build_tiny",
                {"spec": unstructure(spec), "target": str(local)},
            )
        else:
            gguf = locate_gguf(spec, self.home) or await anyio.to_thread.run_sync(fetch_gguf, spec, self.home)
            entry, payload = "ftdojo.jobs.models:convert_gguf", {"gguf": str(gguf), "target": str(local)}
        outcome = await self._job(
            entry,
            payload,
            Stage.BUILD,
            workspace,
            Limits(wall_seconds=1800, memory_bytes=16 * GiB, threads=self.threads),
            {"model": name},
        )
        shutil.rmtree(workspace, ignore_errors=True)
        if not outcome.ok:
            raise ModelError(f"building model {name!r} failed ({outcome.error_kind}): {outcome.root_cause}")

    def _download_model(self, name: str) -> Path:
        # A Hugging Face id: resolved from the local Hugging Face cache, or
        # downloaded when the user has a network. Weights must be safetensors.
        try:
            from huggingface_hub import snapshot_download

            return Path(
                snapshot_download(
                    name,
                    allow_patterns=["*.json", "*.safetensors", "tokenizer*", "*.jinja", "*.model", "*.txt"],
                )
            )
        except Exception as exc:
            raise ModelError(
                f"cannot resolve model {name!r} (not a built-in name, local folder or reachable id): {exc}"
            ) from exc

    async def _prepare(self, task: str | TaskSpec, model: str | None) -> _Prepared:
        from ftdojo.datarepo import TokenCounter

        spec = get_task(task) if isinstance(task, str) else task
        model_name = model or self.default_model
        key = (spec.version(), model_name)
        if key in self._prepared:
            return self._prepared[key]
        model_path = await self.ensure_model(model_name)
        info = model_info(model_name, model_path)
        tokenizer_file = model_path / "tokenizer.json"
        counter = (
            TokenCounter.from_tokenizer_file(tokenizer_file, name=model_name)
            if tokenizer_file.is_file()
            else TokenCounter.whitespace()
        )
        catalog = self._repository.add_task(spec, tokenizer=counter)
        source_paths = {sid: str(self._repository.source_path(catalog, sid)) for sid in catalog.source_ids}
        private = self.home / "private" / spec.version()
        private.mkdir(parents=True, exist_ok=True)
        os.chmod(private, 0o700)
        validation_path, test_path = private / "validation.jsonl", private / "test.jsonl"
        if not (validation_path.is_file() and test_path.is_file()):
            validation, test = spec.eval_splits()
            _write_items(validation_path, list(validation))
            _write_items(test_path, list(test))
        prepared = _Prepared(
            task=spec,
            model_name=model_name,
            model_path=model_path,
            info=info,
            catalog=catalog,
            source_paths=source_paths,
            validation_path=validation_path,
            test_path=test_path,
        )
        self._prepared[key] = prepared
        return prepared

    # -- trials -------------------------------------------------------------------

    @staticmethod
    def _smoke_config(train: TrainConfig) -> TrainConfig:
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

    async def _run_trial(self, run: _Run, plan: Plan, trial_id: str, *, smoke: bool) -> Feedback:
        prepared = run.prepared
        workspace = run.run_dir / "trials" / trial_id
        if workspace.exists():  # left over by a killed attempt that never reached the journal
            shutil.rmtree(workspace)
        workspace.mkdir(parents=True)
        tags = {"run_id": run.run_id, "trial_id": trial_id}
        stage_seconds: dict[str, float] = {}
        peak: dict[str, float] = {}
        launch: dict[str, str] = {}
        warnings: list[str] = []
        started = time.monotonic()

        def failed(
            stage: Stage,
            outcome: JobOutcome | None,
            *,
            kind: ErrorKind | None = None,
            cause: str = "",
            **levels: Any,
        ) -> Feedback:
            return Feedback(
                trial_id=trial_id,
                execution=ExecutionFeedback(
                    ok=False,
                    failed_stage=stage,
                    error_kind=kind or (outcome.error_kind if outcome else None) or ErrorKind.ENV,
                    root_cause=cause or (outcome.root_cause if outcome else ""),
                    exit_code=outcome.exit_code if outcome else None,
                    duration_s=time.monotonic() - started,
                    stage_seconds=stage_seconds,
                    peak_memory_mb=peak,
                    launch=launch,
                    warnings=tuple(warnings),
                ),
                **levels,
            )

        def account(stage: Stage, outcome: JobOutcome) -> None:
            stage_seconds[stage.value] = round(outcome.duration_s, 3)
            if outcome.peak_memory_mb is not None:
                peak[stage.value] = round(outcome.peak_memory_mb, 1)
            launch[stage.value] = outcome.launch
            warnings.extend(outcome.warnings)
            if outcome.launch_note:
                warnings.append(f"{stage.value} job spawned, not forked: {outcome.launch_note}")

        def out_of_time() -> bool:
            return run.budgeter.seconds_left() <= 0

        def crossed(
            stage: Stage, outcome: JobOutcome | None, found: Sequence[Mapping[str, Any]] = (), **levels: Any
        ) -> Feedback:
            # A trial that tried to cross the sandbox fails, whatever it produced.
            found = tuple(found) or (outcome.violations if outcome else ())
            run.record_violations(trial_id, stage, found)
            first = found[0]
            return failed(
                stage,
                outcome,
                kind=ErrorKind.VIOLATION,
                cause=f"sandbox violation ({len(found)}): {first.get('kind')}: "
                f"{str(first.get('detail'))[:300]}",
                **levels,
            )

        # 1. data
        if out_of_time():
            return failed(Stage.BUILD, None, kind=ErrorKind.TIMEOUT, cause="the run's time budget is spent")
        build = await self._job(
            "ftdojo.jobs.build:build_data",
            {
                "task": task_reference(prepared.task),
                "sources": prepared.source_paths,
                "source_formats": {e.source_id: e.format for e in prepared.catalog.entries},
                "recipe": unstructure(plan.data),
                "max_length": min(plan.train.max_length, prepared.info.context_length),
                "model_path": str(prepared.model_path),
                "output_dir": str(workspace / "data"),
                "limit_records": self.limits.smoke_records if smoke else None,
            },
            Stage.BUILD,
            workspace / "build",
            self._limits(self.limits.build, run.budgeter.seconds_left()),
            tags,
            view=self._trial_view(prepared, (workspace / "build", workspace / "data")),
        )
        account(Stage.BUILD, build)
        if build.violations:
            return crossed(Stage.BUILD, build)
        if not build.ok or build.result is None:
            return failed(Stage.BUILD, build)
        data = structure(build.result["data"], DataFeedback)

        # 2. training
        if out_of_time():
            return failed(
                Stage.TRAIN, None, kind=ErrorKind.TIMEOUT, cause="the run's time budget is spent", data=data
            )
        tokens_left = run.budgeter.tokens_left()
        train = await self._job(
            self.train_entry,
            {
                "train": unstructure(self._smoke_config(plan.train) if smoke else plan.train),
                "data_path": str(workspace / "data" / "train.jsonl"),
                "output_dir": str(workspace),
                "model_path": str(prepared.model_path),
                "max_train_tokens": tokens_left,
                "stop_after_seconds": None if smoke else self._training_deadline(run),
                "max_steps": self.limits.smoke_steps if smoke else None,
                "save": not smoke,
                "threads": self.threads,
            },
            Stage.TRAIN,
            workspace / "train",
            self._limits(self.limits.train, run.budgeter.seconds_left()),
            tags,
            view=self._trial_view(prepared, (workspace,)),
        )
        account(Stage.TRAIN, train)
        summary = next((e for e in reversed(train.events) if e.get("type") == "training_summary"), None)
        training: TrainingFeedback | None = None
        if train.ok and train.result is not None:
            training = structure(train.result["training"], TrainingFeedback)
        elif summary is not None:
            training = structure(summary["training"], TrainingFeedback)
        if training is not None and not smoke:
            run.budgeter.tokens += training.tokens_trained
        if train.violations:
            return crossed(Stage.TRAIN, train, data=data, training=training)
        if not train.ok:
            return failed(Stage.TRAIN, train, data=data, training=training)
        if smoke:
            return Feedback(
                trial_id=trial_id,
                execution=ExecutionFeedback(
                    ok=True,
                    duration_s=time.monotonic() - started,
                    stage_seconds=stage_seconds,
                    peak_memory_mb=peak,
                    launch=launch,
                    warnings=tuple(warnings),
                ),
                data=data,
                training=training,
            )

        # 3. the saved model must be data derived from the base model before anything loads it.
        problems = await anyio.to_thread.run_sync(
            check_model_artifacts, workspace / "model", prepared.model_path
        )
        if problems:
            return crossed(
                Stage.EVALUATE,
                None,
                [{"kind": kind, "detail": detail} for kind, detail in problems],
                data=data,
                training=training,
            )

        # 4. validation, in a Dojo-owned workspace outside the trial's folder.
        if out_of_time():
            return failed(
                Stage.EVALUATE,
                None,
                kind=ErrorKind.TIMEOUT,
                cause="the run's time budget is spent",
                data=data,
                training=training,
            )
        evaluation_outcome = await self._evaluate(
            prepared,
            prepared.validation_path,
            trained_path=workspace / "model",
            template=str(build.result["template"]),
            template_hash=str(build.result["template_hash"]),
            workspace=run.run_dir / ".evaluator" / trial_id,
            seconds_left=run.budgeter.seconds_left(),
            tags=tags,
        )
        account(Stage.EVALUATE, evaluation_outcome)
        if evaluation_outcome.violations:
            return crossed(Stage.EVALUATE, evaluation_outcome, data=data, training=training)
        if not evaluation_outcome.ok or evaluation_outcome.result is None:
            return failed(Stage.EVALUATE, evaluation_outcome, data=data, training=training)
        evaluation = structure(evaluation_outcome.result["evaluation"], EvaluationFeedback)
        return Feedback(
            trial_id=trial_id,
            execution=ExecutionFeedback(
                ok=True,
                duration_s=round(time.monotonic() - started, 3),
                stage_seconds=stage_seconds,
                peak_memory_mb=peak,
                launch=launch,
                warnings=tuple(warnings),
            ),
            data=data,
            training=training,
            evaluation=evaluation,
        )

    async def _evaluate(
        self,
        prepared: _Prepared,
        items_path: Path,
        *,
        trained_path: Path | None,
        template: str,
        template_hash: str | None,
        workspace: Path,
        seconds_left: float,
        tags: Mapping[str, Any],
        error_samples: int | None = None,
    ) -> JobOutcome:
        workspace.mkdir(parents=True, exist_ok=True)
        # The evaluator sees the one split it scores and the model under test, read-only.
        view = FilesystemView.of(
            writable=(workspace,),
            hidden=self._hidden_paths(),
            readable=(
                items_path,
                self.home / "data",
                prepared.model_path,
                *((trained_path,) if trained_path is not None else ()),
            ),
        )
        return await self._job(
            "ftdojo.jobs.evaluate:evaluate",
            {
                "task": task_reference(prepared.task),
                "items_path": str(items_path),
                "model_path": str(prepared.model_path),
                "trained_path": str(trained_path) if trained_path is not None else None,
                "template": template,
                "expected_template_hash": template_hash,
                "batch_size": self.limits.eval_batch_size,
                "error_samples": self.limits.error_samples if error_samples is None else error_samples,
                "threads": self.threads,
            },
            Stage.EVALUATE,
            workspace,
            self._limits(self.limits.evaluate, seconds_left),
            tags,
            view=view,
        )

    async def _score(
        self,
        prepared: _Prepared,
        split: str,
        trained: Path | None,
        template: str,
        template_hash: str | None,
        workspace: Path,
        tags: Mapping[str, Any],
    ) -> EvaluationFeedback:
        items = prepared.validation_path if split == "validation" else prepared.test_path
        outcome = await self._evaluate(
            prepared,
            items,
            trained_path=trained,
            template=template,
            template_hash=template_hash,
            workspace=workspace,
            seconds_left=math.inf,
            tags=tags,
            error_samples=0 if split == "test" else None,
        )
        if outcome.violations:
            raise ModelError(
                f"evaluation on the {split} split saw sandbox violations: {outcome.violations[:3]}"
            )
        if not outcome.ok or outcome.result is None:
            raise ModelError(
                f"evaluation on the {split} split failed ({outcome.error_kind}): {outcome.root_cause}"
            )
        return structure(outcome.result["evaluation"], EvaluationFeedback)

    # -- public API -----------------------------------------------------------------

    async def baseline(self, task: str | TaskSpec, *, model: str | None = None) -> BaselineResult:
        """Score the untouched base model on the validation and test splits."""
        await self._check_isolation()
        prepared = await self._prepare(task, model)
        workspace = self.home / "tmp" / f"baseline-{secrets.token_hex(4)}"
        tags = {"baseline": prepared.model_name}
        try:
            validation = await self._score(prepared, "validation", None, "auto", None, workspace / "v", tags)
            test = await self._score(prepared, "test", None, "auto", None, workspace / "t", tags)
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
        return BaselineResult(
            task=prepared.task.name,
            model=prepared.model_name,
            validation_score=validation.score,
            test_score=test.score,
        )

    async def run(
        self,
        task: str | TaskSpec,
        agent: Agent,
        *,
        budget: Budget | None = None,
        model: str | None = None,
        run_id: str | None = None,
        with_baseline: bool = False,
        on_event: EventHandler | None = None,
    ) -> RunResult:
        """Run ``agent`` on ``task`` within ``budget``; resume when ``run_id`` names a journal.

        ``on_event`` hears this run's events as they happen (the Dojo's own handlers hear
        every run's): ``run_started``, ``trial_started``, the jobs' events (``progress``,
        ``loss``, ...; with ``trial_id`` and ``stage``), ``trial_finished`` and
        ``run_finished``. Each is a dict with a ``type`` and the ``run_id``.
        """
        budget = budget or Budget()
        isolation = await self._check_isolation()
        prepared = await self._prepare(task, model)
        run_id = run_id or f"{prepared.task.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        run_dir = self.runs_dir / run_id
        journal = Journal(run_dir / "journal.jsonl")
        trials, seconds_before, tokens_before, rejections, annotations, violations = self._resume(
            journal, prepared
        )
        if not trials and not journal.path.exists():
            run_dir.mkdir(parents=True, exist_ok=True)
            journal.append(
                "run_started",
                run_id=run_id,
                task=task_reference(prepared.task),
                model=prepared.model_name,
                budget=unstructure(budget),
                isolation=unstructure(isolation),
            )
        else:
            log.info("resuming run", run_id=run_id, trials=len(trials))
            journal.append("run_resumed", run_id=run_id, trials=len(trials), isolation=unstructure(isolation))
        run = _Run(
            self,
            prepared,
            run_dir,
            budget,
            journal,
            trials,
            seconds_before,
            tokens_before,
            rejections,
            annotations,
            violations,
            isolation,
        )
        if on_event is not None:
            self._run_handlers.setdefault(run_id, []).append(on_event)
        bound = structlog.contextvars.bound_contextvars(run_id=run_id)
        try:
            with bound:
                return await self._drive(run, agent, with_baseline=with_baseline)
        finally:
            if on_event is not None:
                handlers = self._run_handlers.get(run_id, [])
                handlers.remove(on_event)
                if not handlers:
                    self._run_handlers.pop(run_id, None)

    async def _drive(self, run: _Run, agent: Agent, *, with_baseline: bool) -> RunResult:
        journal = run.journal
        self._emit(
            {
                "type": "run_started",
                "run_id": run.run_id,
                "task": run.prepared.task.name,
                "model": run.prepared.model_name,
                "resumed_trials": len(run.trials),
            }
        )
        stop_reason = "agent finished"
        try:
            await agent.run(Session(run))
        except BudgetExhausted as exc:
            stop_reason = str(exc)
        except Exception as exc:  # the agent's own bug must not lose finished trials
            stop_reason = f"agent failed: {type(exc).__name__}: {exc}"
            log.error("agent failed", error=repr(exc))
            journal.append("agent_failed", error=repr(exc))
        run.budgeter.stop()
        return await self._finish(run, stop_reason, with_baseline=with_baseline)

    async def resume(
        self,
        run_dir: Path | str,
        agent: Agent,
        *,
        budget: Budget | None = None,
        with_baseline: bool = False,
        on_event: EventHandler | None = None,
    ) -> RunResult:
        """Continue the run in ``run_dir`` (a run of this Dojo's ``runs_dir``) with ``agent``.

        The task, the model and, unless ``budget`` is given, the budget come from the run's
        journal. Every trial the journal holds is kept and counted once; a trial that was
        running when the run was killed never reached the journal and runs again.
        """
        run_dir = Path(run_dir).expanduser().resolve()
        if run_dir.parent != self.runs_dir:
            raise ConfigError(
                f"{run_dir} is not in this Dojo's runs folder {self.runs_dir}; "
                f"use Dojo(runs_dir={str(run_dir.parent)!r})"
            )
        journal = Journal(run_dir / "journal.jsonl")
        if not journal.path.is_file():
            raise JournalError(f"{journal.path} does not exist: nothing to resume")
        started = next((r for r in journal.records() if r["kind"] == "run_started"), None)
        if started is None:
            raise JournalError(f"{journal.path} has no run_started record")
        try:
            task = task_from_reference(started["task"])
            recorded_budget = structure(started["budget"], Budget)
            model = str(started["model"])
        except (KeyError, TypeError, ValueError) as exc:
            raise JournalError(f"{journal.path}: the run_started record is unreadable: {exc}") from exc
        return await self.run(
            task,
            agent,
            budget=budget or recorded_budget,
            model=model,
            run_id=run_dir.name,
            with_baseline=with_baseline,
            on_event=on_event,
        )

    def _resume(
        self, journal: Journal, prepared: _Prepared
    ) -> tuple[list[Trial], float, int, list[Rejection], dict[str, dict[str, Any]], list[Violation]]:
        trials: list[Trial] = []
        rejections: list[Rejection] = []
        violations: list[Violation] = []
        annotations: dict[str, dict[str, Any]] = {}
        seconds = 0.0
        tokens = 0
        for record in journal.records():
            if record["kind"] == "run_started" and record["task"]["name"] != prepared.task.name:
                raise JournalError(f"{journal.path} belongs to task {record['task']['name']!r}")
            if record["kind"] == "trial":
                trials.append(structure(record["trial"], Trial))
                seconds = float(record.get("seconds", seconds))
                tokens = int(record.get("tokens_total", tokens))
            if record["kind"] == "rejection":
                rejections.append(structure(record["rejection"], Rejection))
            if record["kind"] == "annotation":
                annotations.setdefault(str(record["trial_id"]), {})[str(record["key"])] = record["value"]
            if record["kind"] == "violation":
                violations.append(structure(record["violation"], Violation))
        return trials, seconds, tokens, rejections, annotations, violations

    async def _finish(self, run: _Run, stop_reason: str, *, with_baseline: bool) -> RunResult:
        prepared = run.prepared
        final = None
        if run.final_choice is not None:
            final = next(t for t in run.trials if t.trial_id == run.final_choice)
        else:
            # Earliest best wins ties: a later equal score is not evidence of improvement.
            final = best_validated(tuple(run.trials))
        test_score: float | None = None
        contamination: ContaminationAudit | None = None
        if final is not None:
            data = final.feedback.data
            template = data.template if data else "auto"
            # The test split is scored with the exact template the final model was trained with.
            template_hash = data.template_hash if data and data.template_hash else None
            tags = {"run_id": run.run_id, "trial_id": final.trial_id, "split": "test"}
            test_eval = await self._score(
                prepared,
                "test",
                run.run_dir / "trials" / final.trial_id / "model",
                template,
                template_hash,
                run.run_dir / ".evaluator" / f"{final.trial_id}-test",
                tags,
            )
            test_score = test_eval.score
            run.journal.append(
                "test_score",
                trial_id=final.trial_id,
                score=test_score,
                per_category=test_eval.per_category,
                format_compliance=test_eval.format_compliance,
            )
            contamination = await anyio.to_thread.run_sync(self._audit_contamination, run, final.trial_id)
            run.journal.append("contamination", audit=unstructure(contamination))
            if contamination.flagged:
                log.warning(
                    "training data overlaps the test split",
                    run_id=run.run_id,
                    trial_id=final.trial_id,
                    rate=contamination.rate,
                    examples=contamination.examples,
                )
        baseline = await self.baseline(prepared.task, model=prepared.model_name) if with_baseline else None
        if baseline is not None:
            run.journal.append("baseline", baseline=unstructure(baseline))
        result = RunResult(
            run_id=run.run_id,
            task=prepared.task.name,
            model=prepared.model_name,
            run_dir=str(run.run_dir),
            trials=tuple(run.trials),
            final_trial_id=final.trial_id if final else None,
            validation_score=final.score if final else None,
            test_score=test_score,
            usage=run.budgeter.usage(),
            stop_reason=stop_reason,
            baseline=baseline,
            rejections=tuple(run.rejections),
            annotations={k: dict(v) for k, v in run.annotations.items()},
            violations=tuple(run.violations),
            isolation=run.isolation,
            contamination=contamination,
        )
        run.journal.append("run_finished", result=unstructure(result))
        # A readable summary beside the journal (the journal stays the source of truth).
        summary = run.run_dir / "result.json"
        summary.with_suffix(".tmp").write_text(to_json(result, indent=2))
        os.replace(summary.with_suffix(".tmp"), summary)
        try:  # in a thread: drawing the charts takes a second or two
            from ftdojo.report import write_run_report

            await anyio.to_thread.run_sync(write_run_report, run.run_dir)
        except Exception as exc:  # the report is a convenience: it must never cost the result
            log.warning("run report not written", run_id=run.run_id, error=repr(exc))
        self._emit({"type": "run_finished", "run_id": run.run_id, "test_score": test_score})
        return result

    def _audit_contamination(self, run: _Run, trial_id: str) -> ContaminationAudit:
        """The final trial's training data against the test split (see :mod:`ftdojo.contamination`)."""
        prepared = run.prepared
        items = []
        for line in prepared.test_path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            items.append(
                (str(item.get("item_id", "")), f"{item.get('prompt', '')} {item.get('reference', '')}")
            )
        try:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(prepared.model_path / "tokenizer.json"))
            rows = list(read_training_rows(run.run_dir / "trials" / trial_id / "data" / "train.jsonl"))
            texts = tokenizer.decode_batch(rows, skip_special_tokens=True)
        except Exception as exc:  # tokenizers raises bare Exceptions; the audit must not end the run
            return ContaminationAudit(
                trial_id=trial_id,
                n=13,
                test_items=len(items),
                overlapping_items=0,
                rate=0.0,
                raw_rate=None,
                threshold=0.05,
                flagged=False,
                problem=f"{type(exc).__name__}: {exc}"[:300],
            )
        key = prepared.task.version()
        if key not in self._raw_overlap:
            # The raw data's own overlap with the test split is the same for every run of
            # the task: rendered and audited once per Dojo.
            raw_texts = [
                self._rendered(prepared.task, record)
                for source in prepared.catalog.source_ids
                for record in self._repository.read_records(prepared.catalog, source)
            ]
            self._raw_overlap[key] = audit_contamination(trial_id, raw_texts, items).rate
        return audit_contamination(trial_id, texts, items, raw_rate=self._raw_overlap[key])

    @staticmethod
    def _rendered(task: TaskSpec, record: dict[str, Any]) -> str:
        # As the task renders the record into a training example, so that it lines up with
        # the test prompts; a record the task cannot use counts with its raw text.
        try:
            example = task.to_example(dict(record), include_rationale=True)
        except Exception:  # any record shape a source may hold
            example = None
        return f"{example.prompt}\n{example.response}" if example is not None else record_text(record)

    @contextlib.asynccontextmanager
    async def stream(self, task: str | TaskSpec, agent: Agent, **kwargs: Any) -> AsyncIterator[RunEvents]:
        """Start :meth:`run` in the background and iterate over its events as they happen.

        ::

            async with dojo.stream("math", FTAgent(), budget=Budget(max_trials=2)) as events:
                async for event in events:
                    print(event["type"], event.get("trial_id"))
            print(events.result.test_score)

        Iteration ends after ``run_finished``; ``events.result`` then holds the
        :class:`RunResult`. Leaving the block early does not cancel the run: it waits for
        the run to finish (cancel the enclosing scope to stop it; finished trials are in
        the journal either way). An error of the run is raised from the block. ``kwargs``
        are :meth:`run`'s.
        """
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](max_buffer_size=math.inf)
        events = RunEvents(receive)

        def forward(event: dict[str, Any]) -> None:
            # A listener that stopped reading must not disturb the run.
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                send.send_nowait(event)

        async def drive() -> None:
            with send:
                events.result = await self.run(task, agent, on_event=forward, **kwargs)

        with receive:
            async with anyio.create_task_group() as group:
                group.start_soon(drive)
                yield events

    def run_sync(self, task: str | TaskSpec, agent: Agent, **kwargs: Any) -> RunResult:
        """:meth:`run` for scripts and notebooks.

        Where this thread already runs an event loop (Jupyter, IPython), the run gets an
        event loop of its own in a worker thread, and this call blocks until it ends.
        """
        import anyio

        async def main() -> RunResult:
            return await self.run(task, agent, **kwargs)

        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop here: the usual case
            return anyio.run(main)
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ftdojo-run") as pool:
            return pool.submit(anyio.run, main).result()


class RunEvents:
    """The events of one run, as :meth:`Dojo.stream` yields them; ``result`` once it ends."""

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        #: The run's :class:`RunResult`, once the run has finished.
        self.result: RunResult | None = None

    def __aiter__(self) -> RunEvents:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            event: dict[str, Any] = await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
        return event
