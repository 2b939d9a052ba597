"""Events of a running Dojo: per-run handlers, the async iterator, run_sync, bound log ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import structlog

from ftdojo import Budget, DataRecipe, Dojo, Plan, RunEvents, Session, SourceSelection, TrainConfig
from ftdojo.logs import configure_logging
from ftdojo.testing import ScriptedAgent

pytestmark = pytest.mark.anyio

PLAN = Plan(
    data=DataRecipe(sources=[SourceSelection(source="worked_solutions")], max_records=32),
    train=TrainConfig(method="full", learning_rate=1e-3, max_steps=4, batch_size=8, max_length=256),
)


class Idle:
    """An agent that runs no trial: a run of it costs no sandboxed job."""

    async def run(self, session: Session) -> None:
        await anyio.lowlevel.checkpoint()


@pytest.fixture
def json_logs() -> Any:
    saved = structlog.get_config()
    configure_logging(json=True, level="info")
    yield
    structlog.configure(**saved)


async def test_stream_yields_a_runs_events_in_order_and_its_result(
    ftdojo_home: Path, tmp_path: Path, json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny", threads=2)
    seen: list[dict[str, Any]] = []
    async with dojo.stream("math", ScriptedAgent([PLAN]), budget=Budget(max_trials=1)) as events:
        assert isinstance(events, RunEvents)
        assert events.result is None
        async for event in events:
            seen.append(event)
    result = events.result
    assert result is not None
    assert len(result.trials) == 1
    types = [e["type"] for e in seen]
    assert types[0] == "run_started"
    assert types[-1] == "run_finished"
    assert types.index("trial_started") < types.index("trial_finished")
    assert {e["run_id"] for e in seen} == {result.run_id}
    # The jobs' own events come through with the trial and stage they belong to.
    losses = [e for e in seen if e["type"] == "loss"]
    assert losses
    assert {(e["trial_id"], e["stage"]) for e in losses} == {("t001", "train")}
    assert [e["step"] for e in losses] == [p.step for p in result.trials[0].feedback.training.losses]
    finished = next(e for e in seen if e["type"] == "trial_finished")
    assert finished["score"] == result.trials[0].feedback.score
    # Every log line of the trial names the run and the trial.
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    started = [line for line in lines if line.get("event") == "trial started"]
    assert started
    assert started[0]["run_id"] == result.run_id
    assert started[0]["trial_id"] == "t001"


async def test_each_run_hears_only_its_own_events(ftdojo_home: Path, tmp_path: Path) -> None:
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny")
    everything: list[dict[str, Any]] = []
    dojo.add_event_handler(everything.append)
    heard: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    async with anyio.create_task_group() as group:
        for name in heard:
            group.start_soon(
                lambda name=name: dojo.run("math", Idle(), run_id=f"run-{name}", on_event=heard[name].append)
            )
    for name, events in heard.items():
        assert [e["type"] for e in events] == ["run_started", "run_finished"]
        assert {e["run_id"] for e in events} == {f"run-{name}"}
    assert sorted(e["run_id"] for e in everything) == ["run-a", "run-a", "run-b", "run-b"]
    # Handlers of finished runs are dropped.
    assert dojo._run_handlers == {}


async def test_a_listener_that_stops_reading_does_not_stop_the_run(ftdojo_home: Path, tmp_path: Path) -> None:
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny")
    async with dojo.stream("math", Idle(), run_id="early-exit") as events:
        async for event in events:
            assert event["type"] == "run_started"
            break
    assert events.result is not None
    assert events.result.run_id == "early-exit"
    assert (tmp_path / "early-exit" / "result.json").is_file()


async def test_run_sync_works_inside_a_running_event_loop(ftdojo_home: Path, tmp_path: Path) -> None:
    # As in a notebook cell: an event loop already runs in this thread.
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny")
    result = dojo.run_sync("math", Idle(), run_id="from-a-notebook")
    assert result.run_id == "from-a-notebook"
    assert result.trials == ()


def test_run_sync_works_without_an_event_loop(ftdojo_home: Path, tmp_path: Path) -> None:
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny")
    assert dojo.run_sync("math", Idle(), run_id="from-a-script").run_id == "from-a-script"


async def test_a_handler_that_raises_does_not_fail_the_run(ftdojo_home: Path, tmp_path: Path) -> None:
    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("listener bug")

    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny", on_event=broken)
    heard: list[dict[str, Any]] = []
    result = await dojo.run("math", Idle(), run_id="listened", on_event=heard.append)
    assert result.stop_reason == "agent finished"
    assert [e["type"] for e in heard] == ["run_started", "run_finished"]
