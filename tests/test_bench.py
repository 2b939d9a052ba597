"""`ftdojo bench`: cells, the paper-style table, and resuming without redoing finished cells.

The Dojo here is a stand-in that returns scripted scores instantly: what is under test is
the benchmark's bookkeeping, not training (the end-to-end tests cover a real run).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftdojo import Budget
from ftdojo.bench import BenchCell, BenchResult, builtin_agents, read_cells, run_bench
from ftdojo.errors import ConfigError, JournalError, ModelError
from ftdojo.report import write_bench_report
from ftdojo.results import BaselineResult, BudgetUsage, RunResult


class _FakeDojo:
    """Scores from ``scores[(task, agent_kind, seed)]``; records every call."""

    def __init__(
        self, scores: dict[tuple[str, str, int], float], fail: frozenset[tuple[str, str, int]] = frozenset()
    ) -> None:
        self.scores = scores
        self.fail = fail
        self.runs: list[str] = []
        self.baselines: list[str] = []

    async def baseline(self, task: str, *, model: str | None = None) -> BaselineResult:
        self.baselines.append(task)
        return BaselineResult(task=task, model="tiny", validation_score=0.0, test_score=0.01)

    async def run(
        self, task: str, agent: Any, *, budget: Budget, model: str | None, run_id: str
    ) -> RunResult:
        self.runs.append(run_id)
        key = (task, agent.name, agent.seed)
        if key in self.fail:
            raise ModelError("the worker ran out of memory")
        score = self.scores[key]
        return RunResult(
            run_id=run_id,
            task=task,
            model="tiny",
            run_dir="/x",
            trials=(),
            final_trial_id="t001",
            validation_score=score + 0.05,
            test_score=score,
            usage=BudgetUsage(trials=1, seconds=1.0, train_tokens=10),
            stop_reason="budget",
        )


class _Named:
    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.seed = seed

    async def run(self, session: Any) -> None:  # pragma: no cover - the fake Dojo never calls it
        return


AGENTS = {"ft-agent": lambda seed: _Named("ft-agent", seed), "naive": lambda seed: _Named("naive", seed)}
SCORES = {
    ("math", "ft-agent", 0): 0.5,
    ("math", "ft-agent", 1): 0.7,
    ("math", "naive", 0): 0.2,
    ("math", "naive", 1): 0.2,
    ("chem_reaction", "ft-agent", 0): 0.1,
    ("chem_reaction", "ft-agent", 1): 0.1,
    ("chem_reaction", "naive", 0): 0.3,
    ("chem_reaction", "naive", 1): 0.1,
}


def _bench(dojo: _FakeDojo, out: Path, **kwargs: Any) -> BenchResult:
    options: dict[str, Any] = {
        "tasks": ["math", "chem_reaction"],
        "agents": AGENTS,
        "seeds": [0, 1],
        "budget": Budget(max_trials=2),
        "out_dir": out,
        **kwargs,
    }
    return anyio.run(lambda: run_bench(dojo, **options))  # type: ignore[arg-type]


def test_the_table_gives_mean_and_std_marks_the_best_and_counts_wins(tmp_path: Path) -> None:
    result = _bench(_FakeDojo(SCORES), tmp_path)
    rows = {(r.task, r.agent): r for r in result.rows()}
    math = rows["math", "ft-agent"]
    assert math.test_mean == pytest.approx(0.6)
    assert math.test_std == pytest.approx(0.1414, abs=1e-3)
    assert math.validation_mean == pytest.approx(0.65)
    assert math.best
    assert not rows["math", "naive"].best
    assert rows["chem_reaction", "naive"].best  # 0.2 against 0.1
    assert rows["math", "base"].test_mean == pytest.approx(0.01)
    assert result.wins() == {"base": 0, "ft-agent": 1, "naive": 1}
    table = (tmp_path / "bench.md").read_text()
    assert "| math | 0.000 ± 0.000 | 0.010 ± 0.000 | 0.650 ± 0.141 | **0.600 ± 0.141** |" in table
    assert table.splitlines()[len(result.tasks) + 2].startswith("| wins |")
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["wins"] == {"base": 0, "ft-agent": 1, "naive": 1}
    assert len(saved["cells"]) == 2 + 8
    # Its HTML report (written after the benchmark, as `ftdojo bench` does), with the same
    # best test mean in bold.
    write_bench_report(tmp_path)
    assert "<b>0.600 ± 0.141</b>" in (tmp_path / "report.html").read_text()


def test_a_second_run_over_the_same_folder_redoes_nothing(tmp_path: Path) -> None:
    first = _FakeDojo(SCORES)
    _bench(first, tmp_path)
    assert len(first.runs) == 8
    assert sorted(first.baselines) == ["chem_reaction", "math"]
    again = _FakeDojo(SCORES)
    result = _bench(again, tmp_path)
    assert again.runs == []
    assert again.baselines == []
    assert len(result.cells) == 10


def test_an_interrupted_benchmark_runs_only_the_missing_cells_and_tolerates_a_torn_line(
    tmp_path: Path,
) -> None:
    _bench(_FakeDojo(SCORES), tmp_path)
    path = tmp_path / "cells.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    # Killed while writing the 4th cell's line: three complete cells and a fragment.
    path.write_text("".join(lines[:3]) + lines[3][:25])
    dojo = _FakeDojo(SCORES)
    result = _bench(dojo, tmp_path)
    assert len(dojo.runs) + len(dojo.baselines) == 10 - 3
    assert len(read_cells(path)) == 10
    assert {c.key for c in result.cells} == {c.key for c in read_cells(path)}
    assert result.wins() == {"base": 0, "ft-agent": 1, "naive": 1}


def test_a_corrupt_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    _bench(_FakeDojo(SCORES), tmp_path)
    path = tmp_path / "cells.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = "{garbage\n"
    path.write_text("".join(lines))
    with pytest.raises(JournalError, match=r"cells\.jsonl:3"):
        _bench(_FakeDojo(SCORES), tmp_path)


def test_a_failed_run_is_recorded_scores_zero_and_the_benchmark_goes_on(tmp_path: Path) -> None:
    dojo = _FakeDojo(SCORES, fail=frozenset({("math", "ft-agent", 1)}))
    result = _bench(dojo, tmp_path)
    assert len(dojo.runs) == 8
    (failed,) = [c for c in result.cells if c.error]
    assert failed.key == ("math", "ft-agent", 1)
    assert "out of memory" in failed.error  # type: ignore[operator]
    row = next(r for r in result.rows() if r.task == "math" and r.agent == "ft-agent")
    assert row.failures == 1
    assert row.test_mean == pytest.approx(0.25)
    assert "(1 failed)" in (tmp_path / "bench.md").read_text()


def test_bad_arguments_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least one"):
        _bench(_FakeDojo(SCORES), tmp_path, seeds=[])
    with pytest.raises(ConfigError, match="base"):
        _bench(_FakeDojo(SCORES), tmp_path, agents={"base": AGENTS["naive"]})


def test_the_builtin_agents_are_seeded() -> None:
    agents = builtin_agents()
    assert set(agents) == {"ft-agent", "naive", "random", "tpe", "llm"}
    assert agents["random"](3).seed == 3  # type: ignore[attr-defined]
    assert agents["naive"](4).seed == 4  # type: ignore[attr-defined]
    assert agents["ft-agent"](5).planner.seed == 5  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None)
@given(
    scores=st.lists(
        st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
        min_size=1,
        max_size=4,
    )
)
def test_every_task_has_at_least_one_best_and_wins_add_up_to_tasks_at_least(
    scores: list[tuple[float, float, float]],
) -> None:
    cells = []
    tasks = tuple(f"t{k}" for k in range(len(scores)))
    for task, (a, b, c) in zip(tasks, scores, strict=True):
        cells += [
            BenchCell(task=task, agent="x", seed=0, validation=a, test=a),
            BenchCell(task=task, agent="x", seed=1, validation=b, test=b),
            BenchCell(task=task, agent="y", seed=0, validation=c, test=c),
        ]
    result = BenchResult(tasks=tasks, agents=("x", "y"), cells=tuple(cells))
    rows = result.rows()
    for task in tasks:
        best = [r for r in rows if r.task == task and r.best]
        assert best
        assert all(r.test_mean <= best[0].test_mean for r in rows if r.task == task)
    assert sum(result.wins().values()) >= len(tasks)
    for row in rows:
        assert 0.0 <= row.test_mean <= 1.0
        assert row.test_std >= 0.0
