"""A real Dojo run logged to a real local MLflow tracking store (sqlite), then read back."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from ftdojo import Budget, ConfigError, DataRecipe, Dojo, JournalError, Plan, SourceSelection, TrainConfig
from ftdojo.cli import app
from ftdojo.integrations.mlflow import log_run_to_mlflow
from ftdojo.testing import ScriptedAgent

LORA = TrainConfig(method="lora", lora_rank=4, learning_rate=1e-3, max_steps=3, batch_size=8, max_length=256)
CRASH = "def transform(record):\n    raise RuntimeError('recipe bug: no such field')\n"


def _plan(transform: str | None = None) -> Plan:
    return Plan(
        data=DataRecipe(
            sources=[SourceSelection(source="worked_solutions")], max_records=48, transform_code=transform
        ),
        train=LORA,
        hypothesis="a few LoRA steps on worked solutions",
    )


@pytest.fixture(scope="module")
def run_dir(ftdojo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real tiny run for the whole module: a LoRA trial, then one whose build crashes."""
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path_factory.mktemp("runs"), model="tiny", threads=2)
    result = dojo.run_sync(
        "math",
        ScriptedAgent([_plan(), _plan(CRASH)]),
        budget=Budget(max_trials=2, max_seconds=900),
        with_baseline=True,
    )
    assert [t.feedback.ok for t in result.trials] == [True, False]
    assert result.final_trial_id == "t001"
    return Path(result.run_dir)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One sqlite tracking store for the module (creating its tables takes seconds)."""
    root = tmp_path_factory.mktemp("mlflow")
    return {"uri": f"sqlite:///{root / 'mlflow.db'}", "artifacts": str(root / "artifacts")}


def _log(run_dir: Path, store: dict[str, str], experiment: str, **kwargs: Any) -> str:
    return log_run_to_mlflow(
        run_dir,
        tracking_uri=store["uri"],
        experiment=experiment,
        artifact_location=f"{store['artifacts']}/{experiment}",
        **kwargs,
    )


def _journal(run_dir: Path) -> list[dict[str, Any]]:
    # Read here with the json module, not with the code under test.
    return [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines() if line]


def _children(client: MlflowClient, parent_id: str) -> dict[str, Any]:
    parent = client.get_run(parent_id)
    runs = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'"
    )
    return {run.info.run_name: run for run in runs}


@pytest.fixture(scope="module")
def logged(run_dir: Path, store: dict[str, str]) -> tuple[MlflowClient, str]:
    return MlflowClient(store["uri"]), _log(run_dir, store, "main")


def test_one_parent_and_a_nested_run_per_trial(logged: tuple[MlflowClient, str], run_dir: Path) -> None:
    client, parent_id = logged
    parent = client.get_run(parent_id)
    experiment = client.get_experiment(parent.info.experiment_id)
    everything = client.search_runs([experiment.experiment_id])
    assert len(everything) == 3
    assert "mlflow.parentRunId" not in parent.data.tags
    children = _children(client, parent_id)
    assert sorted(children) == ["t001", "t002"]
    for child in children.values():
        assert child.data.tags["mlflow.parentRunId"] == parent_id

    finished = next(r for r in _journal(run_dir) if r["kind"] == "run_finished")["result"]
    started = next(r for r in _journal(run_dir) if r["kind"] == "run_started")
    tags = parent.data.tags
    assert parent.info.run_name == finished["run_id"]
    assert parent.info.status == "FINISHED"
    assert tags["ftdojo.run_id"] == finished["run_id"]
    assert tags["ftdojo.task"] == "math"
    assert tags["ftdojo.model"] == "tiny"
    assert tags["ftdojo.stop_reason"] == finished["stop_reason"]
    assert tags["ftdojo.final_trial_id"] == "t001"
    assert tags["ftdojo.isolation"].startswith(started["isolation"]["backend"])
    assert parent.data.params["budget.max_trials"] == "2"
    assert parent.data.params["budget.max_seconds"] == "900.0"


def test_the_plan_is_logged_as_params(logged: tuple[MlflowClient, str], run_dir: Path) -> None:
    client, parent_id = logged
    children = _children(client, parent_id)
    ok, failed = children["t001"].data.params, children["t002"].data.params
    # Every field of the training configuration and the recipe, under a dotted name.
    for field in attrs.fields(TrainConfig):
        assert f"train.{field.name}" in ok
    for field in attrs.fields(DataRecipe):
        if field.name != "sources":
            assert f"data.{field.name}" in ok
    assert ok["train.method"] == "lora"
    assert ok["train.lora_rank"] == "4"
    assert ok["train.learning_rate"] == str(LORA.learning_rate)
    assert ok["train.max_steps"] == "3"
    assert ok["train.lora_targets"] == "all-linear"
    assert ok["data.sources.0.source"] == "worked_solutions"
    assert ok["data.max_records"] == "48"
    assert ok["hypothesis"] == "a few LoRA steps on worked solutions"
    assert failed["data.transform_code"] == CRASH


def test_the_loss_curve_and_scores_are_metrics(logged: tuple[MlflowClient, str], run_dir: Path) -> None:
    client, parent_id = logged
    records = _journal(run_dir)
    trial = next(r["trial"] for r in records if r["kind"] == "trial" and r["trial"]["trial_id"] == "t001")
    feedback = trial["feedback"]
    child = _children(client, parent_id)["t001"]

    history = client.get_metric_history(child.info.run_id, "train/loss")
    journal_losses = [(p["step"], p["loss"]) for p in feedback["training"]["losses"]]
    assert journal_losses
    assert [(m.step, m.value) for m in history] == journal_losses
    rates = client.get_metric_history(child.info.run_id, "train/learning_rate")
    assert [m.value for m in rates] == pytest.approx(
        [p["learning_rate"] for p in feedback["training"]["losses"]]
    )

    metrics = child.data.metrics
    evaluation = feedback["evaluation"]
    assert metrics["validation/score"] == pytest.approx(evaluation["score"])
    assert evaluation["per_category"]
    for category, value in evaluation["per_category"].items():
        assert metrics[f"validation/category/{category}"] == pytest.approx(value)
    for stage, seconds in feedback["execution"]["stage_seconds"].items():
        assert metrics[f"seconds/{stage}"] == pytest.approx(seconds)
    for stage, megabytes in feedback["execution"]["peak_memory_mb"].items():
        assert metrics[f"peak_memory_mb/{stage}"] == pytest.approx(megabytes)

    result = next(r for r in records if r["kind"] == "run_finished")["result"]
    contamination = next(r for r in records if r["kind"] == "contamination")["audit"]
    parent = client.get_run(parent_id).data.metrics
    assert parent["validation_score"] == pytest.approx(result["validation_score"])
    assert parent["test_score"] == pytest.approx(result["test_score"])
    assert metrics["test/score"] == pytest.approx(result["test_score"])
    assert parent["baseline/validation_score"] == pytest.approx(result["baseline"]["validation_score"])
    assert parent["baseline/test_score"] == pytest.approx(result["baseline"]["test_score"])
    assert parent["contamination/rate"] == pytest.approx(contamination["rate"])
    assert parent["trials/failed"] == 1


def test_a_failed_trial_is_tagged_with_its_error(logged: tuple[MlflowClient, str], run_dir: Path) -> None:
    client, parent_id = logged
    failed = _children(client, parent_id)["t002"]
    assert failed.info.status == "FAILED"
    assert failed.data.tags["ftdojo.error_kind"] == "DATA"
    assert failed.data.tags["ftdojo.failed_stage"] == "build"
    assert "recipe bug: no such field" in failed.data.tags["ftdojo.root_cause"]
    assert "validation/score" not in failed.data.metrics
    assert not client.get_metric_history(failed.info.run_id, "train/loss")


def test_artifacts_hold_the_final_adapter_and_the_journal(
    logged: tuple[MlflowClient, str], run_dir: Path, tmp_path: Path
) -> None:
    client, parent_id = logged
    children = _children(client, parent_id)
    model_dir = run_dir / "trials" / "t001" / "model"
    logged_model = {Path(f.path).name for f in client.list_artifacts(children["t001"].info.run_id, "model")}
    assert logged_model == {p.name for p in model_dir.iterdir()}
    assert "adapter_model.safetensors" in logged_model
    copy = Path(
        client.download_artifacts(
            children["t001"].info.run_id, "model/adapter_model.safetensors", str(tmp_path)
        )
    )
    assert copy.read_bytes() == (model_dir / "adapter_model.safetensors").read_bytes()
    # The failed trial has no model; it still has its feedback.
    assert [f.path for f in client.list_artifacts(children["t002"].info.run_id)] == ["trial.json"]
    trial_json = Path(client.download_artifacts(children["t002"].info.run_id, "trial.json", str(tmp_path)))
    assert json.loads(trial_json.read_text())["feedback"]["execution"]["error_kind"] == "DATA"
    parent_files = {f.path for f in client.list_artifacts(parent_id)}
    # The Dojo wrote the run's report at its end; it goes with the journal.
    assert {"journal.jsonl", "result.json", "report.html"} <= parent_files
    report = Path(client.download_artifacts(parent_id, "report.html", str(tmp_path)))
    assert report.read_bytes() == (run_dir / "report.html").read_bytes()
    journal = Path(client.download_artifacts(parent_id, "journal.jsonl", str(tmp_path)))
    assert journal.read_bytes() == (run_dir / "journal.jsonl").read_bytes()


def test_logging_again_replaces_the_earlier_runs(run_dir: Path, store: dict[str, str]) -> None:
    client = MlflowClient(store["uri"])
    first = _log(run_dir, store, "twice")
    second = _log(run_dir, store, "twice")
    assert first != second
    experiment = client.get_experiment_by_name("twice")
    active = client.search_runs([experiment.experiment_id])
    assert {r.info.run_id for r in active if "mlflow.parentRunId" not in r.data.tags} == {second}
    assert len(active) == 3
    deleted = client.search_runs([experiment.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert first in {r.info.run_id for r in deleted}
    assert len(deleted) == 3
    # replace=False keeps both.
    third = _log(run_dir, store, "twice", replace=False)
    parents = [
        r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags
    ]
    assert {r.info.run_id for r in parents} == {second, third}


def test_a_killed_run_and_a_report_are_logged(run_dir: Path, store: dict[str, str], tmp_path: Path) -> None:
    # The run as it was when killed after its trials: no test score, no run_finished.
    killed = tmp_path / run_dir.name
    shutil.copytree(run_dir, killed)
    lines = (killed / "journal.jsonl").read_text().splitlines(keepends=True)
    last_trial = max(i for i, line in enumerate(lines) if json.loads(line)["kind"] == "trial")
    (killed / "journal.jsonl").write_text("".join(lines[: last_trial + 1]))
    (killed / "result.json").unlink()
    (killed / "report.html").write_text("<html><body>report</body></html>")
    client = MlflowClient(store["uri"])
    parent_id = _log(killed, store, "killed", all_models=True)
    parent = client.get_run(parent_id)
    assert parent.info.status == "KILLED"
    assert parent.data.tags["ftdojo.finished"] == "false"
    # Without the run's choice, the best validated trial is the final one.
    assert parent.data.tags["ftdojo.final_trial_id"] == "t001"
    assert "test_score" not in parent.data.metrics
    assert "validation_score" in parent.data.metrics
    assert {f.path for f in client.list_artifacts(parent_id)} == {"journal.jsonl", "report.html"}
    assert sorted(_children(client, parent_id)) == ["t001", "t002"]


def test_the_tracking_uri_comes_from_the_environment(
    run_dir: Path, store: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    parent_id = log_run_to_mlflow(run_dir, experiment="env", artifact_location=f"{store['artifacts']}/env")
    assert MlflowClient(store["uri"]).get_run(parent_id).data.tags["ftdojo.task"] == "math"


def test_the_mlflow_command(run_dir: Path, store: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "mlflow",
            str(run_dir),
            "--tracking-uri",
            store["uri"],
            "--experiment",
            "cli",
            "--artifact-location",
            f"{store['artifacts']}/cli",
        ],
    )
    assert result.exit_code == 0, result.output
    parent_id = result.output.split("parent run")[1].split()[0]
    assert MlflowClient(store["uri"]).get_run(parent_id).info.run_name == run_dir.name
    missing = runner.invoke(app, ["mlflow", str(tmp_path), "--tracking-uri", store["uri"]])
    assert missing.exit_code == 2
    assert "no journal.jsonl" in " ".join(missing.output.split())  # rich wraps long lines


def test_a_directory_without_a_journal_is_a_journal_error(tmp_path: Path, store: dict[str, str]) -> None:
    with pytest.raises(JournalError, match=r"no journal\.jsonl"):
        log_run_to_mlflow(tmp_path, tracking_uri=store["uri"])


def test_without_mlflow_the_error_names_the_extra(
    run_dir: Path, store: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # ``None`` in sys.modules makes ``import mlflow`` raise ImportError, as when it is absent.
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ConfigError, match=r"pip install 'ftdojo\[mlflow\]'"):
        log_run_to_mlflow(run_dir, tracking_uri=store["uri"])
