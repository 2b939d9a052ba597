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


def test_bench_runs_each_cell_once_and_prints_the_table(ftdojo_home: Path, tmp_path: Path) -> None:
    """A real one-cell benchmark (naive fine-tuning of the tiny model), then the same command again."""
    out = tmp_path / "bench"
    args = ["bench", "--tasks", "math", "--agents", "naive", "--seeds", "0", "--out", str(out)]
    args += ["--model", "tiny", "--trials", "1", "--tokens", "3000", "--no-base", "--home", str(ftdojo_home)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "| task | naive val | naive test |" in first.output
    assert "| math |" in first.output
    cells = (out / "cells.jsonl").read_text().splitlines()
    assert len(cells) == 1
    assert (out / "runs" / "bench-math-naive-s0" / "journal.jsonl").is_file()
    journal = (out / "runs" / "bench-math-naive-s0" / "journal.jsonl").read_text()
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert (out / "cells.jsonl").read_text().splitlines() == cells
    assert (out / "runs" / "bench-math-naive-s0" / "journal.jsonl").read_text() == journal


def test_bench_names_an_unknown_agent(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "--agents", "ft-agent,oracle", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "oracle" in result.output


def test_run_names_an_unknown_planner_and_a_missing_llm_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(app, ["run", "math", "--planner", "oracle", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "oracle" in result.output
    for name in ("FTDOJO_LLM_BASE_URL", "FTDOJO_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["run", "math", "--planner", "llm", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "FTDOJO_LLM_BASE_URL" in result.output
