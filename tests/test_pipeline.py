"""The trial pipeline's seams: the stage ledger, the job contracts, replaced jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftdojo import Budget, DataRecipe, Dojo, ErrorKind, Plan, SourceSelection, Stage, TrainConfig
from ftdojo.errors import SchemaError
from ftdojo.feedback import DataFeedback
from ftdojo.jobs.contracts import BuildJob, EvalJob, TrainJob
from ftdojo.pipeline import JobEntries, StageLedger, smoke_config
from ftdojo.sandbox import JobOutcome
from ftdojo.serialization import structure, unstructure
from ftdojo.testing import ScriptedAgent

SMALL = TrainConfig(method="full", learning_rate=1e-3, max_steps=2, batch_size=8, max_length=256)
PLAN = Plan(
    data=DataRecipe(sources=[SourceSelection(source="worked_solutions")], max_records=32), train=SMALL
)


def _outcome(**fields: object) -> JobOutcome:
    defaults: dict[str, object] = {
        "ok": True,
        "result": {},
        "error_kind": None,
        "root_cause": "",
        "exit_code": 0,
        "signal": None,
        "timed_out": False,
        "duration_s": 1.23456,
        "peak_memory_mb": None,
        "events": (),
        "output": "",
        "warnings": (),
        "launch": "fork",
    }
    return JobOutcome(**{**defaults, **fields})  # type: ignore[arg-type]


def test_the_ledger_builds_one_execution_feedback_with_every_level_gathered() -> None:
    ledger = StageLedger("t001")
    ledger.account(Stage.BUILD, _outcome(peak_memory_mb=101.26, warnings=("slow disk",)))
    ledger.data = DataFeedback(records=3, tokens=30)
    ledger.account(
        Stage.TRAIN,
        _outcome(
            ok=False, error_kind=ErrorKind.OOM, root_cause="killed", launch="spawn", launch_note="no fork"
        ),
    )
    failed = ledger.failed(Stage.TRAIN, _outcome(ok=False, error_kind=ErrorKind.OOM, root_cause="killed"))
    assert not failed.ok
    assert failed.execution.failed_stage is Stage.TRAIN
    assert failed.execution.error_kind is ErrorKind.OOM
    assert failed.execution.root_cause == "killed"
    # The levels gathered before the failure travel with it.
    assert failed.data == DataFeedback(records=3, tokens=30)
    assert failed.execution.stage_seconds == {"build": 1.235, "train": 1.235}
    assert failed.execution.peak_memory_mb == {"build": 101.3}
    assert failed.execution.launch == {"build": "fork", "train": "spawn"}
    assert failed.execution.warnings == ("slow disk", "train job spawned, not forked: no fork")
    # A stage that never ran (out of time) names the kind it was given.
    timed_out = ledger.failed(Stage.EVALUATE, None, kind=ErrorKind.TIMEOUT, cause="spent")
    assert timed_out.execution.error_kind is ErrorKind.TIMEOUT
    assert timed_out.execution.exit_code is None


def test_the_smoke_config_trains_at_the_peak_rate_without_accumulation() -> None:
    plan = TrainConfig(grad_accum=4, warmup_ratio=0.1, lr_scheduler="cosine")
    smoke = smoke_config(plan)
    assert (smoke.grad_accum, smoke.warmup_ratio, smoke.lr_scheduler) == (1, 0.0, "constant")
    assert smoke.learning_rate == plan.learning_rate


@given(
    max_length=st.integers(16, 4096),
    limit=st.none() | st.integers(1, 1000),
    tokens=st.none() | st.integers(1, 10**9),
    seconds=st.none() | st.floats(1.0, 1e5),
)
def test_job_payloads_round_trip_through_json(
    max_length: int, limit: int | None, tokens: int | None, seconds: float | None
) -> None:
    build = BuildJob(
        task={"name": "math"},
        sources={"a": "/x/a"},
        recipe=PLAN.data,
        max_length=max_length,
        model_path="/m",
        output_dir="/o",
        limit_records=limit,
    )
    train = TrainJob(
        train=SMALL,
        data_path="/d",
        output_dir="/o",
        model_path="/m",
        max_train_tokens=tokens,
        stop_after_seconds=seconds,
    )
    for job in (build, train):
        assert structure(unstructure(job), type(job)) == job


def test_a_payload_that_misses_a_field_is_refused_by_name() -> None:
    payload = {"task": {"name": "math"}, "items_path": "/i", "model_path": "/m", "error_samples": 3}
    with pytest.raises(SchemaError, match="batch_size"):
        structure(payload, EvalJob)  # the Dojo decides the batch: the job has no default of its own


def test_the_default_entries_are_the_built_in_jobs() -> None:
    assert JobEntries() == JobEntries(build="ftdojo.jobs.build:build_data", train="ftdojo.jobs.train:train")
    assert Dojo(home="/nonexistent-home", runs_dir="/nonexistent-runs").entries == JobEntries()


@pytest.mark.anyio
async def test_a_trainer_whose_result_breaks_its_contract_fails_the_trial_as_data(
    ftdojo_home: Path, tmp_path: Path
) -> None:
    # ``echo`` returns its payload: a dict, but not a TrainResult.
    dojo = Dojo(
        home=ftdojo_home,
        runs_dir=tmp_path,
        model="tiny",
        threads=2,
        entries=JobEntries(train="ftdojo.testing.jobs:echo"),
    )
    agent = ScriptedAgent([PLAN])
    result = await dojo.run("math", agent, budget=Budget(max_trials=1, max_seconds=600))
    (feedback,) = agent.feedback
    assert not feedback.ok
    assert feedback.execution.failed_stage is Stage.TRAIN
    assert feedback.execution.error_kind is ErrorKind.ENV
    assert "does not fit TrainResult" in feedback.execution.root_cause
    # The build's level is still there, and the run finished with no final model.
    assert feedback.data is not None
    assert feedback.data.records > 0
    assert result.final_trial_id is None
