"""Structured iteration planning without an LLM.

The first plan comes from the task card and the catalogue (which sources carry
reasoning, which are noisy or off-domain, how long records are). Every later plan
takes the best trial so far as its parent, reads the latest diagnosis, states a
hypothesis and changes what the diagnosis points at — never a plan already tried.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from ftdojo.agent.heuristics import (
    FULL_FINETUNE_MAX_PARAMETERS,
    MAX_EPOCHS,
    SourceAssessment,
    assess_sources,
    available_records,
    default_train_config,
    fit_budget,
    nothing_learnt,
)
from ftdojo.agent.protocols import Diagnosis, Finding, FindingKind, Memory, PlanningContext
from ftdojo.models import ModelInfo
from ftdojo.plans import DataRecipe, Plan, SourceSelection, TrainConfig

if TYPE_CHECKING:
    from ftdojo.results import Trial

__all__ = ["RulePlanner", "plan_directions"]

Mutation = tuple[str, str, Callable[[Plan], Plan]]  # (focus, hypothesis, change)


def _train(plan: Plan, **changes: Any) -> Plan:
    return attrs.evolve(plan, train=attrs.evolve(plan.train, **changes))


def _data(plan: Plan, **changes: Any) -> Plan:
    return attrs.evolve(plan, data=attrs.evolve(plan.data, **changes))


def _add_source(plan: Plan, *, source_id: str, verified: bool) -> Plan:
    return _data(
        plan, sources=(*plan.data.sources, SourceSelection(source=source_id)), verified_only=verified
    )


def _drop_source(plan: Plan, *, source_id: str) -> Plan:
    return _data(plan, sources=tuple(s for s in plan.data.sources if s.source != source_id))


def _rejection_diagnosis(context: PlanningContext) -> Diagnosis:
    """The validator's findings on the plans rejected in this iteration, one of each kind, so
    that the next plan changes what made them fail (a smoke build that kept no records → a
    longer ``max_length``; a projected or real out-of-memory → a smaller batch; ...)."""
    findings: list[Finding] = []
    for finding in (f for verdict in context.rejections for f in verdict.findings):
        if not any(f.kind == finding.kind for f in findings):
            findings.append(attrs.evolve(finding, evidence=f"rejected: {finding.evidence[:200]}"))
    return Diagnosis(trial_id="", findings=tuple(findings))


#: A trial on less than this share of the best trial's tokens cannot be expected to beat it.
MIN_SHARE_OF_BEST = 0.25


def _too_little_left(best: Trial, context: PlanningContext) -> bool:
    """Whether the tokens left are too few for a trial worth running against ``best``."""
    left = context.budget_left.train_tokens
    trained = best.feedback.training.tokens_trained if best.feedback.training else 0
    return left is not None and left < MIN_SHARE_OF_BEST * trained


#: "Train longer" is only worth a trial when the budget lets it train at least this much longer.
_LONGER = 1.25

_NUMERIC_TRAIN = ("learning_rate", "epochs", "batch_size", "max_length", "lora_rank", "grad_accum")


def plan_directions(parent: Plan, child: Plan) -> frozenset[str]:
    """How ``child`` differs from ``parent``, as directions: ``train.learning_rate+``,
    ``data.add:forum``, ``data.verified_only=True`` and so on."""
    found: set[str] = set()
    for name in _NUMERIC_TRAIN:
        before, after = getattr(parent.train, name), getattr(child.train, name)
        if after != before:
            found.add(f"train.{name}{'+' if after > before else '-'}")
    for name in ("method", "lr_scheduler", "precision", "lora_targets"):
        if getattr(parent.train, name) != getattr(child.train, name):
            found.add(f"train.{name}={getattr(child.train, name)}")
    before_sources = {s.source for s in parent.data.sources}
    after_sources = {s.source for s in child.data.sources}
    found.update(f"data.add:{s}" for s in after_sources - before_sources)
    found.update(f"data.drop:{s}" for s in before_sources - after_sources)
    for name in ("verified_only", "include_rationale", "dedupe", "stratify", "template"):
        if getattr(parent.data, name) != getattr(child.data, name):
            found.add(f"data.{name}={getattr(child.data, name)}")
    if parent.data.max_records != child.data.max_records:
        found.add(f"data.max_records{'+' if child.data.max_records > parent.data.max_records else '-'}")
    if parent.data.transform_code != child.data.transform_code:
        found.add("data.transform_code")
    return frozenset(found)


def _primary_directions(parent: Plan, child: Plan) -> frozenset[str]:
    """:func:`plan_directions` without the epoch change the budget cap makes alongside another change."""
    found = plan_directions(parent, child)
    rest = {d for d in found if not d.startswith("train.epochs")}
    return frozenset(rest) if rest else found


def _regressed_directions(base: Trial, memory: Memory) -> tuple[frozenset[str], str]:
    """Directions in which a sibling (another child of ``base``) scored below ``base`` or failed."""
    avoid: set[str] = set()
    reasons: list[str] = []
    for sibling in memory.children(base.trial_id):
        worse = sibling.score is None or (base.score is not None and sibling.score < base.score)
        if not worse:
            continue
        directions = _primary_directions(base.plan, sibling.plan)
        avoid |= directions
        outcome = "failed" if sibling.score is None else f"scored {sibling.score:.2f}"
        reasons.append(f"{', '.join(sorted(directions))} ({sibling.trial_id} {outcome})")
    return frozenset(avoid), "; ".join(reasons)


#: Directions worth a second step when the first one improved the score.
_REPEATABLE: dict[str, tuple[str, Callable[[Plan], Plan]]] = {
    "train.learning_rate+": (
        "a higher learning rate",
        lambda p: _train(p, learning_rate=p.train.learning_rate * 2),
    ),
    "train.learning_rate-": (
        "a lower learning rate",
        lambda p: _train(p, learning_rate=p.train.learning_rate / 2),
    ),
    "train.epochs+": ("more epochs", lambda p: _train(p, epochs=p.train.epochs * 1.5)),
    "train.batch_size-": (
        "a smaller batch",
        lambda p: _train(p, batch_size=max(1, p.train.batch_size // 2)),
    ),
    "train.batch_size+": ("a larger batch", lambda p: _train(p, batch_size=p.train.batch_size * 2)),
}


def _momentum(base: Trial, memory: Memory) -> Iterator[Mutation]:
    """One more step in the direction that made ``base`` better than its own parent."""
    grandparent = memory.get(base.plan.parent) if base.plan.parent else None
    if grandparent is None or grandparent.score is None or base.score is None:
        return
    if base.score <= grandparent.score:
        return
    for direction in sorted(_primary_directions(grandparent.plan, base.plan)):
        if direction in _REPEATABLE:
            words, change = _REPEATABLE[direction]
            yield (
                "training",
                f"{words.capitalize()} lifted {grandparent.trial_id} {grandparent.score:.2f} to "
                f"{base.trial_id} {base.score:.2f}: one more step that way.",
                change,
            )


def _small(model: ModelInfo) -> bool:
    """A model small enough to be fine-tuned in full, and too small to learn from rationales."""
    return bool(model.parameters) and model.parameters < FULL_FINETUNE_MAX_PARAMETERS


class RulePlanner:
    """The default planner: rules of thumb from the FT-Dojo paper, no LLM.

    Less is more (a small clean set first, at most ``max_records``), keep reasoning in
    the targets, verify answers by outcome before using a noisy source, never train
    on off-domain data, drop over-long records rather than truncating them.
    """

    def __init__(self, *, max_records: int = 2000, max_epochs: float = MAX_EPOCHS, seed: int = 0) -> None:
        self.max_records = max_records
        self.max_epochs = max_epochs
        #: The data sampling and training seed of the first plan; later plans inherit it.
        self.seed = seed
        self._assessments: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[SourceAssessment, ...]] = {}

    # -- first plan ---------------------------------------------------------------

    def initial_plan(self, context: PlanningContext) -> Plan:
        sources = self._assessed(context)
        usable = [s for s in sources if not s.off_domain]
        clean_reasoning = [s for s in usable if s.has_rationale and not s.noisy]
        chosen = clean_reasoning or [s for s in usable if not s.noisy] or usable or list(sources)
        longest = max(s.length_p99 for s in chosen)
        small = _small(context.model)
        why = (
            "answer-only targets: a model this small does not learn to reason from rationales, "
            "and one short response shape is learnt in far fewer tokens"
            if small
            else "keeping the reasoning in the targets so the model learns the steps and the answer "
            "format together"
        )
        return Plan(
            data=DataRecipe(
                sources=tuple(SourceSelection(source=s.source_id) for s in chosen),
                # Measured in the seed-0 benchmark: with rationales, the tiny model had not learnt
                # the answer format after 75K tokens on 5 of 5 tasks; answer-only it learnt it.
                include_rationale=not small,
                verified_only=False,
                max_records=self.max_records,
                seed=self.seed,
            ),
            train=attrs.evolve(self._initial_train(context.model, longest), seed=self.seed),
            hypothesis=(
                "Start small and clean: train on "
                + ", ".join(s.source_id for s in chosen)
                + f" (the cleanest in-domain data, not flagged noisy or off-domain), {why}."
            ),
            focus="both",
        )

    def _assessed(self, context: PlanningContext) -> tuple[SourceAssessment, ...]:
        """:func:`assess_sources` for this task, once: judging labels reads every record of a
        source, and the raw data does not change during a run."""
        key = (tuple(e.sha256 for e in context.catalog.entries), context.card.categories)
        if key not in self._assessments:
            self._assessments[key] = assess_sources(
                context.catalog, categories=context.card.categories, read_source=context.read_source
            )
        return self._assessments[key]

    def _initial_train(self, model: ModelInfo, longest_tokens: float) -> TrainConfig:
        return default_train_config(model, longest_tokens)

    def fit_budget(self, plan: Plan, context: PlanningContext, *, even: bool = False) -> Plan:
        """:func:`ftdojo.agent.heuristics.fit_budget` with this planner's ``max_epochs``."""
        return fit_budget(plan, context, max_epochs=self.max_epochs, even=even)

    # -- later plans ----------------------------------------------------------------

    def propose(self, context: PlanningContext) -> Plan | None:
        memory = context.memory
        if not memory.trials:
            initial = self.fit_budget(self.initial_plan(context), context)
            if not memory.tried(initial):
                return initial
            # The validator rejected the first plan: change what its reasons point at.
            rejected = _rejection_diagnosis(context)
            for focus, hypothesis, change in self._mutations(initial, rejected, context, True):
                try:
                    candidate = self.fit_budget(change(initial), context)
                except ValueError:
                    continue
                if not memory.tried(candidate):
                    reasons = "; ".join(context.rejection_reasons)[:300]
                    return attrs.evolve(
                        candidate,
                        focus=focus,  # type: ignore[arg-type]
                        hypothesis=f"{hypothesis} (the first plan was rejected: {reasons})",
                    )
            return None
        parent = memory.best()
        latest = memory.trials[-1]
        base = parent if parent is not None else latest
        if parent is not None and _too_little_left(parent, context):
            return None
        # The diagnosis of the plan being refined says what to change; a sibling's
        # diagnosis describes the sibling's change, which the sibling weighing handles.
        diagnosis = memory.diagnosis(base.trial_id) or Diagnosis(trial_id=base.trial_id)
        if context.rejections:
            # A plan of this iteration was rejected: what its reasons point at comes first.
            rejected = _rejection_diagnosis(context)
            diagnosis = attrs.evolve(diagnosis, findings=(*rejected.findings, *diagnosis.findings))
        avoid, avoided_because = _regressed_directions(base, memory)
        # The last trial exploits the best plan; but when nothing has been learnt there is no
        # best plan to exploit, and the trial that gets the rest of the budget (see
        # fit_budget) should change what the diagnosis points at instead.
        final = context.budget_left.trials == 1 and not nothing_learnt(memory)
        mutations = [
            # The last trial spends the rest of the budget on the best plan before anything else.
            *(self._final_mutations(base.plan) if final else ()),
            *_momentum(base, memory),
            *self._mutations(base.plan, diagnosis, context, latest is base),
        ]
        deferred: list[tuple[Mutation, Plan]] = []
        for mutation in mutations:
            proposal = self._candidate(mutation, base, diagnosis, context)
            if proposal is None:
                continue
            if _primary_directions(base.plan, proposal) & avoid:
                # A sibling that went this way scored worse: try everything else first.
                deferred.append((mutation, proposal))
                continue
            if avoided_because:
                proposal = attrs.evolve(
                    proposal, hypothesis=f"{proposal.hypothesis} Not repeating: {avoided_because}."
                )
            return proposal
        for _, proposal in deferred:
            return proposal
        return None

    def _candidate(
        self, mutation: Mutation, base: Trial, diagnosis: Diagnosis, context: PlanningContext
    ) -> Plan | None:
        """The plan a mutation makes of ``base``, fitted to the budget; ``None`` if it is no plan
        worth running (out of range, already tried, or undone by the budget cap)."""
        focus, hypothesis, change = mutation
        try:
            changed = change(base.plan)
        except ValueError:  # a change that would leave a valid range is skipped
            return None
        if changed.fingerprint() == base.plan.fingerprint():
            # A change to what the plan already has (rationale on when it is on): running it
            # again would differ only where the budget cap moves the epochs.
            return None
        fitted = self.fit_budget(changed, context)
        if (
            changed.train.epochs > base.plan.train.epochs
            and fitted.train.epochs < base.plan.train.epochs * _LONGER
        ):
            # "Train longer" that the budget cap turns into "train about as long, or shorter".
            return None
        candidate = attrs.evolve(
            fitted,
            parent=base.trial_id,
            focus=focus,  # type: ignore[arg-type]
            hypothesis=(
                f"{focus.capitalize()}: {hypothesis} (diagnosis of {base.trial_id}, the best so far: "
                f"{diagnosis.summary})"
                # What fitting the budget added (epochs capped, all the budget left).
                + fitted.hypothesis[len(changed.hypothesis) :]
            ),
        )
        if context.memory.tried(candidate) or candidate.fingerprint() == base.plan.fingerprint():
            return None
        return candidate

    def _final_mutations(self, plan: Plan) -> Iterator[Mutation]:
        """The last trial exploits: the best plan, trained on everything left of the budget."""
        if plan.train.epochs < self.max_epochs:
            yield (
                "training",
                "Last trial: the best plan, trained longer on the rest of the budget (every trial "
                "so far stopped at its share of the tokens).",
                # Up to 3 epochs (at least twice the best's), then the budget cap: the rest
                # of the budget, unless the data is used up first.
                (lambda p: _train(p, epochs=min(self.max_epochs, max(3.0, p.train.epochs * 2)))),
            )

    def _mutations(
        self, plan: Plan, diagnosis: Diagnosis, context: PlanningContext, latest_is_parent: bool
    ) -> Iterator[Mutation]:
        train = plan.train
        sources = {s.source_id: s for s in self._assessed(context)}
        used = {s.source for s in plan.data.sources}

        # Failures first: fix what broke the latest trial.
        if diagnosis.has(FindingKind.DIVERGENCE):
            yield (
                "training",
                "The loss diverged: a quarter of the learning rate should keep it finite.",
                (lambda p: _train(p, learning_rate=p.train.learning_rate / 4, max_grad_norm=0.5)),
            )
        if diagnosis.has(FindingKind.OUT_OF_MEMORY):
            yield (
                "training",
                "Out of memory: halve the batch, double accumulation (same effective batch).",
                (
                    lambda p: _train(
                        p, batch_size=max(1, p.train.batch_size // 2), grad_accum=p.train.grad_accum * 2
                    )
                ),
            )
        if diagnosis.has(FindingKind.TIMEOUT) or diagnosis.has(FindingKind.TOKEN_BUDGET):
            yield (
                "training",
                "The trial ran out of time: half the epochs should fit."
                if diagnosis.has(FindingKind.TIMEOUT)
                else "The plan needs more tokens than the budget has left: half the epochs should fit.",
                (lambda p: _train(p, epochs=max(0.5, p.train.epochs / 2))),
            )
        if diagnosis.has(FindingKind.DATA_FAILURE):
            yield (
                "data",
                "The data build failed: drop the custom transform and rebuild from the raw sources.",
                (lambda p: _data(p, transform_code=None)),
            )
        if diagnosis.has(FindingKind.TRUNCATION):
            yield (
                "training",
                "Records were dropped as too long: raise max_length within the context.",
                (lambda p: _train(p, max_length=min(context.model.context_length, p.train.max_length * 2))),
            )
        if diagnosis.has(FindingKind.FORMAT_NONCOMPLIANCE):
            if not _small(context.model):
                yield (
                    "data",
                    "Outputs miss the answer format: keep reasoning and the final format in every target.",
                    (lambda p: _data(p, include_rationale=True)),
                )
            if plan.data.include_rationale:
                # Measured on the tiny model: with rationales in the targets it had not learnt
                # the patent answer format after 225K tokens; answer-only targets, one short
                # shape, are learnt in far fewer.
                yield (
                    "data",
                    "Outputs miss the answer format even with reasoning in the targets: answer-only "
                    "targets give one short response shape, learnt in fewer tokens.",
                    (lambda p: _data(p, include_rationale=False)),
                )
            if train.epochs < self.max_epochs:
                yield (
                    "training",
                    "Outputs miss the answer format: train longer so the format is learnt.",
                    (lambda p: _train(p, epochs=min(self.max_epochs, p.train.epochs * 2))),
                )

        # A source that fails verification often is likely as wrong where it cannot be checked.
        for finding in diagnosis.of(FindingKind.NOISY_SOURCE):
            if finding.subject in used and len(used) > 1:
                yield (
                    "data",
                    f"Drop {finding.subject} ({finding.evidence}): its unchecked answers are likely "
                    "as unreliable.",
                    functools.partial(_drop_source, source_id=finding.subject),
                )

        # Then what the curve and the scores say.
        if diagnosis.has(FindingKind.UNDERFITTING):
            if train.epochs < self.max_epochs:
                yield (
                    "training",
                    "The loss was still falling: twice the epochs should fit the data better.",
                    (lambda p: _train(p, epochs=min(self.max_epochs, p.train.epochs * 2))),
                )
            # Where the budget leaves no room for more epochs, learn more from the same
            # tokens: more optimizer steps (a smaller batch), then larger ones.
            if train.batch_size > 2:
                yield (
                    "training",
                    "The loss was still falling within this trial's tokens: half the batch gives "
                    "twice the optimizer steps for the same tokens.",
                    (lambda p: _train(p, batch_size=max(2, p.train.batch_size // 2))),
                )
            yield (
                "training",
                "The loss was still falling within this trial's tokens: a higher learning rate "
                "learns more from them.",
                (lambda p: _train(p, learning_rate=p.train.learning_rate * 2)),
            )
        if diagnosis.has(FindingKind.OVERFITTING):
            yield (
                "training",
                "Training loss near zero with a weak score: fewer epochs generalise better.",
                (lambda p: _train(p, epochs=max(1.0, p.train.epochs / 2))),
            )
        weak = diagnosis.has(FindingKind.WEAK_CATEGORY) or diagnosis.has(FindingKind.OVERFITTING)
        # More data, cleanest first: a noisy source only with answer verification.
        ranked = sorted(
            sources.values(), key=lambda s: (s.off_domain, s.noisy, s.uncategorised, not s.has_rationale)
        )
        for source in ranked:
            if source.source_id in used or source.off_domain:
                continue
            reason = "weak categories need more examples" if weak else "more diverse data"
            if source.noisy and source.has_rationale:
                yield (
                    "data",
                    (
                        f"Add {source.source_id} with answer verification ({reason}); "
                        "verification drops its wrong answers."
                    ),
                    functools.partial(_add_source, source_id=source.source_id, verified=True),
                )
            elif not source.noisy:
                yield (
                    "data",
                    f"Add {source.source_id} ({reason}).",
                    functools.partial(
                        _add_source, source_id=source.source_id, verified=plan.data.verified_only
                    ),
                )
        if diagnosis.has(FindingKind.REGRESSION) or not latest_is_parent:
            yield (
                "training",
                "The last change regressed: keep the best data and try a lower learning rate.",
                (lambda p: _train(p, learning_rate=p.train.learning_rate / 2)),
            )
        if train.epochs < self.max_epochs:
            yield (
                "training",
                "No failure to fix: more epochs on the best data.",
                (lambda p: _train(p, epochs=min(self.max_epochs, p.train.epochs * 1.5))),
            )
        yield (
            "training",
            "Try a higher learning rate on the best configuration.",
            (lambda p: _train(p, learning_rate=p.train.learning_rate * 2)),
        )
        yield (
            "training",
            "Try a lower learning rate on the best configuration.",
            (lambda p: _train(p, learning_rate=p.train.learning_rate / 2)),
        )
        available = available_records(plan, context.catalog)
        if plan.data.max_records < available:  # raising a cap the data never reaches changes nothing
            yield (
                "data",
                "Raise the record cap to use more of the data.",
                (lambda p: _data(p, max_records=p.data.max_records * 2)),
            )
