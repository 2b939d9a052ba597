"""Correctness of a requested molecule edit, checked with RDKit, as a local Hugging Face ``evaluate`` module.

This file is loaded by path and copied into evaluate's modules cache before it is
imported, so it imports ``ftdojo`` absolutely and keeps no logic of its own: the scoring
rule is :func:`ftdojo.scoring.chemistry.edit_correct`, tested directly there.
"""

from __future__ import annotations

import evaluate

from ftdojo.scoring import metric_module
from ftdojo.scoring.chemistry import edit_correct

_DESCRIPTION = (
    "Fraction of items whose predicted SMILES applies the requested edit (add, remove or replace one "
    "functional group) to the source molecule: the edited group's count changes as asked, every other"
    " tracked group's count and the ring count stay the same, and the heavy atoms change by exactly "
    "the group's atoms. Rules: ftdojo.scoring.chemistry. A None or invalid prediction is wrong; empty"
    " input scores 0.0."
)


_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str or None): SMILES extracted from model outputs; None = format not met.
    references (list of str): JSON documents
        {"source": SMILES, "edit": {"op", "group"[, "new_group"]}}.
Returns:
    mol_edit_correct (float): mean item score, in [0, 1]; 0.0 for empty input.
    item_scores (list of float): 1.0 for each right item, 0.0 for each wrong one.
Examples:
    >>> m = evaluate.load("path/to/ftdojo/metrics/mol_edit_correct")
    >>> ref = '{"source": "Cc1ccccc1", "edit": {"op": "add", "group": "hydroxyl"}}'
    >>> m.compute(predictions=["Cc1ccc(O)cc1", "Cc1ccc(OC)cc1"], references=[ref, ref])
    {'mol_edit_correct': 0.5, 'item_scores': [1.0, 0.0]}
"""


# metric_module is imported as a module, not its class by name: evaluate takes the first
# Metric subclass in this namespace as the metric, and that must be the one below.
@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MolEditCorrect(metric_module.AnswerMetric):
    """Correctness of a requested molecule edit, checked with RDKit; ``None`` predictions score 0."""

    metric_name = "mol_edit_correct"
    metric_description = _DESCRIPTION
    metric_inputs = _KWARGS_DESCRIPTION

    def score(self, predictions: list[str | None], references: list[str | None]) -> tuple[float, list[float]]:
        return metric_module.score_each(edit_correct, predictions, references)
