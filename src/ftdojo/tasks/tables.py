"""The table QA tasks (mirroring TableBench): data analysis, fact checking, numerical reasoning.

Every item is a small table -- 3 to 6 countries (real names from pycountry's ISO 3166
list) by 2 or 3 columns (consecutive years or short indicator names) of generated
two-digit figures -- and one question about it. Tables are shown as compact Markdown pipe
tables, so prompt and answer fit the tiny character-level model's 512-character context
(prompts at most :data:`PROMPT_LIMIT`, responses at most :data:`RESPONSE_LIMIT`).

Three tasks share the machinery here:

- ``table_analysis`` (:class:`TableDataAnalysis`): trend of a row over years, sign of
  the correlation of two columns, mean or total of a column, max minus min. Scored by
  ``tolerance_accuracy`` (numbers within 10 %, words by case-insensitive match).
- ``table_fact_check`` (:class:`TableFactCheck`): is a statement about the table true?
  ``Answer: True`` / ``Answer: False``, balanced; scored by ``accuracy``.
- ``table_numerical`` (:class:`TableNumericalReasoning`): difference of two cells, sum
  of a column, ratio of two cells to 2 decimals, rank in a column. Scored by
  ``accuracy`` on canonical numbers (``"8.0"`` -> ``"8"``): every answer is an exact
  computation, so a near miss is a wrong sum, not a good estimate.

Questions are rendered from templates; :func:`template_regex` turns a template back
into a pattern, so :meth:`TableTask.verify` can re-read the question from a record's
text, re-read its table (Markdown or CSV text) with :func:`parse_table`, and recompute
the answer independently of whoever wrote the record.

Raw sources (the same five shapes for each task): clean worked solutions (JSON lines),
clean answers without working whose tables are stored as CSV text (CSV), a web scrape
with a known share of wrong answers (Markdown), a source with correct answers written in
inconsistent styles (JSON lines), and off-domain country-code lookups (CSV).

Disjointness is by table: a table is identified by its set of countries, the
evaluation tables are drawn first, and no raw record uses a table with the same country
set as any evaluation table (nor does the test split share one with validation).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

import attrs

from ftdojo.errors import DataError, TaskSpecError
from ftdojo.scoring.numeric import canonical_number, format_decimal, normalize_label, parse_number
from ftdojo.tasks._reference import country_names, normalize_question, template_regex
from ftdojo.tasks.spec import EvalItem, Example, RawSource
from ftdojo.tasks.synthetic import (
    SourceQuality,
    SyntheticTask,
    balanced_categories,
    corrupt,
    with_duplicates,
)

__all__ = [
    "PROMPT_LIMIT",
    "RESPONSE_LIMIT",
    "Table",
    "TableDataAnalysis",
    "TableFactCheck",
    "TableNumericalReasoning",
    "TableTask",
    "parse_table",
    "table_key",
]

#: Longest prompt (table, question and instruction) any item of these tasks has.
PROMPT_LIMIT = 300
#: Longest response (working and answer) any clean record has.
RESPONSE_LIMIT = 120

_LABEL_COLUMN = "Country"
_INDICATORS = ("GDP", "Exports", "Imports", "Debt", "Jobs", "Tax", "Power", "Cars", "Trade", "Wages", "Crops")
_FIRST_YEARS = range(2008, 2022)
_VALUES = range(10, 100)
_CENT = Decimal("0.01")
# The answer line every response ends with; the first one in an output is the answer.
_ANSWER_LINE = re.compile(r"Answer:[ \t]*([^\n]*)")


# -- reference data ------------------------------------------------------------------------


@functools.cache
def _country_codes() -> tuple[tuple[str, str, str], ...]:
    """(name, alpha-3 code, numeric code) for the countries of :func:`country_names`."""
    import pycountry

    wanted = set(country_names())
    rows = {
        (getattr(c, "common_name", None) or c.name, c.alpha_3, c.numeric)
        for c in pycountry.countries
        if (getattr(c, "common_name", None) or c.name) in wanted
    }
    return tuple(sorted(rows))


def reference_digest() -> str:
    """A short digest of the reference data used, so that a pycountry update changes ``version()``."""
    text = "\n".join(",".join(row) for row in _country_codes())
    return hashlib.sha256(text.encode()).hexdigest()[:8]


# -- tables --------------------------------------------------------------------------------


@attrs.frozen
class Table:
    """A small table: a label column (countries) and integer-valued data columns."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, tuple[int, ...]], ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.header[1:]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.rows)

    def find_label(self, name: str) -> str | None:
        """The row label equal to ``name`` up to case and spacing, or ``None``."""
        wanted = normalize_label(name)
        return next((label for label in self.labels if normalize_label(label) == wanted), None)

    def find_column(self, name: str) -> int | None:
        """Index (into each row's values) of the column named ``name`` up to case, or ``None``."""
        wanted = normalize_label(name)
        return next((k for k, col in enumerate(self.columns) if normalize_label(col) == wanted), None)

    def column(self, name: str) -> tuple[int, ...] | None:
        k = self.find_column(name)
        return None if k is None else tuple(values[k] for _, values in self.rows)

    def row(self, name: str) -> tuple[int, ...] | None:
        label = self.find_label(name)
        return None if label is None else dict(self.rows)[label]

    def cell(self, name: str, column: str) -> int | None:
        values, k = self.row(name), self.find_column(column)
        return None if values is None or k is None else values[k]

    def to_markdown(self) -> str:
        """Compact GitHub pipe table: no padding, one hyphen per separator cell."""
        lines = ["|" + "|".join(self.header) + "|", "|" + "|".join("-" for _ in self.header) + "|"]
        lines += ["|" + "|".join([label, *map(str, values)]) + "|" for label, values in self.rows]
        return "\n".join(lines)

    def to_csv(self) -> str:
        lines = [",".join(self.header)]
        lines += [",".join([label, *map(str, values)]) for label, values in self.rows]
        return "\n".join(lines)


def table_key(table: Table) -> frozenset[str]:
    """What makes two tables "the same table" for disjointness: their set of countries."""
    return frozenset(normalize_label(label) for label in table.labels)


def _integer(cell: str) -> int | None:
    if cell.isdigit():  # the common case, without the general parser's cost
        return int(cell)
    value = parse_number(cell)
    return int(value) if value is not None and value == value.to_integral_value() else None


