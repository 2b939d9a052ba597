"""The four chemistry tasks (mirroring ChemCoTBench): molecule understanding, editing,
optimization and reaction prediction, generated offline from a seed and checked with RDKit.

Molecules come from one deterministic construction: a ring scaffold (benzene, pyridine,
piperidine, biphenyl, ...) with one to three positions, each left as hydrogen or given a
small substituent (methyl, hydroxyl, amino, halogen, nitrile, acid, ester, ...). Every
SMILES shown is RDKit's canonical SMILES of the assembled molecule and at most 40
characters long, so that a character-level model can read a whole prompt.

Every answer goes in ``<answer>...</answer>`` at the end of the response (the prompt says
so); generation stops at ``</answer>``. Every task generates four raw sources that differ
the way real chemistry data does:

- a curated set with short rationales ("OH added; heavy atoms 9 -> 10") - all correct;
- a large CSV export without rationales in which exactly ``round(0.35 * n)`` answers are
  wrong or not SMILES at all (:meth:`verify` recomputes every answer with RDKit and
  catches them);
- a Markdown lab-notebook table: non-canonical (shuffled or Kekulé) SMILES in about half
  the records, answers in the wrong format ("Product: CCO", "three") in exactly
  ``round(0.4 * n)``, plus exact and near duplicates;
- an off-task distractor in the same shape (periodic-table quiz, molecular formulas,
  property read-outs, reaction naming) that teaches answers that are not what is asked.

Evaluation molecules are drawn first and claimed: no molecule of an evaluation item (a
source molecule, an edited or optimized answer, a reaction's scaffold-built reactant or
its product) occurs in any raw record, in any SMILES spelling, and no two evaluation
items share one. RDKit is imported inside functions only, so importing this module stays
cheap; the evaluator's worker imports it to call :meth:`extract_answer`.
"""

from __future__ import annotations

import abc
import functools
import itertools
import json
import random
import re
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from ftdojo.errors import ConfigError, DataError, TaskSpecError
from ftdojo.scoring import chemistry as chem
from ftdojo.tasks.spec import EvalItem, Example, RawSource, normalize_text
from ftdojo.tasks.synthetic import (
    SourceQuality,
    SyntheticTask,
    balanced_categories,
    corrupt,
    with_duplicates,
)

if TYPE_CHECKING:
    from rdkit.Chem import Mol
    from rdkit.Chem.rdChemReactions import ChemicalReaction

__all__ = [
    "ANSWER_CLOSE",
    "ANSWER_OPEN",
    "MAX_MOLECULE_CHARS",
    "MoleculeEditing",
    "MoleculeOptimization",
    "MoleculeUnderstanding",
    "ReactionPrediction",
    "edit_text",
    "parse_edit",
]

ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"
_ANSWER = re.compile(re.escape(ANSWER_OPEN) + r"(.*?)" + re.escape(ANSWER_CLOSE), re.DOTALL)

#: Longest SMILES of a generated molecule; keeps prompts and responses short.
MAX_MOLECULE_CHARS = 40


def _response(answer: str, rationale: str | None) -> str:
    tagged = f"{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
    return f"{rationale}\n{tagged}" if rationale else tagged


def _last_answer(output: str) -> str | None:
    """Content of the last complete ``<answer>...</answer>`` in ``output``, stripped."""
    found = _ANSWER.findall(output)
    return found[-1].strip() if found else None


def _text_field(record: dict[str, Any], field: str, task: str) -> str:
    if field not in record:
        raise DataError(f"{task} record is missing the {field!r} field (has: {sorted(record)})")
    value = record[field]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"{task} record field {field!r} must be text, got {type(value).__name__}")
    return str(value).strip()


