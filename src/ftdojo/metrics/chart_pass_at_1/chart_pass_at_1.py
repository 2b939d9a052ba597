"""Pass@1 of chart code, run in a sandbox and checked against its table, as a local ``evaluate`` module.

This file is loaded by path and copied into evaluate's modules cache before it is
imported, so it imports ``ftdojo`` absolutely and keeps no logic of its own: the rules
and the sandbox are :mod:`ftdojo.scoring.charts`, tested directly there.
"""

from __future__ import annotations

import evaluate

from ftdojo.scoring import mean_score, metric_module
from ftdojo.scoring.charts import chart_item_scores

_DESCRIPTION = (
    "Fraction of items whose code (one greedy sample, hence pass@1) runs without error in a sandbox "
    "(fresh directory holding table.csv, pd and plt imported, Agg backend, no network, time and memory "
    "limits) and leaves a figure holding a chart of the asked kind (bar, horizontal_bar, line, pie, "
    "scatter), and no chart of another kind, whose data equal the table's column in table order: bar "
    "heights, bar widths, line y values, pie wedge fractions y/sum(y), or scatter (x, y) offsets, within "
    "rel_tol 1e-6. Rules: ftdojo.scoring.charts. A None prediction is wrong; empty input scores 0.0."
)


_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str or None): code extracted from model outputs; None = no code block.
    references (list of str): JSON documents {"csv": table text, "kind": chart kind, "x": column,
        "y": column}.
Returns:
    chart_pass_at_1 (float): mean item score, in [0, 1]; 0.0 for empty input.
    item_scores (list of float): 1.0 for each passing item, 0.0 for each failing one.
Examples:
    >>> m = evaluate.load("path/to/ftdojo/metrics/chart_pass_at_1")
    >>> ref = '{"csv": "Symbol,Mass\\\\nNa,22.99\\\\nMg,24.305", "kind": "bar", "x": "Symbol", "y": "Mass"}'
    >>> good = "df = pd.read_csv('table.csv')\\nplt.bar(df['Symbol'], df['Mass'])"
    >>> m.compute(predictions=[good, None], references=[ref, ref])
    {'chart_pass_at_1': 0.5, 'item_scores': [1.0, 0.0]}
"""


# metric_module is imported as a module, not its class by name: evaluate takes the first
# Metric subclass in this namespace as the metric, and that must be the one below.
@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ChartPassAt1(metric_module.AnswerMetric):
    """Pass@1 of sandboxed chart code; ``None`` predictions score 0."""

    metric_name = "chart_pass_at_1"
    metric_description = _DESCRIPTION
    metric_inputs = _KWARGS_DESCRIPTION

    def score(self, predictions: list[str | None], references: list[str | None]) -> tuple[float, list[float]]:
        # A missing reference can only come from a broken task; the scorer rejects "" loudly.
        items = chart_item_scores(predictions, [r or "" for r in references])
        return mean_score(items), items
