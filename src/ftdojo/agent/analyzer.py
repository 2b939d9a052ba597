"""Multi-level feedback analysis: execution, data, training and evaluation → findings."""

from __future__ import annotations

import math

import attrs

from ftdojo.agent.protocols import Diagnosis, Finding, FindingKind
from ftdojo.feedback import ErrorKind, Feedback
from ftdojo.results import Trial

__all__ = ["ACTIONS", "FAILURE_FINDINGS", "RuleAnalyzer"]

#: The finding each kind of failed execution stands for.
FAILURE_FINDINGS: dict[ErrorKind, FindingKind] = {
    ErrorKind.DIVERGED: FindingKind.DIVERGENCE,
    ErrorKind.OOM: FindingKind.OUT_OF_MEMORY,
    ErrorKind.TIMEOUT: FindingKind.TIMEOUT,
    ErrorKind.DATA: FindingKind.DATA_FAILURE,
    ErrorKind.CONFIG: FindingKind.CONFIG_FAILURE,
    ErrorKind.ENV: FindingKind.ENV_FAILURE,
    ErrorKind.VIOLATION: FindingKind.SANDBOX_VIOLATION,
    ErrorKind.DISK: FindingKind.DISK_QUOTA,
}


#: The change each finding suggests, in the plan's own field names.
ACTIONS: dict[FindingKind, str] = {
    FindingKind.DIVERGENCE: "lower train.learning_rate (a quarter) and clip gradients (train.max_grad_norm)",
    FindingKind.OUT_OF_MEMORY: "halve train.batch_size, double train.grad_accum; or shorten train.max_length",
    FindingKind.TIMEOUT: "fewer train.epochs or fewer records (data.max_records)",
    FindingKind.TOKEN_BUDGET: "fewer train.epochs or fewer records (data.max_records), to fit the "
    "trained tokens left in the budget",
    FindingKind.DATA_FAILURE: "fix or drop data.transform_code, or drop the source the error names",
    FindingKind.CONFIG_FAILURE: "fix the plan field the error names",
    FindingKind.ENV_FAILURE: "retry; if it repeats, simplify the plan (no transform, full precision)",
    FindingKind.DISK_QUOTA: "fewer records (data.max_records), or LoRA (train.method) to save an adapter, "
    "not a whole model",
    FindingKind.SANDBOX_VIOLATION: "drop what in data.transform_code reaches outside the trial's data "
    "(other files, the network, processes, native code)",
    FindingKind.TRUNCATION: "raise train.max_length within the context, or accept fewer long records",
    FindingKind.NOISY_SOURCE: "drop the source, or keep it only with data.verified_only",
    FindingKind.UNDERFITTING: "more train.epochs, or a higher train.learning_rate",
    FindingKind.OVERFITTING: "fewer train.epochs, or more and more varied data",
    FindingKind.FORMAT_NONCOMPLIANCE: "keep data.include_rationale with the answer format in every target; "
    "train longer",
    FindingKind.WEAK_CATEGORY: "add sources with more examples of the category",
    FindingKind.REGRESSION: "undo the change from the parent, or go the other way",
    FindingKind.IMPROVEMENT: "keep the change; a further step the same way may help",
}


