"""Log a Dojo run to MLflow: one parent run for the Dojo run, one nested run per trial.

Install with ``pip install 'ftdojo[mlflow]'`` (``mlflow-skinny``, with the SQLAlchemy
store for ``sqlite:`` tracking URIs). Everything comes from the run directory's journal,
so a finished, resumed or killed run can be logged at any time after the fact, and
logging never touches the run itself.

What goes where:

* parent run (named after the Dojo run id): tags ``ftdojo.run_id``, ``ftdojo.task``,
  ``ftdojo.model``, ``ftdojo.stop_reason``, ``ftdojo.isolation``, ``ftdojo.final_trial_id``,
  ``ftdojo.finished``; params ``budget.*``; metrics ``validation_score``, ``test_score``,
  ``baseline/validation_score``, ``baseline/test_score``, ``contamination/rate``,
  ``usage/*``; artifacts ``journal.jsonl``, ``result.json`` and ``report.html`` when they
  exist. A run that did not finish ends ``KILLED``.
* one nested run per trial (tag ``mlflow.parentRunId``): the plan as params with dotted
  names (:func:`ftdojo.plans.flatten_plan`); the loss curve as ``train/loss`` with its
  steps (and ``train/learning_rate``, ``train/grad_norm``); ``validation/score`` and
  ``validation/category/<name>``; ``seconds/<stage>`` and ``peak_memory_mb/<stage>``;
  a failed trial ends ``FAILED`` with tags ``ftdojo.error_kind`` and
  ``ftdojo.failed_stage``; artifacts ``trial.json`` and, for the final trial (every
  successful trial with ``all_models=True``), its adapter or model folder under ``model/``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ftdojo._version import __version__
from ftdojo.errors import ConfigError, FTDojoError
from ftdojo.plans import flatten_plan
from ftdojo.results import Trial
from ftdojo.rundir import RunRecord, plain_files, read_run, trial_model_dir
from ftdojo.serialization import to_json

__all__ = ["log_run_to_mlflow"]

#: MLflow's limits (``mlflow.utils.validation``), used when that module does not say.
_PARAM_VALUE_LIMIT = 6000
_TAG_VALUE_LIMIT = 8000
_BATCH = 100
_RUN_ID_TAG = "ftdojo.run_id"
# Run ids ftdojo makes are task-date-hex; anything else is not put in a search filter.
_SAFE_ID = re.compile(r"^[\w.\-]+$")


def _import_mlflow() -> Any:
    try:
        import mlflow
    except ImportError as exc:
        raise ConfigError(
            f"logging to MLflow needs the mlflow extra: pip install 'ftdojo[mlflow]' ({exc})"
        ) from exc
    return mlflow


def _truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _metric_key(*parts: str) -> str:
    # MLflow keys allow letters, digits, _ - . / space and colon; a category name from a
    # task may hold anything else, and must not look like a path ("..").
    cleaned = [re.sub(r"[^\w.\- ]", "_", part).strip(". ") or "_" for part in parts]
    return "/".join(cleaned)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Batch:
    """Params, metrics and tags of one MLflow run, sent in batches within MLflow's limits."""

    def __init__(self, timestamp_ms: int) -> None:
        from mlflow.entities import Metric, Param, RunTag

        self._metric, self._param, self._tag = Metric, Param, RunTag
        self.timestamp_ms = timestamp_ms
        self.metrics: list[Any] = []
        self.params: list[Any] = []
        self.tags: list[Any] = []
        try:
            from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH

            self.param_limit, self.tag_limit = int(MAX_PARAM_VAL_LENGTH), int(MAX_TAG_VAL_LENGTH)
        except ImportError:
            self.param_limit, self.tag_limit = _PARAM_VALUE_LIMIT, _TAG_VALUE_LIMIT

    def metric(self, key: str, value: float | int | None, step: int = 0) -> None:
        if value is None:
            return
        self.metrics.append(self._metric(key, float(value), self.timestamp_ms, int(step)))

    def param(self, key: str, value: Any) -> None:
        self.params.append(self._param(key, _truncate(str(value), self.param_limit)))

    def tag(self, key: str, value: Any) -> None:
        self.tags.append(self._tag(key, _truncate(str(value), self.tag_limit)))

    def send(self, client: Any, run_id: str) -> None:
        for metrics in _chunks(self.metrics, 1000):
            client.log_batch(run_id, metrics=list(metrics))
        for params in _chunks(self.params, _BATCH):
            client.log_batch(run_id, params=list(params))
        for tags in _chunks(self.tags, _BATCH):
            client.log_batch(run_id, tags=list(tags))


def _experiment_id(client: Any, name: str, artifact_location: str | None) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return str(client.create_experiment(name, artifact_location=artifact_location))
    if getattr(experiment, "lifecycle_stage", "active") == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return str(experiment.experiment_id)


