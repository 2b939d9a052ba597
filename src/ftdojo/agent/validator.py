"""Fail-fast validation: static checks in microseconds, then a smoke run in the sandbox."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Literal

from ftdojo.agent.protocols import Verdict
from ftdojo.plans import Plan

if TYPE_CHECKING:
    from ftdojo.dojo import Session

__all__ = ["FailFastValidator", "projected_seconds", "projected_tokens", "static_problems"]

#: Share of a trial's time that goes to training (building and evaluating take the rest).
_TRAIN_SHARE = 0.7


def _catalog_tokens(plan: Plan, session: Session) -> float | None:
    """Records x mean length x epochs, from the catalogue; ``None`` if a source is unknown."""
    known = set(session.catalog.source_ids)
    if not plan.data.sources or not known.issuperset(s.source for s in plan.data.sources):
        return None
    records = min(
        plan.data.max_records,
        sum(s.max_records or session.catalog[s.source].records for s in plan.data.sources),
    )
    mean = sum(
        sum(stats.mean for stats in session.catalog[s.source].token_stats.values()) for s in plan.data.sources
    ) / len(plan.data.sources)
    return records * mean * plan.train.epochs


def projected_tokens(plan: Plan, session: Session) -> float | None:
    """Tokens the plan would train on, from the catalogue, at most the token budget left."""
    tokens = _catalog_tokens(plan, session)
    if tokens is None:
        return None
    left = session.budget_left.train_tokens
    # Training stops at the token budget, so a trial never trains more than is left.
    return min(tokens, float(left)) if left >= 0 else tokens


def projected_seconds(plan: Plan, session: Session) -> float | None:
    """How long the full trial would take: its tokens over the throughput measured so far.

    Before any trial has measured it, a prior from the model size (see
    :data:`ftdojo.agent.planner.PARAMETER_TOKENS_PER_SECOND`).
    """
    from ftdojo.agent.planner import PARAMETER_TOKENS_PER_SECOND

    tokens = projected_tokens(plan, session)
    measured = [
        t.feedback.training.tokens_per_second
        for t in session.history
        if t.feedback.training is not None and t.feedback.training.tokens_per_second > 0
    ]
    if measured:
        throughput = max(measured)
    elif session.model.parameters:
        throughput = PARAMETER_TOKENS_PER_SECOND / session.model.parameters
    else:
        return None
    return None if tokens is None else tokens / throughput / _TRAIN_SHARE


def static_problems(plan: Plan, session: Session) -> list[str]:
    """What is wrong with ``plan`` for this task and model, found without running anything."""
    problems: list[str] = []
    known = set(session.catalog.source_ids)
    for selection in plan.data.sources:
        if selection.source not in known:
            problems.append(
                f"data.sources: no source {selection.source!r} (known: {', '.join(sorted(known))})"
            )
    model = session.model
    if plan.train.max_length > model.context_length:
        problems.append(
            f"train.max_length {plan.train.max_length} exceeds the model's context of {model.context_length}"
        )
    if plan.data.template == "chat" and not model.has_chat_template:
        problems.append("data.template is 'chat' but the base model's tokenizer has no chat template")
    if plan.train.method == "lora" and model.parameters and plan.train.lora_rank > 512:
        problems.append(f"train.lora_rank {plan.train.lora_rank} is implausibly large")
    if plan.data.transform_code is not None:
        try:
            compile(plan.data.transform_code, "<data.transform_code>", "exec")
        except SyntaxError as exc:
            problems.append(f"data.transform_code does not compile: {exc}")
    tokens_left = session.budget_left.train_tokens
    projected = _catalog_tokens(plan, session)
    if tokens_left >= 0 and projected is not None and projected > tokens_left * 1.5:
        problems.append(
            f"projected ~{projected:,.0f} trained tokens, but only {tokens_left:,} are left in the budget"
        )
    return problems


def _shape(plan: Plan) -> tuple[object, ...]:
    t = plan.train
    return (plan.data, t.method, t.batch_size, t.max_length, t.lora_rank, t.lora_targets, t.precision)


class FailFastValidator:
    """Reject a bad plan in seconds, with reasons, before it costs a trial.

    The smoke run builds about 100 records and trains a few steps in the sandbox:
    the build must produce records and the loss must be finite. ``smoke`` says when
    to pay for it: ``"always"``, ``"never"``, or ``"when_changed"`` (the default: only
    when no successful trial already ran the same data and memory-relevant settings).
    """

    def __init__(self, *, smoke: Literal["always", "when_changed", "never"] = "when_changed") -> None:
        self.smoke = smoke

    def needs_smoke(self, plan: Plan, session: Session) -> bool:
        """Whether a smoke run can tell anything a finished trial has not told already.

        A plan that keeps the data recipe and the memory-relevant settings (method,
        batch, length, LoRA rank) of a trial that ran through builds and fits the
        same way; only its optimisation numbers differ, and a few smoke steps say
        little about those.
        """
        if self.smoke != "when_changed":
            return self.smoke == "always"
        shape = _shape(plan)
        return not any(t.feedback.ok and _shape(t.plan) == shape for t in session.history)

    async def validate(self, plan: Plan, session: Session) -> Verdict:
        started = time.perf_counter()
        # What the full trial would cost, so that a rejection's saving can be reported.
        projected = projected_seconds(plan, session)
        problems = static_problems(plan, session)
        if problems or not self.needs_smoke(plan, session):
            return Verdict(
                ok=not problems,
                reasons=tuple(problems),
                seconds=time.perf_counter() - started,
                projected_seconds=projected,
            )
        feedback = await session.smoke(plan)
        reasons: list[str] = []
        if not feedback.ok:
            kind = feedback.execution.error_kind.value if feedback.execution.error_kind else "?"
            stage = feedback.execution.failed_stage.value if feedback.execution.failed_stage else "?"
            reasons.append(f"smoke run failed in {stage} ({kind}): {feedback.execution.root_cause[:500]}")
        elif feedback.training is not None and any(
            not math.isfinite(p.loss) for p in feedback.training.losses
        ):
            reasons.append("smoke run: the loss is not finite")
        return Verdict(
            ok=not reasons,
            reasons=tuple(reasons),
            smoke=feedback,
            seconds=time.perf_counter() - started,
            projected_seconds=projected,
        )
