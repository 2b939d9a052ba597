"""A run directory read back from its journal, for tools that work on finished runs.

Exporting a model and logging a run to an experiment tracker both need the same facts:
the task, the model, the budget, every trial, the final trial, its held-out score and
the base model's scores. They all live in ``journal.jsonl`` (``result.json`` is only a
summary of a finished run); this module reads them, for finished, resumed and killed
runs alike. It never imports torch.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import attrs

from ftdojo.contamination import ContaminationAudit
from ftdojo.errors import JournalError, ModelError
from ftdojo.journal import Journal
from ftdojo.results import BaselineResult, Budget, Trial
from ftdojo.sandbox.isolation import Isolation
from ftdojo.serialization import structure

__all__ = ["RunRecord", "plain_files", "read_run", "trial_model_dir"]


@attrs.frozen(kw_only=True)
class RunRecord:
    """What a run directory's journal says about the run."""

    run_dir: Path
    run_id: str
    #: The task reference of the ``run_started`` record: name, class and parameters.
    task: dict[str, Any]
    model: str
    budget: Budget | None
    #: What the sandbox enforced, as last recorded (a resumed run records it again).
    isolation: Isolation | None
    trials: tuple[Trial, ...]
    #: The run reached ``run_finished`` after its last trial (not killed, or resumed to the end).
    finished: bool
    #: The trial the run chose as its final model; when the run did not finish, the best
    #: validated trial (highest score, earliest on ties, as the Dojo would choose).
    final_trial_id: str | None
    stop_reason: str | None
    #: Held-out test scores by trial id (only the final trial of a finished run has one).
    test_scores: dict[str, float]
    test_per_category: dict[str, dict[str, float]]
    baseline: BaselineResult | None
    contamination: ContaminationAudit | None
    annotations: dict[str, dict[str, Any]]
    rejections: int
    violations: int
    started_at: float
    ended_at: float
    #: Budget used, from the last ``trial`` or ``run_finished`` record.
    usage: dict[str, float]

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


def best_validated(trials: tuple[Trial, ...]) -> Trial | None:
    """The Dojo's own choice when the agent names none: best score, earliest on ties."""
    scored = [t for t in trials if t.feedback.ok and t.score is not None]
    if not scored:
        return None
    return max(scored, key=lambda t: (t.score, -trials.index(t)))


def read_run(run_dir: Path | str) -> RunRecord:
    """Read ``run_dir/journal.jsonl``; :class:`JournalError` when it is not a run directory."""
    run_dir = Path(run_dir).expanduser().resolve()
    journal = Journal(run_dir / "journal.jsonl")
    if not run_dir.is_dir():
        raise JournalError(f"{run_dir} is not a directory")
    if not journal.path.is_file():
        raise JournalError(f"{run_dir} is not a run directory: it has no journal.jsonl")
    started: dict[str, Any] | None = None
    isolation: Any = None
    trials: dict[str, Trial] = {}
    finished_after_last_trial = False
    finished: dict[str, Any] | None = None
    test_scores: dict[str, float] = {}
    test_per_category: dict[str, dict[str, float]] = {}
    baseline: BaselineResult | None = None
    contamination: ContaminationAudit | None = None
    annotations: dict[str, dict[str, Any]] = {}
    rejections = violations = 0
    usage: dict[str, float] = {}
    first_time = last_time = 0.0
    try:
        for record in journal.records():
            kind = record["kind"]
            at = float(record.get("time", 0.0))
            first_time = first_time or at
            last_time = max(last_time, at)
            if kind == "run_started":
                started = record
                isolation = record.get("isolation")
            elif kind == "run_resumed":
                isolation = record.get("isolation", isolation)
            elif kind == "trial":
                trial = structure(record["trial"], Trial)
                trials[trial.trial_id] = trial
                finished_after_last_trial = False
                usage = {
                    "trials": float(len(trials)),
                    "seconds": float(record.get("seconds", 0.0)),
                    "train_tokens": float(record.get("tokens_total", 0)),
                }
            elif kind == "test_score":
                test_scores[str(record["trial_id"])] = float(record["score"])
                test_per_category[str(record["trial_id"])] = {
                    str(k): float(v) for k, v in (record.get("per_category") or {}).items()
                }
            elif kind == "baseline":
                baseline = structure(record["baseline"], BaselineResult)
            elif kind == "contamination":
                contamination = structure(record["audit"], ContaminationAudit)
            elif kind == "annotation":
                annotations.setdefault(str(record["trial_id"]), {})[str(record["key"])] = record["value"]
            elif kind == "rejection":
                rejections += 1
            elif kind == "violation":
                violations += 1
            elif kind == "run_finished":
                finished = record["result"]
                finished_after_last_trial = True
    except (KeyError, TypeError, ValueError) as exc:
        # PlanError (a ValueError) included: a record that no longer fits the types.
        raise JournalError(f"{journal.path}: unreadable record: {exc}") from exc
    if started is None:
        raise JournalError(f"{journal.path} has no run_started record")
    ordered = tuple(trials.values())
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
    try:
        budget = structure(started["budget"], Budget) if started.get("budget") else None
        isolation_value = structure(isolation, Isolation) if isolation else None
        task = dict(started["task"])
        model = str(started["model"])
        run_id = str(started.get("run_id", run_dir.name))
    except (KeyError, TypeError, ValueError) as exc:
        raise JournalError(f"{journal.path}: the run_started record is unreadable: {exc}") from exc
    return RunRecord(
        run_dir=run_dir,
        run_id=run_id,
        task=task,
        model=model,
        budget=budget,
        isolation=isolation_value,
        trials=ordered,
        finished=finished is not None and finished_after_last_trial,
        final_trial_id=str(final_id) if final_id else None,
        stop_reason=stop_reason,
        test_scores=test_scores,
        test_per_category=test_per_category,
        baseline=baseline,
        contamination=contamination,
        annotations=annotations,
        rejections=rejections,
        violations=violations,
        started_at=first_time,
        ended_at=last_time,
        usage=usage,
    )


def trial_model_dir(run: RunRecord, trial_id: str) -> Path:
    """Where trial ``trial_id`` saved its model or adapter (as ``jobs/train.py`` writes it)."""
    return run.run_dir / "trials" / trial_id / "model"


def plain_files(folder: Path) -> list[Path]:
    """The files of a flat model folder; :class:`ModelError` for a link or anything but a file.

    A trial's job wrote the folder: a symbolic or hard link in it could make a tool that
    copies it (into an export or a tracking store) copy a file the job could not read.
    """
    try:
        info = os.lstat(folder)
    except FileNotFoundError as exc:
        raise ModelError(f"{folder} does not exist: the trial saved no model") from exc
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ModelError(f"{folder} is not a plain folder")
    files = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        entry_info = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(entry_info.st_mode):
            raise ModelError(f"{entry.path} is a symbolic link")
        if not stat.S_ISREG(entry_info.st_mode):
            raise ModelError(f"{entry.path} is not a plain file")
        if entry_info.st_nlink != 1:
            raise ModelError(f"{entry.path} is a hard link ({entry_info.st_nlink} names)")
        files.append(Path(entry.path))
    return files