def _delete_earlier(client: Any, experiment_id: str, run_id: str) -> int:
    """Delete (MLflow's soft delete) the runs an earlier call logged for this Dojo run."""
    if not _SAFE_ID.match(run_id):
        return 0
    deleted = 0
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=f"tags.`{_RUN_ID_TAG}` = '{run_id}'", page_token=token
        )
        for run in page:
            if run.data.tags.get(_RUN_ID_TAG) == run_id:
                client.delete_run(run.info.run_id)
                deleted += 1
        token = page.token
        if not token:
            return deleted


def _parent(batch: _Batch, run: RunRecord) -> None:
    batch.tag(_RUN_ID_TAG, run.run_id)
    batch.tag("ftdojo.task", run.task_name)
    batch.tag("ftdojo.model", run.model)
    batch.tag("ftdojo.finished", str(run.finished).lower())
    batch.tag("ftdojo.stop_reason", run.stop_reason or "not finished (killed, or still running)")
    batch.tag("ftdojo.isolation", run.isolation.describe() if run.isolation else "not recorded")
    batch.tag("ftdojo.final_trial_id", run.final_trial_id or "none")
    batch.tag("ftdojo.version", __version__)
    batch.tag("mlflow.note.content", _summary(run))
    batch.param("task", run.task_name)
    batch.param("model", run.model)
    for key, value in sorted((run.task.get("params") or {}).items()):
        batch.param(f"task.params.{key}", value)
    if run.budget is not None:
        batch.param("budget.max_trials", run.budget.max_trials)
        batch.param("budget.max_seconds", run.budget.max_seconds)
        batch.param("budget.max_train_tokens", run.budget.max_train_tokens)
    final = run.trial(run.final_trial_id) if run.final_trial_id else None
    if final is not None:
        batch.metric("validation_score", final.score)
        batch.metric("test_score", run.test_scores.get(final.trial_id))
    if run.baseline is not None:
        batch.metric("baseline/validation_score", run.baseline.validation_score)
        batch.metric("baseline/test_score", run.baseline.test_score)
    if run.contamination is not None and not run.contamination.problem:
        batch.metric("contamination/rate", run.contamination.rate)
        batch.metric("contamination/raw_rate", run.contamination.raw_rate)
        batch.tag("ftdojo.contamination_flagged", str(run.contamination.flagged).lower())
    for key, value in run.usage.items():
        batch.metric(f"usage/{key}", value)
    batch.metric("trials/failed", sum(1 for t in run.trials if not t.feedback.ok))
    batch.metric("trials/rejected", len(run.rejections))
    batch.metric("trials/violations", len(run.violations))


def _summary(run: RunRecord) -> str:
    scored = ", ".join(
        f"{t.trial_id}: {t.score:.3f}" if t.score is not None else f"{t.trial_id}: failed" for t in run.trials
    )
    return (
        f"ftdojo run `{run.run_id}`: task {run.task_name}, model {run.model}. "
        f"Final trial: {run.final_trial_id or 'none'} ({run.final_reason}). Trials: {scored or 'none'}."
    )


def _trial(batch: _Batch, run: RunRecord, trial: Trial) -> None:
    feedback = trial.feedback
    execution = feedback.execution
    batch.tag(_RUN_ID_TAG, run.run_id)
    batch.tag("ftdojo.trial_id", trial.trial_id)
    batch.tag("ftdojo.status", "ok" if feedback.ok else "failed")
    batch.tag("ftdojo.final", str(trial.trial_id == run.final_trial_id).lower())
    if trial.plan.parent:
        batch.tag("ftdojo.parent_trial", trial.plan.parent)
    if trial.plan.hypothesis:
        batch.tag("mlflow.note.content", trial.plan.hypothesis)
    if not feedback.ok:
        batch.tag("ftdojo.error_kind", execution.error_kind.value if execution.error_kind else "unknown")
        if execution.failed_stage is not None:
            batch.tag("ftdojo.failed_stage", execution.failed_stage.value)
        if execution.root_cause:
            batch.tag("ftdojo.root_cause", execution.root_cause)
    for key, value in run.annotations.get(trial.trial_id, {}).items():
        batch.tag(f"ftdojo.annotation.{key}", value if isinstance(value, str) else json.dumps(value))
    for key, value in flatten_plan(trial.plan).items():
        batch.param(key, value)

    batch.metric("seconds/total", execution.duration_s)
    for stage, seconds in execution.stage_seconds.items():
        batch.metric(_metric_key("seconds", stage), seconds)
    for stage, megabytes in execution.peak_memory_mb.items():
        batch.metric(_metric_key("peak_memory_mb", stage), megabytes)
    if feedback.data is not None:
        data = feedback.data
        batch.metric("data/records", data.records)
        batch.metric("data/tokens", data.tokens)
        batch.metric("data/duplicates_removed", data.duplicates_removed)
        batch.metric("data/too_long_dropped", data.too_long_dropped)
        batch.metric("data/failed_verification", data.failed_verification)
    if feedback.training is not None:
        training = feedback.training
        for point in training.losses:
            batch.metric("train/loss", point.loss, point.step)
            batch.metric("train/learning_rate", point.learning_rate, point.step)
            batch.metric("train/grad_norm", point.grad_norm, point.step)
        batch.metric("train/steps", training.steps)
        batch.metric("train/epochs", training.epochs)
        batch.metric("train/tokens_trained", training.tokens_trained)
        batch.metric("train/tokens_per_second", training.tokens_per_second)
        batch.metric("train/trainable_parameters", training.trainable_parameters)
    if feedback.evaluation is not None:
        evaluation = feedback.evaluation
        batch.metric("validation/score", evaluation.score)
        batch.metric("validation/format_compliance", evaluation.format_compliance)
        batch.metric("validation/n", evaluation.n)
        for name, value in evaluation.secondary.items():
            batch.metric(_metric_key("validation", name), value)
        for category, value in evaluation.per_category.items():
            batch.metric(_metric_key("validation", "category", category), value)
    if trial.trial_id in run.test_scores:
        batch.metric("test/score", run.test_scores[trial.trial_id])
        for category, value in run.test_per_category.get(trial.trial_id, {}).items():
            batch.metric(_metric_key("test", "category", category), value)


