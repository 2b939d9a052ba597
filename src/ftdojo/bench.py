"""Benchmarks: tasks x agents x seeds, summarised in the FT-Dojo paper's table form.

Every (task, agent, seed) cell is one :meth:`Dojo.run` with the same budget, under the
run id ``bench-<task>-<agent>-s<seed>``, so an interrupted cell resumes from its journal.
Each finished cell is appended to ``cells.jsonl`` in the output folder (one JSON line,
flushed and fsynced), and a benchmark started again over the same folder skips the
cells already there: nothing finished is run twice. The base model (no training) is
scored once per task and shown as its own row.

The table gives, per task and agent, the validation and test score as mean ± standard
deviation over seeds (a run that failed or chose no final model counts as 0), marks the
best test mean per task (ties are all marked), and counts for each agent the tasks it
wins (the best test mean; a tie is a win for each tied agent). It is written as
``bench.md`` and ``bench.json`` next to ``cells.jsonl``.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ftdojo._fs import write_atomic
from ftdojo.errors import ConfigError, FTDojoError, JournalError

if TYPE_CHECKING:
    from ftdojo.dojo import Dojo
    from ftdojo.results import Budget
    from ftdojo.session import Agent

__all__ = ["BenchCell", "BenchResult", "BenchRow", "builtin_agents", "run_bench"]

#: Makes the agent for one seed.
AgentFactory = Callable[[int], "Agent"]
BASE = "base"


def builtin_agents() -> dict[str, AgentFactory]:
    """The agents ``ftdojo bench`` knows by name: FT-Agent, the baselines, the other planners
    (see :mod:`ftdojo.agent.registry`)."""
    from ftdojo.agent.registry import agent_factories

    return agent_factories()


@attrs.frozen(kw_only=True)
class BenchCell:
    """One finished (task, agent, seed) run, or the base model's scores (agent ``base``)."""

    task: str
    agent: str
    seed: int
    run_id: str = ""
    validation: float | None = None
    test: float | None = None
    trials: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.task, self.agent, self.seed)


@attrs.frozen(kw_only=True)
class BenchRow:
    """One task and agent over all seeds."""

    task: str
    agent: str
    seeds: int
    failures: int
    validation_mean: float
    validation_std: float
    test_mean: float
    test_std: float
    best: bool = False


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


@attrs.frozen(kw_only=True)
class BenchResult:
    tasks: tuple[str, ...]
    agents: tuple[str, ...]
    cells: tuple[BenchCell, ...]

    def rows(self) -> list[BenchRow]:
        rows: list[BenchRow] = []
        for task in self.tasks:
            group: list[BenchRow] = []
            for agent in (BASE, *self.agents):
                cells = [c for c in self.cells if c.task == task and c.agent == agent]
                if not cells:
                    continue
                validation = _mean_std([c.validation or 0.0 for c in cells])
                test = _mean_std([c.test or 0.0 for c in cells])
                group.append(
                    BenchRow(
                        task=task,
                        agent=agent,
                        seeds=len(cells),
                        failures=sum(1 for c in cells if c.error is not None or c.test is None),
                        validation_mean=validation[0],
                        validation_std=validation[1],
                        test_mean=test[0],
                        test_std=test[1],
                    )
                )
            top = max((r.test_mean for r in group), default=None)
            rows += [attrs.evolve(r, best=top is not None and r.test_mean == top) for r in group]
        return rows

    def wins(self) -> dict[str, int]:
        """Per agent (the base model included), the tasks where its test mean is the best."""
        wins = dict.fromkeys((BASE, *self.agents), 0)
        for row in self.rows():
            if row.best:
                wins[row.agent] += 1
        return wins

    def to_markdown(self) -> str:
        agents = [a for a in (BASE, *self.agents) if any(c.agent == a for c in self.cells)]
        by_key = {(r.task, r.agent): r for r in self.rows()}
        lines = [
            "| task | " + " | ".join(f"{a} val | {a} test" for a in agents) + " |",
            "|---|" + "---|---|" * len(agents),
        ]
        for task in self.tasks:
            cells = []
            for agent in agents:
                row = by_key.get((task, agent))
                if row is None:
                    cells += ["—", "—"]
                    continue
                val = f"{row.validation_mean:.3f} ± {row.validation_std:.3f}"
                test = f"{row.test_mean:.3f} ± {row.test_std:.3f}"
                if row.failures:
                    test += f" ({row.failures} failed)"
                cells += [val, f"**{test}**" if row.best else test]
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
        wins = self.wins()
        lines.append("| wins | " + " | ".join(f" | {wins[a]}" for a in agents) + " |")
        seeds = sorted({c.seed for c in self.cells if c.agent != BASE})
        lines += [
            "",
            f"Mean ± standard deviation over seeds {seeds}; bold: the best test mean per task "
            "(a failed run counts as 0).",
        ]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks": list(self.tasks),
            "agents": list(self.agents),
            "rows": [attrs.asdict(r) for r in self.rows()],
            "wins": self.wins(),
            "cells": [attrs.asdict(c) for c in self.cells],
        }