def _optional_text(record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    return value.strip() if isinstance(value, str) else ""


# -- the molecule construction -------------------------------------------------------------


@attrs.frozen
class _Scaffold:
    name: str
    #: SMILES with ``[*k]`` where substituent k goes; every position is a branch or the
    #: last atom, so a substituent's first atom is the one bonded to the ring.
    template: str
    #: One letter per position: ``a`` a ring carbon (any substituent), ``n`` a ring
    #: nitrogen (alkyl or acetyl only, so it stays an ordinary amine or amide).
    kinds: str


_SCAFFOLDS = (
    _Scaffold("benzene", "c1([*1])cc([*2])ccc1[*3]", "aaa"),
    _Scaffold("pyridine", "c1([*1])ccc([*2])nc1", "aa"),
    _Scaffold("pyrimidine", "c1([*1])cnc([*2])nc1", "aa"),
    _Scaffold("thiophene", "c1([*1])ccc([*2])s1", "aa"),
    _Scaffold("furan", "c1([*1])ccc([*2])o1", "aa"),
    _Scaffold("pyrazine", "c1([*1])cnc([*2])cn1", "aa"),
    _Scaffold("thiazole", "c1([*1])ncc([*2])s1", "aa"),
    _Scaffold("naphthalene", "c1([*1])ccc2cc([*2])ccc2c1", "aa"),
    _Scaffold("indole", "c1([*1])ccc2[nH]ccc2c1", "a"),
    _Scaffold("biphenyl", "c1([*1])ccc(-c2ccc([*2])cc2)cc1", "aa"),
    _Scaffold("cyclohexane", "C1([*1])CCC([*2])CC1", "aa"),
    _Scaffold("cyclopentane", "C1([*1])CCC([*2])C1", "aa"),
    _Scaffold("cyclobutane", "C1([*1])CC([*2])C1", "aa"),
    _Scaffold("piperidine", "C1([*1])CCN([*2])CC1", "an"),
    _Scaffold("oxane", "C1([*1])CCOCC1", "a"),
)

#: Substituent SMILES (first atom bonded to the ring) and the short label rationales use.
_SUBSTITUENT_LABELS = {
    "C": "CH3", "CC": "Et", "O": "OH", "OC": "OMe", "N": "NH2", "N(C)C": "NMe2", "F": "F",
    "Cl": "Cl", "Br": "Br", "C(=O)C": "Ac", "C=O": "CHO", "C(=O)O": "COOH", "C(=O)OC": "CO2Me",
    "C(N)=O": "CONH2", "C#N": "CN", "C(F)(F)F": "CF3", "CO": "CH2OH", "C3CC3": "cPr",
}  # fmt: skip
_SUBSTITUENTS = tuple(_SUBSTITUENT_LABELS)
_ACYCLIC_SUBSTITUENTS = tuple(s for s in _SUBSTITUENTS if s != "C3CC3")
_RING_N_SUBSTITUENTS = ("C", "CC", "C(=O)C")
#: Substituents that no reaction template here touches.
_INERT_SUBSTITUENTS = ("C", "CC", "OC", "F", "Cl", "Br", "C#N", "C(F)(F)F", "C(=O)C", "C(=O)OC")
_HYDROGEN_RATE = 0.2


@attrs.frozen
class _Molecule:
    scaffold: int
    #: One entry per scaffold position; ``""`` is hydrogen.
    subs: tuple[str, ...]
    smiles: str


def _allowed(kind: str, sub: str) -> bool:
    return sub == "" or kind == "a" or sub in _RING_N_SUBSTITUENTS


@functools.lru_cache(maxsize=65536)
def _assemble(scaffold: int, subs: tuple[str, ...]) -> str | None:
    """Canonical SMILES of ``subs`` on scaffold ``scaffold``; ``None`` if invalid or too long."""
    text = _SCAFFOLDS[scaffold].template
    for k, sub in enumerate(subs, start=1):
        text = text.replace(f"[*{k}]", sub or "[H]")
    smiles = chem.canonical_smiles(text)
    return smiles if smiles is not None and len(smiles) <= MAX_MOLECULE_CHARS else None


def _molecule(scaffold: int, subs: tuple[str, ...]) -> _Molecule | None:
    smiles = _assemble(scaffold, subs)
    return None if smiles is None else _Molecule(scaffold=scaffold, subs=subs, smiles=smiles)


# A scaffold with more positions has many more molecules: drawing scaffolds uniformly would
# repeat the few one-position molecules over and over (and exhaust them), drawing them in
# proportion to their molecule counts would make nearly everything a benzene.
_SCAFFOLD_WEIGHTS = tuple({1: 1, 2: 3, 3: 6}[len(s.kinds)] for s in _SCAFFOLDS)


def _draw_molecule(rng: random.Random, pool: Sequence[str] = _SUBSTITUENTS) -> _Molecule:
    """A random molecule: a weighted scaffold, each position hydrogen or a substituent of ``pool``.

    At least one position is substituted: the dozen bare scaffolds would otherwise be
    drawn so often that they dominate every source.
    """
    for _ in range(1000):
        scaffold = rng.choices(range(len(_SCAFFOLDS)), weights=_SCAFFOLD_WEIGHTS)[0]
        subs = tuple(
            "" if rng.random() < _HYDROGEN_RATE else rng.choice(pool if kind == "a" else _RING_N_SUBSTITUENTS)
            for kind in _SCAFFOLDS[scaffold].kinds
        )
        if not any(subs):
            continue
        molecule = _molecule(scaffold, subs)
        if molecule is not None:
            return molecule
    raise TaskSpecError("chemistry: cannot draw a valid molecule")  # pragma: no cover


@functools.cache
def _molecules_with(handle: str) -> tuple[str, ...]:
    """Every molecule with ``handle`` at one ring carbon and inert substituents (or H) elsewhere.

    Enumerated rather than drawn, so that reactants are drawn uniformly from a known pool
    of a few hundred molecules (random draws would keep hitting the same few).
    """
    found: dict[str, None] = {}
    for index, scaffold in enumerate(_SCAFFOLDS):
        for position, kind in enumerate(scaffold.kinds):
            if kind != "a":
                continue
            others = [
                ("", *(_INERT_SUBSTITUENTS if k == "a" else _RING_N_SUBSTITUENTS))
                for j, k in enumerate(scaffold.kinds)
                if j != position
            ]
            for combo in itertools.product(*others):
                subs = (*combo[:position], handle, *combo[position:])
                smiles = _assemble(index, subs)
                if smiles is not None:
                    found[smiles] = None
    return tuple(found)


def _with_sub(molecule: _Molecule, position: int, sub: str) -> _Molecule | None:
    subs = list(molecule.subs)
    subs[position] = sub
    return _molecule(molecule.scaffold, tuple(subs))


def _edited_in_place(source: str, core: str, edited: str) -> str | None:
    """``edited`` written as an edit of the string ``source``: the untouched atoms in their order.

    ``core`` is what source and edited share (the molecule without the edited
    substituent). Its atoms keep their order in ``source``; a new group takes the place
    of the group it replaces (or follows the atom it is added to, as a branch), and the
    molecule is written without canonicalisation: ``N#CC1CCC(C=O)C1`` without its nitrile
    becomes ``C1CCC(C=O)C1``, where the canonical SMILES, ``O=CC1CCCC1``, reorders every
    atom. The same molecule (the metric compares canonical forms); ``None`` when the core
    is not found in both.
    """
    from rdkit import Chem

    source_mol, core_mol, edited_mol = (chem.parse_smiles(text) for text in (source, core, edited))
    if source_mol is None or core_mol is None or edited_mol is None:
        return None
    in_source, in_edited = source_mol.GetSubstructMatch(core_mol), edited_mol.GetSubstructMatch(core_mol)
    if not in_source or not in_edited:
        return None
    place = {e: float(s) for s, e in zip(in_source, in_edited, strict=True)}
    removed = set(range(source_mol.GetNumAtoms())) - set(in_source)
    start = min(removed) - 0.5 if removed else float(source_mol.GetNumAtoms())
    new_atoms = [k for k in range(edited_mol.GetNumAtoms()) if k not in place]
    for j, k in enumerate(new_atoms):
        place[k] = start + j / (len(new_atoms) + 1)
    order = sorted(range(edited_mol.GetNumAtoms()), key=place.__getitem__)
    written = Chem.MolToSmiles(Chem.RenumberAtoms(edited_mol, order), canonical=False)
    return written if chem.canonical_smiles(written) == chem.canonical_smiles(edited) else None


def _noncanonical(smiles: str, rng: random.Random) -> str:
    """Another SMILES of the same molecule: atoms in a shuffled order, sometimes Kekulé form."""
    from rdkit import Chem

    mol = chem.parse_smiles(smiles)
    if mol is None:
        return smiles
    for _ in range(8):
        order = list(range(mol.GetNumAtoms()))
        rng.shuffle(order)
        shuffled = Chem.RenumberAtoms(mol, order)
        kekule = rng.random() < 0.3
        if kekule:
            Chem.Kekulize(shuffled, clearAromaticFlags=True)
        text = Chem.MolToSmiles(shuffled, canonical=False, kekuleSmiles=kekule)
        if text != smiles and chem.canonical_smiles(text) == chem.canonical_smiles(smiles):
            return text
    return smiles


def _broken(smiles: str, rng: random.Random) -> str:
    """A string that looks like ``smiles`` but RDKit cannot parse (a typo, a lost ring closure)."""
    digits = [k for k, c in enumerate(smiles) if c.isdigit()]
    attempts = []
    if digits:
        k = rng.choice(digits)
        attempts.append(smiles[:k] + smiles[k + 1 :])
    attempts += [smiles + "(", smiles.replace("c", "C", 1), smiles[:-1] + "=" + smiles[-1] + "("]
    for text in attempts:
        if chem.parse_smiles(text) is None:
            return text
    return smiles + "(("  # an unclosed branch never parses


def _formula(smiles: str) -> str:
    from rdkit.Chem import rdMolDescriptors

    mol = chem.parse_smiles(smiles)
    if mol is None:  # pragma: no cover - only generated, valid SMILES get here
        raise TaskSpecError(f"chemistry: not a molecule: {smiles!r}")
    return str(rdMolDescriptors.CalcMolFormula(mol))


def _property(smiles: str, prop: str) -> float:
    value = chem.smiles_property(smiles, prop)
    if value is None:  # pragma: no cover - only generated, valid SMILES get here
        raise TaskSpecError(f"chemistry: not a molecule: {smiles!r}")
    return value


def _parse_or_fail(smiles: str) -> Mol:
    mol = chem.parse_smiles(smiles)
    if mol is None:  # pragma: no cover - only generated, valid SMILES get here
        raise TaskSpecError(f"chemistry: not a molecule: {smiles!r}")
    return mol


# -- the shared task machinery ---------------------------------------------------------------


@attrs.frozen
class _Case:
    """One generated question with everything needed to render it as a record or an item."""

    #: The record fields the prompt is made of (canonical SMILES).
    fields: dict[str, str]
    answer: str
    rationale: str
    category: str
    #: What the metric scores against (the answer, or a JSON document).
    reference: str
    #: Canonical SMILES of every molecule this case is about.
    entities: frozenset[str]
    #: Task-specific construction details for making a wrong answer.
    detail: Any = None


def _fields_key(fields: dict[str, Any]) -> tuple[str, ...]:
    """What makes two records the same question: their prompt fields."""
    return tuple(f"{name}={value}" for name, value in sorted(fields.items()))


#: ``taken(prompt fields, molecules)``: whether a draw is rejected (see ``_make_case``).
_Taken = Callable[[dict[str, str], set[str]], bool]

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


class _ChemistryTask(SyntheticTask):
    """What the four chemistry tasks share: sources, splits, answer format and extraction."""

    domain = "chemistry"
    stop_strings = (ANSWER_CLOSE,)
    max_new_tokens = 128
    GENERATOR_VERSION = 1
    #: What the curated source's note adds about how its answers are written.
    CURATED_STYLE: ClassVar[str] = ""
    #: Fraction of the CSV export's records whose answer is wrong (exact count, rounded).
    NOISE_RATE: ClassVar[float] = 0.35
    #: Fraction of the notebook's records whose answer is in a non-required format.
    MESSY_FORMAT_RATE: ClassVar[float] = 0.4
    #: Fraction of the notebook's records with non-canonical SMILES (drawn per record).
    NONCANONICAL_RATE: ClassVar[float] = 0.5
    #: Exact and near duplicates added to the notebook, as fractions of its size.
    DUPLICATE_RATE: ClassVar[float] = 0.05
    #: Record fields the prompt is made of, in prompt order.
    PROMPT_FIELDS: ClassVar[tuple[str, ...]]
    #: The field a near duplicate edits cosmetically (case, spacing, end punctuation).
    NEAR_FIELD: ClassVar[str]
    #: The source ids: curated, noisy export, notebook, off-task distractor.
    SOURCE_IDS: ClassVar[tuple[str, str, str, str]]
    #: What the off-task source holds, for its note.
    OFFTASK_NOTE: ClassVar[str]
    #: What a record of this task is about, for the notes ("molecule questions").
    RECORD_NOUN: ClassVar[str]

    # -- hooks ----------------------------------------------------------------------------

    @abc.abstractmethod
    def _make_case(self, rng: random.Random, category: str, taken: _Taken) -> _Case | None:
        """A new case of ``category``, or ``None`` if this draw did not work out.

        ``taken(fields, molecules)`` says early, before the expensive part, that a draw
        would be rejected anyway (its prompt is used or a molecule is reserved).
        """

    @abc.abstractmethod
    def _wrong_answer(self, case: _Case, rng: random.Random) -> str:
        """An answer to ``case`` that :meth:`verify` rejects."""

    @abc.abstractmethod
    def _messy_answer(self, case: _Case, rng: random.Random) -> str:
        """The right answer to ``case`` written in a format the task does not ask for."""

    @abc.abstractmethod
    def _messy_fields(self, case: _Case, rng: random.Random) -> dict[str, str]:
        """``case.fields`` with its SMILES written non-canonically."""

    @abc.abstractmethod
    def _offtask_records(self, rng: random.Random, n: int, exclude: set[str]) -> list[dict[str, Any]]:
        """``n`` off-task records in this task's shape, none about a molecule in ``exclude``."""

    @abc.abstractmethod
    def format_prompt(self, fields: dict[str, str]) -> str:
        """The prompt made of a record's prompt fields and the answer-format instruction."""

    # -- generation -----------------------------------------------------------------------

    def _draw_cases(
        self,
        rng: random.Random,
        categories: Sequence[str],
        exclude: set[str],
        seen: set[str],
        *,
        claim: bool,
    ) -> list[_Case]:
        """One new case per category label; none touches ``exclude`` or repeats a prompt in ``seen``.

        Prompts are compared after :func:`normalize_text`, as the leak checks do: it folds
        case, so ``c1ccccc1`` (benzene) and ``C1CCCCC1`` (cyclohexane) would otherwise make
        two prompts that count as one. With ``claim`` each case's molecules join
        ``exclude`` (evaluation items share none).
        """

        def taken(fields: dict[str, str], molecules: set[str]) -> bool:
            return bool(molecules & exclude) or normalize_text(self.format_prompt(fields)) in seen

        cases = []
        for category in categories:
            for _ in range(2000):
                case = self._make_case(rng, category, taken)
                if case is None or case.entities & exclude:
                    continue
                key = normalize_text(self.format_prompt(case.fields))
                if key not in seen:
                    break
            else:
                raise TaskSpecError(f"{self.name} task: cannot draw a new {category} case; sizes too large?")
            seen.add(key)
            if claim:
                exclude |= case.entities
            cases.append(case)
        return cases

    @staticmethod
    def _record(case: _Case, *, rationale: bool) -> dict[str, Any]:
        record: dict[str, Any] = {**case.fields, "answer": case.answer}
        if rationale:
            record["rationale"] = case.rationale
        record["category"] = case.category
        return record

    def generate(self) -> tuple[list[RawSource], list[EvalItem], list[EvalItem]]:
        sizes = self.sizes
        curated_id, noisy_id, notebook_id, offtask_id = self.SOURCE_IDS
        claimed: set[str] = set()
        seen: set[str] = set()

        splits: list[list[EvalItem]] = []
        for split, prefix in (("validation", "val"), ("test", "test")):
            rng = self.rng(split)
            labels = balanced_categories(self.categories, sizes[f"{split}_size"], rng)
            cases = self._draw_cases(rng, labels, claimed, seen, claim=True)
            splits.append(
                [
                    EvalItem(
                        item_id=f"{prefix}-{k:04d}",
                        prompt=self.format_prompt(case.fields),
                        reference=case.reference,
                        category=case.category,
                    )
                    for k, case in enumerate(cases)
                ]
            )

        def draw(stream: str) -> tuple[random.Random, list[_Case]]:
            rng = self.rng(stream)
            labels = balanced_categories(self.categories, sizes[stream], rng)
            return rng, self._draw_cases(rng, labels, claimed, seen, claim=False)

        _, curated_cases = draw(curated_id)
        curated = [self._record(c, rationale=True) for c in curated_cases]

        rng, noisy_cases = draw(noisy_id)
        noisy = [self._record(c, rationale=False) for c in noisy_cases]
        by_key = {_fields_key(c.fields): c for c in noisy_cases}

        def make_wrong(record: dict[str, Any], r: random.Random) -> dict[str, Any]:
            case = by_key[_fields_key({f: record[f] for f in self.PROMPT_FIELDS})]
            answer = self._wrong_answer(case, r)
            if {chem.canonical_smiles(part) for part in (answer, *answer.split("."))} & claimed:
                answer = _broken(case.answer, r)  # a wrong answer must not leak an evaluation molecule
            return {**record, "answer": answer}

        corrupt(noisy, self.NOISE_RATE, rng, make_wrong)

        rng, notebook_cases = draw(notebook_id)
        messy = set(
            rng.sample(range(len(notebook_cases)), round(self.MESSY_FORMAT_RATE * len(notebook_cases)))
        )
        notebook = []
        eval_prompts = {normalize_text(item.prompt) for split in splits for item in split}
        for k, case in enumerate(notebook_cases):
            fields = case.fields
            if rng.random() < self.NONCANONICAL_RATE:
                rewritten = self._messy_fields(case, rng)
                if normalize_text(self.format_prompt(rewritten)) not in eval_prompts:
                    fields = rewritten
            answer = self._messy_answer(case, rng) if k in messy else case.answer
            notebook.append({**fields, "answer": answer, "category": case.category})
        n_dup = round(self.DUPLICATE_RATE * len(notebook))
        notebook = with_duplicates(notebook, exact=n_dup, near=n_dup, field=self.NEAR_FIELD, rng=rng)

        rng = self.rng(offtask_id)
        offtask = self._offtask_records(rng, sizes[offtask_id], claimed)

        noun = self.RECORD_NOUN
        self.quality = {
            curated_id: SourceQuality(has_rationale=True),
            noisy_id: SourceQuality(
                wrong_label_rate=round(self.NOISE_RATE * len(noisy)) / max(len(noisy), 1)
            ),
            notebook_id: SourceQuality(
                exact_duplicates=n_dup if notebook_cases else 0,
                near_duplicates=n_dup if notebook_cases else 0,
                remarks=(
                    f"{len(messy)} answers in a non-required format (right chemistry, wrong shape); "
                    f"about {self.NONCANONICAL_RATE:.0%} of records with non-canonical SMILES"
                ),
            ),
            offtask_id: SourceQuality(off_domain=True, remarks=self.OFFTASK_NOTE),
        }
        sources = [
            RawSource(
                source_id=curated_id,
                records=tuple(curated),
                note=(
                    f"{len(curated)} curated {noun}, canonical SMILES, each with a one-line rationale "
                    f"before the answer.{self.CURATED_STYLE} Spot checks with RDKit find no errors."
                ),
            ),
            RawSource(
                source_id=noisy_id,
                records=tuple(noisy),
                format="csv",
                note=(
                    f"{len(noisy)} {noun} exported from a shared spreadsheet, answers only. Many "
                    "answers look wrong on inspection, and some are not parseable SMILES."
                ),
            ),
            RawSource(
                source_id=notebook_id,
                records=tuple(notebook),
                format="markdown",
                note=(
                    f"{len(notebook)} {noun} copied from lab-notebook tables: SMILES written in several "
                    "styles, answers in inconsistent formats, some rows repeated."
                ),
            ),
            RawSource(
                source_id=offtask_id,
                records=tuple(offtask),
                note=f"{len(offtask)} records from another chemistry exercise set: {self.OFFTASK_NOTE}.",
            ),
        ]
        return sources, splits[0], splits[1]

    # -- TaskSpec ---------------------------------------------------------------------------

    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        """The prompt from the record's prompt fields; the response ends in ``<answer>...</answer>``.

        The rationale (when asked for and present) comes first, on its own line. Returns
        ``None`` when a prompt field or the answer is blank; raises
        :class:`~ftdojo.errors.DataError` naming a missing or non-text field.
        """
        fields = {f: _text_field(record, f, self.name) for f in self.PROMPT_FIELDS}
        answer = _text_field(record, "answer", self.name)
        if not answer or not all(fields.values()):
            return None
        rationale = _optional_text(record, "rationale") if include_rationale else ""
        return Example(
            prompt=self.format_prompt(fields),
            response=_response(answer, rationale or None),
            category=_optional_text(record, "category"),
        )

    def extract_answer(self, output: str) -> str | None:
        """The stripped content of the last ``<answer>...</answer>``; ``None`` without one."""
        return _last_answer(output)

    def gold_response(self, item: EvalItem) -> str:
        """``<answer>X</answer>`` with the reference answer (for a JSON reference, its example)."""
        return _response(_example_answer(item.reference), None)


# -- molecule understanding --------------------------------------------------------------------

_HALOGEN = "[F,Cl,Br,I]"
_CARBONYL = "[CX3]=[OX1]"
_HYDROXYL = chem.TRACKED_GROUPS[0].smarts
_AMINE = chem.TRACKED_GROUPS[1].smarts
# Carbonyl classes for rationales; the first pattern whose first atom is the C wins.
_CARBONYL_CLASSES = (
    ("acid", "[CX3](=O)[OX2H1]"),
    ("ester", "[CX3](=O)[OX2H0][#6]"),
    ("amide", "[CX3](=O)[#7]"),
    ("aldehyde", "[CX3H1](=O)"),
    ("ketone", "[CX3](=O)([#6])[#6]"),
)

_QUESTIONS: dict[str, tuple[str, str]] = {
    # key: (question, category)
    "rings": ("How many rings does it have?", "rings"),
    "aromatic_rings": ("How many aromatic rings does it have?", "rings"),
    "hydroxyl": ("How many hydroxyl groups (OH, not in COOH) does it have?", "groups"),
    "amine": ("How many amine nitrogens (not amides) does it have?", "groups"),
    "halogen": ("How many halogen atoms (F, Cl, Br, I) does it have?", "groups"),
    "carbonyl": ("How many C=O groups does it have?", "groups"),
    "heavy_atoms": ("How many heavy (non-hydrogen) atoms does it have?", "counts"),
    "nitrogen_atoms": ("How many nitrogen atoms does it have?", "counts"),
    "oxygen_atoms": ("How many oxygen atoms does it have?", "counts"),
}
_QUESTION_KEYS = {normalize_text(q): key for key, (q, _) in _QUESTIONS.items()}
_SCAFFOLD_QUESTION = "Is {} its Bemis-Murcko scaffold? Answer yes or no."
_SCAFFOLD_PATTERN = re.compile(r"^\s*is\s+(\S+)\s+its\s+bemis-murcko\s+scaffold", re.IGNORECASE)
_UNDERSTANDING_INSTRUCTION = "End with <answer>N</answer>, N a number or yes/no."


def _normalize_label(text: str) -> str:
    """An answer label in canonical form: lower case, no end punctuation, integers as digits."""
    label = text.strip().lower().rstrip(".!").strip()
    if re.fullmatch(r"[+-]?\d+(\.0*)?", label):
        return str(int(float(label)))
    return label


def _ring_rationale(mol: Mol) -> str:
    rings = sorted(mol.GetRingInfo().AtomRings(), key=len, reverse=True)
    if not rings:
        return "ring sizes: none"
    aromatic = [r for r in rings if all(mol.GetAtomWithIdx(i).GetIsAromatic() for i in r)]
    sizes = ",".join(str(len(r)) for r in rings)
    return f"ring sizes: {sizes}; aromatic: {','.join(str(len(r)) for r in aromatic) or 'none'}"


def _atoms_rationale(mol: Mol) -> str:
    counts = chem.element_counts(mol)
    order = ["C", *sorted(e for e in counts if e != "C")]
    return "atoms: " + " ".join(f"{e}{counts[e]}" for e in order if counts[e])


def _group_rationale(mol: Mol, key: str) -> str:
    if key == "hydroxyl":
        parts = []
        for (o,) in mol.GetSubstructMatches(chem._pattern(_HYDROXYL)):
            neighbour = mol.GetAtomWithIdx(o).GetNeighbors()[0]
            parts.append(
                neighbour.GetSymbol().lower() if neighbour.GetIsAromatic() else neighbour.GetSymbol()
            )
        return "OH on: " + (", ".join(parts) or "none")
    if key == "amine":
        kinds = {2: "NH2", 1: "NH", 0: "N"}
        parts = [
            kinds[mol.GetAtomWithIdx(n).GetTotalNumHs()]
            for (n,) in mol.GetSubstructMatches(chem._pattern(_AMINE))
        ]
        return "amine N: " + (", ".join(parts) or "none")
    if key == "halogen":
        parts = [
            mol.GetAtomWithIdx(x).GetSymbol() for (x,) in mol.GetSubstructMatches(chem._pattern(_HALOGEN))
        ]
        return "halogens: " + (", ".join(parts) or "none")
    classes = []
    for carbon, _ in mol.GetSubstructMatches(chem._pattern(_CARBONYL)):
        for label, smarts in _CARBONYL_CLASSES:
            if any(match[0] == carbon for match in mol.GetSubstructMatches(chem._pattern(smarts))):
                classes.append(label)
                break
    return "C=O in: " + (", ".join(classes) or "none")


def _understanding_answer(mol: Mol, key: str) -> int:
    from rdkit.Chem import rdMolDescriptors

    if key == "rings":
        return chem.ring_count(mol)
    if key == "aromatic_rings":
        return int(rdMolDescriptors.CalcNumAromaticRings(mol))
    if key == "heavy_atoms":
        return chem.heavy_atom_count(mol)
    if key == "nitrogen_atoms":
        return chem.element_counts(mol)["N"]
    if key == "oxygen_atoms":
        return chem.element_counts(mol)["O"]
    smarts = {"hydroxyl": _HYDROXYL, "amine": _AMINE, "halogen": _HALOGEN, "carbonyl": _CARBONYL}[key]
    return chem.group_count(mol, smarts)


def _understanding_truth(smiles: str, question: str) -> tuple[str, str] | None:
    """``(answer, rationale)`` for a molecule and question; ``None`` for an unknown question.

    Raises :class:`ValueError` when the question is known but the SMILES is no molecule.
    """
    scaffold_match = _SCAFFOLD_PATTERN.match(question)
    key = _QUESTION_KEYS.get(normalize_text(question))
    if scaffold_match is None and key is None:
        return None
    mol = chem.parse_smiles(smiles)
    if mol is None:
        raise ValueError(f"not a molecule: {smiles!r}")
    if scaffold_match is not None:
        scaffold = chem.murcko_scaffold(mol)
        asked = chem.canonical_smiles(scaffold_match.group(1))
        return ("yes" if asked == scaffold else "no"), f"scaffold: {scaffold or 'none'}"
    assert key is not None
    if key in ("rings", "aromatic_rings"):
        rationale = _ring_rationale(mol)
    elif key in ("heavy_atoms", "nitrogen_atoms", "oxygen_atoms"):
        rationale = _atoms_rationale(mol)
    else:
        rationale = _group_rationale(mol, key)
    return str(_understanding_answer(mol, key)), rationale


class MoleculeUnderstanding(_ChemistryTask):
    """Questions about one molecule: rings, functional groups, atom counts, Murcko scaffold."""

    name = "chem_understanding"
    description = (
        "Questions about a molecule given as SMILES, answered by a number or yes/no: how many "
        "rings or aromatic rings (rings), how many hydroxyl groups, amine nitrogens, halogen atoms "
        "or C=O groups (groups), how many heavy, nitrogen or oxygen atoms (counts), and whether a "
        "given SMILES is its Bemis-Murcko scaffold (scaffold). Answers are computed with RDKit; "
        "the response ends with <answer>N</answer>, optionally after a one-line rationale."
    )
    output_format = "<answer>N</answer> (N an integer, or yes/no)"
    metric = "accuracy"
    categories = ("rings", "groups", "counts", "scaffold")
    max_new_tokens = 96
    PROMPT_FIELDS = ("smiles", "question")
    NEAR_FIELD = "question"
    SOURCE_IDS = ("annotated_questions", "spreadsheet_answers", "notebook_questions", "periodic_table_quiz")
    OFFTASK_NOTE = "questions about single elements (atomic number, outer electrons, period), not molecules"
    RECORD_NOUN = "molecule questions"
    DEFAULT_SIZES: ClassVar[dict[str, int]] = {
        "annotated_questions": 1000,
        "spreadsheet_answers": 1600,
        "notebook_questions": 800,
        "periodic_table_quiz": 200,
        "validation_size": 100,
        "test_size": 100,
    }

    def __init__(self, seed: int = 0, **sizes: int) -> None:
        super().__init__(seed, **sizes)
        capacity = len(_ELEMENT_SYMBOLS) * len(_ELEMENT_QUESTIONS)
        if self.sizes["periodic_table_quiz"] > capacity:
            raise ConfigError(
                f"{self.name} task: periodic_table_quiz holds at most {capacity} distinct records"
            )

    def format_prompt(self, fields: dict[str, str]) -> str:
        return f"Molecule: {fields['smiles']}\nQuestion: {fields['question']}\n{_UNDERSTANDING_INSTRUCTION}"

    def _make_case(self, rng: random.Random, category: str, taken: _Taken) -> _Case | None:
        molecule = _draw_molecule(rng)
        if category == "scaffold":
            own = chem.murcko_scaffold(_parse_or_fail(molecule.smiles))
            asked = (
                own
                if rng.random() < 0.5
                else chem.murcko_scaffold(_parse_or_fail(_draw_molecule(rng).smiles))
            )
            if not asked:
                return None
            question = _SCAFFOLD_QUESTION.format(asked)
        else:
            keys = [k for k, (_, c) in _QUESTIONS.items() if c == category]
            question = _QUESTIONS[rng.choice(keys)][0]
        fields = {"smiles": molecule.smiles, "question": question}
        if taken(fields, {molecule.smiles}):
            return None
        truth = _understanding_truth(molecule.smiles, question)
        assert truth is not None
        answer, rationale = truth
        return _Case(
            fields=fields,
            answer=answer,
            rationale=rationale,
            category=category,
            reference=answer,
            entities=frozenset({molecule.smiles}),
        )

    def _wrong_answer(self, case: _Case, rng: random.Random) -> str:
        if case.answer in ("yes", "no"):
            return "no" if case.answer == "yes" else "yes"
        right = int(case.answer)
        return str(rng.choice([right + d for d in (-2, -1, 1, 2) if right + d >= 0]))

    def _messy_answer(self, case: _Case, rng: random.Random) -> str:
        if case.answer in ("yes", "no"):
            return rng.choice(("Y", "true") if case.answer == "yes" else ("N", "false"))
        n = int(case.answer)
        options = [f"{n} total", f"approx. {n}"]
        if n < len(_NUMBER_WORDS):
            options.append(_NUMBER_WORDS[n])
        return rng.choice(options)

    def _messy_fields(self, case: _Case, rng: random.Random) -> dict[str, str]:
        return {**case.fields, "smiles": _noncanonical(case.fields["smiles"], rng)}

    def _offtask_records(self, rng: random.Random, n: int, exclude: set[str]) -> list[dict[str, Any]]:
        return [
            {"smiles": smiles, "question": question, "answer": answer}
            for smiles, question, answer in rng.sample(_element_facts(), n)
        ]

    def extract_answer(self, output: str) -> str | None:
        """The last ``<answer>`` content as a label: lower case, no end dot, integers as digits."""
        content = _last_answer(output)
        return None if content is None else _normalize_label(content)

    def verify(self, record: dict[str, Any]) -> bool | None:
        """Whether the answer (as :meth:`extract_answer` would read it) is RDKit's answer.

        ``None`` for a question this task does not ask (nothing to recompute); ``False``
        when the SMILES does not parse or the answer is wrong or not a number / yes / no.
        """
        smiles, question = _optional_text(record, "smiles"), _optional_text(record, "question")
        try:
            truth = _understanding_truth(smiles, question)
        except ValueError:
            return False
        if truth is None:
            return None
        return _normalize_label(str(record.get("answer", ""))) == truth[0]


#: Elements H to Xe, by atomic number (the periodic-table quiz covers the first five periods).
_ELEMENT_SYMBOLS = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar",
    "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br",
    "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te",
    "I", "Xe",
)  # fmt: skip
_ELEMENT_QUESTIONS = (
    "What is the atomic number of this element?",
    "How many outer-shell electrons does this element have?",
    "Which period of the table is this element in?",
    "What is its atomic mass, rounded?",
)


