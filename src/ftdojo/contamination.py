"""Contamination audit: how much of the test split the agent's training data contains.

The agent never sees the test split, but it builds its training data from raw sources
and its own code; if a test item made its way in (through a source that overlaps the
test set, or a recipe that found the split), a test score measures memory, not skill.
After every run the Dojo decodes the final trial's training examples and counts the
test items whose word n-grams mostly occur in them, as the GPT-3 report did with
13-grams. Items shorter than ``n`` words count when the whole item occurs.

A verbatim n-gram test is defeated by one inserted word, so the audit also looks for
*near-duplicates*: words normalised (case, Unicode forms, number formatting such as
``1,000`` or ``3.50``) and cut into short shingles (``NEAR_N`` words); a test item is a
near-duplicate of a training example when at least ``near_share`` of its own shingles
occur in that one example (the containment form of the Jaccard similarity, so that an
example that is the item plus an answer, or the item with its clauses reordered or a
few words inserted or deleted, still counts). An item counts as overlapping when either
test finds it.

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
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "DEFAULT_N",
    "DEFAULT_THRESHOLD",
    "NEAR_N",
    "NEAR_SHARE",
    "ContaminationAudit",
    "audit_contamination",
    "audit_not_possible",
    "ngrams",
    "normalized_words",
    "overlapping_test_items",
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
    #: Of ``overlapping_items``, those only the near-duplicate test found (an edited copy).
    near_duplicates: int = 0
    #: The shingle length and the containment share of the near-duplicate test; ``None``
    #: in audits an older version wrote (verbatim n-grams only).
    near_n: int | None = None
    near_share: float | None = None
    #: Of ``overlapping_items``, those the task's raw data does not hold: what the agent's
    #: recipe brought in. The flag is set on these when known (``None`` in older audits).
    unexplained_items: int | None = None
    #: Why the audit could not be completed, if it could not.
    problem: str = ""


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _canonical_number(match: re.Match[str]) -> str:
    number = match.group(0).replace(",", "")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return number


def normalized_words(text: str) -> list[str]:
    """The words of ``text`` as the near-duplicate test compares them: Unicode-folded
    (NFKC), lower case, numbers without thousands separators or trailing zeros."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return _WORD.findall(_NUMBER.sub(_canonical_number, folded))


def _near_duplicates(
    train_texts: Sequence[str], test_items: Sequence[tuple[str, str]], *, n: int, share: float, common: int
) -> set[str]:
    """Ids of the test items at least ``share`` of whose own shingles occur in one training text."""
    own: dict[str, set[tuple[str, ...]]] = {}
    shingles = [(item_id, set(ngrams(normalized_words(text), n))) for item_id, text in test_items]
    frequency = Counter(gram for _item_id, grams in shingles for gram in grams)
    for item_id, grams in shingles:
        kept = {gram for gram in grams if frequency[gram] < common}
        if len(kept) >= _MIN_NEAR_SHINGLES:
            own[item_id] = kept
    # Which items each shingle belongs to: a training text is scanned once.
    owners: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for item_id, grams in own.items():
        for gram in grams:
            owners[gram].append(item_id)
    found: set[str] = set()
    for text in train_texts:
        counts: Counter[str] = Counter()
        for gram in set(ngrams(normalized_words(text), n)):
            for item_id in owners.get(gram, ()):
                counts[item_id] += 1
        found.update(item_id for item_id, hits in counts.items() if hits >= share * len(own[item_id]))
    return found


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
#: Shingle length and containment share of the near-duplicate test. Three words: one
#: inserted or deleted word breaks at most three of an item's shingles, so a copy with a
#: word or two changed keeps most of an item's own shingles. 0.8: measured over the
#: suite's raw data, it adds little to what the verbatim test finds there (math 0.30 ->
#: 0.38, finance 0.06 -> 0.06; 0.6 took math to 0.69, hiding small leaks under the raw
#: rate), and it still finds every test item with a word inserted after its first.
NEAR_N = 3
NEAR_SHARE = 0.8
#: An item with fewer own shingles than this is left to the verbatim test (too little
#: text to call two near-duplicates).
_MIN_NEAR_SHINGLES = 4
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


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