def log_run_to_mlflow(
    run_dir: Path | str,
    *,
    tracking_uri: str | None = None,
    experiment: str = "ftdojo",
    all_models: bool = False,
    replace: bool = True,
    artifact_location: str | None = None,
) -> str:
    """Log the Dojo run in ``run_dir`` to MLflow and return the parent MLflow run's id.

    ``tracking_uri`` defaults to ``$MLFLOW_TRACKING_URI``, then to MLflow's own default.
    Every trial becomes a run nested under the parent (see this module's docstring for
    what is logged). Only the final trial's adapter or model folder is logged as an
    artifact unless ``all_models`` is true (models are large).

    Logging the same Dojo run again deletes the MLflow runs an earlier call made for it
    (matched by the ``ftdojo.run_id`` tag, in the same experiment) before logging it
    anew, so that a resumed run logged once more shows up once, complete; with
    ``replace=False`` the earlier runs are left and a second parent is created (as they are
    for a run id with characters other than letters, digits, ``_``, ``-`` and ``.``, which is
    not put into an MLflow search filter).

    ``artifact_location`` is where a *new* experiment keeps its artifacts; without it MLflow
    picks its default, which for a ``sqlite:`` or ``file:`` store is a folder under the
    current directory (``./mlruns``). An existing experiment keeps its own location.

    Raises :class:`ftdojo.ConfigError` when mlflow is not installed and
    :class:`ftdojo.JournalError` when ``run_dir`` is not a run directory.
    """
    run = read_run(run_dir)
    mlflow = _import_mlflow()
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    try:
        client: Any = MlflowClient(tracking_uri=uri)
        experiment_id = _experiment_id(client, experiment, artifact_location)
        if replace:
            _delete_earlier(client, experiment_id, run.run_id)
        return _log(client, experiment_id, run, all_models=all_models)
    except MlflowException as exc:
        raise FTDojoError(f"MLflow ({uri or mlflow.get_tracking_uri()}): {exc.message}") from exc


def _log(client: Any, experiment_id: str, run: RunRecord, *, all_models: bool) -> str:
    started_ms = int(run.started_at * 1000)
    parent = client.create_run(experiment_id, start_time=started_ms, run_name=run.run_id)
    parent_id = str(parent.info.run_id)
    batch = _Batch(int(run.ended_at * 1000))
    _parent(batch, run)
    batch.send(client, parent_id)
    for name in ("journal.jsonl", "result.json", "report.html"):
        path = run.run_dir / name
        if path.is_file() and not path.is_symlink():
            client.log_artifact(parent_id, str(path))

    for trial in run.trials:
        child = client.create_run(
            experiment_id,
            start_time=int(trial.started_at * 1000),
            run_name=trial.trial_id,
            # Set at creation, so the run is nested from its first moment in the UI.
            tags={"mlflow.parentRunId": parent_id},
        )
        child_id = str(child.info.run_id)
        batch = _Batch(int(trial.finished_at * 1000))
        _trial(batch, run, trial)
        batch.send(client, child_id)
        client.log_text(child_id, to_json(trial, indent=2), "trial.json")
        if trial.feedback.ok and (all_models or trial.trial_id == run.final_trial_id):
            model_dir = trial_model_dir(run, trial.trial_id)
            if model_dir.is_dir():
                # Checked file by file: a link left by the trial's job must not be copied.
                for file in plain_files(model_dir):
                    client.log_artifact(child_id, str(file), "model")
        client.set_terminated(
            child_id,
            status="FINISHED" if trial.feedback.ok else "FAILED",
            end_time=int(trial.finished_at * 1000),
        )
    client.set_terminated(
        parent_id, status="FINISHED" if run.finished else "KILLED", end_time=int(run.ended_at * 1000)
    )
    return parent_id
