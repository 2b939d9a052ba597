"""Core types: validation with named fields, and JSON round trips (Hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftdojo import (
    Budget,
    ConfigError,
    DataCatalog,
    DataFeedback,
    DataRecipe,
    ErrorKind,
    ErrorSample,
    EvaluationFeedback,
    ExecutionFeedback,
    Feedback,
    LossPoint,
    Plan,
    PlanError,
    SchemaError,
    SourceSelection,
    Stage,
    StepCount,
    TrainConfig,
    TrainingFeedback,
    UnknownSourceError,
)
from ftdojo.serialization import from_json, structure, to_json

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
texts = st.text(max_size=40)
positive_floats = st.floats(min_value=1e-6, max_value=1e3, allow_nan=False)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)

recipes = st.builds(
    DataRecipe,
    sources=st.lists(
        st.builds(SourceSelection, source=names, max_records=st.none() | st.integers(1, 10_000)),
        min_size=1,
        max_size=4,
        unique_by=lambda s: s.source,
    ),
    dedupe=st.booleans(),
    verified_only=st.booleans(),
    include_rationale=st.booleans(),
    template=st.sampled_from(["auto", "chat", "plain"]),
    max_records=st.integers(1, 100_000),
    seed=st.integers(0, 2**31),
    transform_code=st.none() | texts,
)
configs = st.builds(
    TrainConfig,
    method=st.sampled_from(["full", "lora"]),
    lora_rank=st.integers(1, 256),
    learning_rate=positive_floats,
    warmup_ratio=st.floats(min_value=0.0, max_value=0.99),
    epochs=positive_floats,
    max_steps=st.none() | st.integers(1, 10_000),
    batch_size=st.integers(1, 256),
    max_length=st.integers(16, 8192),
    lora_targets=st.lists(names, min_size=1, max_size=3).map(tuple),
)
plans = st.builds(
    Plan,
    data=recipes,
    train=configs,
    hypothesis=texts,
    focus=st.sampled_from(["data", "training", "both"]),
    parent=st.none() | names,
)

losses = st.floats(allow_nan=True, allow_infinity=True)
feedbacks = st.builds(
    Feedback,
    trial_id=names,
    execution=st.builds(
        ExecutionFeedback,
        ok=st.booleans(),
        failed_stage=st.none() | st.sampled_from(Stage),
        error_kind=st.none() | st.sampled_from(ErrorKind),
        root_cause=texts,
        stage_seconds=st.dictionaries(names, st.floats(0, 1e4)),
    ),
    data=st.none()
    | st.builds(
        DataFeedback,
        records=st.integers(0, 10**6),
        tokens=st.integers(0, 10**9),
        steps=st.lists(
            st.builds(StepCount, step=names, records_in=st.integers(0, 99), records_out=st.integers(0, 99))
        ).map(tuple),
        per_source=st.dictionaries(names, st.integers(0, 10**6)),
    ),
    training=st.none()
    | st.builds(
        TrainingFeedback,
        steps=st.integers(0, 10**6),
        epochs=st.floats(0, 100),
        tokens_trained=st.integers(0, 10**9),
        losses=st.lists(st.builds(LossPoint, step=st.integers(0, 10**6), loss=losses), max_size=5).map(tuple),
    ),
    evaluation=st.none()
    | st.builds(
        EvaluationFeedback,
        metric=names,
        score=unit,
        n=st.integers(0, 10**4),
        per_category=st.dictionaries(names, unit),
        format_compliance=unit,
        errors=st.lists(
            st.builds(ErrorSample, prompt=texts, expected=texts, output=texts, prediction=st.none() | texts),
            max_size=3,
        ).map(tuple),
    ),
)


def _same(a: object, b: object) -> bool:
    # NaN != NaN, so compare the JSON forms (which spell NaN the same way).
    return to_json(a) == to_json(b)


@given(plans)
def test_plan_survives_json_round_trip(plan: Plan) -> None:
    assert from_json(to_json(plan), Plan) == plan


@given(feedbacks)
def test_feedback_survives_json_round_trip(feedback: Feedback) -> None:
    back = from_json(to_json(feedback), Feedback)
    assert _same(back, feedback)
    if feedback.training is None or all(math.isfinite(p.loss) for p in feedback.training.losses):
        assert back == feedback


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ('{"data": {"sources": [{"source": "a"}]}, "train": {"learning_rate": -1}}', "learning_rate"),
        ('{"data": {"sources": []}}', "data.sources"),
        ('{"data": {"sources": [{"source": "a"}], "bogus": 1}}', "bogus"),
        ('{"data": {"sources": [{"source": "a"}]}, "train": {"method": "qlora"}}', "method"),
        ('{"data": {"sources": [{"source": "a"}, {"source": "a"}]}}', "data.sources"),
    ],
)
def test_malformed_plan_names_the_field(payload: str, field: str) -> None:
    with pytest.raises(PlanError, match=field):
        from_json(payload, Plan)


def test_plan_from_invalid_json_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="not valid JSON"):
        from_json("{not json", Plan)


def test_budget_needs_a_limit_and_positive_values() -> None:
    with pytest.raises(ConfigError):
        Budget(max_trials=None, max_seconds=None, max_train_tokens=None)
    with pytest.raises(ConfigError, match="max_trials"):
        Budget(max_trials=0)


def test_evaluation_score_outside_unit_interval_is_rejected() -> None:
    with pytest.raises(ValueError, match="score"):
        EvaluationFeedback(metric="accuracy", score=1.5, n=1)


def test_data_that_is_not_a_plan_is_a_schema_error_not_a_plan_error() -> None:
    with pytest.raises(SchemaError, match="n") as caught:
        from_json('{"metric": "accuracy", "score": 0.5}', EvaluationFeedback)
    assert not isinstance(caught.value, PlanError)
    with pytest.raises(SchemaError, match="not valid JSON") as caught:
        from_json("{not json", Budget)
    assert not isinstance(caught.value, PlanError)
    # A plan's parts are plans: an agent catching PlanError sees them too.
    with pytest.raises(PlanError, match="method"):
        structure({"method": "qlora"}, TrainConfig)


def test_an_evaluation_score_outside_the_unit_interval_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="score"):
        EvaluationFeedback(metric="accuracy", score=-0.1, n=1)
    with pytest.raises(SchemaError, match="score"):
        structure({"metric": "accuracy", "score": 2.0, "n": 1}, EvaluationFeedback)


def test_a_catalogue_lookup_of_an_unknown_source_is_an_unknown_source_error() -> None:
    catalog = DataCatalog(task="math", tokenizer="whitespace", entries=())
    with pytest.raises(UnknownSourceError, match="'nope'"):
        catalog["nope"]
    with pytest.raises(KeyError):  # what callers that do not know ftdojo catch
        catalog["nope"]
