"""Hub tasks for table QA: TableInstruct for training, TableBench as the benchmark.

Dataset ids, configs, splits and columns, and where each comes from: ``docs/hub-tasks.md``.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ftdojo.tasks.hub._base import FieldMap, HubDataset, HubRows, HubSource, HubTask, maybe_json, text_field
from ftdojo.tasks.spec import normalize_text

__all__ = ["HubTableDataAnalysis", "HubTableFactCheck", "HubTableNumericalReasoning", "HubTableVisualization"]


_TABLEINSTRUCT = HubDataset(
    key="tableinstruct", dataset_id="Multilingual-Multimodal-NLP/TableInstruct", split="train"
)
# The paper's OpenCompass configurations evaluate the direct-prompting (DP) file.
_TABLEBENCH_DP = HubDataset(
    key="tablebench_dp",
    dataset_id="Multilingual-Multimodal-NLP/TableBench",
    data_files=("TableBench_DP.jsonl",),
    split="train",
)
_INSTRUCTION_TYPES = ("DP", "TCoT", "SCoT", "PoT")
_INSTRUCTION_NOTES = {
    "DP": "direct answers: the response is just 'Final Answer: ...'",
    "TCoT": "textual step-by-step reasoning ending in 'Final Answer: ...'",
    "SCoT": "symbolic reasoning with simulated Python steps before the final answer",
    "PoT": "Python programs that print the final answer (the response holds code, not the answer)",
}
_FINAL_ANSWER = re.compile(r"Final Answer:\s*(.*)")
_CODE_BLOCK = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_PYTHON_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL | re.IGNORECASE)


_CHART_KINDS = {"bar": "bar", "hbar": "horizontal_bar", "line": "line", "pie": "pie", "scatter": "scatter"}


def _y_series(answer: str) -> list[float] | None:
    """The one series of a TableBench ``y_references = [[...]]`` answer; ``None`` otherwise.

    The right-hand side is read with ``ast.literal_eval``: the answer is data, never run.
    """
    _, _, literal = answer.partition("=")
    try:
        value = ast.literal_eval(literal.strip()) if literal.strip() else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], list) and value[0]):
        return None
    return _numbers(value[0])


def _numbers(cells: Sequence[Any]) -> list[float] | None:
    out = []
    for cell in cells:
        try:
            number = float(str(cell).replace(",", "").strip())
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        out.append(number)
    return out


def _same_series(values: Sequence[float], series: Sequence[float]) -> bool:
    return len(values) == len(series) and all(
        math.isclose(v, r, rel_tol=1e-6, abs_tol=1e-9) for v, r in zip(values, series, strict=True)
    )


def _final_answer(text: str) -> str | None:
    """The last 'Final Answer:' line outside code: a program's print() is not its answer."""
    matches = _FINAL_ANSWER.findall(_CODE_BLOCK.sub("", text))
    if not matches:
        return None
    answer = matches[-1].strip()
    return answer or None


def _table_sources(qtype: str) -> tuple[HubSource, ...]:
    """One raw source per TableInstruct instruction type: they differ the way curated data does."""
    return tuple(
        HubSource(
            source_id=f"tableinstruct_{kind.lower()}",
            rows=(HubRows(dataset=_TABLEINSTRUCT, where=(("qtype", qtype), ("instruction_type", kind))),),
            note=f"TableInstruct {qtype} questions, {_INSTRUCTION_NOTES[kind]}.",
        )
        for kind in _INSTRUCTION_TYPES
    )


def _table_benchmark(qtype: str) -> tuple[HubRows, ...]:
    return (HubRows(dataset=_TABLEBENCH_DP, where=(("qtype", qtype),)),)


class _TableTask(HubTask):
    """TableBench: the dataset's own instruction is the prompt (table, question and format)."""

    domain = "table_qa"
    max_new_tokens = 512
    RAW_FIELDS = FieldMap(prompt="instruction", answer="response", rationale="response", category="qsubtype")
    BENCHMARK_FIELDS = FieldMap(prompt="instruction", answer="answer", category="qsubtype", item_id="id")

    def leak_keys(self, record: Mapping[str, Any], fields: FieldMap) -> set[str]:
        keys = super().leak_keys(record, fields)
        question, table = record.get("question"), maybe_json(record.get("table"))
        if isinstance(question, str) and question.strip():
            # The same question about the same table under another instruction template is
            # still the benchmark item.
            keys.add(
                "q:"
                + normalize_text(question)
                + "|t:"
                + json.dumps(table, sort_keys=True, ensure_ascii=False)
            )
        return keys

    def _canonical(self, answer: str) -> str:
        return answer.strip().rstrip(".").strip()

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        return self._canonical(text_field(record, fields.answer, self.name))

    def answer_for_training(self, record: Mapping[str, Any]) -> str:
        # As written in the data ("Yes", not the folded "yes" the metric compares).
        found = _final_answer(text_field(record, self.RAW_FIELDS.answer, self.name))
        return found.strip() if found else ""

    def rationale_of(self, record: Mapping[str, Any]) -> str:
        return text_field(record, self.RAW_FIELDS.answer, self.name).strip()

    def render_response(self, answer: str, rationale: str) -> str:
        # TableInstruct responses already end in "Final Answer: ..."; without the rationale the
        # response is that line alone, the direct-prompting format the benchmark asks for.
        return rationale if rationale else f"Final Answer: {answer}"

    def extract_answer(self, output: str) -> str | None:
        found = _final_answer(output)
        return None if found is None else self._canonical(found)