@functools.lru_cache(maxsize=16384)
def parse_table(text: str) -> Table | None:
    """A :class:`Table` from Markdown pipe-table or CSV text, or ``None`` if it is not one.

    Markdown rows start with ``|``; a separator row of hyphens (and colons) is skipped.
    Every data cell must be an integer and every row as long as the header. Cached: the
    same table text is read by generation, the leak check and verification alike, and a
    :class:`Table` is immutable.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    if lines[0].startswith("|"):
        cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
        cells = [row for row in cells if not all(c and set(c) <= set("-: ") for c in row)]
    else:
        cells = [[c.strip() for c in line.split(",")] for line in lines]
    header, body = cells[0], cells[1:]
    if len(header) < 2 or not body or any(len(row) != len(header) for row in body):
        return None
    rows: list[tuple[str, tuple[int, ...]]] = []
    for row in body:
        numbers = [_integer(c) for c in row[1:]]
        if not row[0] or any(n is None for n in numbers):
            return None
        rows.append((row[0], tuple(n for n in numbers if n is not None)))
    labels = [normalize_label(label) for label, _ in rows]
    if len(set(labels)) != len(labels) or len({normalize_label(h) for h in header}) != len(header):
        return None
    return Table(header=tuple(header), rows=tuple(rows))


def _draw_table(rng: random.Random, n_rows: int, columns: Sequence[str]) -> Table:
    """Countries and distinct two-digit values (distinct over the whole table, so no ties anywhere)."""
    labels = rng.sample(country_names(), n_rows)
    values = rng.sample(_VALUES, n_rows * len(columns))
    k = len(columns)
    rows = tuple((label, tuple(values[j * k : (j + 1) * k])) for j, label in enumerate(labels))
    return Table(header=(_LABEL_COLUMN, *columns), rows=rows)


def _year_columns(rng: random.Random, k: int) -> tuple[str, ...]:
    first = rng.choice(_FIRST_YEARS)
    return tuple(str(first + j) for j in range(k))


def _any_columns(rng: random.Random, k: int) -> tuple[str, ...]:
    return _year_columns(rng, k) if rng.random() < 0.5 else tuple(rng.sample(_INDICATORS, k))


def _with_row(table: Table, label: str, values: tuple[int, ...]) -> Table:
    return attrs.evolve(table, rows=tuple((lab, values if lab == label else v) for lab, v in table.rows))


# -- question templates --------------------------------------------------------------------

_NAME = r"[A-Za-z][A-Za-z ]*?"
_COLUMN = r"[A-Za-z0-9]+"
_YEAR = r"\d{4}"
_NUMBER = r"-?\d+(?:\.\d+)?"
_FIELD_PATTERNS = {
    "a": _NAME, "b": _NAME, "col": _COLUMN, "x": _COLUMN, "y": _COLUMN,
    "first": _YEAR, "last": _YEAR, "v": _NUMBER,
}  # fmt: skip


@attrs.frozen
class _Solved:
    """An answer and the working that leads to it."""

    answer: str
    working: str
    #: Whether the working is an expression whose value the answer is ("12+15 = 27").
    shows_result: bool = True

    def rationale(self, answer: str | None = None) -> str:
        """The response: working, then the answer line; ``answer`` replaces the right one."""
        shown = self.answer if answer is None else answer
        head = f"{self.working} = {shown}" if self.shows_result else self.working
        return f"{head}. Answer: {shown}"


Solver = Callable[[Table, Mapping[str, str], str], "_Solved | None"]


@attrs.frozen
class _Template:
    text: str
    #: Passed to the solver: which of its questions this wording asks ("mean", "higher", ...).
    variant: str
    regex: re.Pattern[str]


def _template(text: str, variant: str) -> _Template:
    return _Template(text=text, variant=variant, regex=template_regex(text, _FIELD_PATTERNS))


def _round2(value: Decimal) -> str:
    return format_decimal(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def _span(table: Table, first: str, last: str) -> list[int] | None:
    """Indices of the columns from ``first`` to ``last`` inclusive, in table order."""
    i, j = table.find_column(first), table.find_column(last)
    if i is None or j is None or j - i < 1:
        return None
    return list(range(i, j + 1))


def _direction(values: Sequence[int]) -> str:
    steps = [b - a for a, b in itertools.pairwise(values)]
    if all(s > 0 for s in steps):
        return "increasing"
    if all(s < 0 for s in steps):
        return "decreasing"
    return "mixed"


def _chain(values: Sequence[int]) -> str:
    """``12 < 15 > 9``: each step of a row with its direction."""
    out = [str(values[0])]
    for a, b in itertools.pairwise(values):
        out += ["<" if b > a else ">" if b < a else "=", str(b)]
    return " ".join(out)


def _pearson(xs: Sequence[int], ys: Sequence[int]) -> float | None:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def _plus(values: Sequence[int]) -> str:
    return "+".join(map(str, values))


def _quoted(table: Table, values: Sequence[int]) -> str:
    """``Chile 22 + Peru 63 + ...``: a column's cells (``values``), each after its row's label.

    Quoting the label before each cell is what lets a small model copy the right cell:
    with bare numbers (``22+63``) SmolLM2 copies cells from the wrong row.
    """
    return " + ".join(f"{label} {v}" for label, v in zip(table.labels, values, strict=True))


def _quoted_pair(table: Table, f: Mapping[str, str]) -> tuple[str, int, str, int] | None:
    """The labels and cells of rows ``a`` and ``b`` in column ``col``, as the table spells them."""
    a, b = table.find_label(f["a"]), table.find_label(f["b"])
    if a is None or b is None:
        return None
    va, vb = table.cell(a, f["col"]), table.cell(b, f["col"])
    if va is None or vb is None:
        return None
    return a, va, b, vb


# -- solvers: (table, fields, variant) -> answer and working, or None when they do not fit --


def _solve_trend(table: Table, f: Mapping[str, str], variant: str) -> _Solved | None:
    row, span = table.row(f["a"]), _span(table, f["first"], f["last"])
    label = table.find_label(f["a"])
    if row is None or span is None or label is None:
        return None
    values = [row[k] for k in span]
    return _Solved(_direction(values), f"{label}: {_chain(values)}", shows_result=False)


def _solve_correlation(table: Table, f: Mapping[str, str], variant: str) -> _Solved | None:
    xs, ys = table.column(f["x"]), table.column(f["y"])
    if xs is None or ys is None or f["x"].casefold() == f["y"].casefold():
        return None
    r = _pearson(xs, ys)
    if r is None or round(r, 2) == 0:  # no sign to speak of
        return None
    return _Solved("positive" if r > 0 else "negative", f"r = {r:.2f}", shows_result=False)


def _solve_aggregate(table: Table, f: Mapping[str, str], variant: str) -> _Solved | None:
    values = table.column(f["col"])
    if values is None:
        return None
    quoted = _quoted(table, values)
    if variant == "mean":
        return _Solved(_round2(Decimal(sum(values)) / len(values)), f"({quoted})/{len(values)}")
    return _Solved(str(sum(values)), quoted)


def _solve_spread(table: Table, f: Mapping[str, str], variant: str) -> _Solved | None:
    values = table.column(f["col"])
    if values is None:
        return None
    cells = dict(zip(values, table.labels, strict=True))  # values are distinct within a table
    high, low = max(values), min(values)
    return _Solved(str(high - low), f"{cells[high]} {high} - {cells[low]} {low}")


def _verdict(value: bool) -> str:
    return "True" if value else "False"


def _solve_comparison(table: Table, f: Mapping[str, str], variant: str) -> _Solved | None:
    a, b = table.find_label(f["a"]), table.find_label(f["b"])
    if a is None or b is None or a == b:
        return None
    va, vb = table.cell(a, f["col"]), table.cell(b, f["col"])
    if va is None or vb is None:
        return None
    holds = va > vb if variant == "higher" else va < vb
    relation = ">" if va > vb else "<" if va < vb else "="
    return _Solved(_verdict(holds), f"{a} {va} {relation} {b} {vb}", shows_result=False)


def _solve_superlative(table: Table, f: Mapping[str, str], variant: str) -> _Solved | None:
    label, values = table.find_label(f["a"]), table.column(f["col"])
    if label is None or values is None:
        return None
    best = max(values) if variant == "highest" else min(values)
    holder = next(lab for lab, v in zip(table.labels, values, strict=True) if v == best)
    word = "Highest" if variant == "highest" else "Lowest"
    own = table.cell(label, f["col"])
    holds = own == best
    working = f"{word}: {holder} {best}" if holds else f"{word}: {holder} {best}, not {label} {own}"
    return _Solved(_verdict(holds), working, shows_result=False)


def _solve_claimed_aggregate(table: Table, f: Mapping[str, str], variant: str) -> _Solved | None:
    values, claimed = table.column(f["col"]), parse_number(f["v"])
    if values is None or claimed is None:
        return None
    if variant == "mean":
        actual = _round2(Decimal(sum(values)) / len(values))
        working = f"Average = {sum(values)}/{len(values)} = {actual}"
    else:
        actual = str(sum(values))
        working = f"Total = {_plus(values)} = {actual}"
    working += f" (stated {format_decimal(claimed)})"
    return _Solved(_verdict(format_decimal(claimed) == actual), working, shows_result=False)


def _solve_monotone(table: Table, f: Mapping[str, str], variant: str) -> _Solved | None:
    row, span, label = table.row(f["a"]), _span(table, f["first"], f["last"]), table.find_label(f["a"])
    if row is None or span is None or label is None:
        return None
    values = [row[k] for k in span]
    holds = _direction(values) == variant
    return _Solved(_verdict(holds), f"{label}: {_chain(values)}", shows_result=False)


def _solve_difference(table: Table, f: Mapping[str, str], variant: str) -> _Solved | None:
    pair = _quoted_pair(table, f)
    if pair is None:
        return None
    a, va, b, vb = pair
    return _Solved(str(va - vb), f"{a} {va} - {b} {vb}")


def _solve_sum(table: Table, f: Mapping[str, str], variant: str) -> _Solved | None:
    values = table.column(f["col"])
    return None if values is None else _Solved(str(sum(values)), _quoted(table, values))


def _solve_ratio(table: Table, f: Mapping[str, str], variant: str) -> _Solved | None:
    pair = _quoted_pair(table, f)
    if pair is None or pair[3] == 0:
        return None
    a, va, b, vb = pair
    return _Solved(_round2(Decimal(va) / vb), f"{a} {va} / {b} {vb}")


def _solve_rank(table: Table, f: Mapping[str, str], variant: str) -> _Solved | None:
    label, values = table.find_label(f["a"]), table.column(f["col"])
    if label is None or values is None:
        return None
    own = table.cell(label, f["col"])
    order = sorted(values, reverse=True)
    rank = order.index(own) + 1 if own is not None else 0
    return _Solved(str(rank), f"Order: {', '.join(map(str, order))}; {label} {own}", shows_result=False)


# -- the tasks -----------------------------------------------------------------------------


@attrs.frozen
class _Item:
    """One generated question: its table, its wording and its solution."""

    table: Table
    question: str
    solved: _Solved
    category: str


@attrs.frozen
class _Style:
    """One way of writing an answer, as the ``mixed_format`` source does."""

    name: str
    render: Callable[[str], str]


def _label_styles() -> tuple[_Style, ...]:
    return (
        _Style("canonical", lambda a: a),
        _Style("upper", str.upper),
        _Style("capitalised", str.capitalize),
        _Style("sentence", lambda a: f"It is {a}"),
        _Style("lower prefix", lambda a: f"answer: {a}"),
    )


def _number_styles() -> tuple[_Style, ...]:
    return (
        _Style("canonical", lambda a: a),
        _Style("trailing zero", lambda a: a + "0" if "." in a else a + ".0"),
        _Style("equals", lambda a: f"= {a}"),
        _Style("approx", lambda a: f"approx. {a}"),
        _Style("sentence", lambda a: f"The answer is {a}"),
    )


def _verdict_styles() -> tuple[_Style, ...]:
    return (
        _Style("canonical", lambda a: a),
        _Style("lower", str.lower),
        _Style("upper", str.upper),
        _Style("yes/no", lambda a: "yes" if a == "True" else "no"),
        _Style("letter", lambda a: a[0]),
    )


_TRUE_WORDS = frozenset({"true", "t", "yes", "y", "correct", "right"})
_FALSE_WORDS = frozenset({"false", "f", "no", "n", "incorrect", "wrong"})
_ANY_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


class TableTask(SyntheticTask):
    """What the three table tasks share: table drawing, sources, prompts, parsing, verification.

    Subclasses set the card attributes, ``INSTRUCTION``, ``TEMPLATES`` (category ->
    wordings), ``SOLVERS`` (category -> solver), and implement :meth:`_draw` (one
    question of a category, aiming at a given answer where the task balances answers),
    :meth:`_wrong_answer`, :meth:`_is_canonical`, :meth:`_loose_answer` and
    :meth:`extract_answer`.
    """

    domain = "table_qa"
    stop_strings = ("\n",)
    max_new_tokens = 96
    DEFAULT_SIZES: ClassVar[dict[str, int]] = {
        "curated_worked": 1500,
        "answers_csv": 1500,
        "web_scrape": 2500,
        "mixed_format": 2000,
        "country_codes": 600,
        "validation_size": 100,
        "test_size": 100,
    }
    GENERATOR_VERSION: ClassVar[int] = 1
    #: Fraction of ``web_scrape`` records whose answer is wrong (exactly ``round(rate * n)``).
    SCRAPE_WRONG_RATE: ClassVar[float] = 0.35
    INSTRUCTION: ClassVar[str]
    TEMPLATES: ClassVar[dict[str, tuple[_Template, ...]]]
    SOLVERS: ClassVar[dict[str, Solver]]
    #: The answers each category aims at in turn in the evaluation splits (balanced), if any.
    TARGETS: ClassVar[dict[str, tuple[str, ...]]] = {}

    # -- hooks ---------------------------------------------------------------------------

    def _draw(self, rng: random.Random, category: str, target: str | None) -> _Item:
        raise NotImplementedError

    def _wrong_answer(self, item: _Item, rng: random.Random) -> str:
        raise NotImplementedError

    def _is_canonical(self, answer: str) -> bool:
        raise NotImplementedError

    def _loose_answer(self, text: str) -> str | None:
        raise NotImplementedError

    def _answer_styles(self) -> tuple[_Style, ...]:
        raise NotImplementedError

    def _off_domain(self, rng: random.Random, n: int) -> list[dict[str, Any]]:
        """Country-code lookups with no table: what an ISO-code Q&A dump looks like."""
        facts = _country_codes()
        records = []
        for name, alpha3, numeric in (rng.choice(facts) for _ in range(n)):
            if rng.random() < 0.5:
                records.append({"question": f"What is the ISO alpha-3 code of {name}?", "answer": alpha3})
            else:
                records.append({"question": f"What is the ISO numeric code of {name}?", "answer": numeric})
        return records

    # -- prompts and examples ------------------------------------------------------------

    def format_prompt(self, table_text: str, question: str) -> str:
        """The prompt: the table (if any), the question, the answer-format instruction."""
        parts = [table_text.strip()] if table_text.strip() else []
        return "\n".join([*parts, question.strip(), self.INSTRUCTION])

    def _prompt_of(self, item: _Item) -> str:
        return self.format_prompt(item.table.to_markdown(), item.question)

    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        """A training example from ``question``, ``answer`` and the optional ``table`` and ``solution``.

        The table (Markdown or CSV text) is re-rendered as the compact Markdown table the
        evaluation prompts show; text that is not a table is kept as it is. The response
        is the ``solution`` when rationales are wanted and one is present; otherwise an
        answer already in the task's canonical form becomes ``Answer: <answer>``, and any
        other answer is the response as written (the task does not guess what a free-form
        answer meant, so a source of inconsistent formats teaches inconsistent outputs
        unless it is transformed first). Blank question or answer: ``None``.
        """
        for field in ("question", "answer"):
            if field not in record:
                raise DataError(f"{self.name} record is missing the {field!r} field (has: {sorted(record)})")
        question, answer = record["question"], record["answer"]
        if not isinstance(question, str):
            raise DataError(
                f"{self.name} record field 'question' must be text, got {type(question).__name__}"
            )
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            raise DataError(f"{self.name} record field 'answer' must be text, got {type(answer).__name__}")
        table_text = record.get("table") or ""
        if not isinstance(table_text, str):
            raise DataError(f"{self.name} record field 'table' must be text, got {type(table_text).__name__}")
        answer_text = str(answer).strip()
        if not question.strip() or not answer_text:
            return None
        table = parse_table(table_text) if table_text.strip() else None
        shown_table = table.to_markdown() if table is not None else table_text
        solution = record.get("solution")
        if include_rationale and isinstance(solution, str) and solution.strip():
            response = solution.strip()
        elif self._is_canonical(answer_text):
            response = f"Answer: {answer_text}"
        else:
            response = answer_text
        category = record.get("category")
        return Example(
            prompt=self.format_prompt(shown_table, question),
            response=response,
            category=category if isinstance(category, str) else "",
        )

    def _answer_text(self, output: str) -> str | None:
        """What follows the first ``Answer:`` in ``output`` on its line, stripped; ``None`` if absent."""
        match = _ANSWER_LINE.search(output)
        if match is None:
            return None
        text = match.group(1).strip()
        return text or None

    # -- verification --------------------------------------------------------------------

    def solve(self, table_text: str, question: str) -> _Solved | None:
        """The answer to ``question`` about the table in ``table_text``; ``None`` if either is unreadable."""
        table = parse_table(table_text)
        if table is None:
            return None
        wanted = normalize_question(question)
        for category, templates in self.TEMPLATES.items():
            for template in templates:
                match = template.regex.fullmatch(wanted)
                if match is not None:
                    solved = self.SOLVERS[category](table, match.groupdict(), template.variant)
                    if solved is not None:
                        return solved
        return None

    def gold_response(self, item: EvalItem) -> str:
        """The worked solution for ``item``, recomputed from the table and question in its prompt."""
        lines = item.prompt.split("\n")
        table = "\n".join(line for line in lines if line.startswith("|"))
        question = lines[-2].removeprefix("Statement: ")
        solved = self.solve(table, question)
        if solved is None or solved.answer != item.reference:  # pragma: no cover - generated items solve
            return f"Answer: {item.reference}"
        return solved.rationale()

    def _item_of(self, record: dict[str, Any]) -> _Item:
        """The generated item behind one of this task's own clean records."""
        table = parse_table(record["table"])
        solved = self.solve(record["table"], record["question"])
        if table is None or solved is None:  # pragma: no cover - generated records always parse
            raise TaskSpecError(f"{self.name}: cannot re-read a generated record: {record}")
        return _Item(table=table, question=record["question"], solved=solved, category=record["category"])

    def verify(self, record: dict[str, Any]) -> bool | None:
        """Whether the record's answer (and the answer its working ends with) is right for its table.

        The answer is recomputed from the record's own table text and question. ``None``
        when there is no table or the question is not one this task asks (nothing to
        recompute). The ``answer`` field is read leniently (``"TRUE"``, ``"= 45"`` and
        ``"It is mixed"`` all say what they mean), so a record in an odd format but with
        the right content passes; a ``solution`` must end with an answer line equal to it.
        """
        table_text, question = record.get("table"), record.get("question")
        if not isinstance(table_text, str) or not isinstance(question, str) or not table_text.strip():
            return None
        solved = self.solve(table_text, question)
        if solved is None:
            return None
        answer = record.get("answer")
        if answer is not None and self._loose_answer(str(answer)) != solved.answer:
            return False
        solution = record.get("solution")
        if isinstance(solution, str) and solution.strip():
            return self.extract_answer(solution) == solved.answer
        return answer is not None

    def version(self) -> str:
        """The base version plus a digest of the country reference data the tables are drawn from."""
        return f"{super().version()}-ref{reference_digest()}"

    # -- generation ----------------------------------------------------------------------

    def _fits(self, item: _Item) -> bool:
        return len(self._prompt_of(item)) <= PROMPT_LIMIT and len(item.solved.rationale()) <= RESPONSE_LIMIT

    def _draw_new(
        self, rng: random.Random, category: str, target: str | None, excluded: set[frozenset[str]]
    ) -> _Item:
        for _ in range(1000):
            item = self._draw(rng, category, target)
            if table_key(item.table) not in excluded and self._fits(item):
                return item
        raise TaskSpecError(f"{self.name} task: cannot draw a new {category} table")  # pragma: no cover

    def _split(self, stream: str, size: int, used: set[frozenset[str]]) -> list[_Item]:
        rng = self.rng(stream)
        turns = dict.fromkeys(self.categories, 0)
        items = []
        for category in balanced_categories(self.categories, size, rng):
            targets = self.TARGETS.get(category)
            target = targets[turns[category] % len(targets)] if targets else None
            turns[category] += 1
            item = self._draw_new(rng, category, target, used)
            used.add(table_key(item.table))
            items.append(item)
        return items

    def _raw_items(self, stream: str, size: int, excluded: set[frozenset[str]]) -> list[_Item]:
        rng = self.rng(stream)
        return [
            self._draw_new(rng, category, None, excluded)
            for category in balanced_categories(self.categories, size, rng)
        ]

    def generate(self) -> tuple[list[RawSource], list[EvalItem], list[EvalItem]]:
        s = self.sizes
        used: set[frozenset[str]] = set()
        splits = []
        for stream, size, prefix in (
            ("validation", s["validation_size"], "val"),
            ("test", s["test_size"], "test"),
        ):
            items = self._split(stream, size, used)
            splits.append(
                [
                    EvalItem(
                        item_id=f"{prefix}-{k:04d}",
                        prompt=self._prompt_of(item),
                        reference=item.solved.answer,
                        category=item.category,
                    )
                    for k, item in enumerate(items)
                ]
            )
        validation, test = splits

        def record(item: _Item, *, table: str, solution: bool) -> dict[str, Any]:
            out: dict[str, Any] = {"table": table, "question": item.question}
            if solution:
                out["solution"] = item.solved.rationale()
            out["answer"] = item.solved.answer
            out["category"] = item.category
            return out

        worked = [
            record(item, table=item.table.to_markdown(), solution=True)
            for item in self._raw_items("curated_worked", s["curated_worked"], used)
        ]

        rng = self.rng("answers_csv-noise")
        answers = [
            record(item, table=item.table.to_csv(), solution=False)
            for item in self._raw_items("answers_csv", s["answers_csv"], used)
        ]
        n_answers_exact, n_answers_near = len(answers) // 20, len(answers) // 20
        answers = with_duplicates(
            answers, exact=n_answers_exact, near=n_answers_near, field="question", rng=rng
        )

        rng = self.rng("web_scrape-noise")
        scraped_items = self._raw_items("web_scrape", s["web_scrape"], used)
        scrape = [record(item, table=item.table.to_markdown(), solution=True) for item in scraped_items]

        def make_wrong(rec: dict[str, Any], r: random.Random) -> dict[str, Any]:
            item = self._item_of(rec)
            wrong = self._wrong_answer(item, r)
            return {**rec, "solution": item.solved.rationale(wrong), "answer": wrong}

        wrong_idx = corrupt(scrape, self.SCRAPE_WRONG_RATE, rng, make_wrong)
        n_wrong = len(wrong_idx)
        n_scrape_exact, n_scrape_near = len(scrape) // 25, len(scrape) // 25
        scrape = with_duplicates(scrape, exact=n_scrape_exact, near=n_scrape_near, field="question", rng=rng)

        rng = self.rng("mixed_format-noise")
        styles = self._answer_styles()
        mixed = []
        style_counts = dict.fromkeys((st.name for st in styles), 0)
        for item in self._raw_items("mixed_format", s["mixed_format"], used):
            style = rng.choice(styles)
            style_counts[style.name] += 1
            rec = record(item, table=item.table.to_markdown(), solution=False)
            rec["answer"] = style.render(item.solved.answer)
            mixed.append(rec)
        off_canonical = sum(1 for r in mixed if not self._is_canonical(str(r["answer"])))

        off_domain = self._off_domain(self.rng("country_codes"), s["country_codes"])

        self.quality = {
            "curated_worked": SourceQuality(has_rationale=True),
            "answers_csv": SourceQuality(
                exact_duplicates=n_answers_exact,
                near_duplicates=n_answers_near,
                remarks="tables stored as CSV text; to_example re-renders them as Markdown",
            ),
            "web_scrape": SourceQuality(
                wrong_label_rate=n_wrong / len(scraped_items) if scraped_items else 0.0,
                exact_duplicates=n_scrape_exact,
                near_duplicates=n_scrape_near,
                has_rationale=True,
                remarks=f"{n_wrong} of {len(scraped_items)} distinct records have a wrong answer and working",
            ),
            "mixed_format": SourceQuality(
                remarks=(
                    f"answers correct but written in {len(styles)} styles "
                    f"({', '.join(f'{k}: {v}' for k, v in style_counts.items())}); "
                    f"{off_canonical} of {len(mixed)} not in canonical form"
                ),
            ),
            "country_codes": SourceQuality(off_domain=True, remarks="ISO country-code lookups, no tables"),
        }
        sources = [
            RawSource(
                source_id="curated_worked",
                records=tuple(worked),
                format="jsonl",
                note=(
                    f"{len(worked)} table questions with a Markdown table, a one-line worked solution "
                    "ending in 'Answer: ...', the answer and a category. Spot checks find them correct."
                ),
            ),
            RawSource(
                source_id="answers_csv",
                records=tuple(answers),
                format="csv",
                note=(
                    f"{len(answers)} table questions from a spreadsheet export: tables as comma-separated "
                    "text, answers only (no working). Some questions appear more than once."
                ),
            ),
            RawSource(
                source_id="web_scrape",
                records=tuple(scrape),
                format="markdown",
                note=(
                    f"{len(scrape)} table questions scraped from a forum, with worked solutions. Redoing "
                    "the arithmetic on a sample shows a good share of answers are wrong; some repeats."
                ),
            ),
            RawSource(
                source_id="mixed_format",
                records=tuple(mixed),
                format="jsonl",
                note=(
                    f"{len(mixed)} table questions with answers only, written in several styles "
                    "(capitalisation, prefixes, whole sentences) rather than one format."
                ),
            ),
            RawSource(
                source_id="country_codes",
                records=tuple(off_domain),
                format="csv",
                note=f"{len(off_domain)} questions about ISO country codes with short answers; no tables.",
            ),
        ]
        return sources, validation, test


