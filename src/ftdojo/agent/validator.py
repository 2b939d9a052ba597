"""Fail-fast validation: static checks in microseconds, then a smoke run in the sandbox."""

from __future__ import annotations

import math
import re
import time
from typing import TYPE_CHECKING, Literal

from ftdojo.agent.analyzer import ACTIONS, FAILURE_FINDINGS
from ftdojo.agent.heuristics import (
    PARAMETER_TOKENS_PER_SECOND,
    TEMPLATE_TOKENS,
    available_records,
    example_length,
)
from ftdojo.agent.protocols import Finding, FindingKind, Verdict
from ftdojo.feedback import ErrorKind, ExecutionFeedback, Stage
from ftdojo.plans import Plan

if TYPE_CHECKING:
    from ftdojo.models import ModelInfo
    from ftdojo.results import Rejection
    from ftdojo.session import Session

__all__ = [
    "FailFastValidator",
    "projected_memory_bytes",
    "projected_seconds",
    "projected_tokens",
    "rejection_findings",
    "static_findings",
    "static_problems",
]

#: Share of a trial's time that goes to training (building and evaluating take the rest).
_TRAIN_SHARE = 0.7


def _catalog_tokens(plan: Plan, session: Session) -> float | None:
    """Records x mean length x epochs, from the catalogue; ``None`` if a source is unknown."""
    known = set(session.catalog.source_ids)
    if not plan.data.sources or not known.issuperset(s.source for s in plan.data.sources):
        return None
    records = min(
        plan.data.max_records,
        available_records(plan, session.catalog),
    )
    mean = sum(example_length(session.catalog[s.source])[0] for s in plan.data.sources) / len(
        plan.data.sources
    )
    return records * mean * plan.train.epochs


def _longest_record(plan: Plan, session: Session) -> float | None:
    """The longest record (p99 of its text fields, plus room for the template) the plan trains on."""
    known = set(session.catalog.source_ids)
    chosen = [s.source for s in plan.data.sources if s.source in known]
    if not chosen:
        return None
    return max(example_length(session.catalog[source])[1] + TEMPLATE_TOKENS for source in chosen)


def projected_tokens(plan: Plan, session: Session) -> float | None:
    """Tokens the plan would train on, from the catalogue, at most the token budget left."""
    tokens = _catalog_tokens(plan, session)
    if tokens is None:
        return None
    left = session.budget_left.train_tokens
    # Training stops at the token budget, so a trial never trains more than is left.
    return min(tokens, float(left)) if left is not None else tokens


def projected_seconds(plan: Plan, session: Session) -> float | None:
    """How long the full trial would take: its tokens over the throughput measured so far.

    Before any trial has measured it, a prior from the model size (see
    :data:`ftdojo.agent.heuristics.PARAMETER_TOKENS_PER_SECOND`).
    """
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


#: Resident memory of a training worker before its model: Python, torch, transformers and
#: peft. Measured: the tiny model's training stage peaks at 0.58-0.95 GB, of which its
#: weights, optimiser state and activations are at most a few hundred MB.
RUNTIME_BYTES = 600 * 2**20

_LLAMA_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _lora_parameters(plan: Plan, model: ModelInfo) -> float:
    """Trainable LoRA parameters: rank x (inputs + outputs) of every adapted linear layer."""
    h, i = model.hidden_size, model.intermediate_size or 4 * model.hidden_size
    heads = model.num_attention_heads or 1
    kv = (model.num_key_value_heads or heads) * h / heads
    sides = {
        "q_proj": 2 * h,
        "k_proj": h + kv,
        "v_proj": h + kv,
        "o_proj": 2 * h,
        "gate_proj": h + i,
        "up_proj": h + i,
        "down_proj": h + i,
    }
    targets = plan.train.lora_targets
    named = [t for t in targets if t in sides]
    # "all-linear" or names this table does not know: count every linear layer (an upper bound).
    chosen = _LLAMA_LINEARS if "all-linear" in targets or len(named) < len(targets) else named
    return plan.train.lora_rank * model.num_layers * sum(sides[name] for name in chosen)


