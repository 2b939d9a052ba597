"""The three patent tasks, mirroring PANORAMA's benchmarks: prior art, paragraphs, novelty.

- ``patent_prior_art`` (:class:`PriorArtRetrieval`, PAR4PC): a claim lists its elements;
  eight candidate references ``A``–``H`` each disclose a few elements; the answer is every
  candidate that discloses *all* of the claim's elements (at least one does), scored by
  macro-F1 over the letters.
- ``patent_paragraph`` (:class:`ParagraphIdentification`, PI4PC): a claim element and a
  reference of 4–6 numbered paragraphs; the answer is the number of a paragraph that
  discloses the element, scored by gold hit rate (some items have two gold paragraphs).
- ``patent_novelty`` (:class:`NoveltyDecision`, NOC4PC): a claim and two references; the
  answer is ``ALLOW`` (no reference and no combination discloses every element), ``102``
  (one reference alone does) or ``103`` (only the two together do), scored by macro-F1.

All three draw synthetic inventions from one technical glossary: four technology fields
(the categories), sixteen components each ("hinge", "relay", "stent", "cache") and, for
paragraphs, twelve short functions each ("locks the lid"). Elements appear as plain
words, so every answer follows from matching words in the prompt -- a pattern a tiny
character-level model can pick up -- and :meth:`verify` recomputes it from a record's own
text. No component is a substring of another and no function of another, so a word match
is never ambiguous.

Each task has four raw sources, the way patent data arrives in practice:

- ``examiner_reviewed`` (JSON lines): clean, with a one-line rationale per record;
- ``auto_labelled`` (CSV, the largest): labelled by a keyword matcher, exactly
  ``round(0.35 * n)`` answers wrong (plausible mistakes: a near-miss reference, the
  paragraph naming the right component but the wrong function, 102 for 103), plus a few
  exact duplicates; no rationales;
- ``office_actions`` (Markdown): right answers in the examiners' own formats -- canonical,
  lower case, spelled out ("B and E", "[0014]", "35 U.S.C. 103") or a sentence with no
  label at all -- with exact and near duplicates; no rationales;
- an off-domain source (JSON lines) with the same columns about trademarks or litigation.

:meth:`~_PatentTask.to_example` puts every answer it can read into the one required form
(``Answer: \\boxed{...}``); a sentence it cannot read is trained on as written, which is
what taking such a source unread costs. :meth:`~_PatentTask.verify` returns ``False`` for a
wrong or unreadable answer and ``None`` for a record outside the glossary (off-domain).

Evaluation entities are drawn first and kept out of every raw source: the element sets of
evaluation claims (prior art, novelty) and the evaluation elements (paragraphs, which never
appear in any raw paragraph either) occur in no raw record, so a model cannot pass by
remembering a claim.
"""

from __future__ import annotations

import abc
import random
import re
from collections.abc import Callable, Hashable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, ClassVar

import attrs

from ftdojo.errors import DataError, TaskSpecError
from ftdojo.scoring.labels import (
    canonical_label_set,
    canonical_paragraphs,
    parse_label_set,
    parse_paragraph_numbers,
)
from ftdojo.tasks.spec import EvalItem, Example, RawSource
from ftdojo.tasks.synthetic import (
    SourceQuality,
    SyntheticTask,
    balanced_categories,
    corrupt,
    with_duplicates,
)

__all__ = [
    "ACTIONS",
    "COMPONENTS",
    "FIELDS",
    "NoveltyDecision",
    "ParagraphIdentification",
    "PriorArtRetrieval",
]

FIELDS = ("mechanical", "electrical", "medical", "software")

#: The glossary: short component names per technology field, all distinct.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "mechanical": (
        "hinge", "latch", "spring", "gear", "shaft", "lever", "bolt", "clamp",
        "piston", "pulley", "cam", "ratchet", "flange", "axle", "bracket", "rivet",
    ),
    "electrical": (
        "sensor", "relay", "diode", "battery", "switch", "coil", "resistor", "antenna",
        "fuse", "inverter", "magnet", "heater", "busbar", "plug", "cable", "motor",
    ),
    "medical": (
        "catheter", "stent", "needle", "syringe", "cuff", "probe", "electrode", "balloon",
        "cannula", "implant", "suture", "lens", "pump", "sheath", "valve", "scalpel",
    ),
    "software": (
        "cache", "parser", "queue", "scheduler", "index", "encoder", "buffer", "router",
        "compiler", "hash", "ledger", "kernel", "thread", "daemon", "token", "cipher",
    ),
}  # fmt: skip

#: What a component does, per field, for paragraph identification ("a latch that locks the lid").
ACTIONS: dict[str, tuple[str, ...]] = {
    "mechanical": (
        "locks the lid", "turns the arm", "holds the door", "lifts the load", "drives the wheel",
        "guides the rod", "seals the gap", "damps the shock", "joins the frame", "tilts the seat",
        "grips the tube", "stops the drum",
    ),
    "electrical": (
        "senses the heat", "stores the charge", "limits the current", "cuts the power",
        "emits the signal", "powers the lamp", "blocks the surge", "reads the voltage",
        "drives the fan", "charges the cell", "warms the plate", "trips the breaker",
    ),
    "medical": (
        "opens the artery", "delivers the drug", "grips the tissue", "closes the wound",
        "drains the fluid", "tracks the pulse", "holds the graft", "steers the wire",
        "cools the skin", "doses the insulin", "widens the vessel", "samples the blood",
    ),
    "software": (
        "stores the page", "parses the input", "orders the jobs", "signs the message",
        "routes the packet", "compresses the log", "checks the user", "locks the record",
        "splits the stream", "maps the key", "retries the call", "merges the branch",
    ),
}  # fmt: skip

