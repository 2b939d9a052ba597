"""Fail-fast validation: static checks and the projected cost of the trial a rejection saves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from ftdojo import Budget, BudgetLeft, DataRecipe, Plan, SourceSelection, TrainConfig
from ftdojo.agent import FailFastValidator, FindingKind
from ftdojo.agent.heuristics import PARAMETER_TOKENS_PER_SECOND
from ftdojo.agent.validator import projected_seconds, projected_tokens, rejection_findings, static_problems
from ftdojo.feedback import ErrorKind, ExecutionFeedback, Feedback, Stage
from ftdojo.results import Rejection
from test_planner import CATALOG, TINY  # tests/ is on sys.path (rootdir-less test files)


@attrs.define
class _Session:
    """The parts of a session the static checks read (no smoke run is asked for here)."""

    catalog: Any = CATALOG
    model: Any = TINY
    budget_left: BudgetLeft = attrs.field(
        factory=lambda: BudgetLeft(trials=3, seconds=600.0, train_tokens=None)
    )
    history: tuple[Any, ...] = ()
    memory_limit_bytes: int | None = None


def _plan(source: str = "worked", **train: Any) -> Plan:
    return Plan(
        data=DataRecipe(sources=(SourceSelection(source=source),), max_records=500),
        train=TrainConfig(method="full", **train),
    )


def test_a_bad_plan_is_rejected_in_well_under_a_second_with_the_trial_it_saves() -> None:
    plan = _plan("nowhere", max_length=4096)
    verdict = anyio.run(FailFastValidator(smoke="never").validate, plan, _Session())
    assert not verdict.ok
    assert any("no source 'nowhere'" in r for r in verdict.reasons)
    assert any("exceeds the model's context of 512" in r for r in verdict.reasons)
    assert verdict.seconds < 0.5
    assert verdict.projected_seconds is None  # an unknown source has no size


def test_the_projection_uses_the_catalogue_and_a_throughput_prior() -> None:
    plan = _plan(epochs=2.0)
    session = _Session()
    tokens = 500 * (3 * 40.0) * 2.0  # records x (three fields of 40 tokens) x epochs
    assert projected_tokens(plan, session) == pytest.approx(tokens)
    throughput = PARAMETER_TOKENS_PER_SECOND / TINY.parameters
    assert projected_seconds(plan, session) == pytest.approx(tokens / throughput / 0.7)
    verdict = anyio.run(FailFastValidator(smoke="never").validate, plan, session)
    assert verdict.ok
    assert verdict.projected_seconds == pytest.approx(tokens / throughput / 0.7)
    assert verdict.seconds < verdict.projected_seconds


def test_the_projection_never_exceeds_the_token_budget_left() -> None:
    session = _Session(budget_left=BudgetLeft(trials=3, seconds=600.0, train_tokens=1000))
    assert projected_tokens(_plan(epochs=4.0), session) == 1000
    problems = static_problems(_plan(epochs=4.0), session)
    assert any("only 1,000 are left" in p for p in problems)


class _OnePlanPlanner:
    """Proposes one plan unless memory says it was tried (as RulePlanner does)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.proposed = 0

    def propose(self, context: Any) -> Plan | None:
        if context.memory.tried(self.plan):
            return None
        self.proposed += 1
        return self.plan


