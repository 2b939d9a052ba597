"""Can the tiny model learn to compute at the calibration's scale? A learnability probe.

The suite's calibration found that the tiny model (1.8M parameters, trained from a
random initialisation) learns nothing of ``math``, ``finance_exam`` or
``table_numerical`` within 1M trained tokens: its answers sit at the answer prior. This
probe asks whether an *easier* version of the same skill would be learned, before
changing any task's difficulty. It writes a bring-your-own task folder per variant and
runs one real trial (sandboxed build, training, evaluation) with the tiny model:

- ``short``: one-line word problems ("Ana has 3 pens and gets 4 more. How many now?"),
  single-digit operands, the same four operations as ``math``;
- ``bare``: the arithmetic alone ("3 plus 4 = ?"); evaluation pairs never occur in
  training, so a score above the prior means the model computes rather than recalls.

Every variant trains answer-only (``The answer is \\boxed{N}.``) with the tiny model's
default configuration and as many epochs as the token cap allows.

    python benchmarks/probes/arithmetic.py short --records 8000
    python benchmarks/probes/arithmetic.py bare --records 600
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import attrs

from ftdojo import Budget, DataRecipe, Dojo, Plan, Session, SourceSelection
from ftdojo.agent import naive_plan
from ftdojo.tasks.spec import TaskSpec

NAMES = ("Ana", "Ben", "Carlos", "Dana", "Eli", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena")
ITEMS = ("apples", "pens", "marbles", "stickers", "books", "cookies", "shells", "coins", "cards")
SHORT = {
    "add": "{n} has {a} {i} and gets {b} more. How many now?",
    "sub": "{n} has {a} {i} and gives away {b}. How many left?",
    "mul": "{n} has {a} bags of {b} {i}. How many {i}?",
    "two_step": "{n} has {a} {i}, gets {b} more, gives away {c}. How many left?",
}
INSTRUCTION = "\nPut the final answer in \\boxed{}."


def _operands(rng: random.Random, category: str) -> tuple[int, int, int, int]:
    """``(a, b, c, answer)`` with the operand ranges of the ``math`` task."""
    if category == "add":
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        return a, b, 0, a + b
    if category == "sub":
        a = rng.randint(2, 18)
        b = rng.randint(1, min(9, a - 1))
        return a, b, 0, a - b
    if category == "mul":
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        return a, b, 0, a * b
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    c = rng.randint(1, a + b - 1)
    return a, b, c, a + b - c


def short(rng: random.Random) -> tuple[str, str, str]:
    category = rng.choice(tuple(SHORT))
    a, b, c, answer = _operands(rng, category)
    question = SHORT[category].format(n=rng.choice(NAMES), a=a, b=b, c=c, i=rng.choice(ITEMS))
    return question, str(answer), category


def bare(rng: random.Random) -> tuple[str, str, str]:
    # Operators as words: the folder task's leakage check normalises punctuation away.
    category = rng.choice(tuple(SHORT))
    a, b, c, answer = _operands(rng, category)
    words = {"add": f"{a} plus {b}", "sub": f"{a} minus {b}", "mul": f"{a} times {b}"}
    expression = words.get(category, f"{a} plus {b} minus {c}")
    return f"{expression} = ?", str(answer), category


VARIANTS: dict[str, Callable[[random.Random], tuple[str, str, str]]] = {"short": short, "bare": bare}


def write_task(variant: str, folder: Path, records: int, seed: int = 1) -> None:
    """A task folder: ``records`` unique training problems, 100 validation and 100 test."""
    generate, rng = VARIANTS[variant], random.Random(seed)
    seen: set[str] = set()
    rows: list[tuple[str, str, str]] = []
    for _ in range(100 * (records + 200)):
        if len(rows) == records + 200:
            break
        row = generate(rng)
        if row[0] not in seen:
            seen.add(row[0])
            rows.append(row)
    if len(rows) < records + 200:
        raise SystemExit(f"{variant}: only {len(rows)} distinct problems; ask for fewer --records")
    (folder / "raw").mkdir(parents=True)
    # A TOML basic string, so that "\n" is a newline as in the evaluation prompts.
    (folder / "task.toml").write_text(
        f'name = "probe_{variant}"\ndomain = "math"\ndescription = "learnability probe"\n'
        'output_format = "\\\\boxed{N}"\nmetric = "accuracy"\nstop_strings = ["}."]\n'
        'max_new_tokens = 32\n[answer]\nrule = "boxed"\n[fields]\nprompt = "q"\nanswer = "a"\n'
        'category = "c"\n[template]\nprompt = "{prompt}\\nPut the final answer in \\\\boxed{}."\n'
    )

    def items(part: list[tuple[str, str, str]], prefix: str) -> str:
        return "".join(
            json.dumps({"item_id": f"{prefix}-{k}", "prompt": q + INSTRUCTION, "reference": a, "category": c})
            + "\n"
            for k, (q, a, c) in enumerate(part)
        )

    (folder / "validation.jsonl").write_text(items(rows[:100], "val"))
    (folder / "test.jsonl").write_text(items(rows[100:200], "test"))
    (folder / "raw" / "train.jsonl").write_text(
        "".join(json.dumps({"q": q, "a": a, "c": c}) + "\n" for q, a, c in rows[200:])
    )


@attrs.define
class _AllRecords:
    """Every training record, answer-only; epochs high enough that the token cap ends training."""

    async def run(self, session: Session) -> None:
        train = attrs.evolve(naive_plan(session).train, epochs=200.0)
        data = DataRecipe(sources=(SourceSelection(source="train"),), max_records=100_000)
        await session.submit(Plan(data=data, train=train, hypothesis="learnability probe"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ftdojo-probe-") as tmp:
        write_task(args.variant, Path(tmp) / "task", args.records)
        task = TaskSpec.from_dir(Path(tmp) / "task")
        dojo = Dojo(runs_dir=Path(tmp) / "runs", model="tiny", threads=2)
        budget = Budget(max_trials=1, max_seconds=None, max_train_tokens=args.tokens)
        started = time.monotonic()
        result = anyio.run(lambda: dojo.run(task, _AllRecords(), model="tiny", budget=budget))
        feedback = result.trials[0].feedback
        training = feedback.training
        print(
            json.dumps(
                {
                    "variant": args.variant,
                    "records": args.records,
                    "validation": result.validation_score,
                    "test": result.test_score,
                    "trained_tokens": training.tokens_trained if training else None,
                    "epochs": round(training.epochs, 2) if training else None,
                    "final_loss": training.final_loss if training else None,
                    "per_category": dict(feedback.evaluation.per_category) if feedback.evaluation else None,
                    "seconds": round(time.monotonic() - started),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
