"""The report of a benchmark: the folder ``ftdojo bench`` writes, as one page.

The page holds the paper-style table, a chart of test scores per task and agent, and
every cell with a link to its run's report.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs

from ftdojo.bench import BASE, BenchCell, BenchResult
from ftdojo.errors import JournalError
from ftdojo.report.charts import bench_chart
from ftdojo.report.html import REPORT_NAME, escape, fmt, img, page, table, write_page
from ftdojo.report.values import as_list

__all__ = ["write_bench_report"]


def write_bench_report(bench_dir: Path | str) -> Path:
    """Write ``report.html`` into a folder written by ``ftdojo bench`` and return its path.

    It holds the paper-style table (per task and agent the validation and test score as
    mean ± standard deviation over seeds, the best test mean per task in bold, the
    tasks each agent wins), a grouped bar chart of test scores, and every cell with a
    link to its run's report where the run folder has one. Raises :class:`JournalError`
    naming ``bench.json`` when it is missing or unreadable.
    """
    bench_dir = Path(bench_dir)
    source = bench_dir / "bench.json"
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise JournalError(f"{source} does not exist: {bench_dir} is not a benchmark folder") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JournalError(f"{source} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise JournalError(f"{source} is not a benchmark summary (no list of cells)")
    names = {f.name for f in attrs.fields(BenchCell)}
    try:
        cells = tuple(
            BenchCell(**{k: v for k, v in cell.items() if k in names})
            for cell in data["cells"]
            if isinstance(cell, dict)
        )
    except TypeError as exc:
        raise JournalError(f"{source}: a cell is unreadable: {exc}") from exc
    tasks = tuple(str(t) for t in as_list(data.get("tasks"))) or tuple(dict.fromkeys(c.task for c in cells))
    agents = tuple(str(a) for a in as_list(data.get("agents")) if a != BASE) or tuple(
        dict.fromkeys(c.agent for c in cells if c.agent != BASE)
    )
    bench = BenchResult(tasks=tasks, agents=agents, cells=cells)
    rows = {(r.task, r.agent): r for r in bench.rows()}
    shown = [a for a in (BASE, *agents) if any(c.agent == a for c in cells)]
    wins = bench.wins()
    seeds = sorted({c.seed for c in cells if c.agent != BASE})

    header = (
        "<tr><th rowspan='2'>task</th>"
        + "".join(f"<th colspan='2'>{escape(a)}</th>" for a in shown)
        + "</tr>"
    )
    header += "<tr>" + "<th>validation</th><th>test</th>" * len(shown) + "</tr>"
    lines = []
    for task in tasks:
        cells_html = []
        for agent in shown:
            row = rows.get((task, agent))
            if row is None:
                cells_html += ["<td>—</td>", "<td>—</td>"]
                continue
            test = f"{row.test_mean:.3f} ± {row.test_std:.3f}" + (
                f" ({row.failures} failed)" if row.failures else ""
            )
            cells_html.append(f"<td class='num'>{row.validation_mean:.3f} ± {row.validation_std:.3f}</td>")
            cells_html.append(
                f"<td class='num'><b>{escape(test)}</b></td>"
                if row.best
                else f"<td class='num'>{escape(test)}</td>"
            )
        lines.append(f"<tr><td>{escape(task)}</td>{''.join(cells_html)}</tr>")
    lines.append(
        "<tr><th>wins</th>" + "".join(f"<td></td><td>{wins.get(a, 0)}</td>" for a in shown) + "</tr>"
    )
    summary = f"<table><thead>{header}</thead><tbody>{''.join(lines)}</tbody></table>"

    cell_rows = []
    for cell in sorted(cells, key=lambda c: (c.task, c.agent, c.seed)):
        report = bench_dir / "runs" / cell.run_id / REPORT_NAME if cell.run_id else None
        link = (
            f"<a href='{escape(f'runs/{cell.run_id}/{REPORT_NAME}')}'>{escape(cell.run_id)}</a>"
            if report is not None and report.is_file()
            else escape(cell.run_id or "—")
        )
        cell_rows.append(
            (
                escape(cell.task),
                escape(cell.agent),
                escape(cell.seed),
                link,
                escape(fmt(cell.validation)),
                escape(fmt(cell.test)),
                escape(cell.trials),
                escape(fmt(cell.seconds, ".0f")),
                escape(cell.error or ""),
            )
        )
    body = [
        f"<h1>ftdojo benchmark {escape(bench_dir.resolve().name)}</h1>",
        f"<p>{len(tasks)} tasks × {len(agents)} agents × seeds {escape(seeds)}; {len(cells)} cells.</p>",
        "<h2>Table</h2>",
        summary,
        "<p class='muted'>Mean ± standard deviation over seeds; bold: the best test mean per task "
        "(ties all bold; a failed run counts as 0).</p>",
        "<h2>Test scores per task and agent</h2>",
        img(bench_chart(tasks, shown, rows), "test score per task and agent") if tasks and shown else "",
        "<h2>Cells</h2>",
        f"<details><summary>Every run ({len(cell_rows)}), with a link to its report where there is one"
        "</summary>",
        table(
            ("task", "agent", "seed", "run", "validation", "test", "trials", "seconds", "error"),
            cell_rows,
            raw=True,
        ),
        "</details>",
    ]
    path = bench_dir / REPORT_NAME
    write_page(path, page(f"ftdojo benchmark {bench_dir.resolve().name}", "".join(body)))
    return path
