"""The Dojo: runs an agent on a task, enforces the budget, keeps the held-out split.

The agent drives; the Dojo enforces. ``Dojo.run`` hands the agent a session (see
:mod:`ftdojo.session`), the only door to the environment. The Dojo is a façade over
the modules that do the work, each named for its concern:

* :mod:`ftdojo.budget` — the budget clock;
* :mod:`ftdojo.pipeline` — a trial as stages (build, train, check artifacts, validate);
* :mod:`ftdojo.evaluator` — the held-out evaluator (private splits, scoring, audit);
* :mod:`ftdojo.models` — the model store; :mod:`ftdojo.datarepo` — the raw data;
* :mod:`ftdojo.journal` — the run's journal and its one replay.

This module keeps construction, events, ``run`` / ``resume`` / ``baseline`` /
``stream`` / ``run_sync`` and finishing. Every data build, training and evaluation
runs in a sandboxed child process; the validation split is read only by the
evaluator's job, and the test split only when the final trial is scored. In the
default (trusted) mode the agent runs in the caller's process: that is no security
boundary against a hostile agent, only a clean interface.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import structlog

from ftdojo._fs import write_atomic
from ftdojo.contamination import ContaminationAudit
from ftdojo.datarepo import RawDataRepository, TokenCounter
from ftdojo.errors import BudgetExhausted, ConfigError, IsolationError, JournalError
from ftdojo.evaluator import EvaluationSettings, HeldOutEvaluator
from ftdojo.feedback import Stage
from ftdojo.journal import (
    AgentFailed,
    BaselineRecord,
    ContaminationRecord,
    HeldOutScore,
    Journal,
    RunFinished,
    RunRecord,
    RunResumed,
    RunStarted,
    best_validated,
    replay,
)
from ftdojo.local_session import LocalSession, RunState
from ftdojo.models import DEFAULT_MODEL, ModelStore, default_home, model_info
from ftdojo.pipeline import JobEntries, PreparedTask, StageLimits, TrialServices
from ftdojo.results import BaselineResult, Budget, RunResult, Trial
from ftdojo.sandbox import Job, JobOutcome, JobRunner, Limits, SandboxRunner
from ftdojo.sandbox.isolation import FilesystemView, Isolation
from ftdojo.sandbox.untrusted import AgentHostGrant, HostedAgent
from ftdojo.serialization import to_json, unstructure
from ftdojo.session import Agent
from ftdojo.tasks.registry import get_task, task_from_reference, task_reference
from ftdojo.tasks.spec import TaskSpec

__all__ = [
    "DEFAULT_FINISHERS",
    "Dojo",
    "EventHandler",
    "Finisher",
    "RunEvents",
    "StageLimits",
]

log = structlog.get_logger("ftdojo")

EventHandler = Callable[[dict[str, Any]], None]

#: Called with a finished run's directory, in a worker thread, after ``run_finished`` is
#: journalled (a failure only warns: it must never cost the result). A string names one
#: as ``"package.module:function"``, imported when a run finishes.
Finisher = Callable[[Path], None]

#: What every run does when it ends unless the Dojo is told otherwise: write its HTML
#: report. Named, not imported, so the core never imports its presentation layer.
DEFAULT_FINISHERS: tuple[Finisher | str, ...] = ("ftdojo.report:write_run_report",)


def _describe_agent(agent: Agent) -> dict[str, Any]:
    """Which agent (and planner, where it has one) drives a run, for the journal."""

    def path(obj: object) -> str:
        cls = type(obj)
        return f"{cls.__module__}:{cls.__qualname__}"

    described: dict[str, Any] = {"agent": path(agent)}
    entry = getattr(agent, "entry", None)  # an UntrustedAgent names the agent it hosts
    if isinstance(entry, str):
        described["entry"] = entry
    planner = getattr(agent, "planner", None)
    if planner is not None:
        described["planner"] = path(planner)
    return described


class Dojo:
    """The environment: task registry, raw-data repository, sandboxed trainer, held-out evaluator.

    ``home`` holds caches (built models, the raw-data repository, the private
    evaluation splits); ``runs_dir`` holds one directory per run.

    ``runner`` is the sandbox backend (any :class:`~ftdojo.sandbox.backend.JobRunner`;
    by default a :class:`~ftdojo.sandbox.SandboxRunner`). ``entries`` names the build
    and train jobs; ``train_entry``, a class attribute, is the shorthand a subclass may
    set, as the adversarial tests do to play a compromised trainer. Whatever a trainer
    leaves is checked before anything loads it (see :mod:`ftdojo.artifacts`).
    ``finishers`` run when a run ends (by default they write its HTML report).

    Every job runs under the strongest isolation the machine allows (see
    :attr:`isolation`); where a protection is missing the Dojo warns, and with
    ``strict_isolation=True`` it refuses to start a run instead.

    Several runs may share one Dojo (start them in a task group): at most
    ``max_workers`` sandboxed jobs run at once across all of them, the others wait
    their turn. The default, one, suits a CPU, where two training jobs at once run far
    slower than one after the other; raise it for a machine with GPUs or many cores.
    """

    train_entry: str = JobEntries().train

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
        entries: JobEntries | None = None,
        finishers: Sequence[Finisher | str] = DEFAULT_FINISHERS,
    ) -> None:
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
        self.entries = entries or JobEntries(train=self.train_entry)
        self.finishers = tuple(finishers)
        self._handlers: list[EventHandler] = [on_event] if on_event is not None else []
        # Handlers of one run (``run(on_event=...)``, :meth:`stream`), by run id: a Dojo
        # may run several at once, and each listener hears only its own.
        self._run_handlers: dict[str, list[EventHandler]] = {}
        self._repository = RawDataRepository(self.home / "data")
        self._models = ModelStore(self.home, launch=self._job, threads=threads)
        self._evaluator = HeldOutEvaluator(
            private_root=self.home / "private",
            settings=EvaluationSettings(
                limits=self.limits.evaluate,
                batch_size=self.limits.eval_batch_size,
                error_samples=self.limits.error_samples,
                threads=threads,
            ),
            launch=self._job,
            hidden_paths=self._hidden_paths,
            repository=self._repository,
        )
        self._services = TrialServices(
            launch=self._job,
            limits=self.limits,
            entries=self.entries,
            evaluator=self._evaluator,
            trial_view=self._trial_view,
            threads=threads,
        )
        self._prepared: dict[tuple[str, str], PreparedTask] = {}

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

    # -- jobs ---------------------------------------------------------------------

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
        """Start one sandboxed job within the worker limit, its events forwarded to listeners."""
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

    def _trial_view(self, prepared: PreparedTask, writable: Sequence[Path]) -> FilesystemView:
        for path in writable:
            path.mkdir(parents=True, exist_ok=True)
        return FilesystemView.of(
            writable=writable,
            hidden=self._hidden_paths(),
            # Re-exposed in case the user put the caches inside the runs folder.
            readable=(self._repository.root, prepared.model_path),
        )

    def _agent_host_grant(self, run: RunState) -> AgentHostGrant:
        """What an agent in its own process may have of this run beyond the session: its
        workspace, a view without the private splits, journals and evaluator files, the raw
        sources' files, and a way to report what it tried that crossed the sandbox."""
        workspace = run.run_dir / "agent"
        workspace.mkdir(parents=True, exist_ok=True)
        catalog = run.prepared.catalog
        return AgentHostGrant(
            workspace=workspace,
            view=FilesystemView.of(
                writable=(workspace,), hidden=self._hidden_paths(), readable=(self._repository.root,)
            ),
            sources={
                entry.source_id: {
                    "path": str(self._repository.source_path(catalog, entry.source_id)),
                    "format": entry.format,
                }
                for entry in catalog.entries
            },
            report_violations=lambda found: run.record_violations(None, None, found),
        )

    # -- preparation --------------------------------------------------------------

    async def ensure_model(self, name: str) -> Path:
        """The local folder of model ``name``, building an embedded model on first use.

        Safe when several processes ask at once: one builds, the others wait for it.
        A built folder is checked against its CHECKSUM once per Dojo; a corrupt one is
        rebuilt (it is a cache, and its source is pinned).
        """
        return await self._models.ensure(name)

    async def _prepare(self, task: str | TaskSpec, model: str | None) -> PreparedTask:
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
        self._evaluator.prepare(spec)
        prepared = PreparedTask(
            task=spec,
            model_name=model_name,
            model_path=model_path,
            info=info,
            catalog=catalog,
            source_paths=source_paths,
        )
        self._prepared[key] = prepared
        return prepared

    # -- public API -----------------------------------------------------------------

    async def baseline(self, task: str | TaskSpec, *, model: str | None = None) -> BaselineResult:
        """Score the untouched base model on the validation and test splits."""
        await self._check_isolation()
        prepared = await self._prepare(task, model)
        workspace = self.home / "tmp" / f"baseline-{secrets.token_hex(4)}"
        tags = {"baseline": prepared.model_name}
        scores: dict[str, float] = {}
        try:
            for split, folder in (("validation", "v"), ("test", "t")):
                evaluation = await self._evaluator.score(
                    prepared.task,
                    split,  # type: ignore[arg-type]
                    model_path=prepared.model_path,
                    trained_path=None,
                    template="auto",
                    template_hash=None,
                    workspace=workspace / folder,
                    tags=tags,
                )
                scores[split] = evaluation.score
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
        return BaselineResult(
            task=prepared.task.name,
            model=prepared.model_name,
            validation_score=scores["validation"],
            test_score=scores["test"],
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
        if isinstance(agent, HostedAgent):
            # Before anything is written: a hosted agent that may not run here starts no run.
            await anyio.to_thread.run_sync(agent.check_isolation)
        prepared = await self._prepare(task, model)
        run_id = run_id or f"{prepared.task.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        run_dir = self.runs_dir / run_id
        journal = Journal(run_dir / "journal.jsonl")
        earlier = self._earlier(journal, prepared)
        agent_facts = _describe_agent(agent)
        if earlier is None:
            run_dir.mkdir(parents=True, exist_ok=True)
            journal.write(
                RunStarted(
                    run_id=run_id,
                    task=task_reference(prepared.task),
                    model=prepared.model_name,
                    budget=budget,
                    isolation=isolation,
                    agent=agent_facts,
                )
            )
        else:
            log.info("resuming run", run_id=run_id, trials=len(earlier.trials))
            journal.write(
                RunResumed(run_id=run_id, trials=len(earlier.trials), isolation=isolation, agent=agent_facts)
            )
        run = RunState(
            prepared=prepared,
            run_dir=run_dir,
            budget=budget,
            journal=journal,
            earlier=earlier,
            isolation=isolation,
            services=self._services,
            repository=self._repository,
            emit=self._emit,
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

    @staticmethod
    def _earlier(journal: Journal, prepared: PreparedTask) -> RunRecord | None:
        """What the journal of a run being resumed holds; ``None`` for a new run."""
        if not journal.path.is_file() or not any(True for _ in journal.records()):
            return None
        earlier = replay(journal.path)
        if earlier.task_name != prepared.task.name:
            raise JournalError(f"{journal.path} belongs to task {earlier.task_name!r}")
        return earlier

    async def _drive(self, run: RunState, agent: Agent, *, with_baseline: bool) -> RunResult:
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
        session = LocalSession(run)
        try:
            if isinstance(agent, HostedAgent):
                await agent.run_hosted(session, self._agent_host_grant(run))
            else:
                await agent.run(session)
        except BudgetExhausted as exc:
            stop_reason = str(exc)
        except Exception as exc:  # the agent's own bug must not lose finished trials
            stop_reason = f"agent failed: {type(exc).__name__}: {exc}"
            log.error("agent failed", error=repr(exc))
            run.journal.write(AgentFailed(error=repr(exc)))
        run.clock.stop()
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
        journal = run_dir / "journal.jsonl"
        if not journal.is_file():
            raise JournalError(f"{journal} does not exist: nothing to resume")
        earlier = replay(journal)
        try:
            task = task_from_reference(earlier.task)
        except (KeyError, TypeError, ValueError) as exc:
            raise JournalError(f"{journal}: the run_started record is unreadable: {exc}") from exc
        if earlier.budget is None:
            raise JournalError(f"{journal}: the run_started record holds no budget")
        recorded_budget, model = earlier.budget, earlier.model
        return await self.run(
            task,
            agent,
            budget=budget or recorded_budget,
            model=model,
            run_id=run_dir.name,
            with_baseline=with_baseline,
            on_event=on_event,
        )

    async def _finish(self, run: RunState, stop_reason: str, *, with_baseline: bool) -> RunResult:
        prepared = run.prepared
        final: Trial | None
        if run.final_choice is not None:
            final = next(t for t in run.trials if t.trial_id == run.final_choice)
        else:
            final = best_validated(tuple(run.trials))
        test_score: float | None = None
        contamination: ContaminationAudit | None = None
        if final is not None:
            data = final.feedback.data
            template = data.template if data else "auto"
            # The test split is scored with the exact template the final model was trained with.
            template_hash = data.template_hash if data and data.template_hash else None
            test_eval = await self._evaluator.score(
                prepared.task,
                "test",
                model_path=prepared.model_path,
                trained_path=run.run_dir / "trials" / final.trial_id / "model",
                template=template,
                template_hash=template_hash,
                workspace=run.run_dir / ".evaluator" / f"{final.trial_id}-test",
                tags={"run_id": run.run_id, "trial_id": final.trial_id, "split": "test"},
            )
            test_score = test_eval.score
            run.journal.write(
                HeldOutScore(
                    trial_id=final.trial_id,
                    score=test_score,
                    per_category=test_eval.per_category,
                    format_compliance=test_eval.format_compliance,
                )
            )
            contamination = await anyio.to_thread.run_sync(
                lambda: self._evaluator.audit_contamination(
                    prepared.task,
                    prepared.catalog,
                    trial_id=final.trial_id,
                    training_rows=run.run_dir / "trials" / final.trial_id / "data" / "train.jsonl",
                    tokenizer_file=prepared.model_path / "tokenizer.json",
                )
            )
            run.journal.write(ContaminationRecord(audit=contamination))
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
            run.journal.write(BaselineRecord(baseline=baseline))
        result = RunResult(
            run_id=run.run_id,
            task=prepared.task.name,
            model=prepared.model_name,
            run_dir=str(run.run_dir),
            trials=tuple(run.trials),
            final_trial_id=final.trial_id if final else None,
            validation_score=final.score if final else None,
            test_score=test_score,
            usage=run.clock.usage(),
            stop_reason=stop_reason,
            baseline=baseline,
            rejections=tuple(run.rejections),
            annotations={k: dict(v) for k, v in run.annotations.items()},
            violations=tuple(run.violations),
            isolation=run.isolation,
            contamination=contamination,
        )
        run.journal.write(RunFinished(result=unstructure(result)))
        # A readable summary beside the journal (the journal stays the source of truth).
        write_atomic(run.run_dir / "result.json", to_json(result, indent=2))
        for finisher in self.finishers:
            await self._call_finisher(finisher, run)
        self._emit({"type": "run_finished", "run_id": run.run_id, "test_score": test_score})
        return result

    async def _call_finisher(self, finisher: Finisher | str, run: RunState) -> None:
        try:
            if isinstance(finisher, str):
                module, _, name = finisher.partition(":")
                call: Finisher = getattr(importlib.import_module(module), name)
            else:
                call = finisher
            # In a thread: drawing a report's charts takes a second or two.
            await anyio.to_thread.run_sync(call, run.run_dir)
        except Exception as exc:  # a finisher is a convenience: it must never cost the result
            log.warning("run finisher failed", run_id=run.run_id, finisher=repr(finisher), error=repr(exc))

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
