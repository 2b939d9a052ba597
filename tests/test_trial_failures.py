"""A crash, a hang, an out-of-memory kill and a NaN loss come back as Feedback; the run goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ftdojo import (
    Budget,
    DataRecipe,
    Dojo,
    ErrorKind,
    Plan,
    RunResult,
    SourceSelection,
    Stage,
    StageLimits,
    TrainConfig,
)
from ftdojo.sandbox import Limits
from ftdojo.serialization import from_json, to_json
from ftdojo.testing import ScriptedAgent

pytestmark = pytest.mark.anyio

SMALL = TrainConfig(method="full", learning_rate=1e-3, max_steps=3, batch_size=8, max_length=256)


def _plan(transform: str | None = None, train: TrainConfig = SMALL) -> Plan:
    return Plan(
        data=DataRecipe(
            sources=[SourceSelection(source="worked_solutions")], max_records=48, transform_code=transform
        ),
        train=train,
    )


CRASH = "def transform(record):\n    raise RuntimeError('recipe bug: no such field')\n"
SEGFAULT = "import os, signal\ndef transform(record):\n    os.kill(os.getpid(), signal.SIGSEGV)\n"
HANG = "def transform(record):\n    while True:\n        pass\n"
OOM = "def transform(record):\n    blob = bytearray(64 * 2**30)\n    return record\n"
LORA = TrainConfig(method="lora", lora_rank=4, learning_rate=1e-3, max_steps=3, batch_size=8, max_length=256)
DIVERGE = TrainConfig(
    method="full", learning_rate=1e30, max_steps=4, batch_size=8, max_length=256, max_grad_norm=1e9
)


async def test_failures_become_feedback_and_the_run_goes_on(ftdojo_home: Path, tmp_path: Path) -> None:
    limits = StageLimits(
        build=Limits(wall_seconds=45, memory_bytes=4 * 2**30, grace_seconds=2),
        train=Limits(wall_seconds=300, memory_bytes=8 * 2**30),
    )
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny", limits=limits, threads=2)
    agent = ScriptedAgent(
        [_plan(CRASH), _plan(SEGFAULT), _plan(HANG), _plan(OOM), _plan(train=DIVERGE), _plan(train=LORA)]
    )
    result = await dojo.run("math", agent, budget=Budget(max_trials=6, max_seconds=900))

    kinds = [(f.execution.failed_stage, f.execution.error_kind) for f in agent.feedback]
    assert kinds == [
        (Stage.BUILD, ErrorKind.DATA),
        (Stage.BUILD, ErrorKind.ENV),
        (Stage.BUILD, ErrorKind.TIMEOUT),
        (Stage.BUILD, ErrorKind.OOM),
        (Stage.TRAIN, ErrorKind.DIVERGED),
        (None, None),
    ]
    crash, _segfault, _hang, oom, diverged, ok = agent.feedback
    assert "recipe bug: no such field" in crash.execution.root_cause
    assert "MemoryError" in oom.execution.root_cause
    assert diverged.training is not None
    assert diverged.training.losses
    assert ok.ok
    assert ok.evaluation is not None
    # Every trial, failed or not, is in the result and the journal.
    assert [t.trial_id for t in result.trials] == ["t001", "t002", "t003", "t004", "t005", "t006"]
    assert result.final_trial_id == "t006"
    journal = (Path(result.run_dir) / "journal.jsonl").read_text()
    assert journal.count('"kind": "trial"') == 6
    summary = from_json((Path(result.run_dir) / "result.json").read_text(), RunResult)
    assert summary.final_trial_id == "t006"
    assert summary.test_score == result.test_score

    # Resume the same run: finished trials come back from the journal, the budget
    # counts them, and the next trial gets the next id.
    resumed_agent = ScriptedAgent([_plan(), _plan()])
    resumed = await dojo.run(
        "math", resumed_agent, budget=Budget(max_trials=7, max_seconds=900), run_id=result.run_id
    )
    assert [t.trial_id for t in resumed.trials] == [*(t.trial_id for t in result.trials), "t007"]
    assert len(resumed_agent.feedback) == 1  # the second plan hit the trial budget
    # Compared as JSON: the diverged trial's NaN loss is not equal to itself.
    assert to_json(resumed.trials[:6]) == to_json(result.trials)
    assert (Path(result.run_dir) / "journal.jsonl").read_text().count('"kind": "trial"') == 7

    # Artifacts are safetensors only: a LoRA adapter for t006, a full model for t007.
    trials_dir = Path(result.run_dir) / "trials"
    assert (trials_dir / "t006" / "model" / "adapter_model.safetensors").is_file()
    assert (trials_dir / "t007" / "model" / "model.safetensors").is_file()
    pickles = [p for p in trials_dir.rglob("*") if p.suffix in {".bin", ".pt", ".pth", ".pkl", ".ckpt"}]
    assert pickles == []

    # The loss is taken on the response only: labels mask a prompt prefix, then copy the ids.
    data_file = trials_dir / "t007" / "data" / "train.jsonl"
    rows = [json.loads(line) for line in data_file.read_text().splitlines()]
    assert len(rows) == 48
    for row in rows:
        masked = next(i for i, label in enumerate(row["labels"]) if label != -100)
        assert 0 < masked < len(row["input_ids"])
        assert row["labels"][masked:] == row["input_ids"][masked:]


class _KilledTrainerDojo(Dojo):
    train_entry = "ftdojo.testing.jobs:compromised_trainer"


async def test_a_trainer_killed_by_sigkill_and_a_full_disk_are_feedback(
    ftdojo_home: Path, tmp_path: Path
) -> None:
    fill = (
        "import os\n"
        "with open('filler.bin', 'wb') as handle:\n"
        "    for _ in range(400):\n"
        "        handle.write(os.urandom(2**20)); handle.flush(); os.fsync(handle.fileno())\n"
        "def transform(record):\n    return record\n"
    )
    limits = StageLimits(build=Limits(wall_seconds=120, disk_bytes=32 * 2**20))
    dojo = _KilledTrainerDojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny", limits=limits, threads=2)
    killed = TrainConfig(method="full", max_steps=1, seed=6)
    honest_copy = TrainConfig(method="full", max_steps=1, seed=5)
    agent = ScriptedAgent([_plan(fill), _plan(train=killed), _plan(train=honest_copy)])
    result = await dojo.run("math", agent, budget=Budget(max_trials=3, max_seconds=900))

    full_disk, sigkill, ok = agent.feedback
    assert (full_disk.execution.failed_stage, full_disk.execution.error_kind) == (Stage.BUILD, ErrorKind.DISK)
    assert "disk quota" in full_disk.execution.root_cause
    assert (sigkill.execution.failed_stage, sigkill.execution.error_kind) == (Stage.TRAIN, ErrorKind.OOM)
    assert "SIGKILL" in sigkill.execution.root_cause
    assert ok.ok, ok.execution.root_cause
    assert result.final_trial_id == ok.trial_id
    assert (Path(result.run_dir) / "journal.jsonl").read_text().count('"kind": "trial"') == 3


async def test_a_smoke_run_trains_two_steps_of_one_micro_batch(ftdojo_home: Path, tmp_path: Path) -> None:
    # Gradient accumulation would multiply the smoke's cost without changing its peak
    # memory (set by one micro-batch and the optimiser state), so the smoke drops it.
    accumulating = TrainConfig(method="full", learning_rate=1e-3, batch_size=4, grad_accum=4, max_length=256)
    agent = ScriptedAgent([_plan(train=accumulating)], smoke_first=True)
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny", threads=2)
    result = await dojo.run("math", agent, budget=Budget(max_trials=1, max_seconds=600))
    (smoke,) = agent.smoke_feedback
    assert smoke.ok, smoke.execution.root_cause
    assert smoke.training is not None
    assert smoke.training.steps == StageLimits().smoke_steps == 2
    assert [p.step for p in smoke.training.losses] == [1, 2]
    # Two micro-batches of 4 records, each at most 256 tokens.
    assert 0 < smoke.training.tokens_trained <= 2 * 4 * 256
    # The trial itself keeps its accumulation: each of its steps is 4 micro-batches.
    (trial,) = result.trials
    assert trial.feedback.training is not None
    assert trial.feedback.training.tokens_trained > 4 * smoke.training.tokens_trained / 2


async def test_the_smoke_run_trains_at_the_peak_rate_and_a_rate_far_too_high_is_rejected(
    ftdojo_home: Path, tmp_path: Path
) -> None:
    from ftdojo.agent import FailFastValidator
    from ftdojo.agent.protocols import Verdict

    sane = _plan(train=TrainConfig(method="full", learning_rate=1e-3, batch_size=8, max_length=256))
    wild = _plan(train=TrainConfig(method="full", learning_rate=3.0, batch_size=8, max_length=256))
    verdicts: list[Verdict] = []

    class Validating:
        async def run(self, session: Any) -> None:
            for plan in (sane, wild):
                verdicts.append(await FailFastValidator(smoke="always").validate(plan, session))

    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny", threads=2)
    await dojo.run("math", Validating(), budget=Budget(max_trials=1, max_seconds=600))
    kept, rejected = verdicts
    assert kept.ok, kept.reasons
    # No warm-up in a smoke run: its first step already trains at the plan's rate.
    assert kept.smoke is not None
    assert kept.smoke.training is not None
    assert [p.learning_rate for p in kept.smoke.training.losses] == [1e-3, 1e-3]
    assert not rejected.ok
    assert any("learning_rate 3 is likely too high" in reason for reason in rejected.reasons), (
        rejected.reasons
    )
