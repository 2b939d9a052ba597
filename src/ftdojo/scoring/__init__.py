"""Plain, typed scoring logic behind the shipped metrics.

The metric scripts in :mod:`ftdojo.metrics` are thin ``evaluate`` wrappers that import
from here, so that the scoring rules can be tested directly and reused by tasks.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["mean_score"]


def mean_score(item_scores: Sequence[float]) -> float:
    """The mean item score; 0.0 for no items (a run that evaluated nothing never looks good)."""
    return sum(item_scores) / len(item_scores) if item_scores else 0.0