# -- data analysis -------------------------------------------------------------------------

_DIRECTIONS = ("increasing", "decreasing", "mixed")
_SIGNS = ("positive", "negative")


def _shaped_row(values: Sequence[int], direction: str, rng: random.Random) -> tuple[int, ...]:
    """``values`` reordered to go ``direction`` (mixed: neither up nor down throughout)."""
    ordered = sorted(values)
    if direction == "increasing":
        return tuple(ordered)
    if direction == "decreasing":
        return tuple(reversed(ordered))
    while True:
        shuffled = list(values)
        rng.shuffle(shuffled)
        if _direction(shuffled) == "mixed":
            return tuple(shuffled)


class TableDataAnalysis(TableTask):
    """Trends, correlation signs, means or totals and ranges over a small country table."""

    name = "table_analysis"
    description = (
        "Data analysis over a small Markdown table of countries by years or indicators: is a "
        "country's row increasing, decreasing or mixed; is the correlation of two columns positive "
        "or negative; the average or total of a column; its max minus min. Responses give one line "
        "of working that quotes each cell after its country and end with 'Answer: <value>'. "
        "Numbers count within 10% of the reference; "
        "words by case-insensitive match."
    )
    output_format = "Answer: <number or word>"
    metric = "tolerance_accuracy"
    categories = ("trend", "correlation", "aggregate", "spread")
    INSTRUCTION = "Give short working, then 'Answer: <number or word>'."
    TEMPLATES: ClassVar[dict[str, tuple[_Template, ...]]] = {
        "trend": (
            _template("From {first} to {last}, is {a} increasing, decreasing or mixed?", "trend"),
            _template("Is {a} increasing, decreasing or mixed from {first} to {last}?", "trend"),
        ),
        "correlation": (
            _template("Is the correlation between {x} and {y} positive or negative?", "sign"),
            _template("Do {x} and {y} correlate positively or negatively?", "sign"),
        ),
        "aggregate": (
            _template("What is the average of {col}?", "mean"),
            _template("What is the total of {col}?", "total"),
        ),
        "spread": (
            _template("What is the max minus min of {col}?", "range"),
            _template("What is the range (max - min) of {col}?", "range"),
        ),
    }
    SOLVERS: ClassVar[dict[str, Solver]] = {
        "trend": _solve_trend,
        "correlation": _solve_correlation,
        "aggregate": _solve_aggregate,
        "spread": _solve_spread,
    }
    TARGETS: ClassVar[dict[str, tuple[str, ...]]] = {"trend": _DIRECTIONS, "correlation": _SIGNS}
    # Workings quote each cell after its row's label, and aggregate and spread tables have
    # 3-4 rows: the form SmolLM2 learns in a 40K-token trial (measurements in docs/tasks.md).
    GENERATOR_VERSION = 2

    def _draw(self, rng: random.Random, category: str, target: str | None) -> _Item:
        template = rng.choice(self.TEMPLATES[category])
        fields: dict[str, str]
        if category == "trend":
            table = _draw_table(rng, rng.randint(3, 5), _year_columns(rng, 3))
            label, values = rng.choice(table.rows)
            direction = target or rng.choice(_DIRECTIONS)
            table = _with_row(table, label, _shaped_row(values, direction, rng))
            fields = {"a": label, "first": table.columns[0], "last": table.columns[-1]}
        elif category == "correlation":
            sign = target or rng.choice(_SIGNS)
            while True:
                table = _draw_table(rng, rng.randint(4, 6), tuple(rng.sample(_INDICATORS, 2)))
                r = _pearson(*zip(*(v for _, v in table.rows), strict=True))
                if r is not None and abs(r) >= 0.6 and (r > 0) == (sign == "positive"):
                    break
            x, y = table.columns
            fields = {"x": x, "y": y}
        else:
            table = _draw_table(rng, rng.randint(3, 4), _any_columns(rng, rng.randint(2, 3)))
            fields = {"col": rng.choice(table.columns)}
        solved = self.SOLVERS[category](table, fields, template.variant)
        if solved is None:  # pragma: no cover - drawn fields always fit the drawn table
            raise TaskSpecError(f"{self.name}: generated an unanswerable {category} question")
        return _Item(table=table, question=template.text.format(**fields), solved=solved, category=category)

    def _wrong_answer(self, item: _Item, rng: random.Random) -> str:
        if item.category == "trend":
            return rng.choice([d for d in _DIRECTIONS if d != item.solved.answer])
        if item.category == "correlation":
            return "negative" if item.solved.answer == "positive" else "positive"
        return _wrong_number(item.solved.answer, rng)

    def _is_canonical(self, answer: str) -> bool:
        return answer in _DIRECTIONS or answer in _SIGNS or canonical_number(answer) == answer

    def _loose_answer(self, text: str) -> str | None:
        words = set(re.findall(r"[a-z]+", text.casefold()))
        labels = [w for w in (*_DIRECTIONS, *_SIGNS) if w in words]
        if len(labels) == 1:
            return labels[0]
        numbers = _ANY_NUMBER.findall(text)
        return canonical_number(numbers[-1]) if numbers and not labels else None

    def _answer_styles(self) -> tuple[_Style, ...]:
        label_styles, number_styles = _label_styles(), _number_styles()
        return tuple(
            _Style(f"{a.name}", _by_kind(a.render, b.render))
            for a, b in zip(label_styles, number_styles, strict=True)
        )

    def extract_answer(self, output: str) -> str | None:
        """The first ``Answer:`` line's value: a canonical number, else the word lower-cased.

        ``None`` when there is no ``Answer:`` with a value. Numbers are put in canonical
        form (``"15.0"`` -> ``"15"``); any other text is case-folded with spacing and end
        punctuation normalised, so ``"Increasing."`` reads as ``"increasing"``.
        """
        text = self._answer_text(output)
        if text is None:
            return None
        number = canonical_number(text.rstrip("."))
        return number if number is not None else normalize_label(text) or None