def projected_memory_bytes(
    plan: Plan, model: ModelInfo, *, longest_tokens: float | None = None
) -> float | None:
    """Peak resident memory of the training stage, estimated from the plan and the model's shape.

    The sum of: the worker's runtime; fp32 weights; gradients and AdamW's two moments for
    the trainable parameters (all of them, or LoRA's); and, per token of the largest batch,
    the activations kept for the backward pass (about 6 hidden + 4 intermediate values and
    the attention scores per layer) and the fp32 logits, their softmax and gradient over
    the vocabulary. bf16 autocast halves the activations. Batches are padded to their
    longest record, so a batch holds ``batch_size`` x the shorter of ``max_length`` and
    ``longest_tokens`` (the longest record the data can hold, when known).

    Checked against measured peaks (MiB as the sandbox reports them): SmolLM2-135M, LoRA
    rank 16, batch 8 x 128: 3,140 projected, 3,310-3,960 measured; the tiny model, full,
    batch 8 x 512: 1,090 projected, 740-955 measured (records up to 460 tokens). ``None``
    without a parameter count; without the model's shape, only weights and optimiser
    state are counted.
    """
    parameters = model.parameters
    if not parameters:
        return None
    train = plan.train
    trainable = float(parameters) if train.method == "full" else 0.0
    if train.method == "lora" and model.hidden_size and model.num_layers:
        trainable = _lora_parameters(plan, model)
    # fp32 weights; each trainable parameter adds a gradient and two Adam moments.
    total = RUNTIME_BYTES + 4.0 * parameters + 12.0 * trainable
    length = train.max_length if longest_tokens is None else min(train.max_length, longest_tokens)
    tokens = train.batch_size * length
    activation_bytes = 2 if train.precision == "bf16" else 4
    if model.hidden_size and model.num_layers:
        h, i = model.hidden_size, model.intermediate_size or 4 * model.hidden_size
        per_layer = 6 * h + 4 * i + 2 * (model.num_attention_heads or 1) * length
        total += tokens * model.num_layers * per_layer * activation_bytes
    # Logits, their log-softmax and gradient, in fp32 whatever the autocast.
    total += tokens * model.vocab_size * 12.0
    return total


def _finding(kind: FindingKind, reason: str) -> Finding:
    return Finding(kind=kind, evidence=reason, action=ACTIONS.get(kind, ""))


