"""Four runs at once in one Dojo share its worker limit and leave four intact journals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from ftdojo import Budget, DataRecipe, Dojo, ErrorKind, Plan, SourceSelection, TrainConfig
from ftdojo.errors import ConfigError
from ftdojo.sandbox import Job, JobOutcome, Limits, SandboxRunner
from ftdojo.testing import ScriptedAgent

pytestmark = pytest.mark.anyio


class CountingRunner(SandboxRunner):
    """Counts the jobs that run at the same moment."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most = 0

    async def run(self, job: Job, *, workspace: Path, limits: Limits, **kwargs: Any) -> JobOutcome:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            return await super().run(job, workspace=workspace, limits=limits, **kwargs)
        finally:
            self.running -= 1


def _failing_plan(run: int, trial: int) -> Plan:
    # Fails in the data build, before any heavy import: cheap, and marked per run.
    code = f"raise RuntimeError('run {run} trial {trial}')\n"
    return Plan(
        data=DataRecipe(
            sources=[SourceSelection(source="answers_only")], max_records=16, transform_code=code
        ),
        train=TrainConfig(method="full", max_steps=1),
    )


@pytest.mark.parametrize("max_workers", [1, 2])
async def test_four_runs_at_once_share_the_worker_limit(
    ftdojo_home: Path, tmp_path: Path, max_workers: int
) -> None:
    runner = CountingRunner()
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny", runner=runner, max_workers=max_workers)
    agents = {run: ScriptedAgent([_failing_plan(run, 1), _failing_plan(run, 2)]) for run in range(4)}
    results: dict[int, Any] = {}

    async def one(run: int) -> None:
        results[run] = await dojo.run("math", agents[run], budget=Budget(max_trials=2), run_id=f"load-{run}")

    async with anyio.create_task_group() as tg:
        for run in range(4):
            tg.start_soon(one, run)

    assert runner.most == max_workers
    for run in range(4):
        feedback = agents[run].feedback
        assert [f.execution.error_kind for f in feedback] == [ErrorKind.DATA, ErrorKind.DATA]
        # Each run saw its own recipes' errors, not another run's.
        assert [f"run {run} trial {t}" in f.execution.root_cause for t, f in enumerate(feedback, 1)] == [
            True,
            True,
        ]
        records = [
            json.loads(line) for line in (tmp_path / f"load-{run}" / "journal.jsonl").read_text().splitlines()
        ]
        assert [r["kind"] for r in records] == ["run_started", "trial", "trial", "run_finished"]
        assert results[run].run_id == f"load-{run}"


def test_max_workers_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_workers"):
        Dojo(home=tmp_path, max_workers=0)