def _by_kind(for_label: Callable[[str], str], for_number: Callable[[str], str]) -> Callable[[str], str]:
    """One style that writes a number and a word each in its own way."""
    return lambda a: for_number(a) if canonical_number(a) is not None else for_label(a)


def _wrong_number(answer: str, rng: random.Random) -> str:
    """A number at least 15 % away from ``answer`` (so wrong under any tolerance the tasks use)."""
    value = parse_number(answer)
    if value is None:  # pragma: no cover - only called with numeric answers
        raise TaskSpecError(f"not a number: {answer!r}")
    if value == 0:
        return str(rng.choice([-3, -2, -1, 1, 2, 3]))
    factor = Decimal(rng.choice([rng.randint(50, 85), rng.randint(115, 150)])) / 100
    wrong = (value * factor).quantize(_CENT if value != value.to_integral_value() else Decimal(1))
    if abs(wrong - value) < abs(value) * Decimal("0.15"):
        wrong = value + (abs(value) * Decimal("0.2")).quantize(Decimal(1)) + 1
    return format_decimal(wrong)


# -- fact checking -------------------------------------------------------------------------


class TableFactCheck(TableTask):
    """Is a statement about a small country table true? ``Answer: True`` or ``Answer: False``."""

    name = "table_fact_check"
    description = (
        "Fact checking over a small Markdown table of countries by years or indicators: a statement "
        "compares two cells, names the highest or lowest country of a column, states a column's total "
        "or average, or says a row rose or fell every year. Responses cite the cells and end with "
        "'Answer: True' or 'Answer: False'. True and false statements are balanced."
    )
    output_format = "Answer: True | Answer: False"
    metric = "accuracy"
    categories = ("comparison", "superlative", "aggregate", "trend")
    # Worked solutions show the step that decides ("Chile 15 < Peru 34", "Highest: Peru 34,
    # not Chile 15", "... = 87 (stated 90)", "95 > 51 < 90"), not just the cells: from the
    # cells alone SmolLM2 learns no better than a coin toss.
    GENERATOR_VERSION = 2
    INSTRUCTION = "Is it true? End with 'Answer: True' or 'Answer: False'."
    TEMPLATES: ClassVar[dict[str, tuple[_Template, ...]]] = {
        "comparison": (
            _template("In {col}, {a} is higher than {b}.", "higher"),
            _template("In {col}, {a} is lower than {b}.", "lower"),
        ),
        "superlative": (
            _template("In {col}, {a} is the highest.", "highest"),
            _template("In {col}, {a} is the lowest.", "lowest"),
        ),
        "aggregate": (
            _template("The total of {col} is {v}.", "total"),
            _template("The average of {col} is {v}.", "mean"),
        ),
        "trend": (
            _template("{a} rose every year from {first} to {last}.", "increasing"),
            _template("{a} fell every year from {first} to {last}.", "decreasing"),
        ),
    }
    SOLVERS: ClassVar[dict[str, Solver]] = {
        "comparison": _solve_comparison,
        "superlative": _solve_superlative,
        "aggregate": _solve_claimed_aggregate,
        "trend": _solve_monotone,
    }
    TARGETS: ClassVar[dict[str, tuple[str, ...]]] = {
        c: ("True", "False") for c in ("comparison", "superlative", "aggregate", "trend")
    }

    def format_prompt(self, table_text: str, question: str) -> str:
        """The prompt: the table, ``Statement: <statement>``, the answer-format instruction."""
        parts = [table_text.strip()] if table_text.strip() else []
        return "\n".join([*parts, f"Statement: {question.strip()}", self.INSTRUCTION])

    def _draw(self, rng: random.Random, category: str, target: str | None) -> _Item:
        truth = (target or rng.choice(("True", "False"))) == "True"
        template = rng.choice(self.TEMPLATES[category])
        fields: dict[str, str]
        if category == "trend":
            table = _draw_table(rng, rng.randint(3, 5), _year_columns(rng, 3))
            label, values = rng.choice(table.rows)
            other = "decreasing" if template.variant == "increasing" else "increasing"
            shape = template.variant if truth else rng.choice((other, "mixed"))
            table = _with_row(table, label, _shaped_row(values, shape, rng))
            fields = {"a": label, "first": table.columns[0], "last": table.columns[-1]}
        else:
            table = _draw_table(rng, rng.randint(3, 6), _any_columns(rng, rng.randint(2, 3)))
            col = rng.choice(table.columns)
            column = dict(zip(table.labels, table.column(col) or (), strict=True))
            if category == "comparison":
                a, b = rng.sample(table.labels, 2)
                holds = column[a] > column[b] if template.variant == "higher" else column[a] < column[b]
                if holds != truth:
                    a, b = b, a
                fields = {"col": col, "a": a, "b": b}
            elif category == "superlative":
                pick = max if template.variant == "highest" else min
                best = pick(table.labels, key=column.__getitem__)
                a = best if truth else rng.choice([lab for lab in table.labels if lab != best])
                fields = {"col": col, "a": a}
            else:
                cells = list(column.values())
                if template.variant == "mean":
                    actual = Decimal(_round2(Decimal(sum(cells)) / len(cells)))
                    delta = Decimal(rng.choice([-3, -2, -1, 1, 2, 3]))
                else:
                    actual = Decimal(sum(cells))
                    delta = Decimal(rng.choice([-10, -5, -2, -1, 1, 2, 5, 10]))
                fields = {"col": col, "v": format_decimal(actual if truth else actual + delta)}
        solved = self.SOLVERS[category](table, fields, template.variant)
        if solved is None or (solved.answer == "True") != truth:  # pragma: no cover - construction bug
            raise TaskSpecError(f"{self.name}: generated a {category} statement with the wrong truth value")
        return _Item(table=table, question=template.text.format(**fields), solved=solved, category=category)

    def _wrong_answer(self, item: _Item, rng: random.Random) -> str:
        return "False" if item.solved.answer == "True" else "True"

    def _is_canonical(self, answer: str) -> bool:
        return answer in ("True", "False")

    def _loose_answer(self, text: str) -> str | None:
        words = set(re.findall(r"[a-z]+", text.casefold()))
        says_true, says_false = bool(words & _TRUE_WORDS), bool(words & _FALSE_WORDS)
        if says_true == says_false:
            return None
        return "True" if says_true else "False"

    def _answer_styles(self) -> tuple[_Style, ...]:
        return _verdict_styles()

    def _off_domain(self, rng: random.Random, n: int) -> list[dict[str, Any]]:
        """True/false statements about ISO country codes, half of them false; no tables."""
        facts = _country_codes()
        records = []
        for _ in range(n):
            name, alpha3, _numeric = rng.choice(facts)
            truth = rng.random() < 0.5
            code = alpha3 if truth else rng.choice([f[1] for f in facts if f[1] != alpha3])
            records.append(
                {"question": f"The ISO alpha-3 code of {name} is {code}.", "answer": _verdict(truth)}
            )
        return records

    def extract_answer(self, output: str) -> str | None:
        """``"True"`` or ``"False"`` from the first ``Answer:`` line; ``None`` for anything else.

        Strict: the format asks for exactly ``True`` or ``False`` (a final full stop is
        allowed), so ``"true"``, ``"yes"`` or ``"TRUE"`` do not meet it.
        """
        text = self._answer_text(output)
        if text is None:
            return None
        text = text.rstrip(".").strip()
        return text if text in ("True", "False") else None


