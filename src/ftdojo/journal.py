"""The run journal: append-only JSON lines, each fsynced before the call returns.

A finished trial is on disk before the agent hears of it, so a run that is killed
resumes without losing it. A torn last line (the process died mid-write) is
ignored on reading and cut off before the next append; any other corrupt line is an
error that names the line.
"""

from __future__ import annotations

import enum
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs

from ftdojo.contamination import ContaminationAudit
from ftdojo.errors import JournalError, SchemaError
from ftdojo.feedback import Feedback
from ftdojo.plans import Plan
from ftdojo.results import BaselineResult, Budget, Rejection, Trial, Violation
from ftdojo.sandbox.isolation import Isolation
from ftdojo.serialization import structure, unstructure

__all__ = [
    "RECORD_TYPES",
    "AgentFailed",
    "AnnotationRecord",
    "BaselineRecord",
    "ContaminationRecord",
    "HeldOutScore",
    "Journal",
    "JournalRecord",
    "RecordKind",
    "RejectionRecord",
    "RunFinished",
    "RunRecord",
    "RunResumed",
    "RunStarted",
    "SmokeRecord",
    "TrialRecord",
    "ViolationRecord",
    "best_validated",
    "read_record",
    "replay",
]


class RecordKind(str, enum.Enum):
    """The kinds of record a run's journal holds, in the order a run writes them."""

    #: The run began: its id, task reference, model, budget, isolation, agent.
    RUN_STARTED = "run_started"
    #: A killed or finished run goes on: trials so far, isolation now.
    RUN_RESUMED = "run_resumed"
    #: A smoke run of a plan and its feedback (no trial, no budget).
    SMOKE = "smoke"
    #: A plan the agent's validator rejected before it ran.
    REJECTION = "rejection"
    #: A full trial (plan and feedback), with the budget spent when it ended.
    TRIAL = "trial"
    #: What the agent journalled about a trial under a key.
    ANNOTATION = "annotation"
    #: An attempt to cross the sandbox.
    VIOLATION = "violation"
    #: The agent raised; the run finished with what it had.
    AGENT_FAILED = "agent_failed"
    #: The final trial's held-out test score.
    TEST_SCORE = "test_score"
    #: The final trial's training data audited against the test split.
    CONTAMINATION = "contamination"
    #: The untouched base model's scores.
    BASELINE = "baseline"
    #: The run's result.
    RUN_FINISHED = "run_finished"


@attrs.frozen(kw_only=True)
class RunStarted:
    """The run began."""

    kind: ClassVar[RecordKind] = RecordKind.RUN_STARTED
    run_id: str
    #: The task reference (name, class, parameters) a resumed run re-creates the task from.
    task: dict[str, Any]
    model: str
    budget: Budget | None = None
    #: Older journals lack the fields below; they read as ``None``.
    isolation: Isolation | None = None
    #: Which agent (and planner) drives the run: ``{"agent": "module:Class", ...}``.
    agent: dict[str, Any] | None = None
    time: float = 0.0


@attrs.frozen(kw_only=True)
class RunResumed:
    """A killed or finished run goes on (a later agent may differ from the first)."""

    kind: ClassVar[RecordKind] = RecordKind.RUN_RESUMED
    run_id: str = ""
    trials: int = 0
    isolation: Isolation | None = None
    agent: dict[str, Any] | None = None
    time: float = 0.0


@attrs.frozen(kw_only=True)
class SmokeRecord:
    kind: ClassVar[RecordKind] = RecordKind.SMOKE
    plan: Plan
    feedback: Feedback
    time: float = 0.0


@attrs.frozen(kw_only=True)
class RejectionRecord:
    kind: ClassVar[RecordKind] = RecordKind.REJECTION
    rejection: Rejection
    time: float = 0.0


@attrs.frozen(kw_only=True)
class TrialRecord:
    """A finished trial, with what the run had spent when it ended (resume starts there)."""

    kind: ClassVar[RecordKind] = RecordKind.TRIAL
    trial: Trial
    #: Tokens trained by the run so far, this trial included.
    tokens_total: int | None = None
    #: The budget clock when the trial ended, in seconds since the run began.
    seconds: float | None = None
    time: float = 0.0


@attrs.frozen(kw_only=True)
class AnnotationRecord:
    kind: ClassVar[RecordKind] = RecordKind.ANNOTATION
    trial_id: str
    key: str
    value: Any
    time: float = 0.0


