"""GPU check: sandboxed jobs, forked and spawned, really train and evaluate on CUDA.

Runs one short :class:`ftdojo.testing.ScriptedAgent` trial on a suite task (``math``)
with the ``tiny`` model through a real :class:`ftdojo.Dojo` twice: once with jobs forked
from the preloaded fork server (``SandboxRunner(preload=True)``, the default) and once
with every job spawned (``preload=False``). For each it prints

- how every stage's worker was started (``Feedback.execution.launch``), its seconds and
  its peak memory (the worker's own RSS, as the feedback reports it);
- the validation score (and the held-out score of the run);
- what the jobs said about their device: the train job's ``progress`` event (the device
  :func:`ftdojo.jobs.train.pick_device` chose and whether bf16 was on) and the ``device``
  event each train and evaluate job sends (where its weights were, their dtype, the
  precision the job ran with, the GPU's name and its peak GPU memory).

With ``--expect-cuda`` it exits 1 unless every train and evaluate job of both runs
reported ``cuda`` (train in bf16 where the GPU supports it). Nothing here imports torch
before the runs: this process never touches the GPU the jobs are to use.

    FTDOJO_HOME=/tmp/ftdojo-home python benchmarks/gpu_check.py --expect-cuda
    python benchmarks/gpu_check.py --modes spawn --steps 5     # one mode, fewer steps
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from ftdojo import Budget, DataRecipe, Dojo, Plan, SourceSelection, TrainConfig
from ftdojo.sandbox import SandboxRunner
from ftdojo.tasks.registry import get_task
from ftdojo.testing import ScriptedAgent

_KEPT = ("progress", "device")


async def one(
    mode: str, task: str, model: str, steps: int, records: int, method: str, home: Path | None, runs: Path
) -> dict[str, Any]:
    events: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any]) -> None:
        kind = event.get("worker_event")
        # The train job's "progress" event that names the device; generation's per-batch
        # progress is left out.
        if kind == "device" or (kind == "progress" and "device" in event):
            events.append({k: v for k, v in event.items() if k not in ("time", "worker_event")})

    dojo = Dojo(
        home=home,
        runs_dir=runs / mode,
        model=model,
        runner=SandboxRunner(preload=mode == "fork"),
        on_event=on_event,
    )
    spec = get_task(task)
    plan = Plan(
        data=DataRecipe(
            sources=tuple(SourceSelection(source=s.source_id) for s in spec.raw_sources()),
            max_records=records,
        ),
        train=TrainConfig(
            method=method, learning_rate=1e-3, max_steps=steps, batch_size=8, max_length=256, precision="auto"
        ),
    )
    agent = ScriptedAgent([plan])
    started = time.monotonic()
    result = await dojo.run(spec, agent, budget=Budget(max_trials=1))
    wall = time.monotonic() - started
    (feedback,) = agent.feedback
    execution = feedback.execution
    return {
        "mode": mode,
        "ok": feedback.ok,
        "root_cause": execution.root_cause,
        "error_kind": execution.error_kind.value if execution.error_kind else None,
        "launch": dict(execution.launch),
        "stage_seconds": {k: round(v, 2) for k, v in execution.stage_seconds.items()},
        "peak_memory_mb": {k: round(v, 1) for k, v in execution.peak_memory_mb.items()},
        "validation_score": feedback.score,
        "test_score": result.test_score,
        "train_steps": feedback.training.steps if feedback.training else None,
        "final_loss": feedback.training.final_loss if feedback.training else None,
        "tokens_per_second": round(feedback.training.tokens_per_second, 1) if feedback.training else None,
        "eval_samples_per_second": round(feedback.evaluation.samples_per_second, 2)
        if feedback.evaluation
        else None,
        "warnings": list(execution.warnings),
        "device_events": events,
        "run_wall_s": round(wall, 2),
        "isolation": dojo.isolation.describe(),
        "isolation_notes": list(dojo.isolation.notes),
    }


def _on_cuda(figures: dict[str, Any]) -> list[str]:
    """What keeps ``figures`` (one mode) from counting as a CUDA run; empty when it does."""
    problems = []
    if not figures["ok"]:
        problems.append(f"{figures['mode']}: trial failed: {figures['root_cause']}")
    reports = [e for e in figures["device_events"] if e.get("type") == "device"]
    for stage in ("train", "evaluate"):
        mine = [e for e in reports if e.get("stage") == stage]
        if not mine:
            problems.append(f"{figures['mode']}: no device event from {stage}")
        for event in mine:
            if not str(event.get("device", "")).startswith("cuda"):
                problems.append(f"{figures['mode']}: {stage} ran on {event.get('device')}")
            if stage == "train" and event.get("bf16_supported") and event.get("precision") != "bf16":
                problems.append(f"{figures['mode']}: train ran in {event.get('precision')} on a bf16 GPU")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="math")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--records", type=int, default=256)
    parser.add_argument("--method", default="full", choices=("full", "lora"))
    parser.add_argument("--modes", default="fork,spawn", help="comma-separated: fork, spawn")
    parser.add_argument("--home", type=Path, default=None, help="FTDOJO_HOME by default")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--expect-cuda", action="store_true", help="exit 1 unless every job ran on CUDA")
    args = parser.parse_args()

    runs = Path(tempfile.mkdtemp(prefix="ftdojo-gpu-check-"))
    all_figures = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        if mode not in ("fork", "spawn"):
            parser.error(f"unknown mode {mode!r}")
        figures = anyio.run(
            one, mode, args.task, args.model, args.steps, args.records, args.method, args.home, runs
        )
        all_figures.append(figures)
        print(f"== {mode}: {'ok' if figures['ok'] else 'FAILED'} ({figures['run_wall_s']} s for the run)")
        if not figures["ok"]:
            print(f"   {figures['error_kind']}: {figures['root_cause']}")
        print(f"   isolation: {figures['isolation']}")
        for note in figures["isolation_notes"]:
            print(f"     note: {note}")
        print("   | stage | launch | seconds | peak MB |")
        for stage, seconds in figures["stage_seconds"].items():
            peak = figures["peak_memory_mb"].get(stage)
            print(f"   | {stage} | {figures['launch'].get(stage, '?')} | {seconds} | {peak} |")
        print(
            f"   validation score {figures['validation_score']}, test score {figures['test_score']}, "
            f"{figures['train_steps']} steps, final loss {figures['final_loss']}, "
            f"{figures['tokens_per_second']} tokens/s, {figures['eval_samples_per_second']} eval samples/s"
        )
        for event in figures["device_events"]:
            print(f"   {event.get('stage')}: {json.dumps(event, sort_keys=True)}")
        for warning in figures["warnings"]:
            print(f"   warning: {warning}")

    problems = [p for figures in all_figures for p in _on_cuda(figures)]
    print(json.dumps(all_figures))
    if args.json is not None:
        args.json.write_text(json.dumps(all_figures, indent=1))
    if problems:
        print("not on CUDA:" if args.expect_cuda else "note:", *problems, sep="\n  ")
    return 1 if problems and args.expect_cuda else 0


if __name__ == "__main__":
    sys.exit(main())
