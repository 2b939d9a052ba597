"""Kill the Dojo itself with SIGKILL mid-run, then resume: nothing finished is lost.

The run goes on in a child process; once its first trial is in the journal the whole
process is killed, a torn half-line is left at the journal's end (as a death mid-write
would), and the run is resumed from its folder. The resumed run must keep the finished
trial as it was, count no trial twice, and end where an uninterrupted run of the same
plans ends (training on the CPU with fixed seeds is deterministic).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio.to_thread
import pytest

from ftdojo import Budget, DataRecipe, Dojo, Plan, Session, SourceSelection, TrainConfig
from ftdojo.errors import ConfigError, JournalError
from ftdojo.serialization import to_json

pytestmark = pytest.mark.anyio

TRAIN = TrainConfig(method="full", learning_rate=1e-3, max_steps=2, batch_size=8, max_length=256)
PLANS = [
    Plan(data=DataRecipe(sources=[SourceSelection(source="worked_solutions")], max_records=32), train=TRAIN),
    Plan(
        data=DataRecipe(sources=[SourceSelection(source="answers_only")], max_records=32),
        train=TrainConfig(method="full", learning_rate=5e-4, max_steps=2, batch_size=8, max_length=256),
    ),
]


class PlansInOrder:
    """Submits the plans the run has not tried yet: resumes where the journal left off."""

    async def run(self, session: Session) -> None:
        for plan in PLANS[len(session.history) :]:
            await session.submit(plan)


SCRIPT = """
import anyio, sys
sys.path.insert(0, {tests!r})
from test_crash_resume import PlansInOrder
from ftdojo import Budget, Dojo

async def main():
    dojo = Dojo(home={home!r}, runs_dir={runs!r}, model="tiny", threads=1)
    await dojo.run("math", PlansInOrder(), budget=Budget(max_trials=2, max_seconds=900), run_id="crashed")

anyio.run(main)
"""


def _trials_in(journal: Path) -> int:
    return journal.read_text().count('"kind": "trial"') if journal.exists() else 0


def _run_until_one_trial_then_kill(script: Path, journal: Path) -> None:
    child = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    deadline = time.monotonic() + 600
    while _trials_in(journal) < 1:
        assert child.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no trial reached the journal in time"
        time.sleep(0.2)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()


async def test_a_killed_dojo_resumes_without_losing_or_repeating_a_trial(
    ftdojo_home: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    journal = runs / "crashed" / "journal.jsonl"
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(SCRIPT).format(
            tests=str(Path(__file__).parent), home=str(ftdojo_home), runs=str(runs)
        )
    )
    await anyio.to_thread.run_sync(_run_until_one_trial_then_kill, script, journal)
    with journal.open("a") as handle:
        handle.write('{"kind": "trial", "trial": {"trial_id": "t0')  # a torn last write

    dojo = Dojo(home=ftdojo_home, runs_dir=runs, model="tiny", threads=1)
    resumed = await dojo.resume(runs / "crashed", PlansInOrder())

    assert [t.trial_id for t in resumed.trials] == ["t001", "t002"]
    assert _trials_in(journal) == 2  # the torn record was cut off, no trial counted twice
    # The journal reads back whole, so the run can be resumed again.
    again = await dojo.resume(runs / "crashed", PlansInOrder())
    assert [t.trial_id for t in again.trials] == ["t001", "t002"]
    assert resumed.usage.trials == 2

    straight = await Dojo(home=ftdojo_home, runs_dir=tmp_path / "straight", model="tiny", threads=1).run(
        "math", PlansInOrder(), budget=Budget(max_trials=2, max_seconds=900)
    )
    assert [t.feedback.score for t in resumed.trials] == [t.feedback.score for t in straight.trials]
    losses = [to_json(t.feedback.training.losses) for t in resumed.trials if t.feedback.training]
    assert losses == [to_json(t.feedback.training.losses) for t in straight.trials if t.feedback.training]
    assert resumed.final_trial_id == straight.final_trial_id
    assert resumed.test_score == straight.test_score


async def test_resume_needs_a_run_of_this_dojo(tmp_path: Path) -> None:
    dojo = Dojo(home=tmp_path / "home", runs_dir=tmp_path / "runs")
    with pytest.raises(ConfigError, match="runs folder"):
        await dojo.resume(tmp_path / "elsewhere" / "r1", PlansInOrder())
    with pytest.raises(JournalError, match="nothing to resume"):
        await dojo.resume(tmp_path / "runs" / "r1", PlansInOrder())
