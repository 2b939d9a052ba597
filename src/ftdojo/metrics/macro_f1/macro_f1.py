"""Macro-averaged F1 over label sets, as a local Hugging Face ``evaluate`` module.

Loaded by path (``evaluate.load("<dir>/macro_f1")``): ``evaluate`` copies this script into
its modules cache and imports the copy, so it imports the scoring rule from the installed
package by absolute name. The rule lives in :mod:`ftdojo.scoring.labels`:

- each prediction and reference is a set of labels (``"A,C"``, ``"a and c"`` and
  ``'["C", "A"]'`` are the same set; a single-label answer such as ``"103"`` is a set of
  one); a ``None`` prediction (answer format not met) is the empty set;
- per label, F1 = 2 TP / (2 TP + FP + FN), over the labels that occur in at least one
  reference or prediction (a label that occurs nowhere is left out: its F1 would be 0/0;
  a label only ever predicted scores 0); macro-F1 is their unweighted mean;
- the item score is 1.0 iff the prediction is not ``None`` and its set equals the
  reference's exactly; empty input scores 0.0.
"""

from __future__ import annotations

import evaluate

from ftdojo.scoring import metric_module
from ftdojo.scoring.labels import macro_f1

_DESCRIPTION = (
    "Macro-averaged F1 over labels: label sets are compared per label (F1 = 2TP/(2TP+FP+FN)) "
    "over every label that occurs in a reference or a prediction, then averaged unweighted. "
    "A None prediction is the empty set; an item scores 1.0 iff its label set is exactly right; "
    "empty input scores 0.0."
)


_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str or None): label sets extracted from model outputs ("A,C");
        None = format not met (the empty set, and item score 0).
    references (list of str): reference label sets ("B,E", or one label such as "103").
Returns:
    macro_f1 (float): in [0, 1]; 0.0 for empty input.
    item_scores (list of float): 1.0 for each exactly right label set, 0.0 otherwise.
Examples:
    >>> metric = evaluate.load("path/to/ftdojo/metrics/macro_f1")
    >>> metric.compute(predictions=["A,C", "B", None], references=["A,C", "A,B", "C"])
    {'macro_f1': 0.7777777777777777, 'item_scores': [1.0, 0.0, 0.0]}
"""


# metric_module is imported as a module, not its class by name: evaluate takes the first
# Metric subclass in this namespace as the metric, and that must be the one below.
@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MacroF1(metric_module.AnswerMetric):
    """Macro-F1 over label sets; ``None`` predictions are the empty set."""

    metric_name = "macro_f1"
    metric_description = _DESCRIPTION
    metric_inputs = _KWARGS_DESCRIPTION

    def score(self, predictions: list[str | None], references: list[str | None]) -> tuple[float, list[float]]:
        # A missing reference can only come from a broken task; it is the empty set.
        return macro_f1(predictions, [r or "" for r in references])