@functools.cache
def _element_facts() -> tuple[tuple[str, str, str], ...]:
    """(SMILES, question, answer) for every element and quiz question, from RDKit's periodic table."""
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    facts = []
    for z, symbol in enumerate(_ELEMENT_SYMBOLS, start=1):
        if table.GetElementSymbol(z) != symbol:  # pragma: no cover - guards the table above
            raise TaskSpecError(f"element {z} is {table.GetElementSymbol(z)}, not {symbol}")
        period = 1 + sum(z > edge for edge in (2, 10, 18, 36))
        answers = (z, table.GetNOuterElecs(z), period, round(table.GetAtomicWeight(z)))
        facts += [(f"[{symbol}]", q, str(a)) for q, a in zip(_ELEMENT_QUESTIONS, answers, strict=True)]
    return tuple(facts)


# -- molecule editing ----------------------------------------------------------------------------

#: group name -> (substituent SMILES, phrase in the prompt, label in rationales)
_EDIT_GROUPS: dict[str, tuple[str, str, str]] = {
    "hydroxyl": ("O", "a hydroxyl group", "OH"),
    "amino": ("N", "an amino group", "NH2"),
    "methyl": ("C", "a methyl group", "CH3"),
    "chlorine": ("Cl", "a chlorine atom", "Cl"),
    "fluorine": ("F", "a fluorine atom", "F"),
    "bromine": ("Br", "a bromine atom", "Br"),
    "nitrile": ("C#N", "a nitrile group", "CN"),
    "carboxylic_acid": ("C(=O)O", "a carboxylic acid group", "COOH"),
}
_GROUP_BY_SUB = {sub: name for name, (sub, _, _) in _EDIT_GROUPS.items()}
_GROUP_BY_PHRASE = {normalize_text(phrase): name for name, (_, phrase, _) in _EDIT_GROUPS.items()}
_EDIT_INSTRUCTION = "Change nothing else. End with <answer>SMILES</answer>."


