"""The built-in ``table_visualization`` task: write the pandas + matplotlib code that draws a chart.

It mirrors the visualisation subset of TableBench as FT-Dojo uses it: the prompt gives
a small table (3-6 rows, 2 columns) as CSV text and asks for a bar, horizontal bar,
line or pie chart, or a scatter plot, of one column by the other. The model answers
with a short fenced ```python block that reads ``table.csv`` with pandas and draws with
matplotlib, for example::

    ```python
    df = pd.read_csv('table.csv')
    plt.bar(df['Symbol'], df['Mass'])
    ```

The code is executed in a sandbox and the chart it leaves is checked against the table
(metric ``chart_pass_at_1``; the rules are in :mod:`ftdojo.scoring.charts`).

Tables are built from real reference data where it exists: elements with their
atomic numbers, standard atomic weights, covalent radii and outer-shell electron counts
from RDKit's periodic table, and countries (names, ISO alpha-3 codes) from pycountry
with generated figures (sales, visitors, exports, scores) and generated yearly series.

Raw sources, all deterministic in ``seed`` (their true quality is in ``quality``):

- ``curated_snippets`` (JSON lines): canonical pyplot answers, all correct, each with a
  one-line comment restating the request (the "rationale").
- ``forum_scrape`` (CSV): scraped answers in mixed styles (pyplot, ``df.plot``, ``ax``),
  some already fenced. Exactly the recorded share is wrong: the wrong chart kind
  (concentrated where people confuse kinds: horizontal bars drawn as vertical ones,
  scatter plots drawn as lines), swapped or misspelt columns, syntax errors, the wrong
  file name, or the rows re-sorted. Exact and near duplicates. Every answer can be
  checked by running it: :meth:`TableVisualization.verify`.
- ``notebook_cells`` (Markdown): correct but verbose cells (imports, figure size,
  titles, ``plt.show()``), longer than the generation budget, so that a model trained
  on them runs out of tokens before it closes its code block.
- ``pandas_plot`` (JSON lines): correct answers written with ``DataFrame.plot(kind=...)``;
  they pass the checker (it looks at the figure, not at the calls). Some exact duplicates.
- ``code_help`` (JSON lines): an off-domain distractor: pandas snippets over the same
  kind of tables that print a mean, a maximum, a count or a sorted table, no chart.

Evaluation tables are drawn first and no raw source holds a table with the same columns
and the same rows (in any order): see :func:`table_identity`.
"""

from __future__ import annotations

import csv
import functools
import io
import random
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import attrs

from ftdojo.errors import DataError, TaskSpecError
from ftdojo.scoring.charts import CHART_KINDS, ChartReference, chart_verdicts
from ftdojo.tasks.spec import EvalItem, Example, RawSource
from ftdojo.tasks.synthetic import SourceQuality, SyntheticTask, balanced_categories, with_duplicates

__all__ = [
    "INSTRUCTION",
    "TableVisualization",
    "canonical_code",
    "format_prompt",
    "parse_request",
    "table_identity",
]

#: Ends every prompt, for training and evaluation alike, so both see one prompt shape.
INSTRUCTION = "Reply with a ```python block that reads table.csv with pd and draws with plt."

_READ = "df = pd.read_csv('table.csv')"
_FENCE_OPEN = "```python\n"
_FENCE_CLOSE = "\n```"