def _overlap(
    train_texts: Sequence[str],
    test_items: Sequence[tuple[str, str]],
    *,
    n: int,
    item_share: float,
    template_share: float,
    near_n: int,
    near_share: float,
) -> tuple[list[str], set[str], int]:
    """(overlapping item ids in test order, those the verbatim test found, items audited)."""
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
    verbatim: set[str] = set()
    audited_ids: set[str] = set()
    for item_id, grams in item_grams:
        own = [gram for gram in grams if frequency[gram] < common]
        if not own:
            continue
        audited_ids.add(item_id)
        hits = sum(_contains(haystack, joined, gram, n) for gram in own)
        if hits / len(own) >= item_share:
            verbatim.add(item_id)
    near = _near_duplicates(train_texts, test_items, n=near_n, share=near_share, common=common)
    found = (verbatim | near) & audited_ids
    ordered = list(dict.fromkeys(item_id for item_id, _text in test_items if item_id in found))
    return ordered, verbatim, len(audited_ids)


def overlapping_test_items(
    train_texts: Iterable[str], test_items: Sequence[tuple[str, str]], **options: Any
) -> tuple[frozenset[str], float]:
    """The ids of the test items ``train_texts`` hold (as :func:`audit_contamination` finds
    them, with its options) and their share of the items audited: what the raw data alone
    explains, for the audit of each run to be measured against."""
    settings = {
        "n": DEFAULT_N,
        "item_share": 0.5,
        "template_share": 0.02,
        "near_n": NEAR_N,
        "near_share": NEAR_SHARE,
        **options,
    }
    ordered, _verbatim, audited = _overlap(list(train_texts), test_items, **settings)
    return frozenset(ordered), (len(ordered) / audited if audited else 0.0)


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
    raw_overlap: Collection[str] | None = None,
    near_n: int = NEAR_N,
    near_share: float = NEAR_SHARE,
) -> ContaminationAudit:
    """Audit ``train_texts`` against ``test_items`` (``(item_id, text)`` pairs).

    An n-gram found in more than ``template_share`` of the test items (and in at least
    two) is the task's own boilerplate (an instruction, an answer format), not evidence
    of a leak, and is left out; an item left with no n-gram of its own is not audited.
    The near-duplicate test (``near_n``-word shingles, ``near_share`` of an item's own
    shingles in one training text) adds the items an edited copy holds.

    ``raw_overlap`` (the ids :func:`overlapping_test_items` finds in the task's raw data)
    makes the flag precise: the run is flagged when the items the raw data does *not*
    explain exceed ``threshold`` of those audited. Without it, when the rate exceeds
    ``raw_rate`` by more than ``threshold``.
    """
    overlapping, verbatim, audited = _overlap(
        list(train_texts),
        test_items,
        n=n,
        item_share=item_share,
        template_share=template_share,
        near_n=near_n,
        near_share=near_share,
    )
    rate = len(overlapping) / audited if audited else 0.0
    unexplained: int | None = None
    if raw_overlap is not None:
        explained = set(raw_overlap)
        unexplained = sum(item_id not in explained for item_id in overlapping)
        flagged = (unexplained / audited if audited else 0.0) > threshold
    else:
        flagged = rate > (raw_rate or 0.0) + threshold
    return ContaminationAudit(
        trial_id=trial_id,
        n=n,
        test_items=audited,
        overlapping_items=len(overlapping),
        rate=round(rate, 4),
        raw_rate=None if raw_rate is None else round(raw_rate, 4),
        threshold=threshold,
        flagged=flagged,
        examples=tuple(overlapping[:5]),
        near_duplicates=len(set(overlapping) - verbatim),
        near_n=near_n,
        near_share=near_share,
        unexplained_items=unexplained,
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
