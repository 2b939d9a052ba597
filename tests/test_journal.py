from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from ftdojo import JournalError
from ftdojo.journal import Journal


def test_append_and_read_back(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "run" / "journal.jsonl")
    journal.append("a", x=1)
    journal.append("b", y=float("nan"))
    records = list(journal.records())
    assert [r["kind"] for r in records] == ["a", "b"]
    assert records[0]["x"] == 1


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("a", x=1)
    with journal.path.open("ab") as fh:
        fh.write(b'{"kind": "trial", "tri')  # the process died mid-write
    assert [r["kind"] for r in journal.records()] == ["a"]


def test_a_torn_last_line_is_cut_off_before_the_next_append(tmp_path: Path) -> None:
    Journal(tmp_path / "journal.jsonl").append("a", x=1)
    with (tmp_path / "journal.jsonl").open("ab") as fh:
        fh.write(b'{"kind": "trial", "tri')  # the process died mid-write
    resumed = Journal(tmp_path / "journal.jsonl")  # as a resumed run opens it
    resumed.append("b")
    assert resumed.torn_bytes_dropped == len(b'{"kind": "trial", "tri')
    assert [r["kind"] for r in Journal(tmp_path / "journal.jsonl").records()] == ["a", "b"]


def test_a_corrupt_middle_line_names_the_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("a")
    with journal.path.open("ab") as fh:
        fh.write(b"garbage\n")
    journal.append("b")
    with pytest.raises(JournalError, match="line 2"):
        list(journal.records())


# -- typed records and the one replay -----------------------------------------------------

from ftdojo import Budget, DataRecipe, Plan, SourceSelection, TrainConfig  # noqa: E402
from ftdojo.feedback import ErrorKind, ExecutionFeedback, Feedback, Stage  # noqa: E402
from ftdojo.journal import (  # noqa: E402
    RECORD_TYPES,
    AgentFailed,
    AnnotationRecord,
    HeldOutScore,
    RecordKind,
    RejectionRecord,
    RunFinished,
    RunResumed,
    RunStarted,
    SmokeRecord,
    TrialRecord,
    ViolationRecord,
    read_record,
    replay,
)
from ftdojo.results import Rejection, Trial, Violation  # noqa: E402

PLAN = Plan(data=DataRecipe(sources=[SourceSelection(source="s")]), train=TrainConfig(max_steps=2))


def _trial(trial_id: str, score: float | None) -> Trial:
    execution = ExecutionFeedback(
        ok=score is not None,
        **(
            {}
            if score is not None
            else {"failed_stage": Stage.TRAIN, "error_kind": ErrorKind.OOM, "root_cause": "killed"}
        ),
    )
    evaluation = None
    if score is not None:
        from ftdojo.feedback import EvaluationFeedback

        evaluation = EvaluationFeedback(metric="accuracy", score=score, n=10)
    feedback = Feedback(trial_id=trial_id, execution=execution, evaluation=evaluation)
    return Trial(trial_id=trial_id, plan=PLAN, feedback=feedback, started_at=1.0, finished_at=2.0)


def _started() -> RunStarted:
    return RunStarted(
        run_id="r1",
        task={"name": "math"},
        model="tiny",
        budget=Budget(max_trials=3),
        agent={"agent": "ftdojo.agent.ftagent:FTAgent", "planner": "ftdojo.agent.planner:RulePlanner"},
    )


def test_every_kind_has_one_typed_record_that_round_trips(tmp_path: Path) -> None:
    assert set(RECORD_TYPES) == set(RecordKind)
    records = [
        _started(),
        RunResumed(run_id="r1", trials=1),
        SmokeRecord(plan=PLAN, feedback=_trial("smoke001", None).feedback),
        RejectionRecord(rejection=Rejection(plan=PLAN, reasons=("too long",), seconds=1.5)),
        TrialRecord(trial=_trial("t001", 0.5), tokens_total=100, seconds=12.5),
        AnnotationRecord(trial_id="t001", key="diagnosis", value={"findings": []}),
        ViolationRecord(violation=Violation(kind="network", detail="socket")),
        AgentFailed(error="RuntimeError('bug')"),
        HeldOutScore(trial_id="t001", score=0.4, per_category={"a": 0.5}),
        RunFinished(result={"final_trial_id": "t001"}),
    ]
    journal = Journal(tmp_path / "journal.jsonl")
    for record in records:
        journal.write(record)
    back = [read_record(raw) for raw in journal.records()]
    for written, read in zip(records, back, strict=True):
        assert type(read) is type(written)
        assert read is not None
        assert read.time > 0  # stamped when written
        assert attrs.evolve(read, time=0.0) == written


