"""An untrusted agent runs only behind a filesystem view, unless the user opts out by name."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from typer.testing import CliRunner

import ftdojo.sandbox.untrusted as untrusted
from ftdojo import Budget, Dojo
from ftdojo.cli import app
from ftdojo.errors import IsolationError
from ftdojo.sandbox.isolation import detect_isolation
from ftdojo.sandbox.untrusted import UntrustedAgent


@pytest.fixture
def no_filesystem_view(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as one without bubblewrap: the agent's process would see every file."""
    real = detect_isolation()
    blind = attrs.evolve(real, filesystem_view=False, backend="unshare")
    monkeypatch.setattr(untrusted, "detect_isolation", lambda **_: blind)


@pytest.mark.usefixtures("no_filesystem_view")
@pytest.mark.anyio
async def test_without_a_view_the_run_is_refused_before_anything_is_written(
    ftdojo_home: Path, tmp_path: Path
) -> None:
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path / "runs", model="tiny")
    agent = UntrustedAgent("some.package:factory")
    with pytest.raises(IsolationError, match="unsafe_without_filesystem_view=True"):
        await dojo.run("math", agent, budget=Budget(max_trials=1))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.usefixtures("no_filesystem_view")
def test_only_the_named_opt_out_lets_it_run_without_a_view() -> None:
    UntrustedAgent("some.package:factory", unsafe_without_filesystem_view=True).check_isolation()
    with pytest.raises(IsolationError, match="bubblewrap"):
        UntrustedAgent("some.package:factory").check_isolation()


def test_with_a_view_the_check_passes() -> None:
    if not detect_isolation().filesystem_view:
        pytest.skip("this machine gives no filesystem view: " + detect_isolation().describe())
    UntrustedAgent("some.package:factory").check_isolation()


@pytest.mark.usefixtures("no_filesystem_view")
def test_the_bench_refuses_an_outside_agent_without_a_view(tmp_path: Path) -> None:
    args = ["bench", "--tasks", "math", "--agents", "some.package:factory", "--seeds", "0"]
    args += ["--model", "tiny", "--out", str(tmp_path / "bench"), "--home", str(tmp_path / "home")]
    args += ["--no-base", "--trials", "1"]
    result = CliRunner().invoke(app, args)
    assert "unsafe_without_filesystem_view" in result.output or "unsafe-without-filesystem-view" in (
        result.output
    ), result.output


class _GrantCollector:
    """A hosted agent that keeps what the Dojo handed it beyond the session, and submits nothing."""

    def __init__(self) -> None:
        self.grants: list[object] = []

    def check_isolation(self) -> None:
        pass

    async def run(self, session: object) -> None:  # the Agent protocol; never called for a hosted agent
        raise AssertionError("a hosted agent is run through run_hosted")

    async def run_hosted(self, session: object, grant: object) -> None:
        self.grants.append(grant)


@pytest.mark.anyio
async def test_the_grant_a_hosted_agent_gets_holds_nothing_of_the_evaluation_splits(
    ftdojo_home: Path, tmp_path: Path
) -> None:
    # A new door the redesign opened: the Dojo hands a hosted agent a grant of its own.
    # Whatever claims to be hosted gets one, so it must carry no path to, or item of, a split.
    import json

    from ftdojo.sandbox.untrusted import AgentHostGrant
    from ftdojo.serialization import to_json

    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path / "runs", model="tiny")
    agent = _GrantCollector()
    result = await dojo.run("math", agent, budget=Budget(max_trials=1))
    assert result.trials == ()
    (grant,) = agent.grants
    assert isinstance(grant, AgentHostGrant)
    private = ftdojo_home / "private"
    # Everything it carries, as text (the view names the private area only to hide it).
    text = to_json({"workspace": str(grant.workspace), "view": grant.view, "sources": grant.sources})
    assert str(private) in grant.view.hidden  # the private area does not exist in its view
    assert not any(p.startswith(str(private)) for p in (*grant.view.readable, *grant.view.writable))
    split = next(private.rglob("test.jsonl"))
    prompts = [json.loads(line)["prompt"] for line in split.read_text().splitlines()]
    assert not any(p[:60] in text for p in prompts)
    assert all(Path(s["path"]).is_relative_to(ftdojo_home / "data") for s in grant.sources.values())
