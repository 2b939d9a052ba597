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

from typing import Any

import datasets
import evaluate

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

_CITATION = ""

# evaluate type-checks only the first element of each column, so None is swapped for a
# sentinel on the way in and back on the way out (as in the accuracy metric). The NUL
# bytes keep it from ever being a real answer.
_NO_ANSWER = "\x00ftdojo:no-answer\x00"


def _encode(values: Any) -> Any:
    if values is None:  # argument not given: leave evaluate's own error handling alone
        return None
    return [_NO_ANSWER if v is None else v for v in values]


def _decode(value: str | None) -> str | None:
    return None if value is None or value == _NO_ANSWER else value


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MacroF1(evaluate.Metric):  # type: ignore[misc]  # evaluate ships no type information
    """Macro-F1 over label sets; ``None`` predictions are the empty set."""

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
        """Add a batch of predictions (``None`` = format not met) and references.

        evaluate appends its inputs description here, so this docstring must exist.
        """
        super().add_batch(predictions=_encode(predictions), references=_encode(references), **kwargs)

    def add(self, *, prediction: Any = None, reference: Any = None, **kwargs: Any) -> None:
        """Add one prediction (``None`` = format not met) and its reference.

        evaluate appends its inputs description here, so this docstring must exist.
        """
        super().add(
            prediction=_NO_ANSWER if prediction is None else prediction,
            reference=_NO_ANSWER if reference is None else reference,
            **kwargs,
        )

    def _compute(self, predictions: list[str | None], references: list[str | None]) -> dict[str, Any]:
        # A missing reference can only come from a broken task; it is the empty set.
        score, item_scores = macro_f1(
            [_decode(p) for p in predictions], [_decode(r) or "" for r in references]
        )
        return {"macro_f1": score, "item_scores": item_scores}
