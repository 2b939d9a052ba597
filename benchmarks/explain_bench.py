"""Read a benchmark's run journals and say what each agent did, trial by trial.

    python benchmarks/explain_bench.py ftdojo-bench [--task math] [--agent ft-agent]

For every run of ``ftdojo bench`` (``OUT/runs/bench-<task>-<agent>-s<seed>``) it prints
each trial: validation score and format compliance, trained tokens and final loss, the
plan's sources, learning rate, epochs and batch, and the start of its hypothesis; then the
final trial and its test score. This is how to find out *why* an agent won or lost a task.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _trial_line(trial: dict[str, Any]) -> str:
    feedback, plan = trial["feedback"], trial["plan"]
    evaluation = feedback.get("evaluation") or {}
    training = feedback.get("training") or {}
    losses = training.get("losses") or []
    score = evaluation.get("score")
    status = (
        f"val {score:.2f} fmt {evaluation.get('format_compliance', 0):.2f}"
        if score is not None
        else (f"failed {feedback['execution'].get('error_kind')}")
    )
    sources = ",".join(s["source"] for s in plan["data"]["sources"])
    train = plan["train"]
    loss = f"{losses[-1]['loss']:.2f}" if losses else "-"
    return (
        f"  {trial['trial_id']} <- {plan.get('parent') or '-':5} {status:20} "
        f"tok {training.get('tokens_trained', 0):>7,} loss {loss:>5}  "
        f"lr {train['learning_rate']:.0e} ep {train['epochs']:<5} bs {train['batch_size']:<2} "
        f"verified {str(plan['data']['verified_only'])[0]} [{sources}]\n"
        f"      {plan.get('hypothesis', '')[:150]}"
    )


def explain(out: Path, task: str | None, agent: str | None) -> None:
    for journal in sorted((out / "runs").glob("bench-*/journal.jsonl")):
        run = journal.parent.name
        if task and f"bench-{task}-" not in run:
            continue
        if agent and f"-{agent}-s" not in run:
            continue
        print(run)
        for line in journal.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line
            if record["kind"] == "trial":
                print(_trial_line(record["trial"]))
            elif record["kind"] == "rejection":
                reasons = "; ".join(record["rejection"]["reasons"])[:150]
                print(f"  rejected: {reasons}")
            elif record["kind"] == "test_score":
                print(f"  final {record['trial_id']}: test {record['score']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="the benchmark folder (ftdojo bench --out)")
    parser.add_argument("--task")
    parser.add_argument("--agent")
    args = parser.parse_args()
    explain(args.out, args.task, args.agent)


if __name__ == "__main__":
    main()
