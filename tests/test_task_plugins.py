"""Tasks from other packages register through the ``ftdojo.tasks`` entry-point group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = textwrap.dedent(
    """
    from ftdojo.tasks.spec import EvalItem, Example, RawSource, TaskSpec


    class Capitals(TaskSpec):
        name = "capitals"
        domain = "geography"
        description = "Name the capital of a country."
        output_format = "Answer: <city>"
        metric = "accuracy"
        categories = ("europe",)

        def __init__(self, seed: int = 0) -> None:
            self.seed = seed
            self.params = {"seed": seed}

        def raw_sources(self):
            return [RawSource(source_id="pairs", records=({"q": "France", "a": "Paris"},), note="one pair")]

        def eval_splits(self):
            return (
                [EvalItem(item_id="v1", prompt="Capital of Italy?", reference="Rome", category="europe")],
                [EvalItem(item_id="t1", prompt="Capital of Spain?", reference="Madrid", category="europe")],
            )

        def to_example(self, record, *, include_rationale):
            return Example(prompt=f"Capital of {record['q']}?", response=f"Answer: {record['a']}")

        def extract_answer(self, output):
            return output.removeprefix("Answer: ").strip() or None
    """
)


def _install_plugin(root: Path, target: str) -> None:
    (root / "capitals_plugin").mkdir()
    (root / "capitals_plugin" / "__init__.py").write_text(PLUGIN)
    dist = root / "capitals_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: capitals-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[ftdojo.tasks]\ncapitals = {target}\n")


def _run(root: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_an_installed_plugin_task_is_listed_loaded_and_re_created_by_workers(tmp_path: Path) -> None:
    _install_plugin(tmp_path, "capitals_plugin:Capitals")
    proc = _run(
        tmp_path,
        textwrap.dedent(
            """
            import json
            from typer.testing import CliRunner
            from ftdojo.cli import app
            from ftdojo.tasks import available_tasks, get_task
            from ftdojo.tasks.registry import task_from_reference, task_reference

            task = get_task("capitals", seed=3)
            clone = task_from_reference(json.loads(json.dumps(task_reference(task))))
            rows = json.loads(CliRunner().invoke(app, ["tasks", "--json"]).output)
            print(json.dumps({
                "available": "capitals" in available_tasks(),
                "type": type(clone).__name__,
                "seed": clone.seed,
                "listed": [r for r in rows if r["task"] == "capitals"],
            }))
            """
        ),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["available"]
    assert (out["type"], out["seed"]) == ("Capitals", 3)
    assert out["listed"] == [
        {
            "task": "capitals",
            "group": "other",
            "domain": "geography",
            "metric": "accuracy",
            "description": "Name the capital of a country.",
        }
    ]


def test_a_broken_plugin_is_a_task_spec_error_and_does_not_hide_the_suite(tmp_path: Path) -> None:
    _install_plugin(tmp_path, "capitals_plugin:NoSuchClass")
    proc = _run(
        tmp_path,
        textwrap.dedent(
            """
            import json
            from typer.testing import CliRunner
            from ftdojo.cli import app
            from ftdojo.errors import TaskSpecError
            from ftdojo.tasks import get_task
            try:
                get_task("capitals")
            except TaskSpecError as exc:
                error = str(exc)
            rows = json.loads(CliRunner().invoke(app, ["tasks", "--json"]).output)
            print(json.dumps({"error": error, "suite": sum(r["group"] == "suite" for r in rows)}))
            """
        ),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "capitals_plugin:NoSuchClass" in out["error"]
    assert out["suite"] == 13
