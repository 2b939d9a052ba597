"""The experiment tree: every trial, its parent, its diagnosis, the best so far."""

from __future__ import annotations

from ftdojo.agent.protocols import Diagnosis
from ftdojo.plans import DataRecipe, Plan, TrainConfig
from ftdojo.results import Trial

__all__ = ["TrialTree"]


class TrialTree:
    """In-memory tree of trials.

    Persisting it separately is unnecessary: the Dojo's journal holds every trial and
    the analyzer is deterministic, so a resumed agent rebuilds the same tree from
    ``session.history``.
    """

    def __init__(self) -> None:
        self._trials: list[Trial] = []
        self._diagnoses: dict[str, Diagnosis] = {}
        self._tried: set[tuple[DataRecipe, TrainConfig]] = set()

    def record(self, trial: Trial, diagnosis: Diagnosis) -> None:
        self._trials.append(trial)
        self._diagnoses[trial.trial_id] = diagnosis
        self._tried.add(trial.plan.fingerprint())

    def mark_tried(self, plan: Plan) -> None:
        """Remember a plan that was rejected before it ran, so it is not proposed again."""
        self._tried.add(plan.fingerprint())

    def tried(self, plan: Plan) -> bool:
        return plan.fingerprint() in self._tried

    def best(self) -> Trial | None:
        scored = [t for t in self._trials if t.feedback.ok and t.score is not None]
        if not scored:
            return None
        return max(scored, key=lambda t: (t.score, -self._trials.index(t)))

    def diagnosis(self, trial_id: str) -> Diagnosis | None:
        return self._diagnoses.get(trial_id)

    def children(self, trial_id: str | None) -> tuple[Trial, ...]:
        return tuple(t for t in self._trials if t.plan.parent == trial_id)

    def get(self, trial_id: str) -> Trial | None:
        return next((t for t in self._trials if t.trial_id == trial_id), None)

    @property
    def trials(self) -> tuple[Trial, ...]:
        return tuple(self._trials)
