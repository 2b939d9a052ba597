"""Canonical-SMILES exact match via RDKit, as a local Hugging Face ``evaluate`` module.

This file is loaded by path and copied into evaluate's modules cache before it is
imported, so it imports ``ftdojo`` absolutely and keeps no logic of its own: the scoring
rule is :func:`ftdojo.scoring.chemistry.smiles_match`, tested directly there.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from ftdojo.scoring.chemistry import mean_score, smiles_match

_DESCRIPTION = (
    "Fraction of items whose predicted SMILES is a valid molecule with the same RDKit canonical "
    "SMILES as the reference. An invalid SMILES or a None prediction (answer format not met) is "
    "wrong; empty input scores 0.0."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str or None): SMILES extracted from model outputs; None = format not met.
    references (list of str): reference SMILES (any valid form; compared after canonicalisation).
Returns:
    smiles_exact_match (float): mean item score, in [0, 1]; 0.0 for empty input.
    item_scores (list of float): 1.0 for each right item, 0.0 for each wrong one.
Examples:
    >>> m = evaluate.load("path/to/ftdojo/metrics/smiles_exact_match")
    >>> m.compute(predictions=["OCC", "C1CC1", None], references=["CCO", "CCC", "C"])
    {'smiles_exact_match': 0.3333333333333333, 'item_scores': [1.0, 0.0, 0.0]}
"""

_CITATION = ""

# evaluate type-checks only the first element of each column (a None there raises), so
# None is swapped for this sentinel on the way in and back on the way out. The NUL bytes
# keep it from ever being a SMILES.
_NO_ANSWER = "\x00ftdojo:no-answer\x00"


def _encode(values: Any) -> Any:
    if values is None:  # argument not given: leave evaluate's own error handling alone
        return None
    return [_NO_ANSWER if v is None else v for v in values]


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SmilesExactMatch(evaluate.Metric):  # type: ignore[misc]  # evaluate ships no type information
    """Canonical-SMILES exact match via RDKit; ``None`` predictions score 0."""

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
            prediction=_NO_ANSWER if prediction is None else prediction, reference=reference, **kwargs
        )

    def _compute(self, predictions: list[str | None], references: list[str]) -> dict[str, Any]:
        if len(predictions) != len(references):  # evaluate checks this too; kept for direct calls
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        item_scores = [
            smiles_match(None if p is None or p == _NO_ANSWER else p, r)
            for p, r in zip(predictions, references, strict=True)
        ]
        return {"smiles_exact_match": mean_score(item_scores), "item_scores": item_scores}