_GLOSSARY = frozenset(c for field in FIELDS for c in COMPONENTS[field])

#: Longest prompt a generated case may have (longer draws are redrawn).
MAX_PROMPT_CHARS = 300
#: Wrong labels in ``auto_labelled`` (exactly ``round(rate * n)`` before its duplicates).
NOISE_RATE = 0.35
#: Shares of the answer formats in ``office_actions`` (exact counts; canonical takes the rest).
_OFFICE_STYLES = (("lower", 0.15), ("spelled", 0.20), ("prose", 0.30))
_OFFICE_EXACT_DUPLICATES = 0.05
_OFFICE_NEAR_DUPLICATES = 0.05
_AUTO_EXACT_DUPLICATES = 0.03

_BOX = re.compile(r"\\boxed\s*\{([^{}]*)\}")
_TERM_EDGES = " \t\r\n.;:,"
_CANDIDATE_LINE = re.compile(r"([A-Za-z])\s*:\s*(.*)")
_PARAGRAPH_LINE = re.compile(r"\[(\d{1,6})\]\s*(.*)")
_ELEMENT = re.compile(r"(?:(?:a|an|the)\s+)?([a-z]+)\s+that\s+(.+?)[.\s]*")


def _answer_line(answer: str) -> str:
    return f"Answer: \\boxed{{{answer}}}"


