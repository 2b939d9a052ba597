"""HTML reports: one self-contained page per run, and one per benchmark.

:func:`write_run_report` reads nothing but a run directory's ``journal.jsonl``, so it
works for a finished run, a failed or killed one, a resumed one, and a run written by
an older ftdojo whose records lack later fields. The page holds the run's header
(task, model, budget and usage, stop reason, isolation, contamination audit, base
model), a chart of every trial's validation score with the final model's test score,
the loss curves, the tree of trials with each plan's difference from its parent, each
diagnosis the agent journalled, the data each trial built, the rejected plans and the
sandbox violations. :func:`write_bench_report` does the same for a folder written by
``ftdojo bench``: the paper-style table and a chart of test scores per task and agent.

A report is one file with no external resource: the CSS is inline, the charts are
PNG data URIs, and no script runs. Every string from a journal goes through
:func:`ftdojo.report.html.escape`: plans, hypotheses and diagnoses may hold an LLM's
text.

The package: :mod:`~ftdojo.report.run` (the run page), :mod:`~ftdojo.report.bench`
(the benchmark page), :mod:`~ftdojo.report.charts` (matplotlib) and
:mod:`~ftdojo.report.html` (escaping, tables, the page). Comparing two plans is
:func:`ftdojo.plans.plan_diff`.
"""

from __future__ import annotations

from pathlib import Path

from ftdojo.errors import JournalError
from ftdojo.report.bench import write_bench_report
from ftdojo.report.run import write_run_report

__all__ = ["write_bench_report", "write_report", "write_run_report"]


def write_report(path: Path | str) -> Path:
    """The report of ``path``: a run directory (holding ``journal.jsonl``) or a benchmark
    folder (holding ``bench.json``); raises :class:`JournalError` for anything else."""
    path = Path(path)
    if (path / "journal.jsonl").is_file():
        return write_run_report(path)
    if (path / "bench.json").is_file():
        return write_bench_report(path)
    raise JournalError(
        f"{path} is neither a run directory (no journal.jsonl) nor a benchmark folder (no bench.json)"
    )
