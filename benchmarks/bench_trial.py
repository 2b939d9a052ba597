"""Whole trials through the Dojo: spawned workers against preloaded (forked) ones.

Runs FT-Agent for one trial on a suite task through a real :class:`ftdojo.Dojo` twice,
once with every job spawned and once with jobs forked from the preloaded server, and
reads each run's journal:

- the trial's wall time and its stages (build, train, evaluate), and how each was started;
- the fail-fast cost: the validator's smoke run (a sandboxed build and a few training
  steps) against the trial it guards (the goal: at most 5% of a trial, so that checking
  every plan before it runs stays cheap);
- peak memory of every stage, as the trial's feedback reports it.

    python benchmarks/bench_trial.py                         # math, tiny model
    python benchmarks/bench_trial.py --model smollm2-135m    # the embedded default (LoRA)
    python benchmarks/bench_trial.py --quick                 # same, fewer tokens (CI)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from ftdojo import Budget, Dojo, FTAgent
from ftdojo.journal import Journal
from ftdojo.sandbox import Limits, SandboxRunner, scrubbed_environment
from ftdojo.sandbox.fork.handle import fork_server


async def one(task: str, model: str, preload: bool, tokens: int, runs: Path) -> dict[str, Any]:
    dojo = Dojo(runs_dir=runs, runner=SandboxRunner(preload=preload))
    result = await dojo.run(
        task, FTAgent(), model=model, budget=Budget(max_trials=1, max_train_tokens=tokens)
    )
    records = list(Journal(runs / result.run_id / "journal.jsonl").records())
    trial = next(r["trial"] for r in records if r["kind"] == "trial")
    smoke = next((r for r in records if r["kind"] == "smoke"), None)
    execution = trial["feedback"]["execution"]
    smoke_seconds = sum(
        (smoke or {}).get("feedback", {}).get("execution", {}).get("stage_seconds", {}).values()
    )
    trial_seconds = sum(execution["stage_seconds"].values())
    return {
        "launch": execution.get("launch", {}),
        "stage_seconds": execution["stage_seconds"],
        "trial_seconds": round(trial_seconds, 2),
        "smoke_seconds": round(smoke_seconds, 2),
        "smoke_share": round(smoke_seconds / trial_seconds, 3) if trial_seconds else None,
        "peak_memory_mb": execution["peak_memory_mb"],
        "validation": trial["feedback"]["evaluation"]["score"]
        if trial["feedback"].get("evaluation")
        else None,
    }


async def main(task: str, model: str, tokens: int) -> dict[str, Any]:
    runs = Path(tempfile.mkdtemp(prefix="ftdojo-bench-trial-"))
    spawn = await one(task, model, False, tokens, runs)
    # Started before the forked run, and reported apart: a process pays for it once, and
    # inside the run it would land in the first job (the smoke run's build).
    started = time.monotonic()
    env = scrubbed_environment(workspace=runs / "server", limits=Limits())
    server = await anyio.to_thread.run_sync(lambda: fork_server(env))
    if not server.ready:
        raise SystemExit(f"no fork server here: {server.why}")
    server_start = round(time.monotonic() - started, 2)
    fork = await one(task, model, True, tokens, runs)
    figures = {
        "task": task,
        "model": model,
        "tokens": tokens,
        "fork_server_start_s": server_start,
        "spawn": spawn,
        "fork": fork,
    }
    print(f"one FT-Agent trial on {task} with {model} ({tokens} trained tokens)")
    print("| | spawned jobs | forked jobs (preloaded) | ratio |")
    print("|---|---|---|---|")
    for stage in ("build", "train", "evaluate"):
        a, b = spawn["stage_seconds"].get(stage, 0.0), fork["stage_seconds"].get(stage, 0.0)
        print(f"| {stage} (s) | {a:.2f} | {b:.2f} | {a / b if b else 0:.1f}x |")
    print(
        f"| trial (s) | {spawn['trial_seconds']} | {fork['trial_seconds']} | "
        f"{spawn['trial_seconds'] / max(fork['trial_seconds'], 1e-9):.1f}x |"
    )
    print(f"| smoke run (s) | {spawn['smoke_seconds']} | {fork['smoke_seconds']} | |")
    print(f"| smoke run / trial | {spawn['smoke_share']:.1%} | {fork['smoke_share']:.1%} | |")
    for stage in ("build", "train", "evaluate"):
        print(
            f"| peak memory, {stage} (MB) | {spawn['peak_memory_mb'].get(stage)} "
            f"| {fork['peak_memory_mb'].get(stage)} | |"
        )
    print(f"| launch | {spawn['launch']} | {fork['launch']} | |")
    print(f"\nfork server start (once per process, before the forked run): {server_start} s")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="math")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="20K tokens: checks that it works")
    args = parser.parse_args()
    anyio.run(main, args.task, args.model, 20_000 if args.quick else args.tokens)
