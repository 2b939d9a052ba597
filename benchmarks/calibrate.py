"""Calibrate the built-in suite: base model, naive fine-tuning and the best plan found by hand.

For every task and model this runs three things through a real :class:`ftdojo.Dojo`
(sandboxed data build, training and evaluation, as any agent's trial would):

- **base**: the untouched base model on the validation and test splits;
- **naive**: one trial on *all* raw sources with the default data recipe and the
  default training configuration for the model (what a user gets without curating);
- **best**: one trial with the hand-tuned plan from ``benchmarks/calibration/*.py``
  (``BEST[task]``): its data recipe, changed by ``BEST[task]["recipe"][model]`` where
  the best data differs per model, and the default training configuration changed by
  ``BEST[task]["train"][model]`` where the hand search found better settings.

Both trials run under the same cap on trained tokens (``--tokens``, default
``DEFAULT_TOKENS[model]``), as trials under an agent's token budget would: a plan that
would train longer stops at the cap, so a recipe wins by what it trains on, not by
training longer. Trials have no wall-clock limit, so a busy CPU makes a calibration
slower but does not change what it measures.
Results go to ``benchmarks/results/calibration-<model>.json`` (merged per task, so runs
for different tasks add up) and a Markdown table is printed.

    python benchmarks/calibrate.py --model tiny                 # every suite task
    python benchmarks/calibrate.py math chem_reaction --model smollm2-135m
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import attrs

from ftdojo import Agent, Budget, DataRecipe, Dojo, Plan, Session, SourceSelection
from ftdojo.agent import NaiveAgent, naive_plan
from ftdojo.tasks.registry import SUITE, get_task

HERE = Path(__file__).resolve().parent
#: Cap on trained tokens per trial, per model (about 2.5 and 4 minutes of CPU training).
DEFAULT_TOKENS = {"tiny": 1_000_000, "smollm2-135m": 40_000}


def load_best() -> dict[str, dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for path in sorted((HERE / "calibration").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"calibration_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        best.update(getattr(module, "BEST", {}))
    return best


def recipe_for(best: dict[str, Any], model: str) -> dict[str, Any]:
    """``best``'s data recipe for ``model``: the shared one, updated by ``best["recipe"][model]``."""
    shared = {k: v for k, v in best.items() if k not in {"train", "recipe"}}
    return {**shared, **best.get("recipe", {}).get(model, {})}


def best_plan(session: Session, model: str, best: dict[str, Any]) -> Plan:
    """The hand-tuned plan: its recipe, and the naive plan's training configuration plus its overrides."""
    train = naive_plan(session).train
    overrides = best.get("train", {}).get(model, {})
    if overrides:
        train = attrs.evolve(train, **overrides)
    recipe = recipe_for(best, model)
    data_knobs = {k: v for k, v in recipe.items() if k != "sources"}
    return Plan(
        data=DataRecipe(sources=tuple(SourceSelection(source=s) for s in recipe["sources"]), **data_knobs),
        train=train,
        hypothesis="best found by hand",
    )


@attrs.define
class _OnePlan:
    """Submits the one plan ``make`` builds from the session (it needs the catalogue)."""

    make: Callable[[Session], Plan]

    async def run(self, session: Session) -> None:
        await session.submit(self.make(session))


async def _one(dojo: Dojo, task: str, model: str, agent: Agent, tokens: int) -> dict[str, Any]:
    started = time.monotonic()
    result = await dojo.run(
        task, agent, model=model, budget=Budget(max_trials=1, max_seconds=None, max_train_tokens=tokens)
    )
    trial = result.trials[0] if result.trials else None
    feedback = trial.feedback if trial else None
    return {
        "validation": result.validation_score,
        "test": result.test_score,
        "seconds": round(time.monotonic() - started, 1),
        "ok": bool(feedback and feedback.ok),
        "error": None if feedback is None or feedback.ok else feedback.execution.root_cause[-300:],
        "records": feedback.data.records if feedback and feedback.data else None,
        "per_source": dict(feedback.data.per_source) if feedback and feedback.data else None,
        "trained_tokens": feedback.training.tokens_trained if feedback and feedback.training else None,
        "final_loss": feedback.training.final_loss if feedback and feedback.training else None,
        **_evaluation_details(feedback),
    }


def _evaluation_details(feedback: Any) -> dict[str, Any]:
    """What explains a validation score: per category, format compliance, time per stage, two errors."""
    if feedback is None:
        return {}
    details: dict[str, Any] = {"stage_seconds": dict(feedback.execution.stage_seconds)}
    evaluation = feedback.evaluation
    if evaluation is not None:
        details["per_category"] = {k: round(v, 3) for k, v in evaluation.per_category.items()}
        details["format_compliance"] = round(evaluation.format_compliance, 3)
        details["error_samples"] = [
            {"expected": e.expected, "output": e.output[:300], "category": e.category}
            for e in evaluation.errors[:2]
        ]
    return details


STAGES = ("base", "naive", "best")


