"""Accuracy with a relative tolerance for numbers, as a local Hugging Face ``evaluate`` module.

Loaded by path (``evaluate.load("<dir>/tolerance_accuracy")``): ``evaluate`` copies this
script into its modules cache and imports the copy, so it imports the scoring rule from
the installed package by absolute name. The rule lives in :mod:`ftdojo.scoring.numeric`:

- a numeric reference ``r`` is matched by a numeric prediction ``p`` with
  ``|p - r| <= 0.10 * |r|`` (so a reference of 0 needs exactly 0, and a negative
  reference needs a negative prediction);
- any other reference is matched by the same label after case-insensitive
  normalisation (spacing and end punctuation ignored);
- a ``None`` prediction (answer format not met) is wrong; empty input scores 0.0.
"""

from __future__ import annotations

import evaluate

from ftdojo.scoring import mean_score, metric_module
from ftdojo.scoring.numeric import tolerance_scores

_DESCRIPTION = (
    "Fraction of items answered right: numbers within 10% of the reference (relative to its "
    "magnitude; a reference of 0 needs exactly 0), other answers by case-insensitive normalised "
    "match. A None prediction counts as wrong; empty input scores 0.0."
)


_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str or None): answers extracted from model outputs; None = format not met.
    references (list of str): reference answers (a number, or a label such as "increasing").
Returns:
    tolerance_accuracy (float): in [0, 1]; 0.0 for empty input.
    item_scores (list of float): 1.0 for each right item, 0.0 for each wrong one.
Examples:
    >>> metric = evaluate.load("path/to/ftdojo/metrics/tolerance_accuracy")
    >>> metric.compute(predictions=["10.5", "Positive", None], references=["10", "positive", "3"])
    {'tolerance_accuracy': 0.6666666666666666, 'item_scores': [1.0, 1.0, 0.0]}
"""


# metric_module is imported as a module, not its class by name: evaluate takes the first
# Metric subclass in this namespace as the metric, and that must be the one below.
@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ToleranceAccuracy(metric_module.AnswerMetric):
    """Accuracy with ±10% relative tolerance on numeric references; ``None`` predictions are wrong."""

    metric_name = "tolerance_accuracy"
    metric_description = _DESCRIPTION
    metric_inputs = _KWARGS_DESCRIPTION

    def score(self, predictions: list[str | None], references: list[str | None]) -> tuple[float, list[float]]:
        items = [
            0.0 if r is None else tolerance_scores([p], [r])[0]
            for p, r in zip(predictions, references, strict=True)
        ]
        return mean_score(items), items