# -- numerical reasoning -------------------------------------------------------------------


class TableNumericalReasoning(TableTask):
    """Cell differences, column sums, cell ratios and ranks over a small country table."""

    name = "table_numerical"
    description = (
        "Numerical reasoning over a small Markdown table of countries by years or indicators: one "
        "cell minus another, the sum of a column, one cell divided by another to 2 decimals, a "
        "country's rank in a column (highest = 1). Responses give the arithmetic, each cell after "
        "its country, and end with "
        "'Answer: <number>'; answers are compared as canonical numbers ('8.0' equals '8')."
    )
    output_format = "Answer: <number>"
    metric = "accuracy"
    categories = ("difference", "sum", "ratio", "rank")
    INSTRUCTION = "Give short working, then 'Answer: <number>'."
    TEMPLATES: ClassVar[dict[str, tuple[_Template, ...]]] = {
        "difference": (
            _template("In {col}, what is {a} minus {b}?", "difference"),
            _template("In {col}, how much is {a} minus {b}?", "difference"),
        ),
        "sum": (
            _template("What is the sum of {col}?", "sum"),
            _template("What is the total of {col}?", "sum"),
        ),
        "ratio": (
            _template("In {col}, what is {a} divided by {b}, to 2 decimals?", "ratio"),
            _template("In {col}, what is {a} / {b}, rounded to 2 decimals?", "ratio"),
        ),
        "rank": (
            _template("In {col}, what rank is {a} (highest = 1)?", "rank"),
            _template("Ranking {col} from highest (1), what rank is {a}?", "rank"),
        ),
    }
    SOLVERS: ClassVar[dict[str, Solver]] = {
        "difference": _solve_difference,
        "sum": _solve_sum,
        "ratio": _solve_ratio,
        "rank": _solve_rank,
    }
    # Workings quote each cell after its row's label, and tables have 3-4 rows: the form
    # SmolLM2 learns in a 40K-token trial (measurements in docs/tasks.md).
    GENERATOR_VERSION = 2

    def _draw(self, rng: random.Random, category: str, target: str | None) -> _Item:
        template = rng.choice(self.TEMPLATES[category])
        table = _draw_table(rng, rng.randint(3, 4), _any_columns(rng, rng.randint(2, 3)))
        fields: dict[str, str] = {"col": rng.choice(table.columns)}
        if category in ("difference", "ratio"):
            fields["a"], fields["b"] = rng.sample(table.labels, 2)
        elif category == "rank":
            fields["a"] = rng.choice(table.labels)
        solved = self.SOLVERS[category](table, fields, template.variant)
        if solved is None:  # pragma: no cover - drawn fields always fit the drawn table
            raise TaskSpecError(f"{self.name}: generated an unanswerable {category} question")
        return _Item(table=table, question=template.text.format(**fields), solved=solved, category=category)

    def _wrong_answer(self, item: _Item, rng: random.Random) -> str:
        if item.category == "rank":
            n = len(item.table.rows)
            return str(rng.choice([k for k in range(1, n + 1) if str(k) != item.solved.answer]))
        return _wrong_number(item.solved.answer, rng)

    def _is_canonical(self, answer: str) -> bool:
        return canonical_number(answer) == answer

    def _loose_answer(self, text: str) -> str | None:
        numbers = _ANY_NUMBER.findall(text)
        return canonical_number(numbers[-1]) if numbers else None

    def _answer_styles(self) -> tuple[_Style, ...]:
        return _number_styles()

    def extract_answer(self, output: str) -> str | None:
        """The number on the first ``Answer:`` line, canonical (``"8.0"`` -> ``"8"``); else ``None``."""
        text = self._answer_text(output)
        return None if text is None else canonical_number(text.rstrip("."))
