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

import evaluate

from ftdojo.scoring import metric_module
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


# metric_module is imported as a module, not its class by name: evaluate takes the first
# Metric subclass in this namespace as the metric, and that must be the one below.
@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GoldHitRate(metric_module.AnswerMetric):
    """Hit iff every predicted paragraph is a gold paragraph; ``None`` predictions miss."""

    metric_name = "gold_hit_rate"
    metric_description = _DESCRIPTION
    metric_inputs = _KWARGS_DESCRIPTION

    def score(self, predictions: list[str | None], references: list[str | None]) -> tuple[float, list[float]]:
        # A missing reference can only come from a broken task; it names no paragraph.
        return gold_hit_rate(predictions, [r or "" for r in references])
