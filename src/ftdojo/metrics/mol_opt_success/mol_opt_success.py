"""Success of a molecule property optimization (RDKit), as a local Hugging Face ``evaluate`` module.

This file is loaded by path and copied into evaluate's modules cache before it is
imported, so it imports ``ftdojo`` absolutely and keeps no logic of its own: the scoring
rule is :func:`ftdojo.scoring.chemistry.optimization_success`, tested directly there.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from ftdojo.scoring.chemistry import mean_score, optimization_success

_DESCRIPTION = (
    "Fraction of items whose predicted SMILES is one valid molecule whose property (Crippen logP, QED"
    " or TPSA) moves in the asked direction by more than a small epsilon (0.1, 0.01, 1.0) while its "
    "Bemis-Murcko scaffold equals the source's. Rules: ftdojo.scoring.chemistry. A None or invalid "
    "prediction fails; empty input scores 0.0."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str or None): SMILES extracted from model outputs; None = format not met.
    references (list of str): JSON documents {"source": SMILES, "property": logp|qed|tpsa,
        "direction": increase|decrease}.
Returns:
    mol_opt_success (float): mean item score, in [0, 1]; 0.0 for empty input.
    item_scores (list of float): 1.0 for each right item, 0.0 for each wrong one.
Examples:
    >>> m = evaluate.load("path/to/ftdojo/metrics/mol_opt_success")
    >>> ref = '{"source": "Cc1ccccc1", "property": "logp", "direction": "increase"}'
    >>> m.compute(predictions=["Cc1ccc(Cl)cc1", "Cc1ccc(O)cc1"], references=[ref, ref])
    {'mol_opt_success': 0.5, 'item_scores': [1.0, 0.0]}
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
class MolOptSuccess(evaluate.Metric):  # type: ignore[misc]  # evaluate ships no type information
    """Success of a molecule property optimization, checked with RDKit; ``None`` predictions score 0."""

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
            optimization_success(None if p is None or p == _NO_ANSWER else p, r)
            for p, r in zip(predictions, references, strict=True)
        ]
        return {"mol_opt_success": mean_score(item_scores), "item_scores": item_scores}
