"""Hand-tuned data recipes for the patent tasks (see benchmarks/calibrate.py).

The same plan fits all three, because their sources go wrong the same way:
examiner_reviewed is clean; auto_labelled has about a third wrong answers, which
verify() recomputes from the record's own text and drops; office_actions has right
answers in mixed formats (to_example canonicalises the readable ones, verify() drops the
sentences) and duplicates; the off-domain source (trademarks, litigation) is left out,
since verify() cannot judge it and would keep it. What is left is all correct, about
3,900 records. Rationales are left out so every response has one shape: only the
examiner records have them, and a mix of two shapes teaches neither well.
"""

from typing import Any

_CLEAN_VOLUME: dict[str, Any] = {
    "sources": ["examiner_reviewed", "auto_labelled", "office_actions"],
    "verified_only": True,
    "dedupe": True,
    "include_rationale": False,
    "max_records": 4000,
}

BEST: dict[str, dict[str, Any]] = {
    "patent_prior_art": dict(_CLEAN_VOLUME),
    "patent_paragraph": dict(_CLEAN_VOLUME),
    "patent_novelty": dict(_CLEAN_VOLUME),
}