def edit_text(edit: chem.Edit) -> str:
    """The instruction for ``edit``: "add a hydroxyl group", "replace a methyl group with ..."."""
    phrase = _EDIT_GROUPS[edit.group][1]
    if edit.op == "replace":
        assert edit.new_group is not None
        return f"replace {phrase} with {_EDIT_GROUPS[edit.new_group][1]}"
    return f"{edit.op} {phrase}"


def parse_edit(text: str) -> chem.Edit | None:
    """The edit an instruction asks for (case, spacing and punctuation ignored), or ``None``."""
    words = normalize_text(text)
    replace = re.fullmatch(r"replace (.+) with (.+)", words)
    if replace is not None:
        old, new = (_GROUP_BY_PHRASE.get(p) for p in replace.groups())
        if old is None or new is None or old == new:
            return None
        return chem.Edit(op="replace", group=old, new_group=new)
    single = re.fullmatch(r"(add|remove) (.+)", words)
    if single is None or single.group(2) not in _GROUP_BY_PHRASE:
        return None
    return chem.Edit(op=single.group(1), group=_GROUP_BY_PHRASE[single.group(2)])


def _example_answer(reference: str) -> str:
    """The answer in a reference: the reference itself, or a JSON reference's ``example``."""
    if reference.startswith("{"):
        data = json.loads(reference)
        example = data.get("example") if isinstance(data, dict) else None
        if isinstance(example, str):
            return example
    return reference


