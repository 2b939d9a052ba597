from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ftdojo import __version__
from ftdojo.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_tasks_lists_the_math_task() -> None:
    result = runner.invoke(app, ["tasks"])
    assert result.exit_code == 0
    assert "math" in result.output
    assert "accuracy" in result.output


def test_unknown_task_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "no-such-task", "--home", str(tmp_path), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "no task named 'no-such-task'" in result.output


def test_baseline_scores_the_untouched_model(ftdojo_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(
        app, ["baseline", "math", "--model", "tiny", "--home", str(ftdojo_home), "--threads", "2"]
    )
    assert result.exit_code == 0, result.output
    # The randomly initialised tiny model cannot answer in the required format.
    assert "math · tiny: validation 0.000  test 0.000" in result.output