_PHRASES = {
    "bar": "bar chart",
    "horizontal_bar": "horizontal bar chart",
    "line": "line chart",
    "pie": "pie chart",
    "scatter": "scatter plot",
}
_KIND_OF_PHRASE = {phrase: kind for kind, phrase in _PHRASES.items()}
_WORDINGS = ("Draw a {phrase} of {y} by {x}.", "Plot {y} by {x} as a {phrase}.")
_PHRASE_PATTERN = r"(?P<phrase>horizontal\s+bar\s+chart|bar\s+chart|line\s+chart|pie\s+chart|scatter\s+plot)"
_REQUEST_PATTERNS = (
    re.compile(rf"draw\s+an?\s+{_PHRASE_PATTERN}\s+of\s+(?P<y>\w+)\s+by\s+(?P<x>\w+)", re.IGNORECASE),
    re.compile(rf"plot\s+(?P<y>\w+)\s+by\s+(?P<x>\w+)\s+as\s+an?\s+{_PHRASE_PATTERN}", re.IGNORECASE),
)
_CODE_BLOCK = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\r?\n(.*?)```", re.IGNORECASE | re.DOTALL)

# The comment curated answers start with: the request restated as what the code draws.
_COMMENTS = {
    "bar": "# bars: {y} per {x}",
    "horizontal_bar": "# hbars: {y} per {x}",
    "line": "# line: {y} over {x}",
    "pie": "# pie: {y} per {x}",
    "scatter": "# points: {y} vs {x}",
}

# Where a confused forum poster draws another kind than the one asked for.
_CONFUSED_KIND = {
    "bar": "horizontal_bar",
    "horizontal_bar": "bar",
    "line": "scatter",
    "pie": "bar",
    "scatter": "line",
}


# -- table data ------------------------------------------------------------------------------


@attrs.frozen
class _Element:
    number: int
    symbol: str
    name: str
    mass: str
    radius: str
    electrons: str


def _decimal(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text or "0"


@functools.cache
def _elements() -> tuple[_Element, ...]:
    """Hydrogen to radon from RDKit's periodic table (standard weights, covalent radii in Å)."""
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    return tuple(
        _Element(
            number=z,
            symbol=table.GetElementSymbol(z),
            name=table.GetElementName(z),
            mass=_decimal(table.GetAtomicWeight(z), 3),
            radius=_decimal(table.GetRcovalent(z), 2),
            electrons=str(table.GetNOuterElecs(z)),
        )
        for z in range(1, 87)
    )


@functools.cache
def _countries() -> tuple[tuple[str, str], ...]:
    """``(name, alpha-3 code)`` of the countries whose short name is plain words of letters."""
    import pycountry

    found = [
        (str(c.name), str(c.alpha_3))
        for c in pycountry.countries
        if len(c.name) <= 12 and c.name.replace(" ", "").isalpha()
    ]
    return tuple(sorted(found, key=lambda pair: pair[1]))


Rows = list[tuple[str, str]]


def _element_rows(x: str, y: str) -> Callable[[random.Random, int], Rows]:
    def make(rng: random.Random, n: int) -> Rows:
        return [(str(getattr(e, x)), str(getattr(e, y))) for e in rng.sample(_elements(), n)]

    return make


def _country_rows(by_code: bool) -> Callable[[random.Random, int], Rows]:
    def make(rng: random.Random, n: int) -> Rows:
        return [
            (code if by_code else name, str(rng.randint(10, 999)))
            for name, code in rng.sample(_countries(), n)
        ]

    return make


def _yearly_rows(rng: random.Random, n: int) -> Rows:
    start = rng.randint(1995, 2019)
    return [(str(start + k), str(rng.randint(10, 999))) for k in range(n)]


def _price_rows(rng: random.Random, n: int) -> Rows:
    prices = rng.sample(range(100, 5000), n)
    return [(f"{p / 100:.2f}", str(rng.randint(10, 999))) for p in prices]


@attrs.frozen
class _Family:
    """A kind of table: its two column names, the charts it suits and how its rows are drawn."""

    x: str
    y: str
    kinds: tuple[str, ...]
    rows: Callable[[random.Random, int], Rows]


_CATEGORY_CHARTS = ("bar", "horizontal_bar", "line", "pie")
_FAMILIES = (
    _Family("Symbol", "Mass", _CATEGORY_CHARTS, _element_rows("symbol", "mass")),
    _Family("Element", "Mass", _CATEGORY_CHARTS, _element_rows("name", "mass")),
    _Family("Symbol", "Radius", _CATEGORY_CHARTS, _element_rows("symbol", "radius")),
    _Family("Element", "Electrons", ("bar", "horizontal_bar", "pie"), _element_rows("name", "electrons")),
    _Family("Number", "Mass", ("scatter", "line"), _element_rows("number", "mass")),
    _Family("Number", "Radius", ("scatter",), _element_rows("number", "radius")),
    _Family("Mass", "Radius", ("scatter",), _element_rows("mass", "radius")),
    _Family("Country", "Sales", _CATEGORY_CHARTS, _country_rows(by_code=False)),
    _Family("Code", "Visitors", _CATEGORY_CHARTS, _country_rows(by_code=True)),
    _Family("Country", "Exports", ("bar", "horizontal_bar", "pie"), _country_rows(by_code=False)),
    _Family("Code", "Score", ("bar", "horizontal_bar", "line"), _country_rows(by_code=True)),
    _Family("Year", "Sales", ("line", "bar", "scatter"), _yearly_rows),
    _Family("Year", "Exports", ("line", "scatter"), _yearly_rows),
    _Family("Price", "Sales", ("scatter",), _price_rows),
)


@attrs.frozen
class _Chart:
    """One drawn request: the table, the chart kind, the two columns and the request text."""

    table: str
    kind: str
    x: str
    y: str
    request: str

    def ys(self) -> list[float]:
        return [float(row.split(",")[1]) for row in self.table.splitlines()[1:]]


def _csv_text(x: str, y: str, rows: Rows) -> str:
    return "\n".join([f"{x},{y}", *(f"{a},{b}" for a, b in rows)])


def table_identity(table: str) -> tuple[tuple[str, ...], frozenset[tuple[str, ...]]]:
    """What makes two tables the same entity: their header and their set of rows (order ignored).

    Cells are stripped and compared case-insensitively, so a re-ordered, re-spaced or
    re-cased copy of an evaluation table counts as that table.
    """
    rows = [
        tuple(cell.strip().casefold() for cell in row)
        for row in csv.reader(io.StringIO(table.strip()))
        if row
    ]
    if not rows:
        return (), frozenset()
    return rows[0], frozenset(rows[1:])


# -- prompts, code and answers ---------------------------------------------------------------


def format_prompt(table: str, request: str) -> str:
    """The prompt: the table as ``table.csv``, the request and the answer-format instruction."""
    return f"table.csv:\n{table.strip()}\n{request.strip()}\n{INSTRUCTION}"


def parse_request(request: str) -> tuple[str, str, str] | None:
    """``(kind, x column, y column)`` of a chart request, or ``None`` if it is not one.

    Case, spacing and end punctuation do not matter; column names are returned as written.
    """
    text = request.strip().rstrip(".!? \n")
    for pattern in _REQUEST_PATTERNS:
        match = pattern.fullmatch(text)
        if match is not None:
            phrase = " ".join(match["phrase"].lower().split())
            return _KIND_OF_PHRASE[phrase], match["x"], match["y"]
    return None


def canonical_code(kind: str, x: str, y: str, style: str = "pyplot") -> str:
    """The reference answer's code (no fence) in ``style``: ``pyplot``, ``pandas`` or ``axes``."""
    if style == "pandas":
        if kind == "pie":
            call = f"df.plot(kind='pie', y='{y}', labels=df['{x}'])"
        else:
            pandas_kind = {"horizontal_bar": "barh"}.get(kind, kind)
            call = f"df.plot(kind='{pandas_kind}', x='{x}', y='{y}')"
        return f"{_READ}\n{call}"
    function = {"bar": "bar", "horizontal_bar": "barh", "line": "plot", "pie": "pie", "scatter": "scatter"}[
        kind
    ]
    args = f"df['{y}'], labels=df['{x}']" if kind == "pie" else f"df['{x}'], df['{y}']"
    if style == "axes":
        return f"{_READ}\nfig, ax = plt.subplots()\nax.{function}({args})"
    return f"{_READ}\nplt.{function}({args})"


def _fenced(code: str) -> str:
    return f"{_FENCE_OPEN}{code.strip()}{_FENCE_CLOSE}"


def _code_of(text: str) -> str:
    """The code in ``text``: the first fenced block's body if there is one, else the text itself."""
    match = _CODE_BLOCK.search(text)
    return (match[1] if match else text).strip()


def _header(table: str) -> list[str]:
    for row in csv.reader(io.StringIO(table.strip())):
        return [cell.strip() for cell in row]
    return []


# -- wrong answers ---------------------------------------------------------------------------


def _wrong_code(chart: _Chart, style: str, rng: random.Random, *, confused: bool) -> str:
    """A plausible answer to ``chart`` that fails the checker, by construction.

    ``confused`` picks the kind confusion; otherwise one of the other mistakes. Each
    mistake fails for a reason the module docstring lists (tests run every one).
    """
    if confused:
        return canonical_code(_CONFUSED_KIND[chart.kind], chart.x, chart.y, style)
    ys = chart.ys()
    mistakes = ["swapped", "misspelt", "syntax", "file"]
    # Re-sorting moves bars and line points; a scatter's point set would look the same.
    if chart.kind in ("bar", "horizontal_bar", "line") and ys != sorted(ys):
        mistakes.append("sorted")
    mistake = rng.choice(mistakes)
    code = canonical_code(chart.kind, chart.x, chart.y, style)
    if mistake == "swapped":
        # Category labels become heights 0, 1, 2, ... and no column here starts at 0.
        return canonical_code(chart.kind, chart.y, chart.x, style)
    if mistake == "misspelt":
        return code.replace(f"'{chart.y}'", f"'{chart.y.lower()}'")
    if mistake == "syntax":
        head, _, tail = code.rpartition(")")
        return head + tail
    if mistake == "file":
        return code.replace("'table.csv'", "'data.csv'")
    return code.replace(_READ, f"{_READ}.sort_values('{chart.y}')", 1)


def _verbose_code(chart: _Chart, rng: random.Random) -> str:
    """A correct notebook cell with everything a notebook cell tends to carry."""
    lines = ["import pandas as pd", "import matplotlib.pyplot as plt", _READ]
    if rng.random() < 0.7:
        lines.append(f"plt.figure(figsize=({rng.randint(5, 10)}, {rng.randint(3, 6)}))")
    lines.append(canonical_code(chart.kind, chart.x, chart.y).split("\n")[1])
    lines.append(f"plt.title('{chart.y} by {chart.x}')")
    if chart.kind != "pie" and rng.random() < 0.6:
        lines += [f"plt.xlabel('{chart.x}')", f"plt.ylabel('{chart.y}')"]
    if rng.random() < 0.5:
        lines.append("plt.tight_layout()")
    lines.append("plt.show()")
    return "\n".join(lines)


_HELP_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("What is the mean of {y}?", "print(df['{y}'].mean())"),
    ("What is the total of {y}?", "print(df['{y}'].sum())"),
    ("Which {x} has the largest {y}?", "print(df.loc[df['{y}'].idxmax(), '{x}'])"),
    ("Which {x} has the smallest {y}?", "print(df.loc[df['{y}'].idxmin(), '{x}'])"),
    ("Sort the table by {y}.", "print(df.sort_values('{y}'))"),
    ("How many rows are there?", "print(len(df))"),
)


class TableVisualization(SyntheticTask):
    """Charts of small tables, answered with pandas + matplotlib code that is run and checked."""

    name = "table_visualization"
    domain = "table_qa"
    description = (
        "A small table (3-6 rows, 2 columns: elements with RDKit's atomic data, or countries and "
        "years with figures) is given as CSV text, with a request for a bar, horizontal bar, line or "
        "pie chart or a scatter plot of one column by the other. Answer with a ```python block that "
        "reads table.csv with pandas (pd) and draws with matplotlib (plt). The code is run in a "
        "sandbox; it passes if the figure it leaves holds a chart of the asked kind, and no other "
        "kind, whose data equal the table's column in table order."
    )
    output_format = "```python\ndf = pd.read_csv('table.csv')\nplt.<chart>(...)\n```"
    metric = "chart_pass_at_1"
    categories = CHART_KINDS
    # Every answer this task teaches ends with a call and then the closing fence. The
    # opening fence cannot match: it follows the prompt, never a ")".
    stop_strings = (")\n```",)
    # The longest curated answer (comment included) is under 120 characters.
    max_new_tokens = 150

    DEFAULT_SIZES: ClassVar[dict[str, int]] = {
        "curated_snippets": 400,
        "forum_scrape": 1500,
        "notebook_cells": 400,
        "pandas_plot": 400,
        "code_help": 300,
        "validation_size": 100,
        "test_size": 100,
    }
    GENERATOR_VERSION: ClassVar[int] = 1
    #: Share of wrong ``forum_scrape`` answers per chart kind (exact counts; mean 0.35).
    FORUM_WRONG_RATES: ClassVar[dict[str, float]] = {
        "bar": 0.05,
        "horizontal_bar": 0.8,
        "line": 0.05,
        "pie": 0.05,
        "scatter": 0.8,
    }
    #: Of a kind's wrong answers, the share that draws the confused kind (the rest: other mistakes).
    CONFUSION_SHARE: ClassVar[dict[str, float]] = {"horizontal_bar": 0.9, "scatter": 0.9}
    DUPLICATE_RATE: ClassVar[float] = 0.05

    # -- generation --------------------------------------------------------------------------

    def _draw_chart(self, rng: random.Random, kind: str, taken: set[Any]) -> _Chart:
        families = [f for f in _FAMILIES if kind in f.kinds]
        for _ in range(1000):
            family = rng.choice(families)
            table = _csv_text(family.x, family.y, family.rows(rng, rng.randint(3, 6)))
            identity = table_identity(table)
            if identity in taken:
                continue
            taken.add(identity)
            wording = rng.choice(_WORDINGS)
            request = wording.format(phrase=_PHRASES[kind], x=family.x, y=family.y)
            return _Chart(table=table, kind=kind, x=family.x, y=family.y, request=request)
        raise TaskSpecError(f"{self.name} task: cannot draw a new {kind} table")

    def _charts(self, stream: str, n: int, taken: set[Any]) -> list[_Chart]:
        rng = self.rng(stream)
        return [self._draw_chart(rng, kind, taken) for kind in balanced_categories(CHART_KINDS, n, rng)]

    def _eval_split(self, stream: str, n: int, prefix: str, taken: set[Any]) -> list[EvalItem]:
        return [
            EvalItem(
                item_id=f"{prefix}-{k:04d}",
                prompt=format_prompt(chart.table, chart.request),
                reference=ChartReference(csv=chart.table, kind=chart.kind, x=chart.x, y=chart.y).to_json(),
                category=chart.kind,
            )
            for k, chart in enumerate(self._charts(stream, n, taken))
        ]

    def _split_duplicates(self, n: int) -> tuple[int, int, int]:
        """``(unique, exact, near)`` records of a source of ``n`` with duplicates."""
        exact = near = round(self.DUPLICATE_RATE * n)
        if exact + near >= n:
            exact = near = 0
        return n - exact - near, exact, near

    def _forum(self, n: int, taken: set[Any]) -> tuple[list[dict[str, Any]], SourceQuality]:
        unique, exact, near = self._split_duplicates(n)
        charts = self._charts("forum_scrape", unique, taken)
        rng = self.rng("forum_scrape/answers")
        by_kind: dict[str, list[int]] = {kind: [] for kind in CHART_KINDS}
        for k, chart in enumerate(charts):
            by_kind[chart.kind].append(k)
        wrong: dict[int, bool] = {}  # index -> whether the mistake is the kind confusion
        for kind, indices in by_kind.items():
            chosen = rng.sample(indices, round(self.FORUM_WRONG_RATES[kind] * len(indices)))
            n_confused = round(self.CONFUSION_SHARE.get(kind, 0.2) * len(chosen))
            for j, k in enumerate(chosen):
                wrong[k] = j < n_confused
        records: list[dict[str, Any]] = []
        wrong_answers: set[tuple[str, str]] = set()
        for k, chart in enumerate(charts):
            style = rng.choices(("pyplot", "pandas", "axes"), weights=(7, 2, 1))[0]
            if k in wrong:
                code = _wrong_code(chart, style, rng, confused=wrong[k])
            else:
                code = canonical_code(chart.kind, chart.x, chart.y, style)
            if rng.random() < 0.15:  # some posts kept their fences
                code = _fenced(code)
            if k in wrong:
                wrong_answers.add((chart.table, code))
            records.append(
                {"table": chart.table, "request": chart.request, "code": code, "category": chart.kind}
            )
        records = with_duplicates(records, exact=exact, near=near, field="request", rng=rng)
        n_wrong = sum((r["table"], r["code"]) in wrong_answers for r in records)
        quality = SourceQuality(
            wrong_label_rate=n_wrong / len(records) if records else 0.0,
            exact_duplicates=exact,
            near_duplicates=near,
            remarks=(
                "mixed styles (pyplot 70%, df.plot 20%, ax 10%), ~15% of answers already fenced; wrong "
                f"answers per kind {self.FORUM_WRONG_RATES}, mostly kind confusions for horizontal bars "
                "and scatter plots"
            ),
        )
        return records, quality

    def generate(self) -> tuple[Sequence[RawSource], Sequence[EvalItem], Sequence[EvalItem]]:
        s = self.sizes
        # Evaluation tables first: every later draw skips their identities (and each other's).
        taken: set[Any] = set()
        validation = self._eval_split("validation", s["validation_size"], "val", taken)
        test = self._eval_split("test", s["test_size"], "test", taken)

        curated = [
            {
                "table": c.table,
                "request": c.request,
                "comment": _COMMENTS[c.kind].format(x=c.x, y=c.y),
                "code": canonical_code(c.kind, c.x, c.y),
                "category": c.kind,
            }
            for c in self._charts("curated_snippets", s["curated_snippets"], taken)
        ]
        forum, forum_quality = self._forum(s["forum_scrape"], taken)

        rng = self.rng("notebook_cells/answers")
        notebook = [
            {"table": c.table, "request": c.request, "code": _verbose_code(c, rng), "category": c.kind}
            for c in self._charts("notebook_cells", s["notebook_cells"], taken)
        ]

        unique = s["pandas_plot"] - round(0.04 * s["pandas_plot"])
        pandas_records = [
            {
                "table": c.table,
                "request": c.request,
                "code": canonical_code(c.kind, c.x, c.y, "pandas"),
                "category": c.kind,
            }
            for c in self._charts("pandas_plot", unique, taken)
        ]
        pandas_records = with_duplicates(
            pandas_records,
            exact=s["pandas_plot"] - unique,
            near=0,
            field="request",
            rng=self.rng("pandas_plot/duplicates"),
        )

        rng = self.rng("code_help")
        help_records = []
        for chart in self._charts("code_help", s["code_help"], taken):
            question, call = rng.choice(_HELP_QUESTIONS)
            help_records.append(
                {
                    "table": chart.table,
                    "request": question.format(x=chart.x, y=chart.y),
                    "code": f"{_READ}\n{call.format(x=chart.x, y=chart.y)}",
                }
            )

        self.quality = {
            "curated_snippets": SourceQuality(has_rationale=True),
            "forum_scrape": forum_quality,
            "notebook_cells": SourceQuality(
                remarks="correct but verbose: answers of ~150-260 characters, past max_new_tokens"
            ),
            "pandas_plot": SourceQuality(
                exact_duplicates=s["pandas_plot"] - unique, remarks="DataFrame.plot style; passes the checker"
            ),
            "code_help": SourceQuality(
                off_domain=True, remarks="pandas questions answered by printing; no charts"
            ),
        }
        sources = (
            RawSource(
                source_id="curated_snippets",
                records=tuple(curated),
                note=(
                    f"{len(curated)} tables with chart requests and short pyplot answers "
                    "(read table.csv, one plotting call), each with a one-line comment saying what is "
                    "drawn. Every answer tried ran and drew the requested chart."
                ),
            ),
            RawSource(
                source_id="forum_scrape",
                records=tuple(forum),
                note=(
                    f"{len(forum)} answers scraped from a Q&A site, in mixed styles (plt calls, df.plot, "
                    "ax methods), some wrapped in code fences. Running a sample shows a good share of "
                    "them fail or draw another kind of chart than asked, more so for some chart kinds; "
                    "some posts are repeated. No comments."
                ),
                format="csv",
            ),
            RawSource(
                source_id="notebook_cells",
                records=tuple(notebook),
                note=(
                    f"{len(notebook)} notebook cells exported as a Markdown table. They run and draw the "
                    "requested chart, but carry imports, figure sizes, titles, labels and plt.show(): "
                    "far longer than the short answers."
                ),
                format="markdown",
            ),
            RawSource(
                source_id="pandas_plot",
                records=tuple(pandas_records),
                note=(
                    f"{len(pandas_records)} answers written with DataFrame.plot(kind=...) instead of "
                    "pyplot calls. The ones tried drew the requested chart; a few look repeated."
                ),
            ),
            RawSource(
                source_id="code_help",
                records=tuple(help_records),
                note=(
                    f"{len(help_records)} pandas snippets for the same kind of tables answering "
                    "questions (means, maxima, sorting, counts) by printing. No charts."
                ),
            ),
        )
        return sources, validation, test

    # -- TaskSpec ----------------------------------------------------------------------------

    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        """The prompt from ``table`` and ``request``; the response is ``code`` in a python fence.

        ``code`` may already be fenced (the fence is not doubled). With
        ``include_rationale`` a record's ``comment`` becomes the code's first line. Returns
        ``None`` for a blank table, request or code; raises :class:`DataError` naming the
        field when one is missing or not text.
        """
        for field in ("table", "request", "code"):
            if field not in record:
                raise DataError(f"{self.name} record is missing the {field!r} field (has: {sorted(record)})")
            if not isinstance(record[field], str):
                kind = type(record[field]).__name__
                raise DataError(f"{self.name} record field {field!r} must be a string, got {kind}")
        table, request, code = record["table"].strip(), record["request"].strip(), _code_of(record["code"])
        if not table or not request or not code:
            return None
        comment = record.get("comment")
        if include_rationale and isinstance(comment, str) and comment.strip():
            code = f"{comment.strip()}\n{code}"
        category = record.get("category")
        return Example(
            prompt=format_prompt(table, request),
            response=_fenced(code),
            category=category if isinstance(category, str) and category in CHART_KINDS else "",
        )

    def extract_answer(self, output: str) -> str | None:
        """The body of the first closed ```python (or ```py, or bare ```) block; ``None`` without one.

        An unclosed block (generation cut off) is no answer: the format asks for a closed one.
        """
        match = _CODE_BLOCK.search(output)
        if match is None:
            return None
        code = match[1].strip()
        return code or None

    def verify(self, record: dict[str, Any]) -> bool | None:
        """Whether the record's code, run in the sandbox, draws the chart its request asks for.

        ``None`` when there is nothing to check: a field is missing or not text, or the
        request is not a chart request (the off-domain records). ``False`` as well when the
        request names a column the table does not have.
        """
        table, request, code = record.get("table"), record.get("request"), record.get("code")
        if not (isinstance(table, str) and isinstance(request, str) and isinstance(code, str)):
            return None
        parsed = parse_request(request)
        if parsed is None:
            return None
        kind, x, y = parsed
        columns = {name.casefold(): name for name in _header(table)}
        if x.casefold() not in columns or y.casefold() not in columns:
            return False
        try:
            reference = ChartReference(csv=table, kind=kind, x=columns[x.casefold()], y=columns[y.casefold()])
        except ValueError:
            return False
        body = _code_of(code)
        if not body:
            return False
        return chart_verdicts([body], [reference.to_json()])[0].passed

    def gold_response(self, item: EvalItem) -> str:
        """The canonical snippet for the asked chart, fenced as the format requires."""
        ref = ChartReference.from_json(item.reference)
        return _fenced(canonical_code(ref.kind, ref.x, ref.y))

    def display_reference(self, reference: str) -> str:
        """The asked chart, the data it must show, and a passing answer."""
        try:
            ref = ChartReference.from_json(reference)
        except ValueError:
            return reference
        values = ", ".join(ref.column(ref.y))
        shown = f"{_PHRASES[ref.kind]} of {ref.y} by {ref.x} ({ref.y} = {values}"
        if ref.kind == "scatter":
            shown += f"; {ref.x} = {', '.join(ref.column(ref.x))}"
        return f"{shown}), e.g.\n{_fenced(canonical_code(ref.kind, ref.x, ref.y))}"