@pytest.mark.anyio
async def test_rejections_are_journalled_with_their_cost_and_survive_a_resume(
    ftdojo_home: Path, tmp_path: Path
) -> None:
    from ftdojo import Dojo, FTAgent, Rejection

    bad = Plan(data=DataRecipe(sources=[SourceSelection(source="nowhere")]), train=TrainConfig(method="full"))
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny")
    planner = _OnePlanPlanner(bad)
    result = await dojo.run("math", FTAgent(planner=planner), budget=Budget(max_trials=2, max_seconds=600))
    assert result.trials == ()
    assert planner.proposed == 1
    [rejection] = result.rejections
    assert isinstance(rejection, Rejection)
    assert rejection.plan == bad
    assert any("no source 'nowhere'" in r for r in rejection.reasons)
    assert 0 <= rejection.seconds < 0.5
    journal = [json.loads(line) for line in (Path(result.run_dir) / "journal.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in journal].count("rejection") == 1

    # A resumed agent knows the plan was rejected and does not validate it again.
    resumed_planner = _OnePlanPlanner(bad)
    resumed = await dojo.run(
        "math",
        FTAgent(planner=resumed_planner),
        budget=Budget(max_trials=2, max_seconds=600),
        run_id=result.run_id,
    )
    assert resumed_planner.proposed == 0
    assert resumed.rejections == result.rejections


def test_a_rejection_says_what_it_saved() -> None:
    from ftdojo import Rejection

    plan = _plan()
    assert Rejection(plan=plan, reasons=("x",), seconds=2.0, projected_seconds=90.0).seconds_saved == 88.0
    assert Rejection(plan=plan, reasons=("x",), seconds=2.0).seconds_saved is None


#: SmolLM2-135M's shape, as its config.json gives it.
SMOLLM2 = attrs.evolve(
    TINY,
    parameters=134_515_008,
    context_length=8192,
    vocab_size=49152,
    hidden_size=576,
    intermediate_size=1536,
    num_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
)


def _lora(batch: int, length: int, **train: Any) -> Plan:
    return Plan(
        data=DataRecipe(sources=(SourceSelection(source="worked"),)),
        train=TrainConfig(method="lora", batch_size=batch, max_length=length, **train),
    )


def test_projected_memory_matches_measured_peaks_and_grows_with_the_batch() -> None:
    from ftdojo.agent.validator import RUNTIME_BYTES, projected_memory_bytes

    # Measured train-stage peaks of SmolLM2 LoRA rank 16, batch 8 x 128: 3,310-3,960 MiB.
    measured = projected_memory_bytes(_lora(8, 128), SMOLLM2)
    assert measured is not None
    assert 2_700 * 2**20 < measured < 4_500 * 2**20
    double = projected_memory_bytes(_lora(16, 128), SMOLLM2)
    assert double is not None
    assert double - RUNTIME_BYTES > 1.5 * (measured - RUNTIME_BYTES)  # activations dominate
    # bf16 autocast halves activations, the logits stay fp32.
    bf16 = projected_memory_bytes(_lora(8, 128, precision="bf16"), SMOLLM2)
    assert bf16 is not None
    assert bf16 < measured
    # Full fine-tuning keeps gradients and two Adam moments for every parameter.
    full = projected_memory_bytes(
        attrs.evolve(_lora(8, 128), train=TrainConfig(method="full", max_length=128)), SMOLLM2
    )
    assert full is not None
    assert full - measured > 12 * SMOLLM2.parameters * 0.9
    # Short records pad short batches: the longest record bounds the batch, not max_length.
    padded = projected_memory_bytes(_lora(8, 4096), SMOLLM2, longest_tokens=128)
    assert padded == pytest.approx(measured)
    # Without a parameter count there is nothing to project.
    assert projected_memory_bytes(_lora(8, 128), attrs.evolve(TINY, parameters=0)) is None


def test_a_plan_projected_past_the_memory_limit_is_rejected_statically() -> None:
    session = _Session(model=SMOLLM2, memory_limit_bytes=16 * 2**30)
    # The catalogue's records are short (3 fields of p99 80 tokens), so only a huge batch fails.
    assert not any("memory" in p for p in static_problems(_lora(8, 512), session))
    problems = static_problems(_lora(512, 512), session)
    assert any("projected peak memory" in p and "train.batch_size 512" in p for p in problems)
    session.memory_limit_bytes = None
    assert not any("memory" in p for p in static_problems(_lora(512, 512), session))


@attrs.define
class _SmokingSession(_Session):
    """A session whose smoke run reports the given loss curve."""

    losses: tuple[float, ...] = ()
    smokes: int = 0

    async def smoke(self, plan: Plan) -> Any:
        from ftdojo import ExecutionFeedback, Feedback, LossPoint, TrainingFeedback

        self.smokes += 1
        points = tuple(LossPoint(step=i + 1, loss=loss) for i, loss in enumerate(self.losses))
        return Feedback(
            trial_id="smoke001",
            execution=ExecutionFeedback(ok=True),
            training=TrainingFeedback(steps=len(points), epochs=0.1, tokens_trained=100, losses=points),
        )


@pytest.mark.parametrize(
    ("losses", "reason"),
    [
        ((4.0, 3.5, 3.1, 2.9), None),
        ((4.0, 4.3, 3.9, 4.1), None),  # wobbles on different batches are not a rise
        ((4.0, 9.0, 14.0, 30.0), "rose from 4.000 to 30.000"),
        ((4.0, 3.0, float("nan"), 2.0), "not finite"),
    ],
)
def test_the_smoke_run_must_show_a_finite_loss_that_does_not_climb(
    losses: tuple[float, ...], reason: str | None
) -> None:
    session = _SmokingSession(losses=losses)
    verdict = anyio.run(FailFastValidator(smoke="always").validate, _plan(learning_rate=0.5), session)
    assert session.smokes == 1
    if reason is None:
        assert verdict.ok, verdict.reasons
    else:
        assert not verdict.ok
        assert any(reason in r for r in verdict.reasons), verdict.reasons


def test_a_plan_projected_past_the_time_left_is_rejected() -> None:
    # 500 records x 120 tokens x 40 epochs = 2.4M tokens, at the tiny model's prior of
    # 7,500 tokens/s: ~460 s of training, ~650 s of trial, against 300 s left.
    session = _Session(budget_left=BudgetLeft(trials=3, seconds=300.0, train_tokens=None))
    problems = static_problems(_plan(epochs=40.0), session)
    assert any("only 300 s are left" in p for p in problems), problems
    assert not any("s are left" in p for p in static_problems(_plan(epochs=2.0), session))


@attrs.define
class _FailingSmokeSession(_Session):
    """A session whose smoke run fails in ``stage`` with ``kind``."""

    stage: Stage = Stage.BUILD
    kind: ErrorKind = ErrorKind.DATA

    async def smoke(self, plan: Plan) -> Feedback:
        return Feedback(
            trial_id="smoke001",
            execution=ExecutionFeedback(
                ok=False, failed_stage=self.stage, error_kind=self.kind, root_cause="DataError: no records"
            ),
        )


_NO_LIMIT = BudgetLeft(trials=3, seconds=None, train_tokens=None)
_TRANSFORM = "def transform(record):\n    return record\n"


@pytest.mark.parametrize(
    ("session", "plan", "kinds"),
    [
        (
            _Session(budget_left=BudgetLeft(trials=3, seconds=600.0, train_tokens=1000)),
            _plan(epochs=4.0),
            [FindingKind.TOKEN_BUDGET],
        ),
        (
            _Session(budget_left=BudgetLeft(trials=3, seconds=300.0, train_tokens=None)),
            _plan(epochs=40.0),
            [FindingKind.TIMEOUT],
        ),
        (
            _Session(model=SMOLLM2, memory_limit_bytes=16 * 2**30, budget_left=_NO_LIMIT),
            _lora(512, 512),
            [FindingKind.OUT_OF_MEMORY],
        ),
        (_Session(), _plan("nowhere", max_length=4096), [FindingKind.CONFIG_FAILURE] * 2),
        (
            _Session(),
            attrs.evolve(
                _plan(), data=DataRecipe(sources=(SourceSelection(source="worked"),), template="chat")
            ),
            [FindingKind.CONFIG_FAILURE],
        ),
        (_Session(), _lora(8, 128, lora_rank=1024), [FindingKind.CONFIG_FAILURE]),
        (
            _Session(),
            attrs.evolve(
                _plan(), data=DataRecipe(sources=(SourceSelection(source="worked"),), transform_code="def (")
            ),
            [FindingKind.DATA_FAILURE],
        ),
        # A build without a transform fails on its data only by keeping no records.
        (_FailingSmokeSession(), _plan(), [FindingKind.DATA_FAILURE, FindingKind.TRUNCATION]),
        (
            _FailingSmokeSession(),
            attrs.evolve(
                _plan(),
                data=DataRecipe(sources=(SourceSelection(source="worked"),), transform_code=_TRANSFORM),
            ),
            [FindingKind.DATA_FAILURE],
        ),
        (_FailingSmokeSession(stage=Stage.TRAIN, kind=ErrorKind.OOM), _plan(), [FindingKind.OUT_OF_MEMORY]),
        (_FailingSmokeSession(stage=Stage.TRAIN, kind=ErrorKind.DIVERGED), _plan(), [FindingKind.DIVERGENCE]),
        (_SmokingSession(losses=(4.0, 9.0, 14.0, 30.0)), _plan(), [FindingKind.DIVERGENCE]),
        (_SmokingSession(losses=(4.0, float("nan"))), _plan(), [FindingKind.DIVERGENCE]),
    ],
)
def test_a_rejection_carries_typed_findings_that_survive_the_journal(
    session: _Session, plan: Plan, kinds: list[FindingKind]
) -> None:
    verdict = anyio.run(FailFastValidator(smoke="always").validate, plan, session)
    assert not verdict.ok
    assert [f.kind for f in verdict.findings] == kinds
    # Every finding's evidence is a reason a person reads.
    assert {f.evidence for f in verdict.findings} == set(verdict.reasons)
    assert all(f.action for f in verdict.findings)
    # A resumed run has only the reasons (Rejection); the findings read back are the same.
    journalled = Rejection(plan=plan, reasons=verdict.reasons, seconds=verdict.seconds)
    assert rejection_findings(journalled) == verdict.findings


def test_reasons_another_validator_wrote_read_back_as_no_findings() -> None:
    rejection = Rejection(
        plan=_plan(), reasons=("too many epochs", "smoke run failed in orbit (GRAVITY): x"), seconds=0.0
    )
    assert rejection_findings(rejection) == ()
