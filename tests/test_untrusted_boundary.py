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
def test_the_opt_out_is_explicit_and_logged(caplog: pytest.LogCaptureFixture) -> None:
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
