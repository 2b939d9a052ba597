"""Contamination audit: how much of the test split the agent's training data contains.

The agent never sees the test split, but it builds its training data from raw sources
and its own code; if a test item made its way in (through a source that overlaps the
test set, or a recipe that found the split), a test score measures memory, not skill.
After every run the Dojo decodes the final trial's training examples and counts the
test items whose word n-grams mostly occur in them, as the GPT-3 report did with
13-grams. Items shorter than ``n`` words count when the whole item occurs.

A generated suite's raw data can overlap its own test split (a small space of molecules
or word problems repeats), so the same audit runs over all the task's raw sources; a
run is flagged only when its training data holds clearly more of the test split than
the raw data explains.

Runs in the Dojo (trusted): the training file is opened without following links, and
read up to a cap.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import attrs

__all__ = [
    "DEFAULT_N",
    "DEFAULT_THRESHOLD",
    "ContaminationAudit",
    "audit_contamination",
    "audit_not_possible",
    "ngrams",
    "read_training_rows",
    "record_text",
]

_WORD = re.compile(r"\w+")
#: The most bytes of training data read for the audit.
MAX_TRAIN_BYTES = 512 * 2**20


@attrs.frozen(kw_only=True)
class ContaminationAudit:
    """The overlap between a trial's training data and the test split."""

    trial_id: str
    #: Word n-gram length.
    n: int
    #: Test items audited: those with n-grams of their own (not only the task's boilerplate).
    test_items: int
    #: Test items at least ``item_share`` of whose n-grams occur in the training data.
    overlapping_items: int
    #: ``overlapping_items / test_items``.
    rate: float
    #: The same audit over every raw source of the task: the overlap the suite's own data
    #: explains, whatever the agent did (``None`` when not measured).
    raw_rate: float | None
    #: How far ``rate`` may exceed ``raw_rate`` before the run is flagged.
    threshold: float
    #: The training data holds more of the test split than the raw data explains: the
    #: agent's recipe found test items somewhere else.
    flagged: bool
    #: Up to five overlapping test item ids, for a look.
    examples: tuple[str, ...] = ()
    #: Why the audit could not be completed, if it could not.
    problem: str = ""


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(words: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    """The word n-grams of ``words``; one shorter gram when there are fewer than ``n``."""
    if len(words) < n:
        if words:
            yield tuple(words)
        return
    for start in range(len(words) - n + 1):
        yield tuple(words[start : start + n])


def _contains(haystack: set[tuple[str, ...]], joined: str, gram: tuple[str, ...], n: int) -> bool:
    if len(gram) == n:
        return gram in haystack
    # A short item: whole-word containment in the training text.
    return f" {' '.join(gram)} " in joined


#: The n-gram length and the flagging threshold of an audit (see :func:`audit_contamination`).
DEFAULT_N = 13
DEFAULT_THRESHOLD = 0.05


def audit_not_possible(trial_id: str, test_items: int, problem: str) -> ContaminationAudit:
    """The audit of a trial whose training data could not be read or tokenized: not flagged,
    with the reason, so that the run still finishes with its test score."""
    return ContaminationAudit(
        trial_id=trial_id,
        n=DEFAULT_N,
        test_items=test_items,
        overlapping_items=0,
        rate=0.0,
        raw_rate=None,
        threshold=DEFAULT_THRESHOLD,
        flagged=False,
        problem=problem[:300],
    )


def audit_contamination(
    trial_id: str,
    train_texts: Iterable[str],
    test_items: Sequence[tuple[str, str]],
    *,
    n: int = DEFAULT_N,
    item_share: float = 0.5,
    threshold: float = DEFAULT_THRESHOLD,
    template_share: float = 0.02,
    raw_rate: float | None = None,
) -> ContaminationAudit:
    """Audit ``train_texts`` against ``test_items`` (``(item_id, text)`` pairs).

    An n-gram found in more than ``template_share`` of the test items (and in at least
    two) is the task's own boilerplate (an instruction, an answer format), not evidence
    of a leak, and is left out; an item left with no n-gram of its own is not audited.
    """
    item_grams = [(item_id, list(dict.fromkeys(ngrams(_words(text), n)))) for item_id, text in test_items]
    frequency = Counter(gram for _item_id, grams in item_grams for gram in grams)
    common = max(2, int(template_share * len(test_items)) + 1)
    haystack: set[tuple[str, ...]] = set()
    joined_parts: list[str] = []
    for text in train_texts:
        words = _words(text)
        haystack.update(ngrams(words, n) if len(words) >= n else ())
        joined_parts.append(" ".join(words))
    joined = " " + " \n ".join(joined_parts) + " "
    overlapping: list[str] = []
    audited = 0
    for item_id, grams in item_grams:
        own = [gram for gram in grams if frequency[gram] < common]
        if not own:
            continue
        audited += 1
        hits = sum(_contains(haystack, joined, gram, n) for gram in own)
        if hits / len(own) >= item_share:
            overlapping.append(item_id)
    rate = len(overlapping) / audited if audited else 0.0
    return ContaminationAudit(
        trial_id=trial_id,
        n=n,
        test_items=audited,
        overlapping_items=len(overlapping),
        rate=round(rate, 4),
        raw_rate=None if raw_rate is None else round(raw_rate, 4),
        threshold=threshold,
        flagged=rate > (raw_rate or 0.0) + threshold,
        examples=tuple(overlapping[:5]),
    )


def record_text(record: object) -> str:
    """Every string and number in a raw record, in order, as one text."""
    if isinstance(record, dict):
        return " ".join(record_text(value) for value in record.values())
    if isinstance(record, (list, tuple)):
        return " ".join(record_text(value) for value in record)
    return "" if record is None else str(record)


def read_training_rows(path: Path) -> Iterator[list[int]]:
    """The ``input_ids`` of each row of a built training file, never following a link."""
    from ftdojo.artifacts import open_plain_file

    with open_plain_file(path) as handle:
        read = 0
        for line in handle:
            read += len(line)
            if read > MAX_TRAIN_BYTES:
                break
            row = json.loads(line)
            ids = row.get("input_ids") if isinstance(row, dict) else None
            if isinstance(ids, list):
                yield [int(i) for i in ids]