class HubTableFactCheck(_TableTask):
    name = "hub_table_fact_check"
    RAW = _table_sources("FactChecking")
    BENCHMARK = _table_benchmark("FactChecking")
    description = (
        "TableBench fact checking: decide whether a statement about a JSON table holds "
        "(MatchBased, Multi-hop FactChecking); answer on a last line 'Final Answer: ...'."
    )
    output_format = "Final Answer: <Yes/No or the asked value>"
    metric = "accuracy"
    categories = ("MatchBased", "Multi-hop FactChecking")
    max_new_tokens = 64
    stop_strings = ("\n",)

    def _canonical(self, answer: str) -> str:
        # Case and end punctuation carry no meaning in a verdict ("yes." is "Yes").
        return " ".join(answer.strip().rstrip(".").split()).casefold()


class HubTableNumericalReasoning(_TableTask):
    name = "hub_table_numerical"
    RAW = _table_sources("NumericalReasoning")
    BENCHMARK = _table_benchmark("NumericalReasoning")
    description = (
        "TableBench numerical reasoning over a JSON table: aggregation, arithmetic, comparison, "
        "counting, ranking, time-based and multi-hop calculations. Numbers count within 10 %."
    )
    output_format = "Final Answer: <number(s) or name(s)>"
    metric = "tolerance_accuracy"
    categories = (
        "Aggregation",
        "ArithmeticCalculation",
        "Comparison",
        "Counting",
        "Domain-Specific",
        "Multi-hop NumericalReasoing",  # the dataset's own spelling
        "Ranking",
        "Time-basedCalculation",
    )
    max_new_tokens = 64
    stop_strings = ("\n",)


class HubTableDataAnalysis(_TableTask):
    name = "hub_table_analysis"
    RAW = _table_sources("DataAnalysis")
    BENCHMARK = _table_benchmark("DataAnalysis")
    description = (
        "TableBench data analysis over a JSON table: anomaly detection, causal, correlation, "
        "descriptive, impact and statistical analysis, trend forecasting. Numbers count within 10 %."
    )
    output_format = "Final Answer: <value(s) or short text>"
    metric = "tolerance_accuracy"
    categories = (
        "AnomalyDetection",
        "CausalAnalysis",
        "CorrelationAnalysis",
        "DescriptiveAnalysis",
        "ImpactAnalysis",
        "StatisticalAnalysis",
        "TrendForecasting",
    )
    max_new_tokens = 256


class HubTableVisualization(_TableTask):
    """TableBench chart generation: Python (pandas + matplotlib) that draws the asked chart."""

    name = "hub_table_visualization"
    RAW = _table_sources("Visualization")
    BENCHMARK = _table_benchmark("Visualization")
    description = (
        "TableBench chart generation: write Python (pandas reads table.csv, matplotlib draws) "
        "for the asked chart. Passes when the drawn data equal the reference chart's data."
    )
    output_format = "```python\n<code>\n```"
    metric = "chart_pass_at_1"
    categories = ("ChartGeneration",)
    max_new_tokens = 512

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        """chart_pass_at_1's reference, or ``""`` (item left out) where it cannot be stated.

        TableBench states the expected chart as ``y_references = [[...], ...]`` (one list per
        series) and a ``chart_type``; the metric checks one table column drawn as one chart
        kind. An item becomes a reference when its chart type is one the metric draws
        (bar, hbar, line, pie, scatter), it has one series, and exactly one table column
        holds that series in table order (for a scatter, exactly one other numeric column is
        the x axis). Area, radar and waterfall charts and multi-series items are left out.
        """
        from ftdojo.scoring.charts import ChartReference  # lazy: only this task needs it

        kind = _CHART_KINDS.get(str(record.get("chart_type", "")).strip().lower())
        series = _y_series(text_field(record, fields.answer, self.name))
        table = maybe_json(record.get("table"))
        if kind is None or series is None or not isinstance(table, Mapping):
            return ""
        columns, data = table.get("columns"), table.get("data")
        if not isinstance(columns, list) or not isinstance(data, list) or not data:
            return ""
        header = [str(c) for c in columns]
        if len(set(header)) != len(header) or not all(
            isinstance(r, list) and len(r) == len(header) for r in data
        ):
            return ""
        numeric = {name: _numbers([row[k] for row in data]) for k, name in enumerate(header)}
        matches = [
            name for name, values in numeric.items() if values is not None and _same_series(values, series)
        ]
        if len(matches) != 1:
            return ""
        y = matches[0]
        others = [name for name in header if name != y and (kind != "scatter" or numeric[name] is not None)]
        if not others or (kind == "scatter" and len(others) != 1):
            return ""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if cell is None else str(cell) for cell in row] for row in data])
        try:
            return ChartReference(csv=buffer.getvalue(), kind=kind, x=others[0], y=y).to_json()
        except ValueError:
            return ""

    def display_reference(self, reference: str) -> str:
        try:
            ref = json.loads(reference)
        except ValueError:
            return reference
        return f"a {ref.get('kind', '?')} chart of column {ref.get('y', '?')!r} (x: {ref.get('x', '?')!r})"

    def answer_for_training(self, record: Mapping[str, Any]) -> str:
        response = text_field(record, self.RAW_FIELDS.answer, self.name)
        blocks = _PYTHON_BLOCK.findall(response)
        return blocks[-1].strip() if blocks else ""

    def render_response(self, answer: str, rationale: str) -> str:
        return rationale if rationale else f"```python\n{answer}\n```"

    def extract_answer(self, output: str) -> str | None:
        blocks = _PYTHON_BLOCK.findall(output)
        return blocks[-1].strip() if blocks and blocks[-1].strip() else None
