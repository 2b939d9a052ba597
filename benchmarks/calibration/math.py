"""Hand-tuned plan for the math task (see benchmarks/calibrate.py)."""

from typing import Any

BEST: dict[str, dict[str, Any]] = {
    # Worked solutions only: answers_only teaches answering without working (measured: a
    # trial adding it fell from 0.69 to 0.16 on SmolLM2), forum_scrape has wrong answers,
    # trivia_mix is off-domain, homework_sheets writes answers in the wrong format.
    "math": {
        "sources": ["worked_solutions"],
        "include_rationale": True,
        "max_records": 1500,
        "train": {"tiny": {"epochs": 6.0}},
    },
}