def static_findings(plan: Plan, session: Session) -> list[Finding]:
    """What is wrong with ``plan`` for this task and model, found without running anything:
    one finding per problem, its evidence the reason a person reads."""
    problems: list[Finding] = []
    known = set(session.catalog.source_ids)
    for selection in plan.data.sources:
        if selection.source not in known:
            problems.append(
                _finding(
                    FindingKind.CONFIG_FAILURE,
                    f"data.sources: no source {selection.source!r} (known: {', '.join(sorted(known))})",
                )
            )
    model = session.model
    if plan.train.max_length > model.context_length:
        problems.append(
            _finding(
                FindingKind.CONFIG_FAILURE,
                f"train.max_length {plan.train.max_length} exceeds the model's context of "
                f"{model.context_length}",
            )
        )
    if plan.data.template == "chat" and not model.has_chat_template:
        problems.append(
            _finding(
                FindingKind.CONFIG_FAILURE,
                "data.template is 'chat' but the base model's tokenizer has no chat template",
            )
        )
    if plan.train.method == "lora" and model.parameters and plan.train.lora_rank > 512:
        problems.append(
            _finding(
                FindingKind.CONFIG_FAILURE, f"train.lora_rank {plan.train.lora_rank} is implausibly large"
            )
        )
    if plan.data.transform_code is not None:
        try:
            compile(plan.data.transform_code, "<data.transform_code>", "exec")
        except SyntaxError as exc:
            problems.append(
                _finding(FindingKind.DATA_FAILURE, f"data.transform_code does not compile: {exc}")
            )
    memory = projected_memory_bytes(plan, model, longest_tokens=_longest_record(plan, session))
    limit = session.memory_limit_bytes
    if memory is not None and limit is not None and memory > limit:
        problems.append(
            _finding(
                FindingKind.OUT_OF_MEMORY,
                f"projected peak memory {memory / 2**30:.1f} GiB for train.batch_size "
                f"{plan.train.batch_size} with records up to train.max_length {plan.train.max_length} "
                f"exceeds the training limit of {limit / 2**30:.1f} GiB (halve the batch and double "
                "grad_accum, or shorten max_length)",
            )
        )
    seconds_left = session.budget_left.seconds
    seconds = projected_seconds(plan, session)
    # 1.5x slack: the projection is an estimate, and a trial that runs out of time still
    # comes back as feedback; only a plan far beyond the budget is refused up front.
    if seconds_left is not None and seconds is not None and seconds > seconds_left * 1.5:
        problems.append(
            _finding(
                FindingKind.TIMEOUT,
                f"projected ~{seconds:,.0f} s for this trial (train.epochs {plan.train.epochs:g} over "
                f"{len(plan.data.sources)} source(s)), but only {seconds_left:,.0f} s are left in the budget",
            )
        )
    tokens_left = session.budget_left.train_tokens
    projected = _catalog_tokens(plan, session)
    if tokens_left is not None and projected is not None and projected > tokens_left * 1.5:
        problems.append(
            _finding(
                FindingKind.TOKEN_BUDGET,
                f"projected ~{projected:,.0f} trained tokens, but only {tokens_left:,} are left in the "
                "budget",
            )
        )
    return problems


def static_problems(plan: Plan, session: Session) -> list[str]:
    """The reasons of :func:`static_findings`."""
    return [finding.evidence for finding in static_findings(plan, session)]


def _shape(plan: Plan) -> tuple[object, ...]:
    t = plan.train
    return (plan.data, t.method, t.batch_size, t.max_length, t.lora_rank, t.lora_targets, t.precision)


