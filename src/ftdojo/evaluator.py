"""The held-out evaluator: the private splits, scoring in the sandbox, the contamination audit.

Every task has a validation split (the agent sees its scores and error samples) and a
test split (the agent never sees it, not even its path). Both are written once per task
version into the home's private area (mode 0700) and read only here and by the evaluate
job this module starts, which sees the one split it scores and the model under test.
Nothing else of the Dojo holds a split's path: callers name a split, the evaluator
finds it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from ftdojo._fs import write_atomic
from ftdojo.cards import DataCatalog
from ftdojo.contamination import (
    ContaminationAudit,
    audit_contamination,
    audit_not_possible,
    overlapping_test_items,
    read_training_rows,
    record_text,
)
from ftdojo.datarepo import RawDataRepository
from ftdojo.errors import ModelError
from ftdojo.feedback import EvaluationFeedback, Stage
from ftdojo.jobs.contracts import EvalJob, EvalResult
from ftdojo.sandbox.backend import JobLauncher
from ftdojo.sandbox.isolation import FilesystemView
from ftdojo.sandbox.jobs import JobOutcome, Limits
from ftdojo.serialization import structure, unstructure
from ftdojo.tasks.registry import task_reference
from ftdojo.tasks.spec import EvalItem, TaskSpec

__all__ = [
    "EVALUATE_ENTRY",
    "EvaluationSettings",
    "HeldOutEvaluator",
    "Split",
    "evaluation_result",
]

Split = Literal["validation", "test"]

#: The evaluate job's entry: the only code that reads a split, in its own process.
EVALUATE_ENTRY = "ftdojo.jobs.evaluate:evaluate"


def _write_items(path: Path, items: list[EvalItem]) -> None:
    # Readable by the Dojo's user alone, like the folder that holds it.
    lines = "".join(json.dumps(unstructure(item), sort_keys=True) + "\n" for item in items)
    write_atomic(path, lines, mode=0o600)


@attrs.frozen(kw_only=True)
class EvaluationSettings:
    """How the evaluate job runs: its sandbox limits and batch, and the error samples shown."""

    limits: Limits
    batch_size: int
    error_samples: int
    threads: int | None = None


class HeldOutEvaluator:
    """Owns the private splits of every task a Dojo prepares, and scores models on them."""

    def __init__(
        self,
        *,
        private_root: Path,
        settings: EvaluationSettings,
        launch: JobLauncher,
        hidden_paths: Callable[[], tuple[Path, ...]],
        repository: RawDataRepository,
    ) -> None:
        self._root = private_root
        self._settings = settings
        self._launch = launch
        self._hidden_paths = hidden_paths
        self._repository = repository
        # The raw data's own overlap with a task's test split is the same for every run
        # of the task: audited once per evaluator, by task version.
        self._raw_overlap: dict[str, tuple[frozenset[str], float]] = {}

    # -- the splits ---------------------------------------------------------------

    def _split_path(self, task: TaskSpec, split: Split) -> Path:
        return self._root / task.version() / f"{split}.jsonl"

    def prepare(self, task: TaskSpec) -> None:
        """Write the task's validation and test splits into the private area, once."""
        private = self._root / task.version()
        private.mkdir(parents=True, exist_ok=True)
        os.chmod(private, 0o700)
        validation, test = self._split_path(task, "validation"), self._split_path(task, "test")
        if not (validation.is_file() and test.is_file()):
            validation_items, test_items = task.eval_splits()
            _write_items(validation, list(validation_items))
            _write_items(test, list(test_items))

    def split_size(self, task: TaskSpec, split: Split) -> int:
        return len(self._split_path(task, split).read_text().splitlines())

    # -- scoring ------------------------------------------------------------------

    async def evaluate(
        self,
        task: TaskSpec,
        split: Split,
        *,
        model_path: Path,
        trained_path: Path | None,
        template: str,
        template_hash: str | None,
        workspace: Path,
        seconds_left: float,
        tags: Mapping[str, Any],
        error_samples: int | None = None,
    ) -> JobOutcome:
        """Run the evaluate job on ``split``; the outcome, failures included (a trial's stage)."""
        items_path = self._split_path(task, split)
        workspace.mkdir(parents=True, exist_ok=True)
        # The evaluator sees the one split it scores and the model under test, read-only.
        view = FilesystemView.of(
            writable=(workspace,),
            hidden=self._hidden_paths(),
            readable=(
                items_path,
                self._repository.root,
                model_path,
                *((trained_path,) if trained_path is not None else ()),
            ),
        )
        settings = self._settings
        wall = settings.limits.wall_seconds
        if math.isfinite(seconds_left):
            wall = min(wall, seconds_left)
        job = EvalJob(
            task=task_reference(task),
            items_path=str(items_path),
            model_path=str(model_path),
            trained_path=str(trained_path) if trained_path is not None else None,
            template=template,
            expected_template_hash=template_hash,
            batch_size=settings.batch_size,
            error_samples=settings.error_samples if error_samples is None else error_samples,
            threads=settings.threads,
        )
        return await self._launch(
            EVALUATE_ENTRY,
            unstructure(job),
            Stage.EVALUATE,
            workspace,
            attrs.evolve(
                settings.limits,
                wall_seconds=max(1.0, wall),
                threads=settings.threads or settings.limits.threads,
            ),
            tags,
            view=view,
        )

    async def score(
        self,
        task: TaskSpec,
        split: Split,
        *,
        model_path: Path,
        trained_path: Path | None,
        template: str,
        template_hash: str | None,
        workspace: Path,
        tags: Mapping[str, Any],
    ) -> EvaluationFeedback:
        """Score a model on ``split`` for the Dojo (a final model, a baseline); raises
        :class:`~ftdojo.errors.ModelError` when the evaluation fails. Test scores carry no
        error samples: they never leave the journal, but they need not exist at all."""
        outcome = await self.evaluate(
            task,
            split,
            model_path=model_path,
            trained_path=trained_path,
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
        result = evaluation_result(outcome)
        if result is None:
            raise ModelError(
                f"evaluation on the {split} split failed ({outcome.error_kind}): {outcome.root_cause}"
            )
        return result.evaluation

    # -- the contamination audit ----------------------------------------------------

    def audit_contamination(
        self,
        task: TaskSpec,
        catalog: DataCatalog,
        *,
        trial_id: str,
        training_rows: Path,
        tokenizer_file: Path,
    ) -> ContaminationAudit:
        """A trial's training data against the test split (see :mod:`ftdojo.contamination`)."""
        items = []
        for line in self._split_path(task, "test").read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            items.append(
                (str(item.get("item_id", "")), f"{item.get('prompt', '')} {item.get('reference', '')}")
            )
        try:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            rows = list(read_training_rows(training_rows))
            texts = tokenizer.decode_batch(rows, skip_special_tokens=True)
        except Exception as exc:  # tokenizers raises bare Exceptions; the audit must not end the run
            return audit_not_possible(trial_id, len(items), f"{type(exc).__name__}: {exc}")
        key = task.version()
        if key not in self._raw_overlap:
            raw_texts = [
                _rendered(task, record)
                for source in catalog.source_ids
                for record in self._repository.read_records(catalog, source)
            ]
            self._raw_overlap[key] = overlapping_test_items(raw_texts, items)
        explained, raw_rate = self._raw_overlap[key]
        return audit_contamination(trial_id, texts, items, raw_rate=raw_rate, raw_overlap=explained)


def evaluation_result(outcome: JobOutcome) -> EvalResult | None:
    """The evaluate job's result, or ``None`` when the job failed."""
    if not outcome.ok or outcome.result is None:
        return None
    return structure(outcome.result, EvalResult)


def _rendered(task: TaskSpec, record: dict[str, Any]) -> str:
    # As the task renders the record into a training example, so that it lines up with
    # the test prompts; a record the task cannot use counts with its raw text.
    try:
        example = task.to_example(dict(record), include_rationale=True)
    except Exception:  # any record shape a source may hold
        example = None
    return f"{example.prompt}\n{example.response}" if example is not None else record_text(record)
