"""Every performance comparison of ftdojo, in one command, with a table of ratios.

    python benchmarks/run.py            # full: about 15 minutes on 2 CPU cores
    python benchmarks/run.py --quick    # each benchmark in its short mode (CI: checks they work)

Runs, one after the other as child processes of this one (so each measures a fresh
interpreter and none sees another's warm caches):

- ``bench_startup.py``: fixed overhead of a job, spawned against forked from the preloaded server;
- ``bench_train.py``: training tokens/s, ftdojo's job against a plain ``Trainer``;
- ``bench_eval.py``: evaluation prompts/s, batched with stop strings against one at a time;
- ``bench_trial.py``: a whole FT-Agent trial through the Dojo, spawned against forked jobs
  (stage times, the smoke run's share of the trial, peak memory per stage).

Each prints its own table and a JSON line; this prints the ratios side by side at the end
and writes them all to ``--out`` (default ``benchmarks/results/performance.json``; a
``--quick`` run writes nothing unless given ``--out``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
BENCHMARKS = ("bench_startup.py", "bench_train.py", "bench_eval.py", "bench_trial.py")


def _run(script: str, quick: bool, extra: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(HERE / script), *(["--quick"] if quick else []), *extra]
    print(f"\n$ {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    for line in lines[:-1]:
        print(line)
    if done.returncode != 0 or not lines:
        print(done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{script} failed (exit {done.returncode})")
    figures: dict[str, Any] = json.loads(lines[-1])
    figures["wall_seconds"] = round(time.monotonic() - started, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    results = {script: _run(script, args.quick, []) for script in BENCHMARKS}
    startup, train, evaluation, trial = (results[s] for s in BENCHMARKS)
    print("\n| comparison | baseline | ftdojo | ratio | goal |")
    print("|---|---|---|---|---|")
    print(
        f"| job overhead, submit to first step (s) | spawn {startup['spawn_overhead_s']} "
        f"| fork {startup['fork_overhead_s']} | {startup['overhead_ratio']}x | <= 1 s |"
    )
    print(
        f"| training tokens/s | plain Trainer {train['plain']['tokens_per_second']} "
        f"| {train['ftdojo']['tokens_per_second']} | {train['speedup']}x | >= 2x |"
    )
    print(
        f"| evaluation prompts/s | one at a time {evaluation['one_at_a_time_prompts_per_second']} "
        f"| {evaluation['ftdojo_prompts_per_second']} | {evaluation['speedup']}x | >= 20x |"
    )
    spawned, forked = trial["spawn"], trial["fork"]
    print(
        f"| trial wall time (s) | spawn {spawned['trial_seconds']} | fork {forked['trial_seconds']} "
        f"| {spawned['trial_seconds'] / max(forked['trial_seconds'], 1e-9):.1f}x | |"
    )
    print(
        f"| smoke run / trial | spawn {spawned['smoke_share']:.1%} "
        f"| fork {forked['smoke_share']:.1%} | | <= 5% |"
    )
    # A quick run checks that the benchmarks work; its figures are not worth keeping.
    out = args.out or (None if args.quick else HERE / "results" / "performance.json")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"\nfigures: {out}")


if __name__ == "__main__":
    main()
