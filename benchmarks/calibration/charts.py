"""Hand-tuned plan for the table-visualisation task (see benchmarks/calibrate.py).

- keep ``curated_snippets``: canonical pyplot answers, all correct;
- add ``forum_scrape`` only with ``verified_only``: ``verify`` runs every answer in the chart
  sandbox, and about a third of them fail (mostly horizontal bars drawn as vertical ones and
  scatter plots drawn as lines, which naive training learns as the answer for those kinds);
  what survives is correct code, mostly in the same pyplot shape;
- leave out ``notebook_cells``: correct, but longer than the generation budget, so a model
  that learns them never closes its code block;
- leave out ``pandas_plot``: correct, but a second code shape for the same prompts, which a
  small model blends with the first; and ``code_help``, which is off-domain;
- no rationale: the curated comment line would make the curated answers one shape and the
  forum answers (no comments) another.
"""

from typing import Any

BEST: dict[str, dict[str, Any]] = {
    "table_visualization": {
        "sources": ["curated_snippets", "forum_scrape"],
        "verified_only": True,
        "dedupe": True,
        "include_rationale": False,
        "max_records": 2000,
        # SmolLM2 trains 40K tokens per trial: one epoch over as many records as fit (about
        # 85% of 40K over the mean example length of 140 tokens), with a cosine schedule.
        "train": {"smollm2-135m": {"epochs": 1.0, "lr_scheduler": "cosine"}},
        "recipe": {"smollm2-135m": {"max_records": 240}},
    },
}
