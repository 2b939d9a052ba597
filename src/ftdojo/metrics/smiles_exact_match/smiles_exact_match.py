"""Canonical-SMILES exact match via RDKit, as a local Hugging Face ``evaluate`` module.

This file is loaded by path and copied into evaluate's modules cache before it is
imported, so it imports ``ftdojo`` absolutely and keeps no logic of its own: the scoring
rule is :func:`ftdojo.scoring.chemistry.smiles_match`, tested directly there.
"""

from __future__ import annotations

import evaluate

from ftdojo.scoring import metric_module
from ftdojo.scoring.chemistry import smiles_match

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


# metric_module is imported as a module, not its class by name: evaluate takes the first
# Metric subclass in this namespace as the metric, and that must be the one below.
@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SmilesExactMatch(metric_module.AnswerMetric):
    """Canonical-SMILES exact match via RDKit; ``None`` predictions score 0."""

    metric_name = "smiles_exact_match"
    metric_description = _DESCRIPTION
    metric_inputs = _KWARGS_DESCRIPTION

    def score(self, predictions: list[str | None], references: list[str | None]) -> tuple[float, list[float]]:
        return metric_module.score_each(smiles_match, predictions, references)