class RuleAnalyzer:
    """Deterministic rules over the four feedback levels.

    Thresholds are plain attributes so a user can tune them without subclassing.
    """

    format_threshold: float = 0.9
    underfit_ratio: float = 0.6  # final loss above this share of the first loss
    overfit_loss: float = 0.05
    weak_category_gap: float = 0.25
    too_long_share: float = 0.05
    noisy_share: float = 0.1

    def analyze(self, trial: Trial, parent: Trial | None) -> Diagnosis:
        fb = trial.feedback
        findings: list[Finding] = []
        findings.extend(self._execution(fb))
        findings.extend(self._data(fb))
        findings.extend(self._training(fb))
        findings.extend(self._evaluation(fb, parent))
        findings = [f if f.action else attrs.evolve(f, action=ACTIONS.get(f.kind, "")) for f in findings]
        return Diagnosis(trial_id=trial.trial_id, findings=tuple(findings))

    def _execution(self, fb: Feedback) -> list[Finding]:
        training = fb.training
        # A NaN anywhere in the curve is divergence, whatever the exit path said.
        if training is not None and (
            training.diverged or any(not math.isfinite(p.loss) for p in training.losses)
        ):
            bad = next((p for p in training.losses if not math.isfinite(p.loss)), None)
            where = f"loss {bad.loss} at step {bad.step}" if bad else "the trainer reported divergence"
            return [Finding(kind=FindingKind.DIVERGENCE, evidence=where)]
        if fb.execution.ok or fb.execution.error_kind is None:
            return []
        stage = fb.execution.failed_stage.value if fb.execution.failed_stage else "?"
        cause = fb.execution.root_cause.strip() or "no root cause captured"
        return [
            Finding(
                kind=FAILURE_FINDINGS[fb.execution.error_kind],
                evidence=f"{fb.execution.error_kind.value} in stage {stage}: {cause[:300]}",
            )
        ]

    def _data(self, fb: Feedback) -> list[Finding]:
        data = fb.data
        if data is None:
            return []
        findings: list[Finding] = []
        seen = data.records + data.too_long_dropped
        if seen and data.too_long_dropped / seen > self.too_long_share:
            findings.append(
                Finding(
                    kind=FindingKind.TRUNCATION,
                    evidence=f"{data.too_long_dropped} of {seen} records longer than max_length were dropped",
                )
            )
        if data.verified_per_source:
            # Which source is noisy, not just that some are: the planner can drop or verify it.
            for source, checked in sorted(data.verified_per_source.items()):
                failed = data.failed_verification_per_source.get(source, 0)
                if checked and failed / checked > self.noisy_share:
                    findings.append(
                        Finding(
                            kind=FindingKind.NOISY_SOURCE,
                            evidence=f"{failed} of {checked} records of {source} failed verification",
                            subject=source,
                        )
                    )
            return findings
        verify = next((s for s in data.steps if s.step == "verify"), None)
        if (
            verify is not None
            and verify.records_in
            and data.failed_verification / verify.records_in > self.noisy_share
        ):
            findings.append(
                Finding(
                    kind=FindingKind.NOISY_SOURCE,
                    evidence=(
                        f"{data.failed_verification} of {verify.records_in} records failed verification"
                    ),
                )
            )
        return findings

    def _training(self, fb: Feedback) -> list[Finding]:
        training = fb.training
        if training is None or len(training.losses) < 2 or training.diverged:
            return []
        first, last = training.losses[0].loss, training.losses[-1].loss
        findings: list[Finding] = []
        tail = training.losses[-max(2, len(training.losses) // 4) :]
        still_falling = tail[-1].loss < tail[0].loss * 0.9
        if last > first * self.underfit_ratio or still_falling:
            why = "still falling at the end" if still_falling else "fell little"
            findings.append(
                Finding(
                    kind=FindingKind.UNDERFITTING,
                    evidence=f"training loss {why}: {first:.3f} → {last:.3f} over {training.steps} steps",
                )
            )
        score = fb.score
        if last < self.overfit_loss and score is not None and score < 0.5:
            findings.append(
                Finding(
                    kind=FindingKind.OVERFITTING,
                    evidence=f"training loss {last:.3f} but validation score only {score:.2f}",
                )
            )
        return findings

    def _evaluation(self, fb: Feedback, parent: Trial | None) -> list[Finding]:
        ev = fb.evaluation
        if ev is None:
            return []
        findings: list[Finding] = []
        if ev.format_compliance < self.format_threshold:
            findings.append(
                Finding(
                    kind=FindingKind.FORMAT_NONCOMPLIANCE,
                    evidence=f"{ev.format_compliance:.0%} of outputs in the required format",
                )
            )
        for category, value in sorted(ev.per_category.items()):
            if value < ev.score - self.weak_category_gap:
                findings.append(
                    Finding(
                        kind=FindingKind.WEAK_CATEGORY,
                        evidence=f"{category}: {value:.2f} against {ev.score:.2f} overall",
                        subject=category,
                    )
                )
        if parent is not None and parent.score is not None:
            if ev.score < parent.score:
                findings.append(
                    Finding(
                        kind=FindingKind.REGRESSION,
                        evidence=f"{ev.score:.3f} against parent {parent.trial_id} at {parent.score:.3f}",
                        subject=parent.trial_id,
                    )
                )
            elif ev.score > parent.score:
                findings.append(
                    Finding(
                        kind=FindingKind.IMPROVEMENT,
                        evidence=f"{ev.score:.3f} against parent {parent.trial_id} at {parent.score:.3f}",
                        subject=parent.trial_id,
                    )
                )
        return findings