@attrs.frozen(kw_only=True)
class ViolationRecord:
    kind: ClassVar[RecordKind] = RecordKind.VIOLATION
    violation: Violation
    time: float = 0.0


@attrs.frozen(kw_only=True)
class AgentFailed:
    kind: ClassVar[RecordKind] = RecordKind.AGENT_FAILED
    error: str
    time: float = 0.0


@attrs.frozen(kw_only=True)
class HeldOutScore:
    """The final trial's held-out score: written to the journal, never shown to the agent."""

    kind: ClassVar[RecordKind] = RecordKind.TEST_SCORE
    trial_id: str
    score: float
    per_category: dict[str, float] = attrs.field(factory=dict)
    format_compliance: float | None = None
    time: float = 0.0


@attrs.frozen(kw_only=True)
class ContaminationRecord:
    kind: ClassVar[RecordKind] = RecordKind.CONTAMINATION
    audit: ContaminationAudit
    time: float = 0.0


@attrs.frozen(kw_only=True)
class BaselineRecord:
    kind: ClassVar[RecordKind] = RecordKind.BASELINE
    baseline: BaselineResult
    time: float = 0.0


@attrs.frozen(kw_only=True)
class RunFinished:
    """The run's result. Kept as the JSON object it was written as: a result is a summary
    whose fields grow with each version, and readers take what they know of it."""

    kind: ClassVar[RecordKind] = RecordKind.RUN_FINISHED
    result: dict[str, Any]
    time: float = 0.0


#: One class per kind: what a record of that kind holds.
JournalRecord = (
    RunStarted
    | RunResumed
    | SmokeRecord
    | RejectionRecord
    | TrialRecord
    | AnnotationRecord
    | ViolationRecord
    | AgentFailed
    | HeldOutScore
    | ContaminationRecord
    | BaselineRecord
    | RunFinished
)

RECORD_TYPES: dict[RecordKind, type[JournalRecord]] = {
    cls.kind: cls
    for cls in (
        RunStarted,
        RunResumed,
        SmokeRecord,
        RejectionRecord,
        TrialRecord,
        AnnotationRecord,
        ViolationRecord,
        AgentFailed,
        HeldOutScore,
        ContaminationRecord,
        BaselineRecord,
        RunFinished,
    )
}


def read_record(record: dict[str, Any]) -> JournalRecord | None:
    """A raw journal record as its typed class; ``None`` for a kind this version does not
    know. Fields a newer version added are ignored; a missing or mistyped field raises
    :class:`~ftdojo.errors.SchemaError` naming it."""
    try:
        kind = RecordKind(record["kind"])
    except ValueError:
        return None
    cls = RECORD_TYPES[kind]
    known = {field.name for field in attrs.fields(cls)}
    return structure({k: v for k, v in record.items() if k in known}, cls)


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._tail_checked = False
        #: Bytes of a torn last record cut off before this journal's first append.
        self.torn_bytes_dropped = 0

    def _drop_torn_tail(self) -> None:
        # A record torn by a crash has no newline; appending after it would glue the next
        # record onto it, and the journal would no longer read. Cut it off first.
        self._tail_checked = True
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0:
            return
        with self.path.open("rb+") as handle:
            handle.seek(max(0, size - 1))
            if handle.read(1) == b"\n":
                return
            handle.seek(0)
            keep = handle.read().rfind(b"\n") + 1
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        self.torn_bytes_dropped = size - keep

    def append(self, kind: RecordKind | str, **fields: Any) -> None:
        r"""Append one record and fsync it. The Dojo writes :class:`RecordKind`\ s; the
        journal itself is a plain log and takes any kind."""
        if not self._tail_checked:
            self._drop_torn_tail()
        name = kind.value if isinstance(kind, RecordKind) else str(kind)
        record = {"kind": name, "time": time.time(), **fields}
        line = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def write(self, record: JournalRecord) -> None:
        """Append a typed record (its ``time`` is the moment of writing)."""
        fields = unstructure(record)
        fields.pop("time", None)
        self.append(record.kind, **fields)

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        lines = self.path.read_bytes().split(b"\n")
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                if number == len(lines):  # torn final write: the record never completed
                    return
                raise JournalError(f"{self.path}, line {number}: corrupt journal record: {exc}") from exc
            if not isinstance(record, dict) or "kind" not in record:
                raise JournalError(f"{self.path}, line {number}: not a journal record")
            yield record


