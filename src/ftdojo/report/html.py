"""The HTML of a report page: escaping, number formatting, tables and the page itself.

Every string that reaches a page goes through :func:`escape` (or :func:`table`
without ``raw``): plans, hypotheses and diagnoses may hold an LLM's text.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ftdojo._fs import write_atomic
from ftdojo.report.values import number

__all__ = ["CSS", "REPORT_NAME", "escape", "fmt", "img", "page", "table", "write_page"]

#: The file name of a report, in a run directory and in a benchmark folder.
REPORT_NAME = "report.html"

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;
padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1.05rem;margin-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;
text-align:left;vertical-align:top;font-size:.9rem}th{background:#f5f5f5}
pre{background:#f7f7f7;padding:.5rem;overflow-x:auto;font-size:.8rem;white-space:pre-wrap}
img{max-width:100%;height:auto}.ok{color:#2a7d2a}.fail{color:#b22}.muted{color:#777}
.diff{font-family:ui-monospace,monospace;font-size:.85rem}ul.tree ul{border-left:1px dashed #bbb}
.card{border:1px solid #e3e3e3;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
dl.head{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dl.head dt{font-weight:600}
dl.head dd{margin:0}td.num{white-space:nowrap}
"""


def escape(value: Any) -> str:
    """``value`` as text safe inside an element or a quoted attribute."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, spec: str = ".3f") -> str:
    """A number formatted with ``spec``, or a dash where there is none."""
    parsed = number(value)
    return "—" if parsed is None else format(parsed, spec)


def table(header: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then the caller escaped them)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if raw else escape(cell)}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str) -> str:
    """A whole HTML document: the inline style sheet, ``body`` and the time it was written."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{body}"
        f"<p class='muted'>Written by ftdojo on {escape(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>"
        "</body></html>\n"
    )


def img(uri: str, alt: str) -> str:
    """An image element for a data URI."""
    return f'<img src="{uri}" alt="{escape(alt)}">'


def write_page(path: Path, text: str) -> None:
    """Write a page so that a browser never reads half of it."""
    write_atomic(path, text)