def test_a_record_a_newer_version_wrote_reads_and_an_unknown_kind_is_skipped(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.write(_started())
    journal.append("trial", trial=attrs_dict(_trial("t001", 0.5)), seconds=3.0, field_of_tomorrow=1)
    journal.append("kind_of_tomorrow", x=1)
    run = replay(journal.path)
    assert [t.trial_id for t in run.trials] == ["t001"]
    assert run.skipped == ("record 3: unknown kind 'kind_of_tomorrow'",)


def test_a_malformed_record_is_an_error_naming_it_unless_tolerant(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.write(_started())
    journal.write(TrialRecord(trial=_trial("t001", 0.5), seconds=1.0))
    journal.append("trial", trial={"trial_id": "t002"}, seconds=2.0)  # no plan, no feedback
    journal.write(TrialRecord(trial=_trial("t003", 0.7), seconds=3.0))
    with pytest.raises(JournalError, match=r"unreadable trial record 3"):
        replay(journal.path)
    tolerant = replay(journal.path, tolerant=True)
    assert [t.trial_id for t in tolerant.trials] == ["t001", "t003"]
    assert len(tolerant.skipped) == 1
    assert tolerant.skipped[0].startswith("record 3 (trial)")


def test_replay_folds_a_run_as_every_reader_needs_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.write(_started())
    journal.write(SmokeRecord(plan=PLAN, feedback=_trial("smoke001", None).feedback))
    journal.write(RejectionRecord(rejection=Rejection(plan=PLAN, reasons=("x",), seconds=1.0)))
    journal.write(TrialRecord(trial=_trial("t001", 0.5), tokens_total=100, seconds=10.0))
    journal.write(TrialRecord(trial=_trial("t002", None), tokens_total=150, seconds=20.0))
    journal.write(TrialRecord(trial=_trial("t003", 0.5), tokens_total=250, seconds=30.0))
    journal.write(AnnotationRecord(trial_id="t001", key="note", value=1))
    journal.write(AnnotationRecord(trial_id="t001", key="note", value=2))
    journal.write(ViolationRecord(violation=Violation(kind="network", detail="socket", trial_id="t002")))
    run = replay(journal.path)
    assert not run.finished
    # Not finished: the best validated trial, the earliest of equal scores.
    assert run.final_trial_id == "t001"
    assert (run.seconds_spent, run.tokens_spent) == (30.0, 250)
    assert run.elapsed == {"t001": 10.0, "t002": 20.0, "t003": 30.0}
    assert run.annotations == {"t001": {"note": 2}}
    assert (run.smokes, len(run.rejections), len(run.violations)) == (1, 1, 1)
    assert run.agent is not None
    assert run.agent["planner"] == "ftdojo.agent.planner:RulePlanner"

    journal.write(HeldOutScore(trial_id="t003", score=0.6))
    journal.write(RunFinished(result={"final_trial_id": "t003", "stop_reason": "agent finished"}))
    finished = replay(journal.path)
    assert finished.finished
    assert finished.final_trial_id == "t003"
    assert finished.test_scores == {"t003": 0.6}
    assert finished.result == {"final_trial_id": "t003", "stop_reason": "agent finished"}

    # A resume voids what the finish chose and scored: the run is in progress again.
    journal.write(RunResumed(run_id="r1", trials=3, agent={"agent": "my.agent:Other"}))
    resumed = replay(journal.path)
    assert not resumed.finished
    assert resumed.result is None
    assert resumed.test_scores == {}
    assert resumed.resumes == 1
    assert resumed.agent == {"agent": "my.agent:Other"}
    assert resumed.final_trial_id == "t001"


def test_a_journal_without_run_started_is_an_error(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.write(TrialRecord(trial=_trial("t001", 0.5)))
    with pytest.raises(JournalError, match="no run_started record"):
        replay(journal.path)


def attrs_dict(value: object) -> object:
    from ftdojo.serialization import unstructure

    return unstructure(value)
