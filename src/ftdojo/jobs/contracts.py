"""The typed payloads and results of the trial jobs: build, train, evaluate.

A job runs in a sandboxed child process and talks to the Dojo over JSON (see
:mod:`ftdojo.sandbox.protocol`). The Dojo's pipeline builds a payload as one of these
classes and unstructures it; the job structures it back first thing, so a field that
is missing, misspelt or of the wrong type fails there, named, instead of deep inside
the job. Results come back the same way. Each default lives here and nowhere else;
where the Dojo always decides a value (the evaluation batch size, for instance), the
field has no default at all.

Light on purpose: the worker imports this before any heavy library.
"""

from __future__ import annotations

from typing import Any

import attrs

from ftdojo.feedback import DataFeedback, EvaluationFeedback, TrainingFeedback
from ftdojo.model_specs import TinySpec
from ftdojo.plans import DataRecipe, TrainConfig

__all__ = [
    "BuildJob",
    "BuildResult",
    "EvalJob",
    "EvalResult",
    "GgufModelJob",
    "TinyModelJob",
    "TrainJob",
    "TrainResult",
]


@attrs.frozen(kw_only=True)
class BuildJob:
    """Build a trial's training data from raw sources (``ftdojo.jobs.build:build_data``)."""

    #: The task reference (name, class, parameters) the job re-creates the task from.
    task: dict[str, Any]
    #: Raw source id -> path of its file in the raw-data repository.
    sources: dict[str, str]
    #: Raw source id -> its format (``jsonl``, ``csv``, ...); a source not named is JSONL.
    source_formats: dict[str, str] = attrs.field(factory=dict)
    recipe: DataRecipe
    #: Longest training record in tokens: the plan's ``max_length`` within the model's context.
    max_length: int
    model_path: str
    output_dir: str
    #: Cap on records per source and in all (a smoke run); ``None`` for a full trial.
    limit_records: int | None = None


@attrs.frozen(kw_only=True)
class BuildResult:
    data: DataFeedback
    #: The chat template the records were rendered with, and its hash: the evaluation must
    #: render prompts with the same one.
    template: str
    template_hash: str


@attrs.frozen(kw_only=True)
class TrainJob:
    """Train on built data and save the model or adapter (``ftdojo.jobs.train:train``)."""

    train: TrainConfig
    data_path: str
    #: The trial's folder; the model is saved into ``output_dir/model``.
    output_dir: str
    model_path: str
    #: Training stops once it has seen this many tokens (the budget's tokens left).
    max_train_tokens: int | None = None
    #: A soft deadline inside the stage's hard wall-clock limit: training stops there and
    #: the model is still saved, so a trial that would run out of time keeps what it learnt.
    stop_after_seconds: float | None = None
    #: Cap on optimiser steps (a smoke run).
    max_steps: int | None = None
    save: bool = True
    threads: int | None = None


@attrs.frozen(kw_only=True)
class TrainResult:
    training: TrainingFeedback
    method: str


@attrs.frozen(kw_only=True)
class EvalJob:
    """Score a model on one evaluation split (``ftdojo.jobs.evaluate:evaluate``)."""

    task: dict[str, Any]
    #: The split's items (JSONL), in the Dojo's private area.
    items_path: str
    model_path: str
    #: The trained model or adapter; ``None`` scores the base model.
    trained_path: str | None = None
    template: str = "auto"
    #: The hash of the template the model was trained with; a mismatch fails the job.
    expected_template_hash: str | None = None
    batch_size: int
    error_samples: int
    #: ``None``: the task's own ``max_new_tokens``.
    max_new_tokens: int | None = None
    threads: int | None = None


@attrs.frozen(kw_only=True)
class EvalResult:
    evaluation: EvaluationFeedback
    template: str
    template_hash: str


@attrs.frozen(kw_only=True)
class TinyModelJob:
    """Build the embedded tiny model from its seed (``ftdojo.jobs.models:build_tiny``)."""

    spec: TinySpec
    #: The model's folder in the cache; written under a temporary name, then renamed.
    target: str


@attrs.frozen(kw_only=True)
class GgufModelJob:
    """Dequantise a GGUF file into a plain Hugging Face folder (``ftdojo.jobs.models:convert_gguf``)."""

    gguf: str
    target: str
