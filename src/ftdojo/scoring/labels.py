"""Label-set and paragraph answers: parsing, macro-F1 and gold hit rate.

Used by the patent tasks and by the ``macro_f1`` and ``gold_hit_rate`` metrics.

**Label sets** (:func:`parse_label_set`). An answer like ``"A,C"`` is the set ``{"A", "C"}``.
Parsing is forgiving about form and strict about nothing else: labels are separated by
commas, semicolons, slashes, ``&``, ``+``, ``|``, whitespace or the word ``and``; they are
compared in upper case; order and repeats do not matter; a JSON list (``'["A", "C"]'``)
reads the same. ``""`` and ``None`` are the empty set. Canonical text is the sorted labels
joined by commas (:func:`canonical_label_set`).

**Macro-F1** (:func:`macro_f1`), as in multi-label classification:

1. The label universe is every label that occurs in at least one reference or at least
   one prediction of the batch. A label that occurs in neither is not in the universe: it
   is neither rewarded nor punished (its F1 would be 0/0). A label that only ever occurs in
   predictions (a hallucinated ``"Z"``) is in the universe with F1 = 0, so inventing labels
   costs score.
2. For each label ``l``: TP = items whose prediction and reference both contain ``l``,
   FP = items whose prediction contains ``l`` and reference does not, FN = the reverse;
   ``F1(l) = 2 TP / (2 TP + FP + FN)``. The denominator is never 0 for a label in the
   universe.
3. Macro-F1 is the unweighted mean of ``F1(l)`` over the universe, so a rare label counts
   as much as a frequent one. A ``None`` prediction (answer format not met) is the empty
   set here: every reference label of that item is a false negative.
4. Empty input scores 0.0. A non-empty batch in which no label occurs anywhere (every
   reference and prediction empty) has an empty universe; it scores the mean item score.

The **item score** of an item is 1.0 iff its prediction is not ``None`` and its label set
equals the reference's exactly, else 0.0 (subset accuracy). Partial overlap is deliberately
not rewarded per item: the evaluator shows every item below 1.0 as an error sample, and a
prior-art search that misses one anticipating reference is wrong.

**Paragraphs** (:func:`parse_paragraph_numbers`). ``"3"``, ``"0003"``, ``"[0003]"``,
``"¶ 3"``, ``"para. 3"`` and ``"paragraph 3"`` all read as paragraph 3; several numbers
may be separated as labels are. Text that is not a paragraph number makes the whole
answer unreadable (``None``).

**Gold hit rate** (:func:`gold_hit_rate`): a reference names the gold paragraph(s), one
or more (``"3"`` or ``"3,5"``, any of which discloses the element). An item is a hit
(1.0) iff the prediction reads as a non-empty set of paragraph numbers that all lie in the
gold set; a ``None`` or unreadable prediction, or one naming any non-gold paragraph, is a
miss, so listing every paragraph does not game the score. The rate is the mean over items;
empty input scores 0.0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

__all__ = [
    "canonical_label_set",
    "canonical_paragraphs",
    "gold_hit_rate",
    "macro_f1",
    "parse_label_set",
    "parse_paragraph_numbers",
]

_LABEL_SEPARATORS = re.compile(r"(?:[\s,;/&+|]|\band\b)+", re.IGNORECASE)
_PARAGRAPH_WORDS = re.compile(r"(?:\bparagraphs?\b|\bparas?\b\.?|¶+)", re.IGNORECASE)
_PARAGRAPH_NUMBER = re.compile(r"\[?(\d{1,9})\]?")


def _json_list(text: str) -> list[str] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value]
    return None


def parse_label_set(text: str | None) -> frozenset[str]:
    """The labels named in ``text``, upper-cased; the empty set for ``None`` or blank text."""
    if text is None:
        return frozenset()
    stripped = text.strip()
    listed = _json_list(stripped)
    pieces = listed if listed is not None else _LABEL_SEPARATORS.split(stripped)
    return frozenset(p.strip().upper() for p in pieces if p.strip())


def canonical_label_set(labels: frozenset[str] | set[str]) -> str:
    """``labels`` as canonical answer text: sorted, comma-separated, no spaces."""
    return ",".join(sorted(labels))


def macro_f1(predictions: Sequence[str | None], references: Sequence[str]) -> tuple[float, list[float]]:
    """``(macro-F1, item scores)`` of label-set predictions against label-set references.

    See the module docstring for the exact definition.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    gold = [parse_label_set(r) for r in references]
    predicted = [parse_label_set(p) for p in predictions]
    item_scores = [
        1.0 if p is not None and ps == gs else 0.0
        for p, ps, gs in zip(predictions, predicted, gold, strict=True)
    ]
    if not item_scores:
        return 0.0, []
    universe = sorted(set().union(*gold, *predicted))
    if not universe:
        return sum(item_scores) / len(item_scores), item_scores
    per_label = []
    for label in universe:
        tp = fp = fn = 0
        for ps, gs in zip(predicted, gold, strict=True):
            if label in ps and label in gs:
                tp += 1
            elif label in ps:
                fp += 1
            elif label in gs:
                fn += 1
        per_label.append(2 * tp / (2 * tp + fp + fn))
    return sum(per_label) / len(per_label), item_scores


def parse_paragraph_numbers(text: str | None) -> frozenset[int] | None:
    """The paragraph numbers named in ``text``; ``None`` if it is blank or names anything else."""
    if text is None:
        return None
    stripped = text.strip()
    listed = _json_list(stripped)
    pieces = listed if listed is not None else _LABEL_SEPARATORS.split(_PARAGRAPH_WORDS.sub(" ", stripped))
    numbers = set()
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        match = _PARAGRAPH_NUMBER.fullmatch(piece)
        if match is None:
            return None
        numbers.add(int(match.group(1)))
    return frozenset(numbers) if numbers else None


def canonical_paragraphs(numbers: frozenset[int] | set[int]) -> str:
    """Paragraph numbers as canonical answer text: ascending, no leading zeros, comma-separated."""
    return ",".join(str(n) for n in sorted(numbers))


def gold_hit_rate(predictions: Sequence[str | None], references: Sequence[str]) -> tuple[float, list[float]]:
    """``(hit rate, item scores)``: an item is a hit iff every predicted paragraph is gold.

    Raises :class:`ValueError` for a reference that names no paragraph: that is a broken
    task, not a wrong answer.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    item_scores = []
    for prediction, reference in zip(predictions, references, strict=True):
        gold = parse_paragraph_numbers(reference)
        if gold is None:
            raise ValueError(f"reference {reference!r} names no paragraph number")
        predicted = parse_paragraph_numbers(prediction)
        item_scores.append(1.0 if predicted is not None and predicted <= gold else 0.0)
    if not item_scores:
        return 0.0, []
    return sum(item_scores) / len(item_scores), item_scores
