"""Exact-match accuracy over extracted answers, as a local Hugging Face ``evaluate`` module.

This file is loaded by path (``evaluate.load("<dir>/accuracy")``), never imported as part
of the ``ftdojo`` package: ``evaluate`` copies it into its modules cache and imports the
copy, so it imports ``ftdojo`` by absolute name (the shared body is
:mod:`ftdojo.scoring.metric_module`).

Predictions are the answers a task's ``extract_answer`` read out of model outputs;
``None`` means the output did not meet the answer format and is scored as wrong.
References are the normalised reference answers. Both are compared as exact strings:
normalisation is the task's job, so that every metric sees the same canonical forms.

An empty input scores 0.0: no item was answered correctly, and a run that evaluated
nothing must never look better than one that evaluated something.
"""

from __future__ import annotations

import evaluate

from ftdojo.scoring import mean_score, metric_module

_DESCRIPTION = (
    "Fraction of items whose extracted answer equals the reference exactly. "
    "A None prediction (answer format not met) counts as wrong; empty input scores 0.0."
)


_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str or None): answers extracted from model outputs; None = format not met.
    references (list of str): reference answers, in the same normalised form.
Returns:
    accuracy (float): in [0, 1]; 0.0 for empty input.
    item_scores (list of float): 1.0 for each right item, 0.0 for each wrong one.
Examples:
    >>> acc = evaluate.load("path/to/ftdojo/metrics/accuracy")
    >>> acc.compute(predictions=["8", None, "3"], references=["8", "5", "4"])
    {'accuracy': 0.3333333333333333, 'item_scores': [1.0, 0.0, 0.0]}
"""


# metric_module is imported as a module, not its class by name: evaluate takes the first
# Metric subclass in this namespace as the metric, and that must be the one below.
@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(metric_module.AnswerMetric):
    """Exact-match accuracy; ``None`` predictions are wrong."""

    metric_name = "accuracy"
    metric_description = _DESCRIPTION
    metric_inputs = _KWARGS_DESCRIPTION

    def score(self, predictions: list[str | None], references: list[str | None]) -> tuple[float, list[float]]:
        items = [
            1.0 if p is not None and r is not None and p == r else 0.0
            for p, r in zip(predictions, references, strict=True)
        ]
        return mean_score(items), items