def read_cells(path: Path) -> list[BenchCell]:
    """The cells in ``path``.

    Every complete line must be a cell (else :class:`JournalError` naming the file and
    line); an unterminated last line is a cell cut off by a kill, and is ignored.
    """
    if not path.exists():
        return []
    *complete, _torn = path.read_text(encoding="utf-8").split("\n")
    cells = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            cells.append(BenchCell(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as exc:
            raise JournalError(f"{path}:{number}: not a benchmark cell: {exc}") from exc
    return cells


def _drop_torn_tail(path: Path) -> None:
    """Cut an unterminated last line off, so that the next cell starts on a line of its own."""
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            write_atomic(path, text[: text.rfind("\n") + 1])


def _append(path: Path, cell: BenchCell) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(attrs.asdict(cell), sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


async def run_bench(
    dojo: Dojo,
    *,
    tasks: Iterable[str],
    agents: Mapping[str, AgentFactory],
    seeds: Iterable[int],
    budget: Budget,
    out_dir: Path | str,
    model: str | None = None,
    with_base: bool = True,
    on_cell: Callable[[BenchCell], None] | None = None,
) -> BenchResult:
    """Run every missing cell, then write ``bench.md`` and ``bench.json`` into ``out_dir``."""
    tasks, seeds = tuple(tasks), tuple(seeds)
    names = tuple(agents)
    if not tasks or not names or not seeds:
        raise ConfigError("a benchmark needs at least one task, one agent and one seed")
    if BASE in names:
        raise ConfigError(f"{BASE!r} is the base model's row, not an agent name")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "cells.jsonl"
    cells = read_cells(path)
    _drop_torn_tail(path)
    done = {c.key for c in cells}

    def finish(cell: BenchCell) -> None:
        _append(path, cell)
        cells.append(cell)
        done.add(cell.key)
        if on_cell is not None:
            on_cell(cell)

    for task in tasks:
        if with_base and (task, BASE, 0) not in done:
            started = time.monotonic()
            try:
                base = await dojo.baseline(task, model=model)
                cell = BenchCell(
                    task=task, agent=BASE, seed=0, validation=base.validation_score, test=base.test_score
                )
            except FTDojoError as exc:
                cell = BenchCell(task=task, agent=BASE, seed=0, error=str(exc)[:500])
            finish(attrs.evolve(cell, seconds=round(time.monotonic() - started, 1)))
        for name in names:
            for seed in seeds:
                if (task, name, seed) in done:
                    continue
                run_id = f"bench-{task}-{name}-s{seed}"
                started = time.monotonic()
                try:
                    result = await dojo.run(
                        task, agents[name](seed), budget=budget, model=model, run_id=run_id
                    )
                    cell = BenchCell(
                        task=task,
                        agent=name,
                        seed=seed,
                        run_id=run_id,
                        validation=result.validation_score,
                        test=result.test_score,
                        trials=len(result.trials),
                    )
                except FTDojoError as exc:
                    # The cell is recorded as failed (scored 0) and the benchmark goes on.
                    cell = BenchCell(task=task, agent=name, seed=seed, run_id=run_id, error=str(exc)[:500])
                finish(attrs.evolve(cell, seconds=round(time.monotonic() - started, 1)))
    wanted = [c for c in cells if c.task in tasks and (c.agent in names or c.agent == BASE)]
    wanted = [c for c in wanted if c.agent == BASE or c.seed in seeds]
    bench = BenchResult(tasks=tasks, agents=names, cells=tuple(wanted))
    write_atomic(out / "bench.md", bench.to_markdown())
    write_atomic(out / "bench.json", json.dumps(bench.to_json(), indent=1, sort_keys=True) + "\n")
    return bench