def calibrate(
    task: str,
    model: str,
    tokens: int,
    runs_dir: Path,
    best: dict[str, Any],
    stages: tuple[str, ...] = STAGES,
) -> dict[str, Any]:
    """Run ``stages`` of the calibration for one task; the result holds only those stages."""
    dojo = Dojo(runs_dir=runs_dir, model=model, threads=2)

    async def main() -> dict[str, Any]:
        result: dict[str, Any] = {
            "task": task,
            "task_version": get_task(task).version(),
            "model": model,
            "tokens_per_trial": tokens,
        }
        if "base" in stages:
            started = time.monotonic()
            base = await dojo.baseline(task, model=model)
            seconds = round(time.monotonic() - started, 1)
            result["base"] = {
                "validation": base.validation_score,
                "test": base.test_score,
                "seconds": seconds,
            }
        if "naive" in stages:
            result["naive"] = await _one(dojo, task, model, NaiveAgent(), tokens)
        if "best" in stages:
            tuned = _OnePlan(lambda session: best_plan(session, model, best))
            result["best"] = await _one(dojo, task, model, tuned, tokens)
            result["best_recipe"] = recipe_for(best, model)
            result["best_train"] = best.get("train", {}).get(model, {})
        return result

    return anyio.run(main)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def markdown_table(results: dict[str, Any]) -> str:
    lines = [
        "| task | base val | base test | naive val | naive test | best val | best test | headroom |",
        "|---|---|---|---|---|---|---|---|",
    ]
    missing = {"validation": None, "test": None}
    for task in [t for t in SUITE if t in results] + [t for t in results if t not in SUITE]:
        r = results[task]
        b, n, h = (r.get(stage, missing) for stage in STAGES)
        if None in (n["validation"], h["validation"]):
            headroom = "—"
        elif not n["validation"] < h["validation"]:
            headroom = "NO"
        elif b["validation"] is None:
            headroom = "yes (base not measured)"
        else:
            headroom = "yes" if b["validation"] <= n["validation"] else "NO"
        lines.append(
            f"| {task} | {_fmt(b['validation'])} | {_fmt(b['test'])} | {_fmt(n['validation'])} | "
            f"{_fmt(n['test'])} | {_fmt(h['validation'])} | {_fmt(h['test'])} | {headroom} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", help="suite tasks (default: all 13)")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--tokens", type=int, default=None, help="trained-token cap per trial")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="comma-separated subset of base,naive,best (default: all); the others keep their stored results",
    )
    parser.add_argument(
        "--table", action="store_true", help="print the stored results as a table; run nothing"
    )
    parser.add_argument(
        "--try-recipe",
        default=None,
        metavar="JSON",
        help="hand search: data recipe changes for this run, e.g. "
        '\'{"include_rationale": false, "sources": ["a", "b"]}\' (scratch --out, as --try-train)',
    )
    parser.add_argument(
        "--try-train",
        default=None,
        metavar="JSON",
        help="hand search: training overrides added to the best plan's for this run, e.g. "
        "'{\"learning_rate\": 0.001}' (write to a scratch --out; a keeper goes into calibration/*.py)",
    )
    args = parser.parse_args(argv)
    out = args.out or HERE / "results" / f"calibration-{args.model}.json"
    if args.table:
        if not out.exists():
            print(f"no stored results at {out}", file=sys.stderr)
            return 2
        print(markdown_table(json.loads(out.read_text())))
        return 0
    tasks = args.tasks or list(SUITE)
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    if not stages or set(stages) - set(STAGES):
        parser.error(f"--stages takes a comma-separated subset of {','.join(STAGES)}")
    tokens = args.tokens or DEFAULT_TOKENS.get(args.model, 40_000)
    out.parent.mkdir(parents=True, exist_ok=True)
    best = load_best()
    for option, key in ((args.try_train, "train"), (args.try_recipe, "recipe")):
        if not option:
            continue
        extra = json.loads(option)
        if not isinstance(extra, dict):
            parser.error(f"--try-{key} takes a JSON object")
        for task in tasks:
            if task in best:
                per_model = {**best[task].get(key, {})}
                per_model[args.model] = {**per_model.get(args.model, {}), **extra}
                best[task] = {**best[task], key: per_model}
    missing = [t for t in tasks if t not in best]
    if missing:
        print(f"no hand-tuned plan in benchmarks/calibration/ for: {', '.join(missing)}", file=sys.stderr)
        return 2
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    with tempfile.TemporaryDirectory(prefix="ftdojo-calibration-") as runs_dir:
        for task in tasks:
            print(f"== {task} ({args.model}, {tokens} tokens per trial)", flush=True)
            fresh = calibrate(task, args.model, tokens, Path(runs_dir), best[task], stages)
            # Stages not run keep their stored results, but only if measured with the same
            # cap on the same generated data.
            kept = results.get(task, {})
            if (kept.get("tokens_per_trial"), kept.get("task_version")) != (tokens, fresh["task_version"]):
                kept = {}
            results[task] = {**kept, **fresh}
            print(json.dumps(fresh, indent=1), flush=True)
            out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
