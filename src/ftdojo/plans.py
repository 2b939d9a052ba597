"""What an agent proposes: a data recipe plus a training configuration.

Plans are frozen attrs classes so that they hash, compare by value (a planner can
tell it already tried a plan) and round-trip through JSON (an LLM can write one and
the journal can store one). Field validators reject values that can never work, with
the field's name in the message; checks that depend on the task or the model (a
source exists, the length fits the context) belong to the validator.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

import attrs

from ftdojo.errors import PlanError, SchemaError
from ftdojo.serialization import structure, unstructure

__all__ = [
    "DataRecipe",
    "FieldChange",
    "Plan",
    "SourceSelection",
    "TrainConfig",
    "describe_value",
    "flatten_plan",
    "plan_diff",
]

TemplateChoice = Literal["auto", "chat", "plain"]
TrainMethod = Literal["full", "lora"]
Precision = Literal["auto", "fp32", "bf16"]
Focus = Literal["data", "training", "both"]
Scheduler = Literal["linear", "cosine", "constant", "constant_with_warmup"]


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
        raise PlanError(f"must be a positive finite number, got {value!r}", field=attribute.name)


def _non_negative(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not (isinstance(value, (int, float)) and value >= 0 and math.isfinite(value)):
        raise PlanError(f"must be a non-negative finite number, got {value!r}", field=attribute.name)


def _fraction(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise PlanError(f"must be in [0, 1), got {value!r}", field=attribute.name)


def _one_of(*choices: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            raise PlanError(f"must be one of {', '.join(choices)}, got {value!r}", field=attribute.name)

    return check


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen(kw_only=True)
class SourceSelection:
    """One raw source in a recipe, and how many of its records to take at most."""

    #: The error structuring raises when data does not fit (see :mod:`ftdojo.serialization`).
    schema_error: ClassVar[type[SchemaError]] = PlanError

    source: str
    max_records: int | None = attrs.field(default=None, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if not self.source:
            raise PlanError("must name a source", field="source")


def _selections(value: Iterable[SourceSelection]) -> tuple[SourceSelection, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class DataRecipe:
    """How to turn raw sources into training records.

    The steps run in this order, each one counted in the data feedback: load the
    selected sources (capped per source), apply ``transform_code``, drop records whose
    answer fails verification (``verified_only``), drop duplicates (``dedupe``), render
    the prompt template, drop records longer than the training ``max_length`` (they are
    dropped, not truncated: a cut-off answer teaches the wrong format), then sample
    ``max_records`` (stratified by category when ``stratify``).
    """

    #: The error structuring raises when data does not fit (see :mod:`ftdojo.serialization`).
    schema_error: ClassVar[type[SchemaError]] = PlanError

    sources: tuple[SourceSelection, ...] = attrs.field(converter=_selections)
    dedupe: bool = True
    verified_only: bool = False
    include_rationale: bool = True
    template: TemplateChoice = attrs.field(default="auto", validator=_one_of("auto", "chat", "plain"))
    max_records: int = attrs.field(default=2000, validator=_positive)
    stratify: bool = True
    seed: int = 0
    #: Python source defining ``transform(record: dict) -> dict | None``; it runs in the
    #: sandbox, never in the Dojo's process. Returning ``None`` drops the record.
    transform_code: str | None = None

    def __attrs_post_init__(self) -> None:
        if not self.sources:
            raise PlanError("must select at least one source", field="data.sources")
        names = [s.source for s in self.sources]
        if len(set(names)) != len(names):
            raise PlanError("selects a source twice", field="data.sources")


@attrs.frozen(kw_only=True)
class TrainConfig:
    """How to train: full fine-tuning or LoRA, and the optimisation settings."""

    #: The error structuring raises when data does not fit (see :mod:`ftdojo.serialization`).
    schema_error: ClassVar[type[SchemaError]] = PlanError

    method: TrainMethod = attrs.field(default="lora", validator=_one_of("full", "lora"))
    lora_rank: int = attrs.field(default=16, validator=_positive)
    lora_alpha: int = attrs.field(default=32, validator=_positive)
    lora_dropout: float = attrs.field(default=0.0, validator=_fraction)
    #: Module names LoRA adapts; ``("all-linear",)`` adapts every linear layer.
    lora_targets: tuple[str, ...] = attrs.field(default=("all-linear",), converter=_strings)
    learning_rate: float = attrs.field(default=2e-4, validator=_positive)
    lr_scheduler: Scheduler = attrs.field(
        default="cosine", validator=_one_of("linear", "cosine", "constant", "constant_with_warmup")
    )
    warmup_ratio: float = attrs.field(default=0.05, validator=_fraction)
    weight_decay: float = attrs.field(default=0.0, validator=_non_negative)
    epochs: float = attrs.field(default=1.0, validator=_positive)
    #: When set, overrides ``epochs``.
    max_steps: int | None = attrs.field(default=None, validator=_positive)
    batch_size: int = attrs.field(default=8, validator=_positive)
    grad_accum: int = attrs.field(default=1, validator=_positive)
    max_length: int = attrs.field(default=512, validator=_positive)
    max_grad_norm: float = attrs.field(default=1.0, validator=_positive)
    precision: Precision = attrs.field(default="auto", validator=_one_of("auto", "fp32", "bf16"))
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if not self.lora_targets:
            raise PlanError("must name at least one module", field="train.lora_targets")

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size * self.grad_accum


@attrs.frozen(kw_only=True)
class Plan:
    """One proposed trial: a data recipe, a training configuration and why.

    ``parent`` is the id of the trial this plan refines (``None`` for a first plan);
    ``hypothesis`` says what the plan expects to improve and why, and ``focus``
    whether it changes the data, the training, or both.
    """

    #: The error structuring raises when data does not fit (see :mod:`ftdojo.serialization`).
    schema_error: ClassVar[type[SchemaError]] = PlanError

    data: DataRecipe
    train: TrainConfig = attrs.field(factory=TrainConfig)
    hypothesis: str = ""
    focus: Focus = attrs.field(default="both", validator=_one_of("data", "training", "both"))
    parent: str | None = None

    def fingerprint(self) -> tuple[DataRecipe, TrainConfig]:
        """What makes two plans the same experiment (the prose does not)."""
        return (self.data, self.train)


# -- comparing plans ------------------------------------------------------------------------

#: The plan sections a diff compares: what makes two plans different experiments.
_SECTIONS: tuple[tuple[str, type[Any]], ...] = (("data", DataRecipe), ("train", TrainConfig))


@attrs.frozen(kw_only=True)
class FieldChange:
    """One field of a plan's data recipe or training configuration that differs.

    ``field`` is dotted (``"train.learning_rate"``); ``before`` and ``after`` are the
    values as JSON data, ``None`` where a plan (of an older version) lacks the field.
    """

    field: str
    before: Any
    after: Any

    def describe(self) -> str:
        """``field: before → after`` in short words."""
        before = describe_value(self.field, self.before)
        return f"{self.field}: {before} → {describe_value(self.field, self.after)}"


def _plan_data(plan: Plan | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(plan, Plan):
        return dict(unstructure(plan))
    data = dict(plan)
    try:
        # Fills in the defaults of fields an older journal's plan lacks, so that a field
        # added later does not show up as a change.
        return dict(unstructure(structure(data, Plan)))
    except Exception:  # a plan this version cannot read: compare it as it stands
        return data


def plan_diff(parent: Plan | Mapping[str, Any], child: Plan | Mapping[str, Any]) -> list[FieldChange]:
    """The fields of the data recipe and the training configuration where ``child``
    differs from ``parent``, in the order the plan declares them.

    Either plan may be a :class:`~ftdojo.Plan` or its JSON data as a journal holds it.
    The prose (hypothesis, focus) and the parent link are not compared: they do not
    change the experiment (see :meth:`ftdojo.Plan.fingerprint`).
    """
    before, after = _plan_data(parent), _plan_data(child)
    changes: list[FieldChange] = []
    for section, cls in _SECTIONS:
        old = before.get(section)
        new = after.get(section)
        old = old if isinstance(old, Mapping) else {}
        new = new if isinstance(new, Mapping) else {}
        declared = [f.name for f in attrs.fields(cls)]
        extra = sorted((set(old) | set(new)) - set(declared))
        for name in [*declared, *extra]:
            if name not in old and name not in new:
                continue
            if old.get(name) != new.get(name):
                changes.append(
                    FieldChange(field=f"{section}.{name}", before=old.get(name), after=new.get(name))
                )
    return changes


def describe_value(field: str, value: Any, limit: int = 120) -> str:
    """A plan field's value (as JSON data) in short words, as :meth:`FieldChange.describe` shows it."""
    if field == "data.sources" and isinstance(value, list):
        parts = []
        for item in value:
            if isinstance(item, Mapping):
                cap = item.get("max_records")
                parts.append(f"{item.get('source')}" + (f" (≤{cap})" if cap else ""))
            else:
                parts.append(str(item))
        return ", ".join(parts) or "none"
    if isinstance(value, str):
        lines = value.strip().splitlines()
        if len(lines) > 1:
            return f"{lines[0][:limit]} … ({len(lines)} lines)"
        text = json.dumps(value)
    elif value is None:
        return "none"
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def flatten_plan(plan: Plan) -> dict[str, Any]:
    """The plan as dotted names and scalar values (``train.learning_rate``, ``data.sources.0.source``).

    Lists of records get an index per element; lists of scalars stay one value (joined
    with commas), so that ``train.lora_targets`` reads as it was written.
    """
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key in sorted(value):
                walk(f"{prefix}.{key}" if prefix else str(key), value[key])
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
            for index, item in enumerate(value):
                walk(f"{prefix}.{index}", item)
        elif isinstance(value, (list, tuple)):
            flat[prefix] = ",".join(str(v) for v in value)
        else:
            flat[prefix] = value

    walk("", unstructure(plan))
    return flat
