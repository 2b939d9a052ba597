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
    # The benchmark's report links to the report the run wrote when it finished.
    assert "href='runs/bench-math-naive-s0/report.html'" in (out / "report.html").read_text()
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


def test_resume_continues_a_run_from_its_folder(ftdojo_home: Path, tmp_path: Path) -> None:
    import anyio

    from ftdojo import Budget, DataRecipe, Dojo, Plan, SourceSelection
    from ftdojo.testing import ScriptedAgent

    broken = Plan(
        data=DataRecipe(
            sources=[SourceSelection(source="answers_only")], transform_code="raise ValueError('x')"
        )
    )
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny")
    run = anyio.run(
        lambda: dojo.run("math", ScriptedAgent([broken]), budget=Budget(max_trials=1), run_id="r1")
    )
    assert [t.trial_id for t in run.trials] == ["t001"]

    # The budget (one trial) comes from the journal: FT-Agent finds it spent and stops.
    result = runner.invoke(app, ["resume", str(tmp_path / "r1"), "--home", str(ftdojo_home)])
    assert result.exit_code == 0, result.output
    assert "r1: 1 trials; final none" in result.output
    assert (tmp_path / "r1" / "journal.jsonl").read_text().count('"kind": "run_resumed"') == 1

    missing = runner.invoke(app, ["resume", str(tmp_path / "nope"), "--home", str(ftdojo_home)])
    assert missing.exit_code == 2
    assert "nothing to resume" in missing.output


def test_config_file_values_are_defaults_below_environment_and_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unknown planner fails before any run, naming the value that won.
    config = tmp_path / "ftdojo.toml"
    config.write_text(f'[run]\nplanner = "from-file"\nruns-dir = "{tmp_path}"\n')
    monkeypatch.delenv("FTDOJO_PLANNER", raising=False)
    result = runner.invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert "from-file" in result.output
    monkeypatch.setenv("FTDOJO_PLANNER", "from-env")
    result = runner.invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert "from-env" in result.output
    result = runner.invoke(app, ["run", "--config", str(config), "--planner", "from-flag"])
    assert result.exit_code == 2
    assert "from-flag" in result.output


def test_a_bad_config_file_is_named_with_its_problem(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("trials = \n")
    result = runner.invoke(app, ["run", "--config", str(broken)])
    assert result.exit_code == 2
    assert "broken.toml" in result.output
    assert "not valid TOML" in result.output
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("trails = 3\n")
    result = runner.invoke(app, ["run", "--config", str(unknown)])
    assert result.exit_code == 2
    assert "'trails'" in result.output
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2
    assert "missing.toml" in result.output


def test_run_from_a_config_file(ftdojo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow puts a new experiment's artifacts in ./mlruns
    config = tmp_path / "run.toml"
    runs = tmp_path / "runs"
    config.write_text(
        "\n".join(
            [
                'task = "math"',
                'model = "tiny"',
                "trials = 1",
                "time = 240",
                "tokens = 4000",
                "baseline = false",
                f'runs_dir = "{runs}"',
                f'home = "{ftdojo_home}"',
                f'mlflow = "sqlite:///{tmp_path / "mlflow.db"}"',
            ]
        )
    )
    result = runner.invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "math · tiny" in result.output
    assert "report: " in result.output
    # --mlflow (here from the file) logged the run when it ended: a parent and its trial.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "ftdojo"]
    logged = client.search_runs([experiment.experiment_id])
    parents = [r for r in logged if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    assert len(logged) == 2
    (run_dir,) = runs.iterdir()
    started = (run_dir / "journal.jsonl").read_text().splitlines()[0]
    assert '"max_trials": 1' in started
    assert '"max_train_tokens": 4000' in started