class FailFastValidator:
    """Reject a bad plan in seconds, with reasons, before it costs a trial.

    The smoke run builds about 100 records and trains two steps in the sandbox:
    the build must produce records and the loss must be finite. ``smoke`` says when
    to pay for it: ``"always"``, ``"never"``, or ``"when_changed"`` (the default: only
    when no successful trial already ran the same data and memory-relevant settings).
    """

    #: A smoke run whose loss ends above its first value times this is rejected as rising.
    #: Lenient on purpose: over a handful of steps on different batches a healthy loss
    #: wobbles, while a learning rate far too high multiplies it.
    rising_factor: float = 1.5

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
        problems = static_findings(plan, session)
        if problems or not self.needs_smoke(plan, session):
            return Verdict(
                ok=not problems,
                reasons=tuple(p.evidence for p in problems),
                findings=tuple(problems),
                seconds=time.perf_counter() - started,
                projected_seconds=projected,
            )
        feedback = await session.smoke(plan)
        reasons: list[str] = []
        findings: list[Finding] = []
        if not feedback.ok:
            execution = feedback.execution
            kind = execution.error_kind.value if execution.error_kind else "?"
            stage = execution.failed_stage.value if execution.failed_stage else "?"
            reason = f"smoke run failed in {stage} ({kind}): {execution.root_cause[:500]}"
            reasons.append(reason)
            findings.extend(_finding(k, reason) for k in _smoke_failure_kinds(plan, execution))
        elif feedback.training is not None:
            losses = [p.loss for p in feedback.training.losses]
            if not all(math.isfinite(loss) for loss in losses):
                reasons.append("smoke run: the loss is not finite")
                findings.append(_finding(FindingKind.DIVERGENCE, reasons[-1]))
            elif len(losses) >= 2 and min(losses[len(losses) // 2 :]) > losses[0] * self.rising_factor:
                reasons.append(
                    f"smoke run: the loss rose from {losses[0]:.3f} to {losses[-1]:.3f} in "
                    f"{feedback.training.steps} steps instead of falling "
                    f"(train.learning_rate {plan.train.learning_rate:g} is likely too high)"
                )
                findings.append(_finding(FindingKind.DIVERGENCE, reasons[-1]))
        return Verdict(
            ok=not reasons,
            reasons=tuple(reasons),
            findings=tuple(findings),
            smoke=feedback,
            seconds=time.perf_counter() - started,
            projected_seconds=projected,
        )


def _smoke_failure_kinds(plan: Plan, execution: ExecutionFeedback) -> tuple[FindingKind, ...]:
    """The findings a failed smoke run stands for: its error kind's, and for a build without
    a transform that failed on its data, truncation too.

    Such a build has known sources (the static checks passed) and runs no user code, so
    its data failure is a recipe that kept no records, and the step that empties a recipe
    of sound records is the length filter: records longer than ``train.max_length`` are
    dropped (seen on patent_prior_art, where a max_length sized from the raw fields
    dropped every record).
    """
    if execution.error_kind is None:
        return ()
    kinds = [FAILURE_FINDINGS[execution.error_kind]]
    if (
        execution.failed_stage == Stage.BUILD
        and execution.error_kind == ErrorKind.DATA
        and plan.data.transform_code is None
    ):
        kinds.append(FindingKind.TRUNCATION)
    return tuple(kinds)


# A journalled rejection (ftdojo.results.Rejection) keeps only its reasons. Its findings are
# read back from the opening words of the reasons this module writes above, matched at the
# start and never further: what follows them (a job's root cause, numbers) is not read.
_REASON_OPENINGS: tuple[tuple[re.Pattern[str], FindingKind], ...] = (
    (re.compile(r"data\.sources: no source "), FindingKind.CONFIG_FAILURE),
    (re.compile(r"train\.max_length \d+ exceeds the model's context"), FindingKind.CONFIG_FAILURE),
    (re.compile(r"data\.template is 'chat' but"), FindingKind.CONFIG_FAILURE),
    (re.compile(r"train\.lora_rank \d+ is implausibly large"), FindingKind.CONFIG_FAILURE),
    (re.compile(r"data\.transform_code does not compile"), FindingKind.DATA_FAILURE),
    (re.compile(r"projected peak memory "), FindingKind.OUT_OF_MEMORY),
    (re.compile(r"projected ~[\d,]+ s for this trial"), FindingKind.TIMEOUT),
    (re.compile(r"projected ~[\d,]+ trained tokens"), FindingKind.TOKEN_BUDGET),
    (re.compile(r"smoke run: the loss (?:is not finite|rose)"), FindingKind.DIVERGENCE),
)
_SMOKE_FAILED = re.compile(r"smoke run failed in (\w+) \((\w+)\)")


def rejection_findings(rejection: Rejection) -> tuple[Finding, ...]:
    """The findings of a journalled rejection (a resumed run's ``session.rejections``), as
    :meth:`FailFastValidator.validate` found them; none for reasons another validator wrote."""
    findings: list[Finding] = []
    for reason in rejection.reasons:
        failed = _SMOKE_FAILED.match(reason)
        if failed is not None:
            try:
                execution = ExecutionFeedback(
                    ok=False, failed_stage=Stage(failed.group(1)), error_kind=ErrorKind(failed.group(2))
                )
            except ValueError:  # a stage or kind this version does not know
                continue
            findings.extend(_finding(k, reason) for k in _smoke_failure_kinds(rejection.plan, execution))
            continue
        kind = next((k for pattern, k in _REASON_OPENINGS if pattern.match(reason)), None)
        if kind is not None:
            findings.append(_finding(kind, reason))
    return tuple(findings)
