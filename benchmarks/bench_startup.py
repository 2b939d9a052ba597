"""Fixed overhead per job: a spawned worker against one forked from the preloaded server.

Runs the real training job (``ftdojo.jobs.train:train``, the embedded ``tiny`` model, a
few steps on synthetic records) through a real :class:`SandboxRunner`, under the
machine's isolation (bubblewrap where installed), both ways, alternating, and reports
medians over the repeats:

- **overhead**: from the runner's ``run()`` call to the first training step, less the
  time the job spent loading the model (what the issue's goal counts: "submit to first
  training step, model load excluded");
- **job**: the whole job, as the trial pays it.

The fork server's own start (its imports, once per process) is reported apart.

    python benchmarks/bench_startup.py              # 5 repeats
    python benchmarks/bench_startup.py --quick      # 1 repeat: checks that it works (CI)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from ftdojo import Dojo
from ftdojo.feedback import Stage
from ftdojo.plans import TrainConfig
from ftdojo.sandbox import Job, Limits, SandboxRunner, scrubbed_environment
from ftdojo.sandbox.fork.handle import fork_server, shutdown_fork_servers
from ftdojo.serialization import unstructure


def _records(path: Path, count: int = 64, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w") as handle:
        for _ in range(count):
            length = rng.randint(16, 96)
            ids = [rng.randint(3, 100) for _ in range(length)]  # within the tiny vocabulary (128)
            labels = [-100] * (length // 2) + ids[length // 2 :]
            handle.write(
                json.dumps({"input_ids": ids, "labels": labels, "attention_mask": [1] * length}) + "\n"
            )


async def _one(runner: SandboxRunner, payload: dict[str, Any], workspace: Path) -> dict[str, float | str]:
    submitted = time.time()
    outcome = await runner.run(
        Job(entry="ftdojo.jobs.train:train", payload=payload, stage=Stage.TRAIN),
        workspace=workspace,
        limits=Limits(wall_seconds=600, threads=payload["threads"]),
    )
    if not outcome.ok:
        raise SystemExit(f"the training job failed ({outcome.launch}): {outcome.root_cause}")
    first = next(e for e in outcome.events if e["type"] == "first_step")
    load = next(e for e in outcome.events if e["type"] == "model_loaded")
    return {
        "launch": outcome.launch,
        "overhead_s": first["time"] - submitted - load["seconds"],
        "model_load_s": load["seconds"],
        "job_s": outcome.duration_s,
    }


async def main(repeats: int, threads: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="ftdojo-bench-startup-"))
    model = await Dojo().ensure_model("tiny")
    data = home / "train.jsonl"
    _records(data)
    config = TrainConfig(method="full", learning_rate=1e-3, epochs=1.0, batch_size=8, max_length=128)
    spawn, fork = SandboxRunner(preload=False), SandboxRunner(preload=True)

    started = time.monotonic()
    env = scrubbed_environment(workspace=home / "server", limits=Limits())
    server = await anyio.to_thread.run_sync(lambda: fork_server(env))
    server_start = time.monotonic() - started
    if not server.ready:
        raise SystemExit(f"no fork server here: {server.why}")

    rows: dict[str, list[dict[str, float | str]]] = {"spawn": [], "fork": []}
    for repeat in range(repeats):
        for name, runner in (("spawn", spawn), ("fork", fork)):
            payload = {
                "train": unstructure(config),
                "data_path": str(data),
                "output_dir": str(home / f"{name}-{repeat}"),
                "model_path": str(model),
                "max_steps": 3,
                "save": False,
                "threads": threads,
            }
            row = await _one(runner, payload, home / f"{name}-{repeat}")
            if row["launch"] != name:
                raise SystemExit(f"expected a {name}ed job, got {row['launch']}")
            rows[name].append(row)

    def median(name: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in rows[name])

    figures = {
        "repeats": repeats,
        "fork_server_start_s": round(server_start, 2),
        "spawn_overhead_s": round(median("spawn", "overhead_s"), 3),
        "fork_overhead_s": round(median("fork", "overhead_s"), 3),
        "spawn_job_s": round(median("spawn", "job_s"), 3),
        "fork_job_s": round(median("fork", "job_s"), 3),
        "model_load_s": round(median("fork", "model_load_s"), 3),
    }
    figures["overhead_ratio"] = round(figures["spawn_overhead_s"] / max(figures["fork_overhead_s"], 1e-9), 1)
    print("| | spawn | fork (preloaded) | ratio |")
    print("|---|---|---|---|")
    print(
        f"| overhead: submit to first step, model load excluded (s) | {figures['spawn_overhead_s']} "
        f"| {figures['fork_overhead_s']} | {figures['overhead_ratio']}x |"
    )
    print(
        f"| whole job, 3 steps (s) | {figures['spawn_job_s']} | {figures['fork_job_s']} | "
        f"{figures['spawn_job_s'] / max(figures['fork_job_s'], 1e-9):.1f}x |"
    )
    print(
        f"\nmedians of {repeats}; fork server start (once per process): {figures['fork_server_start_s']} s; "
        f"model load: {figures['model_load_s']} s"
    )
    print(json.dumps(figures))
    shutdown_fork_servers()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one repeat, to check that it works")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    anyio.run(main, 1 if args.quick else args.repeats, args.threads)
    sys.exit(0)
