"""Hand-tuned plan for the math task (see benchmarks/calibrate.py)."""

from typing import Any

BEST: dict[str, dict[str, Any]] = {
    # Worked solutions only, from the clean source and the forum scrape once verify() has
    # dropped its wrong answers (one in five): about 2,700 solutions of one shape.
    # answers_only teaches answering without working (measured: a SmolLM2 trial adding it
    # fell from 0.69 to 0.16), trivia_mix is off-domain, homework_sheets writes answers in
    # formats the evaluator cannot read.
    "math": {
        "sources": ["worked_solutions", "forum_scrape"],
        "verified_only": True,
        "include_rationale": True,
        "max_records": 3000,
    },
}
