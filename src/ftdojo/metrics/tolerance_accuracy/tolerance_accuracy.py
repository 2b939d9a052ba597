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

from typing import Any

import datasets
import evaluate

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
class ToleranceAccuracy(evaluate.Metric):  # type: ignore[misc]  # evaluate ships no type information
    """Accuracy with ±10% relative tolerance on numeric references; ``None`` predictions are wrong."""

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
        if len(predictions) != len(references):  # evaluate checks this too; kept for direct calls
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        item_scores = [
            0.0 if (ref := _decode(r)) is None else tolerance_scores([_decode(p)], [ref])[0]
            for p, r in zip(predictions, references, strict=True)
        ]
        score = sum(item_scores) / len(item_scores) if item_scores else 0.0
        return {"tolerance_accuracy": score, "item_scores": item_scores}