def _last_box(output: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``output`` (answers here never hold braces)."""
    found = _BOX.findall(output)
    return found[-1] if found else None


def _terms(text: str, separator: str) -> list[str]:
    """``text`` split into lower-case terms, spacing and edge punctuation removed."""
    folded = " ".join(text.lower().split())
    return [t.strip(_TERM_EDGES) for t in folded.split(separator) if t.strip(_TERM_EDGES)]


def _glossary_terms(text: str, separator: str) -> frozenset[str] | None:
    """The glossary terms ``text`` lists, or ``None`` if it lists nothing or anything else."""
    terms = _terms(text, separator)
    if not terms or not set(terms) <= _GLOSSARY:
        return None
    return frozenset(terms)


def _join(words: Sequence[str], conjunction: str = "and") -> str:
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def _text_field(record: dict[str, Any], field: str, task: str) -> str:
    if field not in record:
        raise DataError(f"{task} record is missing the {field!r} field (has: {sorted(record)})")
    value = record[field]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{task} record field {field!r} must be text, got {type(value).__name__}")
    return str(value)


@attrs.frozen
class _Case:
    """One generated problem, before it becomes an evaluation item or a raw record."""

    #: What must not leak from evaluation into raw data: the claim's element set, or the element.
    key: Hashable
    category: str
    #: The record fields the prompt is made of, in prompt order.
    fields: dict[str, str]
    #: The canonical answer a training response boxes.
    answer: str
    #: What the metric compares a prediction with.
    reference: str
    rationale: str


_Avoid = AbstractSet[Hashable]


class _PatentTask(SyntheticTask):
    """What the three patent tasks share: glossary, sources, answer formats, disjointness."""

    domain = "patent"
    categories = FIELDS
    # Every response ends with its "\boxed{...}" and no earlier "}" occurs in it.
    stop_strings = ("}",)
    GENERATOR_VERSION = 1

    #: Record fields the prompt is built from, in prompt order.
    PROMPT_FIELDS: ClassVar[tuple[str, ...]]
    #: The field ``with_duplicates`` edits for near duplicates.
    NEAR_DUPLICATE_FIELD: ClassVar[str]
    OFF_DOMAIN_SOURCE: ClassVar[str]
    INSTRUCTION: ClassVar[str]

    def __init__(self, seed: int = 0, **sizes: int) -> None:
        super().__init__(seed, **sizes)
        #: Ids of the records whose labels were made wrong, per source (the hidden truth).
        self.corrupted_ids: dict[str, frozenset[str]] = {}

    # -- per task ------------------------------------------------------------------------

    @abc.abstractmethod
    def _new_case(
        self, rng: random.Random, category: str, avoid: _Avoid, *, for_eval: bool, index: int
    ) -> _Case | None:
        """A case of ``category`` whose key is not in ``avoid``, or ``None`` to draw again.

        Raw cases (``for_eval=False``) must not contain an ``avoid`` entity anywhere.
        ``index`` is the case's position in its split or source, for tasks that balance
        their answers by position.
        """

    @abc.abstractmethod
    def format_prompt(self, fields: dict[str, str]) -> str:
        """The prompt made of a record's prompt fields (stripped) and the instruction."""

    @abc.abstractmethod
    def canonical_answer(self, text: str) -> str | None:
        """A record's answer in canonical form, or ``None`` if it is not a readable answer."""

    @abc.abstractmethod
    def recompute(self, record: dict[str, str]) -> frozenset[str] | None:
        """The right answers (canonical) from the record's own text; ``None`` if it cannot be judged."""

    @abc.abstractmethod
    def _wrong_answer(self, record: dict[str, Any], rng: random.Random) -> str:
        """A plausible wrong canonical answer for a clean record."""

    @abc.abstractmethod
    def _restyle(self, answer: str, style: str, record: dict[str, Any], rng: random.Random) -> str:
        """``answer`` written in an examiner's ``style``: lower, spelled or prose."""

    @abc.abstractmethod
    def _off_domain_record(self, rng: random.Random) -> dict[str, str]:
        """One off-domain record with the task's columns (without id)."""

    # -- generation ----------------------------------------------------------------------

    def _draw(self, rng: random.Random, category: str, avoid: _Avoid, *, for_eval: bool, index: int) -> _Case:
        for _ in range(2000):
            case = self._new_case(rng, category, avoid, for_eval=for_eval, index=index)
            # Redrawn rather than trimmed: a tiny model's context is 512 characters in all.
            if case is not None and len(self.format_prompt(case.fields)) <= MAX_PROMPT_CHARS:
                return case
        raise TaskSpecError(f"{self.name} task: cannot draw a new {category} case")  # pragma: no cover

    def _record(self, case: _Case, record_id: str, *, rationale: bool) -> dict[str, Any]:
        record: dict[str, Any] = {"id": record_id, **case.fields, "answer": case.answer}
        if rationale:
            record["rationale"] = case.rationale
        record["category"] = case.category
        return record

    def _raw_cases(self, stream: str, n: int, reserved: frozenset[Hashable]) -> list[_Case]:
        rng = self.rng(stream)
        categories = balanced_categories(FIELDS, n, rng)
        return [self._draw(rng, c, reserved, for_eval=False, index=k) for k, c in enumerate(categories)]

    def generate(self) -> tuple[Sequence[RawSource], Sequence[EvalItem], Sequence[EvalItem]]:
        s = self.sizes
        taken: set[Hashable] = set()
        splits = []
        for split, prefix in (("validation", "val"), ("test", "test")):
            rng = self.rng(split)
            items = []
            for k, category in enumerate(balanced_categories(FIELDS, s[f"{split}_size"], rng)):
                case = self._draw(rng, category, taken, for_eval=True, index=k)
                taken.add(case.key)
                items.append(
                    EvalItem(
                        item_id=f"{prefix}-{k:04d}",
                        prompt=self.format_prompt(case.fields),
                        reference=case.reference,
                        category=case.category,
                    )
                )
            splits.append(items)
        reserved = frozenset(taken)

        examiner = [
            self._record(case, f"ER-{k:05d}", rationale=True)
            for k, case in enumerate(self._raw_cases("examiner_reviewed", s["examiner_reviewed"], reserved))
        ]
        self.quality["examiner_reviewed"] = SourceQuality(has_rationale=True)
        self.corrupted_ids["examiner_reviewed"] = frozenset()

        rng = self.rng("auto_labelled-noise")
        auto = [
            self._record(case, f"AL-{k:05d}", rationale=False)
            for k, case in enumerate(self._raw_cases("auto_labelled", s["auto_labelled"], reserved))
        ]

        def make_wrong(record: dict[str, Any], r: random.Random) -> dict[str, Any]:
            record["answer"] = self._wrong_answer(record, r)
            return record

        wrong = corrupt(auto, NOISE_RATE, rng, make_wrong)
        corrupted = frozenset(auto[k]["id"] for k in wrong)
        exact = round(_AUTO_EXACT_DUPLICATES * len(auto))
        auto = with_duplicates(auto, exact=exact, near=0, field=self.NEAR_DUPLICATE_FIELD, rng=rng)
        self.corrupted_ids["auto_labelled"] = corrupted
        self.quality["auto_labelled"] = SourceQuality(
            wrong_label_rate=sum(r["id"] in corrupted for r in auto) / len(auto) if auto else 0.0,
            exact_duplicates=exact if auto else 0,
            remarks=f"exactly {len(corrupted)} wrong labels before duplication (plausible mistakes)",
        )

        rng = self.rng("office_actions-styles")
        office = [
            self._record(case, f"OA-{k:05d}", rationale=False)
            for k, case in enumerate(self._raw_cases("office_actions", s["office_actions"], reserved))
        ]
        style_counts = {style: round(share * len(office)) for style, share in _OFFICE_STYLES}
        styles = [style for style, count in style_counts.items() for _ in range(count)]
        styles += ["canonical"] * (len(office) - len(styles))
        rng.shuffle(styles)
        for record, style in zip(office, styles, strict=True):
            if style != "canonical":
                record["answer"] = self._restyle(record["answer"], style, record, rng)
        exact = round(_OFFICE_EXACT_DUPLICATES * len(office)) if office else 0
        near = round(_OFFICE_NEAR_DUPLICATES * len(office)) if office else 0
        office = with_duplicates(office, exact=exact, near=near, field=self.NEAR_DUPLICATE_FIELD, rng=rng)
        self.corrupted_ids["office_actions"] = frozenset()
        self.quality["office_actions"] = SourceQuality(
            exact_duplicates=exact,
            near_duplicates=near,
            remarks=(
                "labels right, formats mixed before duplication: "
                + ", ".join(f"{count} {style}" for style, count in style_counts.items())
                + f", {len(styles) - sum(style_counts.values())} canonical; prose answers have no "
                "label to train on and fail verify()"
            ),
        )

        rng = self.rng(self.OFF_DOMAIN_SOURCE)
        off_domain = [
            {"id": f"XD-{k:05d}", **self._off_domain_record(rng)} for k in range(s[self.OFF_DOMAIN_SOURCE])
        ]
        self.quality[self.OFF_DOMAIN_SOURCE] = SourceQuality(off_domain=True, has_rationale=True)

        sources = (
            RawSource(
                source_id="examiner_reviewed",
                records=tuple(examiner),
                note=(
                    f"{len(examiner)} {self._items_noun()} reviewed by a senior examiner, each with a "
                    "one-line rationale and the answer in the required form. Spot checks found no errors."
                ),
            ),
            RawSource(
                source_id="auto_labelled",
                records=tuple(auto),
                format="csv",
                note=(
                    f"{len(auto)} {self._items_noun()} labelled automatically by a keyword matcher, "
                    "answers only, no rationales. Many answers look wrong on inspection; some rows "
                    "appear twice."
                ),
            ),
            RawSource(
                source_id="office_actions",
                records=tuple(office),
                format="markdown",
                note=(
                    f"{len(office)} {self._items_noun()} transcribed from office actions. Answers are "
                    f"written however the examiner wrote them ({self._style_examples()}), sometimes as "
                    "a sentence; no rationales; some rows repeat, a few with cosmetic edits."
                ),
            ),
            RawSource(
                source_id=self.OFF_DOMAIN_SOURCE,
                records=tuple(off_domain),
                note=f"{len(off_domain)} {self._off_domain_note()}",
            ),
        )
        return sources, splits[0], splits[1]

    @abc.abstractmethod
    def _items_noun(self) -> str:
        """What a record is, for the notes ("prior-art searches")."""

    @abc.abstractmethod
    def _style_examples(self) -> str:
        """Examples of the office-action answer formats, for the note."""

    @abc.abstractmethod
    def _off_domain_note(self) -> str:
        """The off-domain source's note, after its record count."""

    # -- TaskSpec ------------------------------------------------------------------------

    def _prompt_fields(self, record: dict[str, Any]) -> dict[str, str] | None:
        fields = {f: _text_field(record, f, self.name).strip() for f in self.PROMPT_FIELDS}
        return None if any(not v for v in fields.values()) else fields

    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        """A training example: the optional rationale, then ``Answer: \\boxed{<canonical answer>}``.

        An answer in any readable form (lower case, spelled out) is put in canonical form,
        so every example teaches the one required format. An answer that cannot be read as
        one (a sentence) is kept as written: it is what the record says, and rewriting it is
        the curator's job. Returns ``None`` for a record with a blank prompt field or answer;
        raises :class:`ftdojo.errors.DataError` naming a missing or non-text field.
        """
        fields = self._prompt_fields(record)
        answer = _text_field(record, "answer", self.name).strip()
        if fields is None or not answer:
            return None
        canonical = self.canonical_answer(answer)
        response = answer if canonical is None else _answer_line(canonical)
        rationale = record.get("rationale")
        if include_rationale and isinstance(rationale, str) and rationale.strip():
            response = f"{rationale.strip()}\n{response}"
        category = record.get("category")
        return Example(
            prompt=self.format_prompt(fields),
            response=response,
            category=category if isinstance(category, str) else "",
        )

    def gold_response(self, item: EvalItem) -> str:
        """The answer line with the reference answer (the first gold paragraph if several)."""
        gold = item.reference.split(",")[0] if self.metric == "gold_hit_rate" else item.reference
        return _answer_line(gold)

    def extract_answer(self, output: str) -> str | None:
        """The canonical answer in the last ``\\boxed{...}`` of ``output``; ``None`` if none is readable."""
        content = _last_box(output)
        return None if content is None else self.canonical_answer(content)

    def verify(self, record: dict[str, Any]) -> bool | None:
        """Whether the record's answer is right, recomputed from the record's own text.

        ``None`` when the record cannot be judged: a missing or non-text field, or text
        outside the glossary (an off-domain record). ``False`` when the answer is wrong or
        cannot be read as an answer at all (a sentence).
        """
        try:
            fields = self._prompt_fields(record)
            answer = _text_field(record, "answer", self.name)
        except DataError:
            return None
        if fields is None:
            return None
        right = self.recompute(fields)
        if right is None:
            return None
        stated = self.canonical_answer(answer)
        return stated is not None and self._accepts(stated, right)

    def _accepts(self, stated: str, right: frozenset[str]) -> bool:
        return stated in right

    def record_prompt(self, record: dict[str, Any]) -> str | None:
        try:
            fields = self._prompt_fields(record)
        except DataError:
            return None
        return None if fields is None else self.format_prompt(fields)


# -- prior art -------------------------------------------------------------------------------

_LETTERS = "ABCDEFGH"


def _read_letters(text: str) -> str | None:
    labels = parse_label_set(text)
    if not labels or not labels <= set(_LETTERS):
        return None
    return canonical_label_set(labels)


def _candidate_sets(text: str) -> dict[str, frozenset[str]] | None:
    """Letter -> the glossary terms it lists; ``None`` if a line is not ``X: term, term``."""
    candidates: dict[str, frozenset[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _CANDIDATE_LINE.fullmatch(line.strip())
        if match is None:
            return None
        terms = _glossary_terms(match.group(2), ",")
        if terms is None:
            return None
        candidates[match.group(1).upper()] = terms
    return candidates or None


def _draw_claim(rng: random.Random, category: str, sizes: Sequence[int], avoid: _Avoid) -> list[str] | None:
    claim = rng.sample(COMPONENTS[category], rng.choice(sizes))
    return None if frozenset(claim) in avoid else claim


class PriorArtRetrieval(_PatentTask):
    """PAR4PC: which of eight candidate references disclose every element of a claim."""

    name = "patent_prior_art"
    description = (
        "Prior-art retrieval: a claim lists its elements (components such as 'hinge; latch'); "
        "eight candidate references A-H each list the elements they disclose. Answer every "
        "reference that discloses all of the claim's elements (at least one does), as "
        "'Answer: \\boxed{B,E}'. Scored by macro-F1 over the letters; an item counts as right "
        "only if its set of letters is exactly right."
    )
    output_format = "Answer: \\boxed{<letters, comma-separated>}"
    metric = "macro_f1"
    max_new_tokens = 96
    DEFAULT_SIZES: ClassVar[dict[str, int]] = {
        "examiner_reviewed": 1000,
        "auto_labelled": 3000,
        "office_actions": 1200,
        "trademark_search": 500,
        "validation_size": 100,
        "test_size": 100,
    }
    PROMPT_FIELDS = ("claim", "candidates")
    NEAR_DUPLICATE_FIELD = "claim"
    OFF_DOMAIN_SOURCE = "trademark_search"
    INSTRUCTION = "Which refs have all claim elements? Answer: \\boxed{letters, comma-separated}"

    def format_prompt(self, fields: dict[str, str]) -> str:
        return f"Claim: {fields['claim'].strip()}\n{fields['candidates'].strip()}\n{self.INSTRUCTION}"

    def canonical_answer(self, text: str) -> str | None:
        """Letters A-H in any case, separated by commas, spaces or "and": ``"b and e"`` -> ``"B,E"``."""
        return _read_letters(text)

    def recompute(self, record: dict[str, str]) -> frozenset[str] | None:
        claim = _glossary_terms(record["claim"], ";")
        candidates = _candidate_sets(record["candidates"])
        if claim is None or candidates is None:
            return None
        gold = {letter for letter, terms in candidates.items() if claim <= terms}
        # The one right answer, as a set of one canonical string (an empty set of letters
        # cannot be right: every search has at least one hit).
        return frozenset({canonical_label_set(gold)}) if gold else frozenset()

    def _new_case(
        self, rng: random.Random, category: str, avoid: _Avoid, *, for_eval: bool, index: int
    ) -> _Case | None:
        claim = _draw_claim(rng, category, (2, 2, 3), avoid)
        if claim is None:
            return None
        others = [c for c in COMPONENTS[category] if c not in claim]
        hits = set(rng.sample(_LETTERS, rng.choices((1, 2, 3), weights=(5, 3, 2))[0]))
        lines = []
        for letter in _LETTERS:
            if letter in hits:
                terms = claim + rng.sample(others, rng.choice((0, 0, 1)))
            elif rng.random() < 0.6:
                # A near miss: all but one element, so a reader must check every element.
                missing = rng.choice(claim)
                terms = [c for c in claim if c != missing] + rng.sample(others, 1)
            else:
                kept = rng.sample(claim, rng.randint(0, len(claim) - 1))
                terms = kept + rng.sample(others, rng.randint(2 - min(len(kept), 1), 3 - len(kept)))
            rng.shuffle(terms)
            lines.append(f"{letter}: {', '.join(terms)}")
        answer = canonical_label_set(hits)
        ordered = sorted(hits)
        verb = "discloses" if len(ordered) == 1 else "disclose"
        return _Case(
            key=frozenset(claim),
            category=category,
            fields={"claim": "; ".join(claim), "candidates": "\n".join(lines)},
            answer=answer,
            reference=answer,
            rationale=f"{_join(ordered)} {verb} {_join(claim)}.",
        )

    def _wrong_answer(self, record: dict[str, Any], rng: random.Random) -> str:
        claim = _glossary_terms(record["claim"], ";")
        candidates = _candidate_sets(record["candidates"])
        if claim is None or candidates is None:  # pragma: no cover - generated records always parse
            raise TaskSpecError(f"{self.name} task: cannot parse generated record {record['id']}")
        gold = {letter for letter, terms in candidates.items() if claim <= terms}
        near = [letter for letter, terms in candidates.items() if len(claim - terms) == 1]
        misses = near or sorted(set(candidates) - gold)
        moves: list[Callable[[], set[str]]] = [
            lambda: gold | {rng.choice(misses)},
            lambda: (gold - {rng.choice(sorted(gold))}) | {rng.choice(misses)},
        ]
        if len(gold) > 1:
            moves.append(lambda: gold - {rng.choice(sorted(gold))})
        return canonical_label_set(rng.choice(moves)())

    def _restyle(self, answer: str, style: str, record: dict[str, Any], rng: random.Random) -> str:
        letters = answer.split(",")
        if style == "lower":
            return rng.choice((", ", ",", " ")).join(letter.lower() for letter in letters)
        if style == "spelled":
            return _join(letters, rng.choice(("and", "&")))
        verb = "anticipates" if len(letters) == 1 else "anticipate"
        return rng.choice(
            (
                f"Ref. {_join(letters)} {verb} the claim.",
                f"Anticipated by {_join(letters)}.",
                f"See {_join(letters)}; all elements shown.",
            )
        )

    def _off_domain_record(self, rng: random.Random) -> dict[str, str]:
        mark, nice_class = _coined_mark(rng), rng.choice(_NICE_CLASSES)
        hits = set(rng.sample(_LETTERS, rng.choice((1, 1, 2))))
        lines = []
        for letter in _LETTERS:
            if letter in hits:
                other, other_class = _similar_mark(mark, rng), nice_class
            elif rng.random() < 0.5:
                other, other_class = (
                    _similar_mark(mark, rng),
                    rng.choice([c for c in _NICE_CLASSES if c != nice_class]),
                )
            else:
                other, other_class = _unrelated_mark(mark, rng), nice_class
            lines.append(f"{letter}: {other}, class {other_class}")
        ordered = sorted(hits)
        return {
            "claim": f"mark {mark}; class {nice_class}",
            "candidates": "\n".join(lines),
            "answer": canonical_label_set(hits),
            "rationale": f"{_join(ordered)}: similar mark, same class {nice_class}.",
            "category": "trademark",
        }

    def _items_noun(self) -> str:
        return "prior-art searches (claim elements, 8 candidate references A-H)"

    def _style_examples(self) -> str:
        return "'B,E', 'b, e', 'B and E', 'Anticipated by B and E.'"

    def _off_domain_note(self) -> str:
        return (
            "trademark clearance searches from the same docketing system: same columns, but the "
            "'claim' is a mark and a goods class and the candidates are registered marks."
        )


# -- paragraphs ------------------------------------------------------------------------------

_PARAGRAPH_TEMPLATES = ("The {c} {a}.", "{article} {c} {a}.", "Its {c} {a}.")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _paragraphs(text: str) -> list[tuple[int, str]] | None:
    """``[(number, lower-case text), ...]``; ``None`` if a line is not ``[0012] text``."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _PARAGRAPH_LINE.fullmatch(line.strip())
        if match is None:
            return None
        out.append((int(match.group(1)), " ".join(match.group(2).lower().split())))
    return out or None


def _discloses(text: str, component: str, action: str) -> bool:
    return re.search(rf"\b{re.escape(component)}\b", text) is not None and action in text


class ParagraphIdentification(_PatentTask):
    """PI4PC: which numbered paragraph of a reference discloses a claim element."""

    name = "patent_paragraph"
    description = (
        "Paragraph identification: a claim element ('a latch that locks the lid') and a "
        "reference of 4-6 numbered paragraphs ([0012] ...). Answer the number of the paragraph "
        "that discloses the element -- the same component doing the same thing -- as "
        "'Answer: \\boxed{13}'. Some elements are disclosed by two paragraphs; either is a hit. "
        "Scored by gold hit rate."
    )
    output_format = "Answer: \\boxed{<paragraph number>}"
    metric = "gold_hit_rate"
    max_new_tokens = 96
    DEFAULT_SIZES: ClassVar[dict[str, int]] = {
        "examiner_reviewed": 1000,
        "auto_labelled": 3000,
        "office_actions": 1200,
        "litigation_docket": 500,
        "validation_size": 100,
        "test_size": 100,
    }
    PROMPT_FIELDS = ("element", "paragraphs")
    NEAR_DUPLICATE_FIELD = "element"
    OFF_DOMAIN_SOURCE = "litigation_docket"
    INSTRUCTION = "Which paragraph discloses it? Answer: \\boxed{number}"
    #: Share of items whose element two paragraphs disclose.
    TWO_GOLD_RATE = 0.2
    # Rationales state the element, then the paragraph ("The valve samples the blood: [0055].");
    # see _new_case for why.
    GENERATOR_VERSION = 2

    def format_prompt(self, fields: dict[str, str]) -> str:
        return f"Element: {fields['element'].strip()}\n{fields['paragraphs'].strip()}\n{self.INSTRUCTION}"

    def display_reference(self, reference: str) -> str:
        numbers = parse_paragraph_numbers(reference)
        return reference if numbers is None else _join([str(n) for n in sorted(numbers)], "or")

    def canonical_answer(self, text: str) -> str | None:
        """Paragraph number(s) without leading zeros: ``"[0013]"``, ``"para. 13"`` -> ``"13"``."""
        numbers = parse_paragraph_numbers(text)
        return None if numbers is None else canonical_paragraphs(numbers)

    def recompute(self, record: dict[str, str]) -> frozenset[str] | None:
        match = _ELEMENT.fullmatch(" ".join(record["element"].lower().split()))
        paragraphs = _paragraphs(record["paragraphs"])
        if match is None or match.group(1) not in _GLOSSARY or paragraphs is None:
            return None
        component, action = match.group(1), match.group(2)
        return frozenset(str(n) for n, text in paragraphs if _discloses(text, component, action))

    def _accepts(self, stated: str, right: frozenset[str]) -> bool:
        return set(stated.split(",")) <= right

    def _new_case(
        self, rng: random.Random, category: str, avoid: _Avoid, *, for_eval: bool, index: int
    ) -> _Case | None:
        components, actions = COMPONENTS[category], ACTIONS[category]
        component, action = rng.choice(components), rng.choice(actions)
        if (component, action) in avoid:
            return None
        n_gold = 2 if rng.random() < self.TWO_GOLD_RATE else 1
        n_paragraphs = rng.choices((4, 5, 6), weights=(4, 4, 2))[0]
        pairs: list[tuple[str, str]] = [(component, action)] * n_gold
        # Hard negatives first: the right component doing something else, and the right
        # function done by another component, so that one matching word is not enough.
        if rng.random() < 0.8:
            pairs.append((component, rng.choice([a for a in actions if a != action])))
        if rng.random() < 0.8:
            pairs.append((rng.choice([c for c in components if c != component]), action))
        while len(pairs) < n_paragraphs:
            pair = (rng.choice(components), rng.choice(actions))
            if pair[0] != component and pair[1] != action and pair not in pairs:
                pairs.append(pair)
        if not for_eval and any(pair in avoid for pair in pairs):
            return None
        rng.shuffle(pairs)
        start = rng.randint(1, 60)
        lines = []
        templates = list(_PARAGRAPH_TEMPLATES)
        for k, (c, a) in enumerate(pairs):
            # Two gold paragraphs read differently, as two passages of one reference would.
            template = templates.pop(rng.randrange(len(templates))) if (c, a) == (component, action) else None
            text = (template or rng.choice(_PARAGRAPH_TEMPLATES)).format(
                c=c, a=a, article=_article(c).title()
            )
            lines.append(f"[{start + k:04d}] {text}")
        gold = [start + k for k, pair in enumerate(pairs) if pair == (component, action)]
        cited = " and ".join(f"[{n:04d}]" for n in gold)
        return _Case(
            key=(component, action),
            category=category,
            fields={
                "element": f"{_article(component)} {component} that {action}",
                "paragraphs": "\n".join(lines),
            },
            answer=str(gold[0]),
            reference=canonical_paragraphs(set(gold)),
            # The element as a sentence first, then where it stands: a causal model can
            # copy the sentence from the prompt and find it, where a rationale that opens
            # with the number makes it guess first (SmolLM2 then stays at chance).
            rationale=f"The {component} {action}: {cited}.",
        )

    def _wrong_answer(self, record: dict[str, Any], rng: random.Random) -> str:
        match = _ELEMENT.fullmatch(" ".join(record["element"].lower().split()))
        paragraphs = _paragraphs(record["paragraphs"])
        if match is None or paragraphs is None:  # pragma: no cover - generated records always parse
            raise TaskSpecError(f"{self.name} task: cannot parse generated record {record['id']}")
        component, action = match.group(1), match.group(2)
        wrong = [(n, t) for n, t in paragraphs if not _discloses(t, component, action)]
        # A keyword matcher's mistake: the paragraph that names the component (or the function).
        half_right = [n for n, t in wrong if re.search(rf"\b{component}\b", t) or action in t]
        if half_right and rng.random() < 0.7:
            return str(rng.choice(half_right))
        return str(rng.choice(wrong)[0])

    def _restyle(self, answer: str, style: str, record: dict[str, Any], rng: random.Random) -> str:
        number = int(answer)
        if style == "lower":
            return rng.choice((f"{number:04d}", f"[{number:04d}]"))
        if style == "spelled":
            return rng.choice((f"para. {number}", f"paragraph {number}", f"¶ {number}", f"¶[{number:04d}]"))
        return rng.choice(
            (
                f"See paragraph [{number:04d}].",
                f"Disclosed at [{number:04d}] of the reference.",
                f"The examiner cites [{number:04d}].",
            )
        )

    def _off_domain_record(self, rng: random.Random) -> dict[str, str]:
        motion = rng.choice(_MOTIONS)
        others = [m for m in _MOTIONS if m != motion]
        ruling = rng.choice(("granted", "denied"))
        entries = [f"Court {ruling} the {motion}."]
        entries.append(f"{rng.choice(_PARTIES)} filed the {motion}.")
        while len(entries) < 4:
            verb = rng.choice(("filed", "opposed", "granted", "denied"))
            actor = "Court" if verb in ("granted", "denied") else rng.choice(_PARTIES)
            entries.append(f"{actor} {verb} the {rng.choice(others)}.")
        rng.shuffle(entries)
        start = rng.randint(1, 90)
        number = start + entries.index(f"Court {ruling} the {motion}.")
        return {
            "element": f"ruling on the {motion}",
            "paragraphs": "\n".join(f"[{start + k:04d}] {e}" for k, e in enumerate(entries)),
            "answer": str(number),
            "rationale": f"Docket entry {number} is the court's ruling.",
            "category": "litigation",
        }

    def _items_noun(self) -> str:
        return "paragraph citations (claim element, reference paragraphs [0012] ...)"

    def _style_examples(self) -> str:
        return "'13', '[0013]', 'para. 13', 'See paragraph [0013].'"

    def _off_domain_note(self) -> str:
        return (
            "court docket extracts from the same document system: same columns, but the 'element' "
            "is a motion and the paragraphs are docket entries."
        )


# -- novelty -----------------------------------------------------------------------------------

_DECISIONS = ("ALLOW", "102", "103")
_DECISION_TEXT = re.compile(
    r"(?:35\s*u\.?\s*s\.?\s*c\.?\s*)?(?:§+|sec(?:tion|\.)?)?\s*(10[23])|(allow(?:ed|able|ance)?)",
    re.IGNORECASE,
)


def _read_decision(text: str) -> str | None:
    match = _DECISION_TEXT.fullmatch(text.strip().rstrip("."))
    if match is None:
        return None
    return match.group(1) or "ALLOW"


class NoveltyDecision(_PatentTask):
    """NOC4PC: is a claim allowable, anticipated by one reference (102) or obvious over both (103)."""

    name = "patent_novelty"
    description = (
        "Novelty and obviousness: a claim lists its elements and two references D1, D2 list "
        "what they disclose. Answer ALLOW if no reference and no combination discloses every "
        "element, 102 if one reference alone does, 103 if only D1 and D2 together do, as "
        "'Answer: \\boxed{103}'. Scored by macro-F1 over the three decisions."
    )
    output_format = "Answer: \\boxed{ALLOW|102|103}"
    metric = "macro_f1"
    max_new_tokens = 112
    DEFAULT_SIZES: ClassVar[dict[str, int]] = {
        "examiner_reviewed": 1000,
        "auto_labelled": 3000,
        "office_actions": 1200,
        "trademark_refusals": 500,
        "validation_size": 100,
        "test_size": 100,
    }
    PROMPT_FIELDS = ("claim", "d1", "d2")
    NEAR_DUPLICATE_FIELD = "claim"
    OFF_DOMAIN_SOURCE = "trademark_refusals"
    INSTRUCTION = (
        "ALLOW if no ref or combination has every element, 102 if one ref has all, "
        "103 if only D1+D2 do. Answer: \\boxed{decision}"
    )

    def format_prompt(self, fields: dict[str, str]) -> str:
        return (
            f"Claim: {fields['claim'].strip()}\nD1: {fields['d1'].strip()}\nD2: {fields['d2'].strip()}\n"
            f"{self.INSTRUCTION}"
        )

    def canonical_answer(self, text: str) -> str | None:
        """``ALLOW``, ``102`` or ``103`` from ``"allowed"``, ``"§ 102"``, ``"35 U.S.C. 103"``, ..."""
        return _read_decision(text)

    def recompute(self, record: dict[str, str]) -> frozenset[str] | None:
        claim = _glossary_terms(record["claim"], ";")
        d1 = _glossary_terms(record["d1"], ",")
        d2 = _glossary_terms(record["d2"], ",")
        if claim is None or d1 is None or d2 is None:
            return None
        if claim <= d1 or claim <= d2:
            return frozenset({"102"})
        return frozenset({"103" if claim <= d1 | d2 else "ALLOW"})

    def _new_case(
        self, rng: random.Random, category: str, avoid: _Avoid, *, for_eval: bool, index: int
    ) -> _Case | None:
        claim = _draw_claim(rng, category, (2, 3, 3, 4), avoid)
        if claim is None:
            return None
        # By position, so that every split and source holds the three decisions equally.
        decision = _DECISIONS[index % len(_DECISIONS)]
        others = [c for c in COMPONENTS[category] if c not in claim]

        def extras(low: int, high: int) -> list[str]:
            return rng.sample(others, rng.randint(low, high))

        if decision == "102":
            full = claim + extras(0, 1)
            partial = rng.sample(claim, rng.randint(0, len(claim) - 1)) + extras(1, 2)
            refs = [full, partial]
            rng.shuffle(refs)
            whole = "D1" if refs[0] is full else "D2"
            rationale = f"{whole} discloses every element."
        elif decision == "103":
            first = rng.sample(claim, rng.randint(1, len(claim) - 1))
            rest = [c for c in claim if c not in first]
            overlap = rng.sample(first, rng.randint(0, len(first) - 1))
            refs = [first + extras(0, 1), rest + overlap + extras(0, 1)]
            rng.shuffle(refs)
            lacks = "; ".join(
                f"D{k + 1} lacks {_join([c for c in claim if c not in ref])}" for k, ref in enumerate(refs)
            )
            rationale = f"{lacks}; D1+D2 have all."
        else:
            absent = rng.sample(claim, rng.choice((1, 1, 2)) if len(claim) > 2 else 1)
            present = [c for c in claim if c not in absent]
            refs = [rng.sample(present, rng.randint(0, len(present))) + extras(1, 2) for _ in range(2)]
            rationale = f"No reference discloses {_join([c for c in claim if c in absent], 'or')}."
        for ref in refs:
            rng.shuffle(ref)
        return _Case(
            key=frozenset(claim),
            category=category,
            fields={"claim": "; ".join(claim), "d1": ", ".join(refs[0]), "d2": ", ".join(refs[1])},
            answer=decision,
            reference=decision,
            rationale=rationale,
        )

    def _wrong_answer(self, record: dict[str, Any], rng: random.Random) -> str:
        right = record["answer"]
        # The mistakes examiners' tools make: one reference or two, and a missed element.
        likely = {"102": "103", "103": rng.choice(("102", "ALLOW")), "ALLOW": "103"}[right]
        if rng.random() < 0.75:
            return likely
        return rng.choice([d for d in _DECISIONS if d != right])

    def _restyle(self, answer: str, style: str, record: dict[str, Any], rng: random.Random) -> str:
        if style == "lower":
            return "allow" if answer == "ALLOW" else rng.choice((f"§{answer}", f"§ {answer}"))
        if style == "spelled":
            if answer == "ALLOW":
                return rng.choice(("Allowed", "allowable"))
            return rng.choice((f"35 U.S.C. {answer}", f"35 USC {answer}", f"Section {answer}"))
        prose = {
            "ALLOW": ("Claim is novel and non-obvious.", "No art of record teaches all elements."),
            "102": ("Anticipated by a single reference.", "One reference shows every element."),
            "103": ("Obvious over D1 in view of D2.", "Obvious: D1 and D2 together teach it."),
        }
        return rng.choice(prose[answer])

    def _off_domain_record(self, rng: random.Random) -> dict[str, str]:
        mark, nice_class = _coined_mark(rng), rng.choice(_NICE_CLASSES)
        decision = rng.choice(("2(d)", "2(e)", "REGISTER"))
        if decision == "2(e)":
            mark = rng.choice(_DESCRIPTIVE_MARKS)
        first = _similar_mark(mark, rng) if decision == "2(d)" else _unrelated_mark(mark, rng)
        refs = [
            f"{first}, class {nice_class}",
            f"{_unrelated_mark(mark, rng)}, class {rng.choice(_NICE_CLASSES)}",
        ]
        rng.shuffle(refs)
        reason = {
            "2(d)": f"{first} is confusingly similar in class {nice_class}.",
            "2(e)": f"{mark} merely describes the goods.",
            "REGISTER": "No conflicting mark; not descriptive.",
        }[decision]
        return {
            "claim": f"mark {mark}; class {nice_class}",
            "d1": refs[0],
            "d2": refs[1],
            "answer": decision,
            "rationale": reason,
            "category": "trademark",
        }

    def _items_noun(self) -> str:
        return "novelty decisions (claim elements, references D1 and D2)"

    def _style_examples(self) -> str:
        return "'103', '§ 103', '35 U.S.C. 103', 'allowable', 'Obvious over D1 in view of D2.'"

    def _off_domain_note(self) -> str:
        return (
            "trademark examination decisions from the same office: same columns, but the 'claim' "
            "is a mark and the answers are trademark refusal grounds (2(d), 2(e)) or REGISTER."
        )


# -- off-domain vocabulary ---------------------------------------------------------------------

_SYLLABLES = ("VEL", "SOL", "KOR", "ZEN", "MIR", "TAV", "LUX", "NOR", "QUI", "RAD", "BEL", "DOR")
_ENDINGS = ("ARA", "IX", "ON", "ELLA", "EX", "OVA", "ITA", "UM")
_NICE_CLASSES = (3, 9, 25, 30, 35, 41, 42)
_DESCRIPTIVE_MARKS = ("FASTCHARGE", "SOFTSOLE", "PUREWATER", "CLEARVIEW", "QUICKFIX", "FRESHBAKE")
_MOTIONS = (
    "motion to dismiss", "motion to compel", "motion to stay", "motion to transfer",
    "motion to strike", "motion to amend",
)  # fmt: skip
_PARTIES = ("Plaintiff", "Defendant")


def _coined_mark(rng: random.Random) -> str:
    return rng.choice(_SYLLABLES) + rng.choice(_ENDINGS)


def _similar_mark(mark: str, rng: random.Random) -> str:
    """A mark an examiner would call confusingly similar: same start, another ending."""
    stem = mark[:3]
    return stem + rng.choice([e for e in _ENDINGS if stem + e != mark])


def _unrelated_mark(mark: str, rng: random.Random) -> str:
    """A coined mark that shares no stem with ``mark``."""
    return rng.choice([s for s in _SYLLABLES if s != mark[:3]]) + rng.choice(_ENDINGS)
