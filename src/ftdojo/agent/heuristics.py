"""Rules of thumb every built-in planner and the validator share.

How a raw source reads from its catalogue entry (reasoning, noise, off-domain), how long
its records are as training examples, the first training configuration for a model, and
how many epochs fit a trial's share of the budget. Nothing here decides what to try next:
that is a planner's concern.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ftdojo.agent.protocols import Memory, PlanningContext
from ftdojo.cards import CatalogEntry, DataCatalog
from ftdojo.errors import FTDojoError
from ftdojo.models import ModelInfo
from ftdojo.plans import Plan, TrainConfig

__all__ = [
    "FULL_FINETUNE_MAX_PARAMETERS",
    "LEARNT_FORMAT",
    "MAX_EPOCHS",
    "PARAMETER_TOKENS_PER_SECOND",
    "TEMPLATE_TOKENS",
    "SourceAssessment",
    "assess_sources",
    "available_records",
    "default_train_config",
    "example_length",
    "fit_budget",
    "nothing_learnt",
    "rationale_field",
]


_RATIONALE_FIELDS = ("solution", "rationale", "reasoning", "explanation", "steps", "cot", "thought")
_OFF_DOMAIN = re.compile(r"off[- ]domain|unrelated|general[- ]knowledge|not (?:about|related)", re.I)
_NOISY = re.compile(r"\bwrong\b|unreliable|noisy|incorrect|\berrors?\b|mistakes?\b", re.I)
# "Spot checks found no errors" is praise, not a warning.
_NEGATED = re.compile(r"\b(?:no|not|without|never|free of|zero)\b[\w\s-]{0,12}$", re.I)


def _mentions_noise(note: str) -> bool:
    """Whether a note warns of wrong answers (a negated mention, "no errors", does not count)."""
    return any(not _NEGATED.search(note[: m.start()]) for m in _NOISY.finditer(note))


#: Prior for training throughput (parameters x tokens per second), measured on 2 CPU cores.
PARAMETER_TOKENS_PER_SECOND = 1.5e10

#: Models below this many parameters are fine-tuned in full; above it, with LoRA.
FULL_FINETUNE_MAX_PARAMETERS = 50_000_000


@attrs.frozen(kw_only=True)
class SourceAssessment:
    source_id: str
    has_rationale: bool
    noisy: bool
    off_domain: bool
    records: int
    #: p99 length in tokens of a record as a training example.
    length_p99: float
    #: The category labels its records carry (only judged when the task has categories).
    categories: frozenset[str] = frozenset()
    #: The task has categories but this source's records carry none: it cannot help a
    #: weak category, and is added after the sources that can.
    uncategorised: bool = False


def assess_sources(
    catalog: DataCatalog,
    *,
    categories: tuple[str, ...] = (),
    read_source: Callable[[str], Iterable[dict[str, Any]]] | None = None,
) -> tuple[SourceAssessment, ...]:
    """Judge each raw source from its catalogue entry before deciding how to use it.

    With the task's ``categories`` (from the card), a source whose records are labelled
    only with other categories is judged off-domain, whatever its note says: a docket of
    "litigation" records in a patent task with the same columns as the patent sources is
    not patent data. The labels come from every record where ``read_source`` is given,
    else from the catalogue's samples.
    """
    return tuple(_assess(e, categories, read_source) for e in catalog.entries)


def _category_values(
    entry: CatalogEntry, read_source: Callable[[str], Iterable[dict[str, Any]]] | None
) -> frozenset[str]:
    records: Iterable[dict[str, Any]] = entry.samples
    if read_source is not None:
        try:
            records = list(read_source(entry.source_id))
        except FTDojoError:  # unreadable here: the build will say so; judge by the samples
            records = entry.samples
    return frozenset(str(r["category"]) for r in records if r.get("category") not in (None, ""))


def available_records(plan: Plan, catalog: DataCatalog) -> int:
    """Records the plan's known sources hold, each capped at its selection's ``max_records``."""
    return sum(
        s.max_records or catalog[s.source].records
        for s in plan.data.sources
        if s.source in catalog.source_ids
    )


#: Tokens the prompt template (plain or chat) adds around an example, and the end marker.
TEMPLATE_TOKENS = 48


def example_length(entry: CatalogEntry) -> tuple[float, float]:
    """``(mean, p99)`` tokens of one of the source's records as a training example.

    Measured on the task's rendered examples where the catalogue has them; else the sum
    of the raw fields' lengths, which understates what a task's instructions add.
    """
    if entry.example_tokens is not None and entry.example_tokens.max > 0:
        return entry.example_tokens.mean, entry.example_tokens.p99
    stats = entry.token_stats.values()
    return sum(s.mean for s in stats), sum(s.p99 for s in stats)


def rationale_field(entry: CatalogEntry) -> str | None:
    """The field of a source that holds worked reasoning (``solution``, ``rationale``, ...), if any."""
    return next((f for f in entry.fields if f.lower() in _RATIONALE_FIELDS), None)


def _assess(
    entry: CatalogEntry,
    categories: tuple[str, ...],
    read_source: Callable[[str], Iterable[dict[str, Any]]] | None,
) -> SourceAssessment:
    field = rationale_field(entry)
    has_rationale = False
    if field is not None:
        # The catalogue's factual line says how many records fill the field.
        match = re.search(rf"([\d.]+)% '{re.escape(field)}'", entry.note)
        has_rationale = match is None or float(match.group(1)) >= 50.0
    practitioner_note = entry.note.split("\n")[0]
    off_domain = bool(_OFF_DOMAIN.search(practitioner_note))
    labels: frozenset[str] = frozenset()
    if categories and "category" in entry.fields:
        labels = _category_values(entry, read_source)
        # Labelled, but with none of the task's categories: another kind of data.
        off_domain = off_domain or bool(labels and labels.isdisjoint(categories))
    return SourceAssessment(
        source_id=entry.source_id,
        has_rationale=has_rationale,
        noisy=_mentions_noise(practitioner_note),
        off_domain=off_domain,
        categories=labels,
        uncategorised=bool(categories) and "category" not in entry.fields,
        records=entry.records,
        length_p99=example_length(entry)[1],
    )


def default_train_config(model: ModelInfo, longest_tokens: float) -> TrainConfig:
    """The training configuration a first trial gets for ``model``: full FT if small, else LoRA.

    ``longest_tokens`` is the longest record (p99, in the model's tokens) the plan trains
    on; ``max_length`` leaves room for the prompt template around it, within the context.
    """
    # Room for the prompt template and end marker around the raw text.
    needed = int(math.ceil((longest_tokens + TEMPLATE_TOKENS) / 64.0) * 64)
    max_length = max(64, min(model.context_length, needed))
    if model.parameters and model.parameters < FULL_FINETUNE_MAX_PARAMETERS:
        # A small model learns fastest with full fine-tuning; measured on the tiny
        # model, 1e-3 with warm-up was steady where a constant 3e-3 diverged, and
        # batch 8 (more steps for the same tokens) beat batch 16.
        return TrainConfig(
            method="full",
            learning_rate=1e-3,
            epochs=3.0,
            batch_size=8,
            max_length=max_length,
            warmup_ratio=0.05,
            lr_scheduler="cosine",
        )
    return TrainConfig(
        method="lora",
        lora_rank=16,
        lora_alpha=32,
        learning_rate=2e-4,
        epochs=2.0,
        batch_size=8,
        max_length=max_length,
    )


#: Below this share of outputs in the required format, a trial has not learnt the task's format.
LEARNT_FORMAT = 0.5

#: The most epochs a plan is given, when more of the budget is left than it could use.
MAX_EPOCHS = 12.0


def nothing_learnt(memory: Memory) -> bool:
    """Trials ran and were evaluated, and none learnt the answer format.

    Under a small budget that means each trial's share was too small for the model to
    learn anything; splitting what is left again would only repeat that, so the next
    trial gets all of it.
    """
    evaluated = [t.feedback.evaluation for t in memory.trials if t.feedback.evaluation is not None]
    return bool(evaluated) and all(e.format_compliance < LEARNT_FORMAT for e in evaluated)


def _with_epochs(plan: Plan, epochs: float) -> Plan:
    return attrs.evolve(plan, train=attrs.evolve(plan.train, epochs=epochs))


def fit_budget(
    plan: Plan, context: PlanningContext, *, max_epochs: float = MAX_EPOCHS, even: bool = False
) -> Plan:
    """Cap the epochs so that this trial takes at most its share of what is left.

    The share is of the tokens and the seconds (through the measured throughput,
    or a prior from the model size before any trial) left: with n trials left, 1/(n+1)
    for each trial but the last, which gets all that remains (so twice the others'):
    a first trial that eats the whole budget leaves nothing to iterate with. When the
    trials so far were evaluated and none learnt the answer format, the next trial
    gets all that is left. ``even=True`` is the plain rule for search baselines: 1/n
    of what is left for each of the n trials left.
    """
    left = context.budget_left
    trials_left = left.trials or 3  # no trial limit (None), or none left
    per_record = [
        example_length(context.catalog[s.source])[0] + TEMPLATE_TOKENS / 2
        for s in plan.data.sources
        if s.source in context.catalog.source_ids
    ]
    if not per_record:
        return plan
    built = [t.feedback.data for t in context.memory.trials if t.feedback.data and t.feedback.data.records]
    if built:
        # What the data step measured (template included) beats the catalogue's estimate.
        per_record = [max(d.tokens / d.records for d in built)]
    records = min(
        plan.data.max_records,
        available_records(plan, context.catalog),
    )
    tokens_per_epoch = records * sum(per_record) / len(per_record)
    shares: list[float] = []
    # Every trial before the last gets an even share of what is left with the last trial
    # counted twice, and the last trial gets all of it: exploring stays cheap, and the
    # last trial, which refines the best plan, trains the longest. (Under a small budget
    # every trial underfits, so the extra tokens go where they count.)
    all_in = not even and nothing_learnt(context.memory)
    if left.trials is None:
        split = 3  # no trial limit: thirds of what is left
    elif even:
        split = trials_left
    elif trials_left == 1 or all_in:
        split = 1
    else:
        split = trials_left + 1
    if left.train_tokens is not None:
        shares.append(left.train_tokens / split)
    measured = [t.feedback.training.tokens_per_second for t in context.memory.trials if t.feedback.training]
    if not measured and context.model.parameters:
        # Before any trial has measured throughput, a prior from the model size:
        # on a 2-core CPU both the tiny model and SmolLM2-135M (LoRA) train near
        # 1.5e10 parameter-tokens per second.
        measured = [PARAMETER_TOKENS_PER_SECOND / context.model.parameters]
    if left.seconds is not None and measured and max(measured) > 0:
        # Training gets about 70% of a trial's time; building and evaluating take the rest.
        shares.append(max(measured) * 0.7 * left.seconds / split)
    note = (
        " No trial has learnt the answer format yet, so a share too small to learn it "
        "would teach nothing: this trial gets all the budget left."
        if all_in and split == 1 and trials_left > 1
        else ""
    )
    if not shares:
        return plan
    if tokens_per_epoch * plan.train.epochs <= min(shares):
        if split == 1 and not even and left.trials:
            # The trial that gets all that is left uses it: whatever it changes, it
            # trains on the rest of the budget (at most max_epochs).
            filled = min(max_epochs, round(min(shares) / tokens_per_epoch, 2))
            if filled > plan.train.epochs:
                return attrs.evolve(
                    _with_epochs(plan, filled),
                    hypothesis=plan.hypothesis
                    + f" Epochs raised to {filled} to use the rest of the budget."
                    + note,
                )
        return attrs.evolve(plan, hypothesis=plan.hypothesis + note) if note else plan
    # Fractions of an epoch are fine (the trainer stops after that many records): the
    # share is what counts, and a floor above it would be refused by the validator.
    epochs = max(0.01, round(min(shares) / tokens_per_epoch, 2))
    if epochs >= plan.train.epochs:
        return plan
    return attrs.evolve(
        _with_epochs(plan, epochs),
        hypothesis=plan.hypothesis
        + f" Epochs capped at {epochs} to fit this trial's share of the budget."
        + note,
    )
