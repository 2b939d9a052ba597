"""Untrusted mode: an agent in a sandboxed process of its own, the session over a pipe.

An honest agent runs through the proxy as it would in-process; each attacking agent is
stopped at its first attempt, the attempt is recorded in the run, and what finished
before it stays.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import ftdojo.metrics
from ftdojo import Budget, Dojo
from ftdojo.errors import AgentError
from ftdojo.sandbox.isolation import detect_isolation
from ftdojo.sandbox.untrusted import UntrustedAgent
from ftdojo.tasks.registry import get_task

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        not detect_isolation().complete, reason="needs full isolation: " + detect_isolation().describe()
    ),
]

HERE = Path(__file__).parent


def _agent(name: str, **kwargs: str) -> UntrustedAgent:
    return UntrustedAgent(f"untrusted_agents:{name}", kwargs=kwargs, python_path=[HERE])


async def test_each_attacking_agent_is_stopped_and_recorded(ftdojo_home: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    dojo = Dojo(home=ftdojo_home, runs_dir=runs, model="tiny", threads=2, strict_isolation=True)
    await dojo._prepare("math", None)  # writes the private splits the attacks aim at
    split = ftdojo_home / "private" / get_task("math").version() / "test.jsonl"
    metric = next((Path(ftdojo.metrics.__file__).parent / "accuracy").glob("*.py"))
    attacks = {
        "read the test split": ("read", str(split), "read_hidden"),
        "read another run's journal": ("read", str(runs / "bench-0" / "journal.jsonl"), "read_hidden"),
        "read the Dojo's environment": ("proc", str(os.getpid()), "proc_snoop"),
        "edit the metric": ("write", str(metric), "write_outside"),
        "open a socket": ("connect", "", "network"),
        "start a process": ("spawn", str(split), "spawn"),
        "garble the session channel": ("garble", "", "protocol"),
    }
    (runs / "bench-0").mkdir(parents=True)
    (runs / "bench-0" / "journal.jsonl").write_text('{"kind": "run_started"}\n')
    succeeded = []
    for number, (name, (attack, target, kind)) in enumerate(attacks.items()):
        result = await dojo.run(
            "math",
            _agent("Attacker", attack=attack, target=target),
            budget=Budget(max_trials=1),
            run_id=f"a{number}",
        )
        kinds = {v.kind for v in result.violations}
        if kind not in kinds or result.trials or "agent failed" not in result.stop_reason:
            succeeded.append((name, kinds, result.stop_reason[:200], len(result.trials)))
    print(f"agent attacks tried: {len(attacks)}, attacks that succeeded: {len(succeeded)}")
    assert succeeded == []


async def test_an_agent_runs_through_the_proxy_and_an_attack_after_a_trial_keeps_the_trial(
    ftdojo_home: Path, tmp_path: Path
) -> None:
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny", threads=2)
    split = ftdojo_home / "private" / get_task("math").version() / "test.jsonl"
    result = await dojo.run(
        "math", _agent("Honest", then="read", target=str(split)), budget=Budget(max_trials=2, max_seconds=900)
    )

    # What the agent did through the proxy: read raw data, submit, annotate, choose.
    assert [t.trial_id for t in result.trials] == ["t001"]
    assert result.trials[0].feedback.ok, result.trials[0].feedback.execution.root_cause
    assert result.annotations == {"t001": {"note": {"ok": True}}}
    assert result.final_trial_id == "t001"
    assert result.test_score is not None
    # Then it reached for the test split: stopped, recorded, the trial kept.
    assert [v.kind for v in result.violations] == ["read_hidden"]
    assert "sandbox violation" in result.stop_reason


def test_an_untrusted_agent_needs_an_import_path() -> None:
    with pytest.raises(AgentError, match=r"package\.module:factory"):
        UntrustedAgent("not-a-path")
    with pytest.raises(AgentError, match="JSON data"):
        UntrustedAgent("a.b:c", kwargs={"x": object()})


def test_an_untrusted_agent_from_an_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    declared = [EntryPoint(name="mine", value="my_pkg.agents:Mine", group="ftdojo.agents")]
    monkeypatch.setattr(
        "importlib.metadata.entry_points", lambda group=None: [e for e in declared if e.group == group]
    )
    agent = UntrustedAgent.from_entry_point("mine", allow_network=True)
    assert agent.entry == "my_pkg.agents:Mine"
    assert agent.allow_network
    with pytest.raises(AgentError, match=r"no agent 'theirs'.*known: \['mine'\]"):
        UntrustedAgent.from_entry_point("theirs")


async def test_the_agents_process_has_a_memory_limit(ftdojo_home: Path, tmp_path: Path) -> None:
    from ftdojo.sandbox import Limits

    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny")
    agent = UntrustedAgent(
        "untrusted_agents:Attacker",
        kwargs={"attack": "hoard"},
        python_path=[HERE],
        limits=Limits(memory_bytes=2 * 2**30),
    )
    result = await dojo.run("math", agent, budget=Budget(max_trials=1))

    assert "MemoryError" in result.stop_reason
    assert result.trials == ()
