"""The body every shipped ``evaluate`` metric module shares.

Each metric under ``ftdojo/metrics/<name>/<name>.py`` is loaded by path and subclasses
:class:`AnswerMetric`, adding only its name, its descriptions and :meth:`AnswerMetric.score`.
What lives here is the part that was the same in all of them:

- **``None`` predictions.** A ``None`` prediction means the output missed the answer
  format. evaluate type-checks only the first element of each column (a ``None`` there
  raises, a ``None`` further down passes), so ``None`` is swapped for :data:`NO_ANSWER`
  on the way in and back on the way out, and :meth:`AnswerMetric.score` only ever sees
  ``None``. The NUL bytes keep the sentinel from ever equalling a real answer.
- **The contract:** ``compute`` returns ``{<name>: score, "item_scores": [...]}``, one
  item score per prediction, and raises ``ValueError`` for columns of different lengths.

A metric script must import this *module*, not the class: evaluate takes the first
:class:`evaluate.EvaluationModule` subclass it finds in the script's namespace as the
metric, so a base class imported by name would be picked instead of the script's own.

This module imports ``evaluate`` (and through it ``datasets`` and torch); only metric
scripts, which run in workers, import it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import datasets
import evaluate

from ftdojo.scoring import mean_score

__all__ = ["NO_ANSWER", "AnswerMetric", "decode", "encode", "mean_score", "score_each"]

NO_ANSWER = "\x00ftdojo:no-answer\x00"


def encode(values: Any) -> Any:
    """``values`` with each ``None`` swapped for :data:`NO_ANSWER` (``None`` itself: not given, unchanged)."""
    if values is None:  # leave evaluate's own "missing argument" handling alone
        return None
    return [NO_ANSWER if v is None else v for v in values]


def score_each(
    item_score: Callable[[str | None, str], float],
    predictions: list[str | None],
    references: list[str | None],
) -> tuple[float, list[float]]:
    """The mean of ``item_score`` over the items, and the item scores.

    A missing reference can only come from a broken task; it is passed on as ``""``,
    which the item scorers reject or score 0.
    """
    items = [item_score(p, r or "") for p, r in zip(predictions, references, strict=True)]
    return mean_score(items), items


def decode(value: str | None) -> str | None:
    """The inverse of :func:`encode` for one value."""
    return None if value is None or value == NO_ANSWER else value


class AnswerMetric(evaluate.Metric, abc.ABC):  # type: ignore[misc]  # evaluate ships no type information
    """A metric over string answers (``None`` = format not met) and string references.

    Subclasses set :attr:`metric_name`, :attr:`metric_description` and
    :attr:`metric_inputs` and implement :meth:`score`. (Not ``description`` and
    ``inputs_description``: evaluate defines those as properties reading the module
    info.) The class is abstract, so evaluate would skip it even if a script imported
    it by name.
    """

    metric_name: ClassVar[str]
    metric_description: ClassVar[str]
    metric_inputs: ClassVar[str]

    @abc.abstractmethod
    def score(self, predictions: list[str | None], references: list[str | None]) -> tuple[float, list[float]]:
        """The aggregate score and one item score per prediction, both in [0, 1]."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self.metric_description,
            citation="",
            inputs_description=self.metric_inputs,
            # Arrow string columns hold nulls, so a None that is not in the first row
            # survives the trip through evaluate's buffer unchanged (not as "None").
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def add_batch(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> None:
        """Add a batch of predictions (``None`` = format not met) and references.

        evaluate appends its inputs description here, so this docstring must exist.
        """
        # compute() goes through add_batch as well, so this covers both entry points.
        super().add_batch(predictions=encode(predictions), references=encode(references), **kwargs)

    def add(self, *, prediction: Any = None, reference: Any = None, **kwargs: Any) -> None:
        """Add one prediction (``None`` = format not met) and its reference.

        evaluate appends its inputs description here, so this docstring must exist.
        """
        super().add(
            prediction=NO_ANSWER if prediction is None else prediction,
            reference=NO_ANSWER if reference is None else reference,
            **kwargs,
        )

    def _compute(self, predictions: list[str | None], references: list[str | None]) -> dict[str, Any]:
        if len(predictions) != len(references):  # evaluate checks this too; kept for direct calls
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        score, item_scores = self.score([decode(p) for p in predictions], [decode(r) for r in references])
        return {self.metric_name: score, "item_scores": item_scores}
