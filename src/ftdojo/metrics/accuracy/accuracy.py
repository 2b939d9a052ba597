"""Exact-match accuracy over extracted answers, as a local Hugging Face ``evaluate`` module.

This file is loaded by path (``evaluate.load("<dir>/accuracy")``), never imported as part
of the ``ftdojo`` package: ``evaluate`` copies it into its modules cache and imports the
copy, so it must stay a single self-contained script with library imports only.

Predictions are the answers a task's ``extract_answer`` read out of model outputs;
``None`` means the output did not meet the answer format and is scored as wrong.
References are the normalised reference answers. Both are compared as exact strings:
normalisation is the task's job, so that every metric sees the same canonical forms.

An empty input scores 0.0: no item was answered correctly, and a run that evaluated
nothing must never look better than one that evaluated something.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

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

_CITATION = ""

# evaluate type-checks only the first element of each column (a None there raises, a
# None further down passes), so None is swapped for this sentinel on the way in and
# back on the way out. The NUL bytes keep it from ever equalling a real answer.
_NO_ANSWER = "\x00ftdojo:no-answer\x00"


def _encode(values: Any) -> Any:
    if values is None:  # argument not given: leave evaluate's own error handling alone
        return None
    return [_NO_ANSWER if v is None else v for v in values]


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):  # type: ignore[misc]  # evaluate ships no type information
    """Exact-match accuracy with ``None`` predictions scored as wrong."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # Arrow string columns hold nulls, so a None prediction survives the trip
            # through evaluate's buffer unchanged (it is not coerced to "None").
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def add_batch(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> None:
        """Add a batch of predictions (``None`` = format not met) and references.

        evaluate appends its inputs description here, so this docstring must exist.
        """
        # compute() goes through add_batch as well, so this covers both entry points.
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
            1.0 if p is not None and p != _NO_ANSWER and r is not None and r != _NO_ANSWER and p == r else 0.0
            for p, r in zip(predictions, references, strict=True)
        ]
        score = sum(item_scores) / len(item_scores) if item_scores else 0.0
        return {"accuracy": score, "item_scores": item_scores}