def _display_json(reference: str, describe: Callable[[dict[str, Any]], str]) -> str:
    try:
        data = json.loads(reference)
        if not isinstance(data, dict):
            return reference
        text = describe(data)
    except (ValueError, KeyError, TypeError):
        return reference
    example = data.get("example")
    return f"{example} ({text})" if isinstance(example, str) else text


def _fresh_smiles(rng: random.Random, n: int, exclude: set[str]) -> Iterator[str]:
    """Up to ``n`` distinct molecules drawn from ``rng``, none in ``exclude``.

    Lazy on purpose: callers draw from the same ``rng`` between molecules, and the
    stream must interleave exactly as it would in one loop.
    """
    taken = set(exclude)
    found = 0
    for _ in range(n * 50):
        if found == n:
            return
        smiles = _draw_molecule(rng).smiles
        if smiles not in taken:
            taken.add(smiles)
            found += 1
            yield smiles


class MoleculeEditing(_ChemistryTask):
    """Add, remove or replace one functional group of a molecule; answer the edited SMILES."""

    name = "chem_editing"
    description = (
        "Edit a molecule given as SMILES: add, remove or replace one functional group (hydroxyl, "
        "amino, methyl, chlorine, fluorine, bromine, nitrile, carboxylic acid). Any SMILES that "
        "makes exactly that change counts: the group's count changes by one, every other tracked "
        "group and the ring count stay the same, and the heavy atoms change by exactly the group's "
        "atoms. The response ends with <answer>SMILES</answer>."
    )
    output_format = "<answer>SMILES</answer>"
    metric = "mol_edit_correct"
    categories = ("add", "remove", "replace")
    # Answers are written in place (the molecule's SMILES with the one group changed), not
    # canonical: a model edits the string it is given, where a canonical answer reorders
    # every atom (SmolLM2 learned next to nothing of that in a 40K-token trial).
    GENERATOR_VERSION = 2
    CURATED_STYLE = (
        " Edited molecules are written as the given SMILES with the one group changed in place "
        "(not canonical)."
    )
    PROMPT_FIELDS = ("smiles", "edit")
    NEAR_FIELD = "edit"
    SOURCE_IDS = ("curated_edits", "scraped_edits", "notebook_edits", "formula_exercises")
    OFFTASK_NOTE = "molecular formulas of molecules ('write its molecular formula'), not edits"
    RECORD_NOUN = "molecule edits"
    DEFAULT_SIZES: ClassVar[dict[str, int]] = {
        "curated_edits": 1000,
        "scraped_edits": 1600,
        "notebook_edits": 800,
        "formula_exercises": 300,
        "validation_size": 100,
        "test_size": 100,
    }

    def format_prompt(self, fields: dict[str, str]) -> str:
        return f"Molecule: {fields['smiles']}\nEdit: {fields['edit']}\n{_EDIT_INSTRUCTION}"

    @staticmethod
    def _edit_options(molecule: _Molecule, op: str) -> list[tuple[int, chem.Edit, str]]:
        kinds = _SCAFFOLDS[molecule.scaffold].kinds
        options = []
        for position, (kind, sub) in enumerate(zip(kinds, molecule.subs, strict=True)):
            if op == "add" and sub == "":
                for name, (new_sub, _, _) in _EDIT_GROUPS.items():
                    if _allowed(kind, new_sub):
                        options.append((position, chem.Edit(op="add", group=name), new_sub))
            elif op == "remove" and sub in _GROUP_BY_SUB:
                options.append((position, chem.Edit(op="remove", group=_GROUP_BY_SUB[sub]), ""))
            elif op == "replace" and sub in _GROUP_BY_SUB:
                for name, (new_sub, _, _) in _EDIT_GROUPS.items():
                    if new_sub != sub and _allowed(kind, new_sub):
                        edit = chem.Edit(op="replace", group=_GROUP_BY_SUB[sub], new_group=name)
                        options.append((position, edit, new_sub))
        return options

    def _make_case(self, rng: random.Random, category: str, taken: _Taken) -> _Case | None:
        molecule = _draw_molecule(rng)
        options = self._edit_options(molecule, category)
        if not options:
            return None
        position, edit, new_sub = rng.choice(options)
        fields = {"smiles": molecule.smiles, "edit": edit_text(edit)}
        edited = _with_sub(molecule, position, new_sub)
        if edited is None or taken(fields, {molecule.smiles, edited.smiles}):
            return None
        reference = chem.edit_reference(molecule.smiles, edit, edited.smiles)
        if chem.edit_correct(edited.smiles, reference) != 1.0:
            return None  # the construction's edit is not what the metric calls that edit
        heavy = (chem.heavy_atom_count(_parse_or_fail(s)) for s in (molecule.smiles, edited.smiles))
        change = f"heavy atoms {next(heavy)} -> {next(heavy)}"
        label = _EDIT_GROUPS[edit.group][2]
        if edit.op == "replace":
            assert edit.new_group is not None
            rationale = f"{label} -> {_EDIT_GROUPS[edit.new_group][2]}; {change}"
        else:
            rationale = f"{label} {'added' if edit.op == 'add' else 'removed'}; {change}"
        core = _with_sub(molecule, position, "")
        written = None if core is None else _edited_in_place(molecule.smiles, core.smiles, edited.smiles)
        return _Case(
            fields=fields,
            answer=written or edited.smiles,
            rationale=rationale,
            category=category,
            reference=reference,
            entities=frozenset({molecule.smiles, edited.smiles}),
            detail=(molecule, position, new_sub),
        )

    def _wrong_answer(self, case: _Case, rng: random.Random) -> str:
        molecule, position, new_sub = case.detail
        candidates: list[str] = [molecule.smiles]  # the unedited molecule
        others = [s for s in _ACYCLIC_SUBSTITUENTS if s not in (new_sub, molecule.subs[position])]
        wrong_group = _with_sub(molecule, position, rng.choice(others))
        if wrong_group is not None:
            candidates.append(wrong_group.smiles)
        extra = [k for k, s in enumerate(molecule.subs) if s and k != position]
        if extra:  # the edit made, and another substituent lost on the way
            edited = _with_sub(molecule, position, new_sub)
            if edited is not None:
                also = _with_sub(edited, rng.choice(extra), "")
                if also is not None:
                    candidates.append(also.smiles)
        smiles = rng.choice(candidates)
        if rng.random() < 0.25 or chem.edit_correct(smiles, case.reference) != 0.0:
            return _broken(case.answer, rng)
        return smiles

    def _messy_answer(self, case: _Case, rng: random.Random) -> str:
        template = rng.choice(("Product: {}", "{} (edited)", "SMILES = {}", "new molecule {}"))
        return template.format(case.answer)

    def _messy_fields(self, case: _Case, rng: random.Random) -> dict[str, str]:
        return {**case.fields, "smiles": _noncanonical(case.fields["smiles"], rng)}

    def _offtask_records(self, rng: random.Random, n: int, exclude: set[str]) -> list[dict[str, Any]]:
        return [
            {"smiles": smiles, "edit": "write its molecular formula", "answer": _formula(smiles)}
            for smiles in _fresh_smiles(rng, n, exclude)
        ]

    def display_reference(self, reference: str) -> str:
        """The example answer and the edit asked for: ``CCO (add a hydroxyl group to CC)``."""

        def describe(data: dict[str, Any]) -> str:
            return f"any SMILES that does: {edit_text(chem.Edit.from_json(data['edit']))} to {data['source']}"

        return _display_json(reference, describe)

    def verify(self, record: dict[str, Any]) -> bool | None:
        """Whether the answer applies the record's edit (scored with the task's own metric rule).

        ``None`` when the instruction is not an edit this task asks for; ``False`` when the
        molecule does not parse or the answer is not a SMILES making exactly that edit.
        """
        edit = parse_edit(_optional_text(record, "edit"))
        if edit is None:
            return None
        source = chem.canonical_smiles(_optional_text(record, "smiles"))
        if source is None:
            return False
        return chem.edit_correct(str(record.get("answer", "")), chem.edit_reference(source, edit)) == 1.0


