"""Feedback analysis invariants (Hypothesis) and the planner's use of them."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from ftdojo import (
    DataFeedback,
    DataRecipe,
    ErrorKind,
    EvaluationFeedback,
    ExecutionFeedback,
    Feedback,
    LossPoint,
    Plan,
    SourceSelection,
    Stage,
    TrainingFeedback,
    Trial,
)
from ftdojo.agent import FindingKind, RuleAnalyzer

finite = st.floats(min_value=0.0, max_value=20.0, allow_nan=False)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
PLAN = Plan(data=DataRecipe(sources=[SourceSelection(source="s")]))


def _trial(feedback: Feedback, trial_id: str = "t001", parent: str | None = None) -> Trial:
    import attrs

    return Trial(
        trial_id=trial_id,
        plan=attrs.evolve(PLAN, parent=parent),
        feedback=feedback,
        started_at=0,
        finished_at=1,
    )


trainings = st.builds(
    TrainingFeedback,
    steps=st.integers(1, 1000),
    epochs=st.floats(0, 10),
    tokens_trained=st.integers(0, 10**7),
    losses=st.lists(st.builds(LossPoint, step=st.integers(0, 1000), loss=finite), max_size=30).map(tuple),
    diverged=st.booleans(),
)
evaluations = st.builds(
    EvaluationFeedback,
    metric=st.just("accuracy"),
    score=unit,
    n=st.integers(1, 100),
    per_category=st.dictionaries(st.sampled_from(["add", "sub", "mul"]), unit),
    format_compliance=unit,
)


def _data_feedback(checked: dict[str, int], failure_share: dict[str, float], dropped: int) -> DataFeedback:
    failed = {s: int(n * failure_share.get(s, 0.0)) for s, n in checked.items()}
    return DataFeedback(
        records=sum(checked.values()) - sum(failed.values()),
        tokens=1000,
        too_long_dropped=dropped,
        verified_per_source=checked,
        failed_verification_per_source=failed,
        failed_verification=sum(failed.values()),
    )


SOURCES = st.sampled_from(["clean", "forum", "scrape"])
datas = st.builds(
    _data_feedback,
    st.dictionaries(SOURCES, st.integers(0, 500)),
    st.dictionaries(SOURCES, unit),
    st.integers(0, 100),
)
feedbacks = st.builds(
    Feedback,
    trial_id=st.just("t001"),
    data=st.none() | datas,
    execution=st.builds(
        ExecutionFeedback,
        ok=st.booleans(),
        failed_stage=st.none() | st.sampled_from(Stage),
        error_kind=st.none() | st.sampled_from(ErrorKind),
        root_cause=st.text(max_size=50),
    ),
    training=st.none() | trainings,
    evaluation=st.none() | evaluations,
)


@given(feedbacks, st.integers(0, 30), st.sampled_from([math.nan, math.inf, -math.inf]))
def test_a_non_finite_loss_is_always_diagnosed_as_divergence(feedback: Feedback, at: int, bad: float) -> None:
    import attrs

    training = feedback.training or TrainingFeedback(steps=1, epochs=1, tokens_trained=1)
    losses = list(training.losses)
    losses.insert(min(at, len(losses)), LossPoint(step=at, loss=bad))
    feedback = attrs.evolve(feedback, training=attrs.evolve(training, losses=tuple(losses)))
    diagnosis = RuleAnalyzer().analyze(_trial(feedback), None)
    assert diagnosis.has(FindingKind.DIVERGENCE)


@given(feedbacks, st.none() | evaluations)
def test_every_finding_has_evidence_and_analysis_is_deterministic(
    feedback: Feedback, parent_eval: object
) -> None:
    parent = None
    if parent_eval is not None:
        parent = _trial(
            Feedback(trial_id="t000", execution=ExecutionFeedback(ok=True), evaluation=parent_eval),  # type: ignore[arg-type]
            trial_id="t000",
        )
    analyzer = RuleAnalyzer()
    first = analyzer.analyze(_trial(feedback, parent="t000" if parent else None), parent)
    second = analyzer.analyze(_trial(feedback, parent="t000" if parent else None), parent)
    assert first == second
    for finding in first.findings:
        assert finding.evidence.strip()
        assert finding.action.strip()  # every finding suggests what to change


def test_failed_trial_is_diagnosed_by_its_error_kind() -> None:
    feedback = Feedback(
        trial_id="t001",
        execution=ExecutionFeedback(
            ok=False, failed_stage=Stage.TRAIN, error_kind=ErrorKind.OOM, root_cause="MemoryError: boom"
        ),
    )
    diagnosis = RuleAnalyzer().analyze(_trial(feedback), None)
    assert [f.kind for f in diagnosis.findings] == [FindingKind.OUT_OF_MEMORY]
    assert "MemoryError" in diagnosis.findings[0].evidence


def test_regression_and_weak_category_are_found() -> None:
    parent = _trial(
        Feedback(
            trial_id="t001",
            execution=ExecutionFeedback(ok=True),
            evaluation=EvaluationFeedback(metric="accuracy", score=0.6, n=10, format_compliance=1.0),
        )
    )
    child = _trial(
        Feedback(
            trial_id="t002",
            execution=ExecutionFeedback(ok=True),
            evaluation=EvaluationFeedback(
                metric="accuracy",
                score=0.5,
                n=10,
                format_compliance=0.5,
                per_category={"add": 0.9, "mul": 0.1},
            ),
        ),
        trial_id="t002",
        parent="t001",
    )
    diagnosis = RuleAnalyzer().analyze(child, parent)
    kinds = {f.kind for f in diagnosis.findings}
    assert {FindingKind.REGRESSION, FindingKind.FORMAT_NONCOMPLIANCE, FindingKind.WEAK_CATEGORY} <= kinds
    assert [f.subject for f in diagnosis.of(FindingKind.WEAK_CATEGORY)] == ["mul"]


def _parent(evaluation: EvaluationFeedback | None) -> Trial | None:
    if evaluation is None:
        return None
    return _trial(
        Feedback(trial_id="t000", execution=ExecutionFeedback(ok=True), evaluation=evaluation),
        trial_id="t000",
    )


@given(feedbacks)
def test_divergence_is_diagnosed_exactly_when_the_evidence_shows_it(feedback: Feedback) -> None:
    training = feedback.training
    non_finite = training is not None and any(not math.isfinite(p.loss) for p in training.losses)
    reported = training is not None and training.diverged
    failed = not feedback.execution.ok and feedback.execution.error_kind is ErrorKind.DIVERGED
    diagnosis = RuleAnalyzer().analyze(_trial(feedback), None)
    assert diagnosis.has(FindingKind.DIVERGENCE) == (non_finite or reported or failed)


@given(feedbacks, st.none() | evaluations)
def test_regression_and_improvement_follow_the_parent_score(
    feedback: Feedback, parent_eval: EvaluationFeedback | None
) -> None:
    parent = _parent(parent_eval)
    diagnosis = RuleAnalyzer().analyze(_trial(feedback, parent="t000" if parent else None), parent)
    child = feedback.evaluation
    compared = child is not None and parent_eval is not None
    assert diagnosis.has(FindingKind.REGRESSION) == (compared and child.score < parent_eval.score)  # type: ignore[union-attr]
    assert diagnosis.has(FindingKind.IMPROVEMENT) == (compared and child.score > parent_eval.score)  # type: ignore[union-attr]
    for finding in diagnosis.of(FindingKind.REGRESSION):
        assert finding.subject == "t000"


@given(feedbacks)
def test_findings_name_only_subjects_that_the_feedback_holds(feedback: Feedback) -> None:
    analyzer = RuleAnalyzer()
    diagnosis = analyzer.analyze(_trial(feedback), None)
    noisy = {f.subject for f in diagnosis.of(FindingKind.NOISY_SOURCE)}
    data = feedback.data
    expected = set()
    if data is not None:
        expected = {
            s
            for s, n in data.verified_per_source.items()
            if n and data.failed_verification_per_source.get(s, 0) / n > analyzer.noisy_share
        }
    assert noisy == expected
    weak = {f.subject for f in diagnosis.of(FindingKind.WEAK_CATEGORY)}
    categories = set(feedback.evaluation.per_category) if feedback.evaluation else set()
    assert weak <= categories


def test_a_noisy_source_is_named_with_its_counts() -> None:
    feedback = Feedback(
        trial_id="t001",
        execution=ExecutionFeedback(ok=True),
        data=_data_feedback({"clean": 200, "forum": 100}, {"clean": 0.01, "forum": 0.4}, 0),
    )
    [finding] = RuleAnalyzer().analyze(_trial(feedback), None).of(FindingKind.NOISY_SOURCE)
    assert finding.subject == "forum"
    assert finding.evidence == "40 of 100 records of forum failed verification"
