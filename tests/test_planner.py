"""The rule planner: first plan from the catalogue, later plans from the diagnosis."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from ftdojo import (
    BudgetLeft,
    CatalogEntry,
    DataCatalog,
    DataRecipe,
    ErrorKind,
    ExecutionFeedback,
    Feedback,
    LossPoint,
    ModelInfo,
    Plan,
    SourceSelection,
    Stage,
    TaskCard,
    TokenStats,
    TrainConfig,
    TrainingFeedback,
    Trial,
)
from ftdojo.agent import (
    Diagnosis,
    FindingKind,
    Memory,
    PlanningContext,
    RuleAnalyzer,
    RulePlanner,
    TrialTree,
    Verdict,
)
from ftdojo.agent.validator import rejection_findings
from ftdojo.results import Rejection


def _entry(source_id: str, fields: tuple[str, ...], note: str, mean: float = 40.0) -> CatalogEntry:
    return CatalogEntry(
        source_id=source_id,
        sha256="0" * 64,
        format="jsonl",
        fields=fields,
        records=1000,
        size_bytes=1,
        token_stats={f: TokenStats(p50=mean, p99=mean * 2, max=int(mean * 3), mean=mean) for f in fields},
        samples=(),
        note=note,
    )


CATALOG = DataCatalog(
    task="math",
    tokenizer="tiny",
    entries=(
        _entry(
            "worked",
            ("answer", "question", "solution"),
            "Worked solutions, correct.\n1000 records; 100.0% 'solution'",
        ),
        _entry("answers", ("answer", "question"), "Answers only, correct."),
        _entry("forum", ("answer", "question", "solution"), "Answers are unreliable: some are wrong."),
        _entry("trivia", ("answer", "question"), "Off-domain general knowledge."),
    ),
)
CARD = TaskCard(
    name="math", domain="math", description="d", output_format="\\boxed{}", metric="accuracy", base_model="m"
)
TINY = ModelInfo(
    name="tiny",
    path="/x",
    architecture="Llama",
    parameters=2_000_000,
    context_length=512,
    has_chat_template=False,
    vocab_size=128,
)
BIG = attrs.evolve(TINY, parameters=135_000_000, context_length=8192)


def _context(
    memory: TrialTree, *, model: ModelInfo = TINY, tokens: int | None = None, trials: int = 5
) -> PlanningContext:
    return PlanningContext(
        card=CARD,
        catalog=CATALOG,
        model=model,
        memory=memory,
        budget_left=BudgetLeft(trials=trials, seconds=None, train_tokens=tokens),
    )


def test_first_plan_uses_clean_reasoning_sources_only() -> None:
    plan = RulePlanner().propose(_context(TrialTree()))
    assert plan is not None
    assert [s.source for s in plan.data.sources] == ["worked"]
    # A 2M-parameter model starts answer-only; a large one keeps the reasoning.
    assert not plan.data.include_rationale
    big = RulePlanner().propose(_context(TrialTree(), model=BIG))
    assert big is not None
    assert big.data.include_rationale
    assert plan.parent is None
    assert plan.train.method == "full"  # a 2M-parameter model is trained in full
    assert plan.train.max_length <= TINY.context_length


def test_first_plan_for_a_large_model_uses_lora() -> None:
    plan = RulePlanner().propose(_context(TrialTree(), model=BIG))
    assert plan is not None
    assert plan.train.method == "lora"


def test_epochs_are_capped_to_the_token_budget_share() -> None:
    plan = RulePlanner().propose(_context(TrialTree(), tokens=200_000, trials=2))
    assert plan is not None
    per_record = 3 * 40 + 24
    # Two trials left: this one gets a third, the last one the two thirds that remain.
    assert 0.9 * 200_000 / 3 <= plan.train.epochs * 1000 * per_record <= 200_000 / 3 * 1.01
    assert "capped" in plan.hypothesis


def _record(memory: TrialTree, plan_source: TrialTree | None, feedback: Feedback) -> Trial:
    plan = RulePlanner().propose(_context(memory))
    assert plan is not None
    trial = Trial(
        trial_id=f"t{len(memory.trials) + 1:03d}", plan=plan, feedback=feedback, started_at=0, finished_at=1
    )
    parent = memory.get(plan.parent) if plan.parent else None
    memory.record(trial, RuleAnalyzer().analyze(trial, parent))
    return trial


def test_divergence_lowers_the_learning_rate_and_plans_never_repeat() -> None:
    memory = TrialTree()
    diverged = Feedback(
        trial_id="t001",
        execution=ExecutionFeedback(ok=False, failed_stage=Stage.TRAIN, error_kind=ErrorKind.DIVERGED),
        training=TrainingFeedback(
            steps=3, epochs=0.1, tokens_trained=10, losses=(LossPoint(step=3, loss=float("nan")),)
        ),
    )
    first = _record(memory, None, diverged)
    second = RulePlanner().propose(_context(memory))
    assert second is not None
    assert second.train.learning_rate == pytest.approx(first.plan.train.learning_rate / 4)
    assert "diverged" in second.hypothesis
    assert second.focus == "training"
    seen = {first.plan.fingerprint()}
    for _ in range(8):
        plan = RulePlanner().propose(_context(memory))
        if plan is None:
            break
        assert plan.fingerprint() not in seen
        seen.add(plan.fingerprint())
        memory.mark_tried(plan)


def _rejected(plan: Plan, reason: str) -> Verdict:
    """A rejection of ``plan`` for ``reason``, its findings read back as a resumed run reads them."""
    findings = rejection_findings(Rejection(plan=plan, reasons=(reason,), seconds=0.0))
    return Verdict(ok=False, reasons=(reason,), findings=findings)


def test_a_rejected_first_plan_is_varied_not_abandoned() -> None:
    memory = TrialTree()
    first = RulePlanner().propose(_context(memory))
    assert first is not None
    memory.mark_tried(first)
    context = attrs.evolve(
        _context(memory), rejections=(_rejected(first, "smoke run failed in train (OOM)"),)
    )
    second = RulePlanner().propose(context)
    assert second is not None
    assert second.fingerprint() != first.fingerprint()
    assert "rejected" in second.hypothesis


def test_a_source_that_fails_verification_often_is_dropped() -> None:
    from ftdojo import DataFeedback, EvaluationFeedback

    memory = TrialTree()
    plan = Plan(
        data=DataRecipe(
            sources=(SourceSelection(source="worked"), SourceSelection(source="forum")), verified_only=True
        ),
        train=TrainConfig(method="full"),
    )
    trial = Trial(
        trial_id="t001",
        plan=plan,
        feedback=Feedback(
            trial_id="t001",
            execution=ExecutionFeedback(ok=True),
            data=DataFeedback(
                records=800,
                tokens=10_000,
                verified_per_source={"worked": 500, "forum": 500},
                failed_verification_per_source={"forum": 200},
                failed_verification=200,
            ),
            evaluation=EvaluationFeedback(metric="accuracy", score=0.3, n=100, format_compliance=1.0),
        ),
        started_at=0,
        finished_at=1,
    )
    memory.record(trial, RuleAnalyzer().analyze(trial, None))
    nxt = RulePlanner().propose(_context(memory))
    assert nxt is not None
    assert [s.source for s in nxt.data.sources] == ["worked"]
    assert nxt.parent == "t001"
    assert "Drop forum (200 of 500 records of forum failed verification)" in nxt.hypothesis


def _scored(
    trial_id: str,
    plan: Plan,
    score: float | None,
    parent: str | None = None,
    *,
    format_compliance: float = 1.0,
    training: TrainingFeedback | None = None,
) -> Trial:
    from ftdojo import EvaluationFeedback

    evaluation = (
        None
        if score is None
        else EvaluationFeedback(metric="accuracy", score=score, n=100, format_compliance=format_compliance)
    )
    return Trial(
        trial_id=trial_id,
        plan=attrs.evolve(plan, parent=parent),
        feedback=Feedback(
            trial_id=trial_id,
            execution=ExecutionFeedback(ok=score is not None),
            evaluation=evaluation,
            training=training,
        ),
        started_at=0,
        finished_at=1,
    )


def _remember(memory: TrialTree, *trials: Trial) -> None:
    for trial in trials:
        parent = memory.get(trial.plan.parent) if trial.plan.parent else None
        memory.record(trial, RuleAnalyzer().analyze(trial, parent))


BASE_PLAN = Plan(
    data=DataRecipe(sources=(SourceSelection(source="worked"),)),
    train=TrainConfig(method="full", learning_rate=1e-3, epochs=2.0, batch_size=8),
)


def test_plan_directions_name_each_change() -> None:
    from ftdojo.agent.planner import plan_directions

    child = attrs.evolve(
        BASE_PLAN,
        data=attrs.evolve(BASE_PLAN.data, sources=(SourceSelection(source="forum"),), verified_only=True),
        train=attrs.evolve(BASE_PLAN.train, learning_rate=5e-4, batch_size=16),
    )
    assert plan_directions(BASE_PLAN, child) == {
        "data.add:forum",
        "data.drop:worked",
        "data.verified_only=True",
        "train.learning_rate-",
        "train.batch_size+",
    }
    assert plan_directions(BASE_PLAN, BASE_PLAN) == frozenset()


def test_a_direction_a_sibling_regressed_in_is_not_taken_again() -> None:
    memory = TrialTree()
    added = attrs.evolve(
        BASE_PLAN,
        data=attrs.evolve(
            BASE_PLAN.data, sources=(*BASE_PLAN.data.sources, SourceSelection(source="answers"))
        ),
    )
    _remember(memory, _scored("t001", BASE_PLAN, 0.30), _scored("t002", added, 0.10, parent="t001"))
    plan = RulePlanner().propose(_context(memory))
    assert plan is not None
    assert plan.parent == "t001"
    assert "answers" not in {s.source for s in plan.data.sources}
    assert "Not repeating: data.add:answers (t002 scored 0.10)" in plan.hypothesis
    assert plan.hypothesis.startswith(("Data: ", "Training: "))


def test_a_direction_that_improved_is_followed_one_step_further() -> None:
    memory = TrialTree()
    faster = attrs.evolve(BASE_PLAN, train=attrs.evolve(BASE_PLAN.train, learning_rate=2e-3))
    _remember(memory, _scored("t001", BASE_PLAN, 0.20), _scored("t002", faster, 0.30, parent="t001"))
    plan = RulePlanner().propose(_context(memory))
    assert plan is not None
    assert plan.parent == "t002"
    assert plan.train.learning_rate == pytest.approx(4e-3)
    assert "lifted t001 0.20 to t002 0.30" in plan.hypothesis


def test_the_last_trial_trains_the_best_plan_on_the_rest_of_the_budget() -> None:
    memory = TrialTree()
    _remember(memory, _scored("t001", BASE_PLAN, 0.30))
    plan = RulePlanner().propose(_context(memory, trials=1))
    assert plan is not None
    assert plan.parent == "t001"
    assert plan.data == BASE_PLAN.data
    assert plan.train.epochs == pytest.approx(4.0)
    assert "Last trial" in plan.hypothesis


def test_more_epochs_that_the_budget_cap_would_undo_is_not_proposed() -> None:
    memory = TrialTree()
    _remember(memory, _scored("t001", BASE_PLAN, 0.30))
    # 1000 records x 144 tokens: 2 epochs are 288K tokens, and only 200K are left for 3 trials.
    for _ in range(6):
        plan = RulePlanner().propose(_context(memory, tokens=200_000, trials=3))
        if plan is None:
            break
        assert not (plan.train.epochs <= BASE_PLAN.train.epochs and "epochs" in plan.hypothesis.split("(")[0])
        memory.mark_tried(plan)


def test_a_change_to_what_the_plan_already_has_is_not_run_again() -> None:

    memory = TrialTree()
    # Format non-compliance suggests keeping the rationale, which this plan already does.
    _remember(memory, _scored("t001", BASE_PLAN, 0.10, format_compliance=0.2))
    plan = RulePlanner().propose(_context(memory, tokens=200_000, trials=3))
    assert plan is not None
    assert (
        plan.data != BASE_PLAN.data
        or plan.train.epochs > BASE_PLAN.train.epochs
        or (plan.train.learning_rate != BASE_PLAN.train.learning_rate)
    )
    assert "keep reasoning and the final format" not in plan.hypothesis


@pytest.mark.parametrize(
    ("reason", "changed"),
    [
        (
            "smoke run failed in build (DATA): DataError: the recipe produced no training records; "
            "steps: load 100->100, to_example 100->100, dedupe 100->100, length_filter 100->0",
            lambda first, second: second.train.max_length > first.train.max_length,
        ),
        (
            "smoke run failed in train (OOM): MemoryError",
            lambda first, second: second.train.batch_size < first.train.batch_size,
        ),
        (
            "smoke run: the loss rose from 4.000 to 30.000 in 4 steps instead of falling",
            lambda first, second: second.train.learning_rate < first.train.learning_rate,
        ),
    ],
)
def test_a_rejected_plan_is_changed_where_the_reasons_point(reason: str, changed: Any) -> None:
    memory = TrialTree()
    first = RulePlanner().propose(_context(memory))
    assert first is not None
    memory.mark_tried(first)
    second = RulePlanner().propose(attrs.evolve(_context(memory), rejections=(_rejected(first, reason),)))
    assert second is not None
    assert changed(first, second), (first.train, second.train)
    # The same holds for a later plan: the rejection outranks the parent's diagnosis.
    _remember(memory, _scored("t001", first, 0.2))
    third = RulePlanner().propose(_context(memory))
    assert third is not None
    memory.mark_tried(third)
    fourth = RulePlanner().propose(attrs.evolve(_context(memory), rejections=(_rejected(third, reason),)))
    assert fourth is not None
    assert changed(first, fourth), (first.train, fourth.train)


def test_a_source_labelled_only_with_other_categories_is_off_domain() -> None:
    from ftdojo.agent.heuristics import assess_sources

    docket = attrs.evolve(
        _entry(
            "docket",
            ("answer", "category", "question", "solution"),
            "Court docket extracts: same columns, worked reasoning.\n1000 records; 100.0% 'solution'",
        ),
        samples=({"category": "litigation"},),
    )
    clean = attrs.evolve(
        _entry(
            "worked",
            ("answer", "category", "question", "solution"),
            "Worked solutions, correct.\n1000 records; 100.0% 'solution'",
        ),
        samples=({"category": "add"},),
    )
    catalog = DataCatalog(task="math", tokenizer="tiny", entries=(docket, clean, CATALOG["answers"]))
    card = attrs.evolve(CARD, categories=("add", "sub"))
    records = {"docket": [{"category": "litigation"}] * 5, "worked": [{"category": "sub"}, {"category": "x"}]}
    judged = {
        a.source_id: a
        for a in assess_sources(catalog, categories=card.categories, read_source=lambda s: records[s])
    }
    assert judged["docket"].off_domain
    assert judged["docket"].categories == {"litigation"}
    assert not judged["worked"].off_domain  # one of its labels is the task's
    assert judged["answers"].uncategorised
    assert not judged["answers"].off_domain
    # Without the card's categories nothing is judged by labels.
    assert not assess_sources(catalog)[0].off_domain

    context = attrs.evolve(
        _context(TrialTree()), catalog=catalog, card=card, read_source=lambda s: iter(records.get(s, []))
    )
    plan = RulePlanner().propose(context)
    assert plan is not None
    assert [s.source for s in plan.data.sources] == ["worked"]


def test_underfitting_within_a_capped_budget_takes_more_steps_not_a_token_more() -> None:
    memory = TrialTree()
    capped = attrs.evolve(BASE_PLAN, train=attrs.evolve(BASE_PLAN.train, epochs=0.5))
    # The loss still falling at the end: under-fitting.
    falling = TrainingFeedback(
        steps=40,
        epochs=0.5,
        tokens_trained=72_000,
        losses=tuple(LossPoint(step=i, loss=4.0 - 0.05 * i) for i in range(1, 41)),
    )
    _remember(memory, _scored("t001", capped, 0.0, training=falling))
    assert memory.diagnosis("t001").has(FindingKind.UNDERFITTING)  # type: ignore[union-attr]
    # 1000 records x 144 tokens x 0.5 epochs = 72K: the share of 216K over 3 trials is the same.
    plan = RulePlanner().propose(_context(memory, tokens=216_000, trials=2))
    assert plan is not None
    assert plan.train.batch_size == 4
    assert plan.train.epochs == pytest.approx(0.5, abs=0.02)
    assert "twice the optimizer steps" in plan.hypothesis


@pytest.mark.parametrize(
    ("note", "noisy"),
    [
        ("Reviewed by a senior examiner. Spot checks found no errors.", False),
        ("Checked by hand, without mistakes.", False),
        ("Many answers look wrong on inspection.", True),
        ("Answers are unreliable: one in five is off.", True),
        ("No rationales; some errors in the answers.", True),
    ],
)
def test_noise_in_a_note_is_read_with_its_negation(note: str, noisy: bool) -> None:
    from ftdojo.agent.heuristics import assess_sources

    catalog = DataCatalog(task="math", tokenizer="tiny", entries=(_entry("s", ("answer", "question"), note),))
    assert assess_sources(catalog)[0].noisy is noisy


def test_a_small_share_cuts_epochs_below_a_quarter_rather_than_overrun_it() -> None:
    # 1000 records x 144 tokens = 144K per epoch; 30K tokens for the one trial left.
    plan = RulePlanner().propose(_context(TrialTree(), tokens=30_000, trials=1))
    assert plan is not None
    assert plan.train.epochs * 144_000 <= 30_000 * 1.01
    assert plan.train.epochs > 0


def test_when_no_trial_learnt_the_format_the_next_one_gets_all_the_budget_left() -> None:
    memory = TrialTree()
    first = attrs.evolve(BASE_PLAN, train=attrs.evolve(BASE_PLAN.train, epochs=0.5))
    _remember(memory, _scored("t001", first, 0.0, format_compliance=0.1))
    plan = RulePlanner().propose(_context(memory, tokens=288_000, trials=2))
    assert plan is not None
    # 1000 records x 144 tokens: all 288K left is 2 epochs, four times the first trial's.
    assert plan.train.epochs == pytest.approx(2.0, abs=0.02)
    assert "all the budget left" in plan.hypothesis
    # Search baselines keep the even split: half of what is left for each of 2 trials.
    even = RulePlanner().fit_budget(
        _context(memory).memory and plan, _context(memory, tokens=288_000, trials=2), even=True
    )
    assert even.train.epochs == pytest.approx(1.0, abs=0.02)


def test_no_trial_on_a_scrap_of_the_budget() -> None:
    memory = TrialTree()
    trained = TrainingFeedback(steps=100, epochs=1.0, tokens_trained=200_000)
    _remember(memory, _scored("t001", BASE_PLAN, 0.3, training=trained))
    # 20K tokens left against the best trial's 200K: a trial that cannot compete is not run.
    assert RulePlanner().propose(_context(memory, tokens=20_000, trials=1)) is None
    assert RulePlanner().propose(_context(memory, tokens=60_000, trials=1)) is not None


class _ProtocolOnlyMemory:
    """A memory written against the ``Memory`` protocol alone, with no ``TrialTree`` beneath."""

    def __init__(self) -> None:
        self._trials: dict[str, Trial] = {}
        self._diagnoses: dict[str, Diagnosis] = {}
        self._tried: set[object] = set()

    def record(self, trial: Trial, diagnosis: Diagnosis) -> None:
        self._trials[trial.trial_id] = trial
        self._diagnoses[trial.trial_id] = diagnosis
        self._tried.add(trial.plan.fingerprint())

    def mark_tried(self, plan: Plan) -> None:
        self._tried.add(plan.fingerprint())

    def tried(self, plan: Plan) -> bool:
        return plan.fingerprint() in self._tried

    def best(self) -> Trial | None:
        scored = [t for t in self._trials.values() if t.score is not None]
        return max(scored, key=lambda t: t.score or 0.0) if scored else None

    def diagnosis(self, trial_id: str) -> Diagnosis | None:
        return self._diagnoses.get(trial_id)

    def children(self, trial_id: str | None) -> tuple[Trial, ...]:
        return tuple(t for t in self._trials.values() if t.plan.parent == trial_id)

    def get(self, trial_id: str) -> Trial | None:
        return self._trials.get(trial_id)

    @property
    def trials(self) -> tuple[Trial, ...]:
        return tuple(self._trials.values())


def test_a_memory_that_satisfies_only_the_protocol_drives_the_momentum_step() -> None:
    memory = _ProtocolOnlyMemory()
    assert isinstance(memory, Memory)
    faster = attrs.evolve(BASE_PLAN, train=attrs.evolve(BASE_PLAN.train, learning_rate=2e-3))
    first, second = _scored("t001", BASE_PLAN, 0.20), _scored("t002", faster, 0.30, parent="t001")
    memory.record(first, RuleAnalyzer().analyze(first, None))
    memory.record(second, RuleAnalyzer().analyze(second, first))
    plan = RulePlanner().propose(attrs.evolve(_context(TrialTree()), memory=memory))
    assert plan is not None
    assert plan.parent == "t002"
    assert plan.train.learning_rate == pytest.approx(4e-3)
    assert "lifted t001 0.20 to t002 0.30" in plan.hypothesis