# -- molecule optimization -------------------------------------------------------------------------

_PROPERTY_LABELS = {"logp": "logP", "qed": "QED", "tpsa": "TPSA"}
_PROPERTY_BY_LABEL = {normalize_text(label): prop for prop, label in _PROPERTY_LABELS.items()}
_OPT_INSTRUCTION = "Keep the Murcko scaffold. End with <answer>SMILES</answer>."

# A change is ("add", sub) at a hydrogen, ("remove", sub) or ("replace", old, new); each
# goal tries its list in order and takes the first change that works, so the training
# answers follow rules a model can pick up ("to raise logP, add Cl").
_Change = tuple[str, ...]
_POLAR = ("O", "N", "C(=O)O", "C(N)=O", "C#N", "C=O", "CO", "OC", "C(=O)C", "C(=O)OC", "N(C)C")
_LIPOPHILIC = ("Cl", "C", "Br", "F", "CC", "C(F)(F)F")
_OPT_PREFERENCES: dict[tuple[str, str], tuple[_Change, ...]] = {
    ("logp", "increase"): (
        *(("add", s) for s in ("Cl", "C", "Br")),
        *(("replace", p, "Cl") for p in _POLAR),
        *(("remove", p) for p in _POLAR),
    ),
    ("logp", "decrease"): (
        *(("add", s) for s in ("O", "N", "C(=O)O")),
        *(("replace", s, "O") for s in _LIPOPHILIC),
        *(("remove", s) for s in _LIPOPHILIC),
    ),
    ("tpsa", "increase"): (
        *(("add", s) for s in ("O", "N", "C(N)=O")),
        *(("replace", s, "O") for s in _LIPOPHILIC),
    ),
    ("tpsa", "decrease"): (
        *(("remove", p) for p in _POLAR),
        *(("replace", p, "C") for p in _POLAR),
    ),
    # The molecules are small, far below QED's ideal size: growing them raises QED and
    # shrinking them lowers it.
    ("qed", "increase"): (
        *(("add", s) for s in ("CC", "OC", "C(N)=O", "C#N", "N(C)C", "CO")),
        *(
            ("replace", a, b)
            for a, b in (("C", "CC"), ("F", "OC"), ("Cl", "OC"), ("O", "OC"), ("N", "C(N)=O"))
        ),
        *(("replace", a, b) for a, b in (("Br", "CC"), ("C#N", "C(N)=O"), ("C=O", "C(=O)C"))),
    ),
    ("qed", "decrease"): (
        *(("remove", s) for s in ("C(F)(F)F", "Br", "CO", "CC", "N(C)C", "OC", "C#N", "O", "C(=O)OC")),
        *(("remove", s) for s in ("C", "C(=O)O", "C(N)=O", "Cl", "F", "N", "C=O", "C(=O)C")),
    ),
}
#: Preferred changes tried per molecule before giving up on it (each try costs a QED or logP).
_OPT_TRIES = 4


def _goal_text(prop: str, direction: str) -> str:
    return f"{direction} {_PROPERTY_LABELS[prop]}"


def _parse_goal(text: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"(increase|decrease) (\w+)", normalize_text(text))
    if match is None or match.group(2) not in _PROPERTY_BY_LABEL:
        return None
    return _PROPERTY_BY_LABEL[match.group(2)], match.group(1)


def _apply_change(molecule: _Molecule, change: _Change) -> tuple[_Molecule, str] | None:
    """``change`` made at its first applicable position, with a label; ``None`` if nowhere."""
    kinds = _SCAFFOLDS[molecule.scaffold].kinds
    op = change[0]
    for position, (kind, sub) in enumerate(zip(kinds, molecule.subs, strict=True)):
        if op == "add" and sub == "" and _allowed(kind, change[1]):
            new, label = change[1], f"added {_SUBSTITUENT_LABELS[change[1]]}"
        elif op == "remove" and sub == change[1]:
            new, label = "", f"removed {_SUBSTITUENT_LABELS[sub]}"
        elif op == "replace" and sub == change[1] and _allowed(kind, change[2]):
            new, label = change[2], f"{_SUBSTITUENT_LABELS[sub]} -> {_SUBSTITUENT_LABELS[change[2]]}"
        else:
            continue
        changed = _with_sub(molecule, position, new)
        return None if changed is None else (changed, label)
    return None


