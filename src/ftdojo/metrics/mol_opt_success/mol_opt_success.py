"""Success of a molecule property optimization (RDKit), as a local Hugging Face ``evaluate`` module.

This file is loaded by path and copied into evaluate's modules cache before it is
imported, so it imports ``ftdojo`` absolutely and keeps no logic of its own: the scoring
rule is :func:`ftdojo.scoring.chemistry.optimization_success`, tested directly there.
"""

from __future__ import annotations

import evaluate

from ftdojo.scoring import metric_module
from ftdojo.scoring.chemistry import optimization_success

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


# metric_module is imported as a module, not its class by name: evaluate takes the first
# Metric subclass in this namespace as the metric, and that must be the one below.
@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MolOptSuccess(metric_module.AnswerMetric):
    """Success of a molecule property optimization, checked with RDKit; ``None`` predictions score 0."""

    metric_name = "mol_opt_success"
    metric_description = _DESCRIPTION
    metric_inputs = _KWARGS_DESCRIPTION

    def score(self, predictions: list[str | None], references: list[str | None]) -> tuple[float, list[float]]:
        return metric_module.score_each(optimization_success, predictions, references)
