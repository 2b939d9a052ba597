"""Pass@1 of chart code, run in a sandbox and checked against its table, as a local ``evaluate`` module.

This file is loaded by path and copied into evaluate's modules cache before it is
imported, so it imports ``ftdojo`` absolutely and keeps no logic of its own: the rules
and the sandbox are :mod:`ftdojo.scoring.charts`, tested directly there.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from ftdojo.scoring.charts import chart_item_scores, mean_score

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

_CITATION = ""

# evaluate type-checks only the first element of each column (a None there raises), so
# None is swapped for this sentinel on the way in and back on the way out. The NUL bytes
# keep it from ever being code anyone wrote.
_NO_ANSWER = "\x00ftdojo:no-answer\x00"


def _encode(values: Any) -> Any:
    if values is None:  # argument not given: leave evaluate's own error handling alone
        return None
    return [_NO_ANSWER if v is None else v for v in values]


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ChartPassAt1(evaluate.Metric):  # type: ignore[misc]  # evaluate ships no type information
    """Pass@1 of sandboxed chart code; ``None`` predictions score 0."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def add_batch(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> None:
        """Add a batch of predictions (``None`` = no code block) and references.

        evaluate appends its inputs description here, so this docstring must exist.
        """
        super().add_batch(predictions=_encode(predictions), references=_encode(references), **kwargs)

    def add(self, *, prediction: Any = None, reference: Any = None, **kwargs: Any) -> None:
        """Add one prediction (``None`` = no code block) and its reference.

        evaluate appends its inputs description here, so this docstring must exist.
        """
        super().add(
            prediction=_NO_ANSWER if prediction is None else prediction, reference=reference, **kwargs
        )

    def _compute(self, predictions: list[str | None], references: list[str]) -> dict[str, Any]:
        if len(predictions) != len(references):  # evaluate checks this too; kept for direct calls
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        item_scores = chart_item_scores(
            [None if p is None or p == _NO_ANSWER else p for p in predictions], references
        )
        return {"chart_pass_at_1": mean_score(item_scores), "item_scores": item_scores}