def _optimize(molecule: _Molecule, prop: str, direction: str) -> tuple[_Molecule, str] | None:
    """The first preferred change that moves ``prop`` by at least twice the metric's epsilon."""
    reference = chem.optimization_reference(molecule.smiles, prop, direction)
    source_value = _property(molecule.smiles, prop)
    sign = 1.0 if direction == "increase" else -1.0
    applicable = (_apply_change(molecule, change) for change in _OPT_PREFERENCES[(prop, direction)])
    for applied in itertools.islice((a for a in applicable if a is not None), _OPT_TRIES):
        changed, label = applied
        value = _property(changed.smiles, prop)
        margin = sign * (value - source_value)
        success = chem.optimization_success(changed.smiles, reference) == 1.0
        if success and margin >= 2 * chem.PROPERTY_EPSILON[prop]:
            digits = 2 if prop != "tpsa" else 1
            name = _PROPERTY_LABELS[prop]
            return changed, f"{label}; {name} {source_value:.{digits}f} -> {value:.{digits}f}"
    return None


class MoleculeOptimization(_ChemistryTask):
    """Raise or lower logP, QED or TPSA of a molecule while keeping its Murcko scaffold."""

    name = "chem_optimization"
    description = (
        "Optimize a molecule given as SMILES: increase or decrease its Crippen logP, QED or TPSA "
        "while keeping its Bemis-Murcko scaffold. Success: a valid single molecule, the property "
        "moved the right way by more than 0.1 (logP), 0.01 (QED) or 1.0 (TPSA), the same scaffold. "
        "The response ends with <answer>SMILES</answer>."
    )
    output_format = "<answer>SMILES</answer>"
    metric = "mol_opt_success"
    categories = ("logp", "qed", "tpsa")
    PROMPT_FIELDS = ("smiles", "goal")
    NEAR_FIELD = "goal"
    SOURCE_IDS = (
        "curated_optimizations",
        "scraped_optimizations",
        "notebook_optimizations",
        "property_readouts",
    )
    OFFTASK_NOTE = "property values read out as numbers ('report logP'), not optimized molecules"
    RECORD_NOUN = "optimization examples"
    DEFAULT_SIZES: ClassVar[dict[str, int]] = {
        "curated_optimizations": 1000,
        "scraped_optimizations": 1600,
        "notebook_optimizations": 800,
        "property_readouts": 300,
        "validation_size": 100,
        "test_size": 100,
    }

    def format_prompt(self, fields: dict[str, str]) -> str:
        return f"Molecule: {fields['smiles']}\nGoal: {fields['goal']}\n{_OPT_INSTRUCTION}"

    def generate(self) -> tuple[list[RawSource], list[EvalItem], list[EvalItem]]:
        self._made = dict.fromkeys(self.categories, 0)
        return super().generate()

    def _make_case(self, rng: random.Random, category: str, taken: _Taken) -> _Case | None:
        # Directions alternate per category, so that both are equally common even though
        # one direction can be harder to achieve for a given molecule than the other.
        direction = ("increase", "decrease")[self._made[category] % 2]
        molecule = _draw_molecule(rng, _ACYCLIC_SUBSTITUENTS)
        fields = {"smiles": molecule.smiles, "goal": _goal_text(category, direction)}
        if taken(fields, {molecule.smiles}):
            return None
        optimized = _optimize(molecule, category, direction)
        if optimized is None:
            return None
        changed, rationale = optimized
        self._made[category] += 1
        return _Case(
            fields=fields,
            answer=changed.smiles,
            rationale=rationale,
            category=category,
            reference=chem.optimization_reference(molecule.smiles, category, direction, changed.smiles),
            entities=frozenset({molecule.smiles, changed.smiles}),
            detail=(molecule, direction),
        )

    def _wrong_answer(self, case: _Case, rng: random.Random) -> str:
        molecule, direction = case.detail
        candidates: list[str] = [molecule.smiles]  # unchanged
        opposite = _optimize(molecule, case.category, "decrease" if direction == "increase" else "increase")
        if opposite is not None:
            candidates.append(opposite[0].smiles)
        hydrogens = [
            k
            for k, s in enumerate(molecule.subs)
            if s == "" and _SCAFFOLDS[molecule.scaffold].kinds[k] == "a"
        ]
        if hydrogens:  # a new ring changes the scaffold
            ring = _with_sub(molecule, rng.choice(hydrogens), "C3CC3")
            if ring is not None:
                candidates.append(ring.smiles)
        smiles = rng.choice(candidates)
        if rng.random() < 0.2 or chem.optimization_success(smiles, case.reference) != 0.0:
            return _broken(case.answer, rng)
        return smiles

    def _messy_answer(self, case: _Case, rng: random.Random) -> str:
        template = rng.choice(("Optimized: {}", "{} (better)", "SMILES = {}", "try {}"))
        return template.format(case.answer)

    def _messy_fields(self, case: _Case, rng: random.Random) -> dict[str, str]:
        return {**case.fields, "smiles": _noncanonical(case.fields["smiles"], rng)}

    def _offtask_records(self, rng: random.Random, n: int, exclude: set[str]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for smiles in _fresh_smiles(rng, n, exclude):
            prop = rng.choice(chem.PROPERTIES)
            records.append(
                {
                    "smiles": smiles,
                    "goal": f"report {_PROPERTY_LABELS[prop]}",
                    "answer": f"{_property(smiles, prop):.2f}",
                }
            )
        return records

    def display_reference(self, reference: str) -> str:
        """The example answer and the goal: ``Cc1ccc(Cl)cc1 (higher logP than ..., same scaffold)``."""

        def describe(data: dict[str, Any]) -> str:
            more = "higher" if data["direction"] == "increase" else "lower"
            label = _PROPERTY_LABELS[data["property"]]
            return f"any SMILES with {more} {label} than {data['source']} and the same Murcko scaffold"

        return _display_json(reference, describe)

    def verify(self, record: dict[str, Any]) -> bool | None:
        """Whether the answer meets the record's goal (scored with the task's own metric rule).

        ``None`` when the goal is not one this task sets; ``False`` when the molecule does
        not parse or the answer does not succeed.
        """
        goal = _parse_goal(_optional_text(record, "goal"))
        if goal is None:
            return None
        source = chem.canonical_smiles(_optional_text(record, "smiles"))
        if source is None:
            return False
        reference = chem.optimization_reference(source, *goal)
        return chem.optimization_success(str(record.get("answer", "")), reference) == 1.0


# -- reaction prediction ------------------------------------------------------------------------------


@attrs.frozen
class _ReactionClass:
    category: str
    #: How the prompt names it.
    label: str
    #: Reaction SMARTS, reactants in the order (scaffold-built molecule, partner).
    smarts: str
    #: The substituent that makes a scaffold-built molecule the first reactant.
    handle: str
    partners: tuple[str, ...]
    rationale: str


_ALCOHOLS = ("CO", "CCO", "CCCO", "CC(C)O", "CCCCO", "CC(C)CO", "OCc1ccccc1", "OC1CCCCC1")
_AMINES = ("CN", "CCN", "CNC", "CCNCC", "CC(C)N", "NCc1ccccc1", "C1CCNCC1", "C1COCCN1", "C1CCNC1")
_HALIDES = ("CI", "CCBr", "CCCBr", "CCCCBr", "BrCc1ccccc1", "BrCC1CC1", "ClCc1ccccc1", "CC(C)CBr")
_AMINE_NH = "[NX3;H2,H1;!$(N[#6]=[O,N,S]);!$(N[#7,#8,#16])"
_REACTIONS = (
    _ReactionClass(
        "esterification",
        "esterification",
        "[C:1](=[O:2])[OX2H1].[OX2H1;!$(O[#6]=O):3][#6:4]>>[C:1](=[O:2])[O:3][#6:4]",
        "C(=O)O",
        _ALCOHOLS,
        "COOH + HO-R -> COO-R + H2O",
    ),
    _ReactionClass(
        "amide_coupling",
        "amide coupling",
        f"[C:1](=[O:2])[OX2H1].{_AMINE_NH}:3]>>[C:1](=[O:2])[N:3]",
        "C(=O)O",
        _AMINES,
        "COOH + HN-R -> CON-R + H2O",
    ),
    _ReactionClass(
        "reductive_amination",
        "reductive amination",
        f"[CX3H1:1](=[OX1])[#6:2].{_AMINE_NH}:3]>>[#6:2][C:1][N:3]",
        "C=O",
        _AMINES,
        "CHO + HN-R -> CH2-N-R",
    ),
    _ReactionClass(
        "n_alkylation",
        "N-alkylation",
        f"{_AMINE_NH}:1].[CX4;H2,H3:2][Cl,Br,I]>>[N:1][C:2]",
        "N",
        _HALIDES,
        "N-H + X-CH2R -> N-CH2R + HX",
    ),
)
_REACTION_BY_CATEGORY = {r.category: r for r in _REACTIONS}
_REACTION_BY_LABEL = {normalize_text(r.label): r for r in _REACTIONS}
_REACTION_INSTRUCTION = "Give the main product. End with <answer>SMILES</answer>."


@functools.cache
def _compiled_reaction(smarts: str) -> ChemicalReaction:
    from rdkit.Chem import rdChemReactions

    return rdChemReactions.ReactionFromSmarts(smarts)


def _products(reaction: _ReactionClass, first: str, partner: str) -> tuple[Any, list[Any]]:
    """The parsed partner and every sanitisable product of ``reaction``; none if a SMILES fails to parse."""
    from rdkit import Chem

    mols = (chem.parse_smiles(first), chem.parse_smiles(partner))
    if mols[0] is None or mols[1] is None:
        return None, []
    products = []
    for outcome in _compiled_reaction(reaction.smarts).RunReactants(mols):
        product = outcome[0]
        try:
            Chem.SanitizeMol(product)
        except Exception:  # an impossible valence from a template match: not a product
            continue
        products.append(product)
    return mols[1], products


def _react(reaction: _ReactionClass, first: str, partner: str) -> str | None:
    """The single product's canonical SMILES; ``None`` without one or with several candidates."""
    from rdkit import Chem

    products = {Chem.MolToSmiles(product) for product in _products(reaction, first, partner)[1]}
    if len(products) != 1:
        return None
    return chem.canonical_smiles(products.pop())


def _in_place_product(reaction: _ReactionClass, first: str, partner: str) -> str | None:
    """The product written as an edit of ``first``: its SMILES with the reacting group changed.

    RDKit's canonical SMILES of a product reorders every atom, so predicting it means
    re-deriving the whole string; a chemist instead writes the first reactant as it was and
    changes the group that reacted, with the partner attached there
    (``Cc1ccccc1C(=O)O`` + ``CCNCC`` -> ``Cc1ccccc1C(=O)N(CC)CC``). The product's atoms
    are renumbered in that order -- the first reactant's atoms as written, then the
    partner's, rooted at the atom that bonds -- and written without canonicalisation. The
    result is the same molecule (the metric compares canonical forms); ``None`` when
    ``_react`` finds no single product.
    """
    from rdkit import Chem

    partner_mol, products = _products(reaction, first, partner)
    written = set()
    for product in products:
        bonding = [
            end.GetIntProp("react_atom_idx")
            for bond in product.GetBonds()
            for start, end in (
                (bond.GetBeginAtom(), bond.GetEndAtom()),
                (bond.GetEndAtom(), bond.GetBeginAtom()),
            )
            if start.GetIntProp("react_idx") == 0 and end.GetIntProp("react_idx") == 1
        ]
        if len(bonding) != 1:
            continue
        Chem.MolToSmiles(partner_mol, rootedAtAtom=bonding[0], canonical=False)
        partner_order = list(partner_mol.GetPropsAsDict(True, True)["_smilesAtomOutputOrder"])

        def rank(atom: Any, partner_order: list[int] = partner_order) -> tuple[int, int]:
            reactant, index = atom.GetIntProp("react_idx"), atom.GetIntProp("react_atom_idx")
            return (reactant, index if reactant == 0 else partner_order.index(index))

        order = sorted(product.GetAtoms(), key=rank)
        renumbered = Chem.RenumberAtoms(product, [atom.GetIdx() for atom in order])
        written.add(Chem.MolToSmiles(renumbered, canonical=False))
    canonical = _react(reaction, first, partner)
    matching = sorted(w for w in written if chem.canonical_smiles(w) == canonical)
    return matching[0] if canonical is not None and matching else None


def _predict_product(reaction: _ReactionClass, reactants: str) -> str | None:
    """The product of two ``.``-joined reactants in either order; ``None`` if none or ambiguous."""
    parts = reactants.split(".")
    if len(parts) != 2:
        return None
    products = {p for p in (_react(reaction, parts[0], parts[1]), _react(reaction, parts[1], parts[0])) if p}
    return products.pop() if len(products) == 1 else None


class ReactionPrediction(_ChemistryTask):
    """Predict the product of esterification, amide coupling, reductive amination or N-alkylation."""

    name = "chem_reaction"
    description = (
        "Predict the main product of a named reaction from two reactants given as SMILES: "
        "esterification (acid + alcohol), amide coupling (acid + amine), reductive amination "
        "(aldehyde + amine) or N-alkylation (amine + alkyl halide). Scored by exact match of "
        "RDKit canonical SMILES, so any valid SMILES of the product counts; the response ends "
        "with <answer>SMILES</answer>."
    )
    output_format = "<answer>SMILES</answer>"
    metric = "smiles_exact_match"
    categories = tuple(r.category for r in _REACTIONS)
    # Raw answers write the product as an in-place edit of the first reactant, not in
    # canonical form: a model edits a string from its prompt rather than re-deriving every
    # atom's order (the metric canonicalises, so any SMILES of the product scores).
    GENERATOR_VERSION = 2
    CURATED_STYLE = (
        " Products are written as the first reactant's SMILES with the reacting group changed "
        "in place (not canonical)."
    )
    PROMPT_FIELDS = ("reaction", "reactants")
    NEAR_FIELD = "reaction"
    SOURCE_IDS = ("curated_reactions", "bulk_reactions", "eln_export", "reaction_naming")
    OFFTASK_NOTE = "reactant pairs labelled with a reaction name, not a product"
    RECORD_NOUN = "reactions"
    DEFAULT_SIZES: ClassVar[dict[str, int]] = {
        "curated_reactions": 1000,
        "bulk_reactions": 1600,
        "eln_export": 800,
        "reaction_naming": 300,
        "validation_size": 100,
        "test_size": 100,
    }

    def format_prompt(self, fields: dict[str, str]) -> str:
        return f"Reaction: {fields['reaction']}\nReactants: {fields['reactants']}\n{_REACTION_INSTRUCTION}"

    def _make_case(self, rng: random.Random, category: str, taken: _Taken) -> _Case | None:
        reaction = _REACTION_BY_CATEGORY[category]
        first = rng.choice(_molecules_with(reaction.handle))
        partner = rng.choice(reaction.partners)
        fields = {"reaction": reaction.label, "reactants": f"{first}.{partner}"}
        if taken(fields, {first}):
            return None
        product = _react(reaction, first, partner)
        written = _in_place_product(reaction, first, partner)
        if product is None or written is None:
            return None
        return _Case(
            fields=fields,
            # Sources write the product as an edit of the first reactant, which a model can
            # learn by copying; the reference is canonical, and any SMILES of it scores.
            answer=written,
            rationale=f"{reaction.rationale}; product {_formula(product)}",
            category=category,
            reference=product,
            entities=frozenset({first, product}),
            detail=(reaction, first, partner),
        )

    def _wrong_answer(self, case: _Case, rng: random.Random) -> str:
        reaction, first, partner = case.detail
        candidates: list[str] = [first, f"{first}.{partner}"]  # no reaction; reactants mixed, no water lost
        other = _in_place_product(reaction, first, rng.choice([p for p in reaction.partners if p != partner]))
        if other is not None:  # the product with a different partner
            candidates.append(other)
        smiles = rng.choice(candidates)
        if rng.random() < 0.25 or chem.smiles_match(smiles, case.answer) != 0.0:
            return _broken(case.answer, rng)
        return smiles

    def _messy_answer(self, case: _Case, rng: random.Random) -> str:
        template = rng.choice(("Product: {}", "{} (major)", ">> {}", "main product = {}"))
        return template.format(case.answer)

    def _messy_fields(self, case: _Case, rng: random.Random) -> dict[str, str]:
        parts = [_noncanonical(p, rng) for p in case.fields["reactants"].split(".")]
        rng.shuffle(parts)
        return {**case.fields, "reactants": ".".join(parts)}

    def _offtask_records(self, rng: random.Random, n: int, exclude: set[str]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(n * 50):
            if len(records) == n:
                break
            reaction = rng.choice(_REACTIONS)
            first = rng.choice(_molecules_with(reaction.handle))
            reactants = f"{first}.{rng.choice(reaction.partners)}"
            if first in exclude or reactants in seen:
                continue
            seen.add(reactants)
            records.append(
                {"reaction": "name this reaction", "reactants": reactants, "answer": reaction.label}
            )
        return records

    def verify(self, record: dict[str, Any]) -> bool | None:
        """Whether the answer is the product RDKit's template gives for these reactants.

        ``None`` when the reaction is not one of this task's classes; ``False`` when the
        reactants give no single product or the answer is not that product.
        """
        reaction = _REACTION_BY_LABEL.get(normalize_text(_optional_text(record, "reaction")))
        if reaction is None:
            return None
        product = _predict_product(reaction, _optional_text(record, "reactants"))
        if product is None:
            return False
        return chem.smiles_match(str(record.get("answer", "")), product) == 1.0