def best_validated(trials: tuple[Trial, ...]) -> Trial | None:
    """The Dojo's own choice when the agent names none: best score, earliest on ties
    (a later equal score is not evidence of improvement)."""
    scored = [t for t in trials if t.feedback.ok and t.score is not None]
    if not scored:
        return None
    return max(scored, key=lambda t: (t.score, -trials.index(t)))


@attrs.frozen(kw_only=True)
class RunRecord:
    """What a run directory's journal says about the run (see :func:`replay`)."""

    run_dir: Path
    run_id: str
    #: The task reference of the ``run_started`` record: name, class and parameters.
    task: dict[str, Any]
    model: str
    budget: Budget | None
    #: What the sandbox enforced, as last recorded (a resumed run records it again).
    isolation: Isolation | None
    #: Which agent drove the run, as ``run_started`` (and every resume) recorded it:
    #: ``{"agent": "package.module:Class", "planner": ...}``; ``None`` in older journals.
    agent: dict[str, Any] | None
    trials: tuple[Trial, ...]
    #: The run reached ``run_finished`` after its last trial and its last resume (it was
    #: not killed, or was resumed to the end).
    finished: bool
    #: The trial the run chose as its final model; when the run did not finish, the best
    #: validated trial (highest score, earliest on ties, as the Dojo would choose).
    final_trial_id: str | None
    stop_reason: str | None
    #: Held-out test scores by trial id (only the final trial of a finished run has one;
    #: a resume voids what an earlier finish scored).
    test_scores: dict[str, float]
    test_per_category: dict[str, dict[str, float]]
    baseline: BaselineResult | None
    contamination: ContaminationAudit | None
    annotations: dict[str, dict[str, Any]]
    rejections: tuple[Rejection, ...]
    violations: tuple[Violation, ...]
    started_at: float
    ended_at: float
    #: Budget used, from the last ``trial`` or ``run_finished`` record.
    usage: dict[str, float]
    #: The budget clock and the running token total when the last trial ended: what a
    #: resumed run starts from.
    seconds_spent: float = 0.0
    tokens_spent: int = 0
    #: Per trial id, the budget clock when the trial finished (seconds since the run began).
    elapsed: dict[str, float] = attrs.field(factory=dict)
    smokes: int = 0
    resumes: int = 0
    agent_failures: tuple[str, ...] = ()
    #: The ``run_finished`` record's result, as written, when :attr:`finished`.
    result: dict[str, Any] | None = None
    #: What :func:`replay` skipped in tolerant mode: ``"record N (kind): why"`` for each.
    skipped: tuple[str, ...] = ()

    @property
    def task_name(self) -> str:
        return str(self.task.get("name", "?"))

    @property
    def journal_path(self) -> Path:
        return self.run_dir / "journal.jsonl"

    @property
    def final_reason(self) -> str:
        """How :attr:`final_trial_id` was chosen, in words."""
        if self.final_trial_id is None:
            return "no trial succeeded"
        if self.finished:
            return "the final trial the run chose when it finished"
        return (
            "the best validated trial: the run did not finish (no run_finished record after its last trial)"
        )

    def trial(self, trial_id: str) -> Trial:
        for trial in self.trials:
            if trial.trial_id == trial_id:
                return trial
        known = ", ".join(t.trial_id for t in self.trials) or "none"
        raise JournalError(f"{self.journal_path}: no trial {trial_id!r} (trials: {known})")


