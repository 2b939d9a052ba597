"""Gold hit rate for paragraph identification, as a local Hugging Face ``evaluate`` module.

Loaded by path (``evaluate.load("<dir>/gold_hit_rate")``): ``evaluate`` copies this script
into its modules cache and imports the copy, so it imports the scoring rule from the
installed package by absolute name. The rule lives in :mod:`ftdojo.scoring.labels`:

- a reference names the gold paragraph number(s), one or more (``"3"`` or ``"3,5"``);
- a prediction is a hit iff it names at least one paragraph and every paragraph it names
  is gold (``"3"``, ``"0003"`` and ``"[0003]"`` are paragraph 3); naming a non-gold
  paragraph besides a gold one is a miss, so listing every paragraph does not pay;
- a ``None`` prediction (answer format not met) is a miss; empty input scores 0.0.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from ftdojo.scoring.labels import gold_hit_rate

_DESCRIPTION = (
    "Fraction of items whose predicted paragraph number(s) all lie in the reference's gold set "
    "(one or more gold paragraphs per item). A None prediction is a miss; empty input scores 0.0."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str or None): paragraph numbers extracted from model outputs ("3");
        None = format not met.
    references (list of str): the gold paragraph number(s) of each item ("3" or "3,5").
Returns:
    gold_hit_rate (float): in [0, 1]; 0.0 for empty input.
    item_scores (list of float): 1.0 for each hit, 0.0 for each miss.
Examples:
    >>> metric = evaluate.load("path/to/ftdojo/metrics/gold_hit_rate")
    >>> metric.compute(predictions=["5", "2", None], references=["3,5", "4", "1"])
    {'gold_hit_rate': 0.3333333333333333, 'item_scores': [1.0, 0.0, 0.0]}
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
class GoldHitRate(evaluate.Metric):  # type: ignore[misc]  # evaluate ships no type information
    """Hit iff every predicted paragraph is a gold paragraph; ``None`` predictions miss."""

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
        score, item_scores = gold_hit_rate(
            [_decode(p) for p in predictions], [_decode(r) or "" for r in references]
        )
        return {"gold_hit_rate": score, "item_scores": item_scores}