def replay(path: Path | str, *, tolerant: bool = False) -> RunRecord:
    """Fold a run's journal into a :class:`RunRecord`: the one reader of every journal.

    Resume, :mod:`ftdojo.rundir` (export, MLflow) and the report all read a run through
    it. A record that does not fit its kind raises :class:`JournalError` naming the line;
    with ``tolerant=True`` it is skipped and listed in :attr:`RunRecord.skipped` (the
    report renders what it can of an old or damaged journal). A torn last line is always
    ignored (the process died writing it).
    """
    journal_path = Path(path)
    run_dir = journal_path.parent
    journal = Journal(journal_path)
    started: RunStarted | None = None
    isolation: Isolation | None = None
    agent: dict[str, Any] | None = None
    trials: dict[str, Trial] = {}
    finished_after_last_trial = False
    finished: dict[str, Any] | None = None
    test_scores: dict[str, float] = {}
    test_per_category: dict[str, dict[str, float]] = {}
    baseline: BaselineResult | None = None
    contamination: ContaminationAudit | None = None
    annotations: dict[str, dict[str, Any]] = {}
    rejections: list[Rejection] = []
    violations: list[Violation] = []
    elapsed: dict[str, float] = {}
    agent_failures: list[str] = []
    skipped: list[str] = []
    usage: dict[str, float] = {}
    seconds_spent = 0.0
    tokens_spent = 0
    smokes = resumes = 0
    first_time = last_time = 0.0
    try:
        records = list(journal.records())
    except (OSError, ValueError) as exc:  # ValueError: bytes that are not UTF-8
        raise JournalError(f"{journal_path} cannot be read: {exc}") from exc
    for number, raw in enumerate(records, start=1):
        try:
            record = read_record(raw)
        except SchemaError as exc:
            if not tolerant:
                raise JournalError(
                    f"{journal_path}: unreadable {raw['kind']} record {number}: {exc}"
                ) from exc
            skipped.append(f"record {number} ({raw['kind']}): {exc}"[:300])
            continue
        if record is None:
            # A kind this version does not know (a newer ftdojo wrote it): not ours to judge.
            skipped.append(f"record {number}: unknown kind {raw['kind']!r}")
            continue
        first_time = first_time or record.time
        last_time = max(last_time, record.time)
        if isinstance(record, RunStarted):
            started = record
            isolation = record.isolation
            agent = record.agent
        elif isinstance(record, RunResumed):
            resumes += 1
            isolation = record.isolation or isolation
            agent = record.agent or agent
            # What an earlier finish chose and scored no longer stands once the run goes on.
            finished, finished_after_last_trial, contamination = None, False, None
            test_scores.clear()
            test_per_category.clear()
        elif isinstance(record, TrialRecord):
            trial = record.trial
            trials[trial.trial_id] = trial
            finished_after_last_trial = False
            seconds_spent = record.seconds if record.seconds is not None else seconds_spent
            tokens_spent = record.tokens_total if record.tokens_total is not None else tokens_spent
            if record.seconds is not None:
                elapsed[trial.trial_id] = record.seconds
            usage = {
                "trials": float(len(trials)),
                "seconds": float(record.seconds or 0.0),
                "train_tokens": float(record.tokens_total or 0),
            }
        elif isinstance(record, HeldOutScore):
            test_scores[record.trial_id] = record.score
            test_per_category[record.trial_id] = dict(record.per_category)
        elif isinstance(record, BaselineRecord):
            baseline = record.baseline
        elif isinstance(record, ContaminationRecord):
            contamination = record.audit
        elif isinstance(record, AnnotationRecord):
            annotations.setdefault(record.trial_id, {})[record.key] = record.value
        elif isinstance(record, RejectionRecord):
            rejections.append(record.rejection)
        elif isinstance(record, ViolationRecord):
            violations.append(record.violation)
        elif isinstance(record, SmokeRecord):
            smokes += 1
        elif isinstance(record, AgentFailed):
            agent_failures.append(record.error)
        elif isinstance(record, RunFinished):
            finished = record.result
            finished_after_last_trial = True
    if started is None:
        raise JournalError(f"{journal_path} has no run_started record")
    ordered = tuple(trials.values())
    final_id: Any
    if finished is not None and finished_after_last_trial:
        final_id = finished.get("final_trial_id")
        stop_reason: str | None = str(finished.get("stop_reason", ""))
        used = finished.get("usage") or {}
        usage = {
            "trials": float(used.get("trials", len(ordered))),
            "seconds": float(used.get("seconds", 0.0)),
            "train_tokens": float(used.get("train_tokens", 0)),
        }
    else:
        best = best_validated(ordered)
        final_id = best.trial_id if best else None
        stop_reason = None
    return RunRecord(
        run_dir=run_dir,
        run_id=started.run_id or run_dir.name,
        task=dict(started.task),
        model=started.model,
        budget=started.budget,
        isolation=isolation,
        agent=agent,
        trials=ordered,
        finished=finished is not None and finished_after_last_trial,
        final_trial_id=str(final_id) if final_id else None,
        stop_reason=stop_reason,
        test_scores=test_scores,
        test_per_category=test_per_category,
        baseline=baseline,
        contamination=contamination,
        annotations=annotations,
        rejections=tuple(rejections),
        violations=tuple(violations),
        started_at=first_time,
        ended_at=last_time,
        usage=usage,
        seconds_spent=seconds_spent,
        tokens_spent=tokens_spent,
        elapsed=elapsed,
        smokes=smokes,
        resumes=resumes,
        agent_failures=tuple(agent_failures),
        result=finished if finished is not None and finished_after_last_trial else None,
        skipped=tuple(skipped),
    )
