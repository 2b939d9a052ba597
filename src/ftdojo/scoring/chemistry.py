"""Chemistry scoring on RDKit: parsing SMILES, counting groups, and the three molecule metrics.

Shared by the chemistry tasks (which generate their references and check raw records with
these same functions) and by the ``smiles_exact_match``, ``mol_edit_correct`` and
``mol_opt_success`` metric scripts. RDKit is imported inside the functions, so importing
this module costs nothing; RDKit's own error logging is switched off on first use, since a
model's broken SMILES are expected input here, not events worth a line on stderr.

The rules, exactly:

**SMILES parsing** (:func:`parse_smiles`). A prediction is a molecule iff it is a string
of at most :data:`MAX_SMILES_CHARS` characters, holds no whitespace (RDKit would read
``"CCO junk"`` as ethanol named "junk"), and RDKit parses and sanitises it into at least
one atom. Everything else (``None``, ``""``, a broken ring closure, a pentavalent carbon)
is no molecule and scores 0.

**Exact match** (:func:`smiles_match`). 1 iff the prediction is a molecule whose RDKit
canonical (isomeric) SMILES equals the reference's.

**Edit correctness** (:func:`edit_correct`). The reference names a source molecule and
an :class:`Edit`: add one group, remove one, or replace one group by another, where a
group is one of :data:`TRACKED_GROUPS`. The prediction is correct iff it is a molecule
and, compared with the source,

1. it is still one connected molecule (no ``"."``) with the same net formal charge;
2. every tracked group's count (non-overlapping SMARTS matches) changes by exactly the
   edit's delta: +1 for the added group, -1 for the removed one, -1/+1 for a
   replacement, 0 for every other tracked group;
3. the count of each heavy element changes by exactly the edited groups' composition
   (adding a hydroxyl is +1 O and nothing else), so the heavy-atom count changes by the
   group's size and no other atom was swapped on the way (pyridine -> benzene);
4. the number of rings is unchanged (substituent edits never open or close a ring).

Where a molecule holds a group twice, editing either copy is right: the rule is about
what changed, not where.

**Optimization success** (:func:`optimization_success`). The reference names a source
molecule, a property in :data:`PROPERTIES` (Crippen logP, QED, TPSA) and a direction.
The prediction succeeds iff it is one connected molecule, its property differs from the
source's in the asked direction by strictly more than :data:`PROPERTY_EPSILON` (0.1 log
units for logP, 0.01 for QED, 1.0 square angstrom for TPSA: below that a change is
numerical noise or a trivial tweak, not an optimization), and its Bemis-Murcko scaffold
(canonical SMILES of RDKit's ``MurckoScaffold.GetScaffoldForMol``) equals the source's.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

if TYPE_CHECKING:
    from rdkit.Chem import Mol

__all__ = [
    "EDIT_OPS",
    "MAX_SMILES_CHARS",
    "PROPERTIES",
    "PROPERTY_EPSILON",
    "TRACKED_GROUPS",
    "Edit",
    "TrackedGroup",
    "canonical_smiles",
    "edit_correct",
    "edit_reference",
    "element_counts",
    "group_count",
    "group_counts",
    "heavy_atom_count",
    "load_reference",
    "murcko_scaffold",
    "optimization_reference",
    "optimization_success",
    "parse_smiles",
    "property_value",
    "ring_count",
    "smiles_match",
    "smiles_property",
]

#: Longer strings are not answers to these tasks (the longest reference is under 80
#: characters), and a bound keeps a runaway generation from costing a long parse.
MAX_SMILES_CHARS = 300


@attrs.frozen
class TrackedGroup:
    """A functional group the edit metric keeps count of."""

    name: str
    #: Matches one atom set per occurrence of the group.
    smarts: str
    #: Heavy atoms the group adds, by element (a hydroxyl adds one O).
    composition: Mapping[str, int]

    @property
    def heavy_atoms(self) -> int:
        return sum(self.composition.values())


#: Every group the edit metric tracks. The hydroxyl and amine patterns leave out the OH
#: of an acid and the N of an amide or of N-O / N-N / N-S bonds, so that a carboxylic
#: acid or an amide is not also counted as a hydroxyl or an amine.
TRACKED_GROUPS: tuple[TrackedGroup, ...] = (
    TrackedGroup(name="hydroxyl", smarts="[OX2H1;!$(O[#6]=[O,S,N])]", composition={"O": 1}),
    TrackedGroup(name="amino", smarts="[NX3;!$(N[#6]=[O,N,S]);!$(N[#7,#8,#16])]", composition={"N": 1}),
    TrackedGroup(name="methyl", smarts="[CH3]", composition={"C": 1}),
    TrackedGroup(name="chlorine", smarts="[Cl]", composition={"Cl": 1}),
    TrackedGroup(name="fluorine", smarts="[F]", composition={"F": 1}),
    TrackedGroup(name="bromine", smarts="[Br]", composition={"Br": 1}),
    TrackedGroup(name="nitrile", smarts="[CX2]#[NX1]", composition={"C": 1, "N": 1}),
    TrackedGroup(name="carboxylic_acid", smarts="[CX3](=O)[OX2H1]", composition={"C": 1, "O": 2}),
)
_GROUPS_BY_NAME = {g.name: g for g in TRACKED_GROUPS}

EDIT_OPS = ("add", "remove", "replace")

PROPERTIES = ("logp", "qed", "tpsa")
PROPERTY_EPSILON: Mapping[str, float] = {"logp": 0.1, "qed": 0.01, "tpsa": 1.0}
_DIRECTIONS = ("increase", "decrease")


# -- RDKit access ------------------------------------------------------------------------


def _untyped(module: str) -> Any:
    # rdkit-stubs leave out some functions (RDLogger.DisableLog, Crippen.MolLogP) and type
    # others not at all (QED.qed, MurckoScaffold.GetScaffoldForMol): those go through here.
    return importlib.import_module(module)


@functools.cache
def _silence_rdkit() -> None:
    _untyped("rdkit.RDLogger").DisableLog("rdApp.*")


# Parsing is the slow part of every score (and QED far slower still), and the tasks score
# the same molecules many times while generating: results are cached per SMILES text. The
# cached molecules are never handed out (parse_smiles returns a copy), so nothing mutates them.
_CACHE_SIZE = 1 << 15


def _admissible(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text or len(text) > MAX_SMILES_CHARS or any(c.isspace() for c in text):
        return None
    return text


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parsed(text: str) -> Mol | None:
    _silence_rdkit()
    from rdkit import Chem

    try:
        mol = Chem.MolFromSmiles(text)
    except Exception:  # RDKit raises on a few malformed inputs instead of returning None
        return None
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return mol


def _shared_molecule(text: object) -> Mol | None:
    """The cached molecule of ``text``: read it, never modify it."""
    admissible = _admissible(text)
    return None if admissible is None else _parsed(admissible)


def parse_smiles(text: object) -> Mol | None:
    """The molecule ``text`` spells, or ``None`` if it is no (sanitisable, non-empty) SMILES."""
    mol = _shared_molecule(text)
    if mol is None:
        return None
    from rdkit import Chem

    return Chem.Mol(mol)


def _to_smiles(mol: Mol) -> str:
    from rdkit import Chem

    return str(Chem.MolToSmiles(mol))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _canonical(text: str) -> str | None:
    mol = _parsed(text)
    return None if mol is None else _to_smiles(mol)


def canonical_smiles(text: object) -> str | None:
    """RDKit's canonical SMILES of ``text``, or ``None`` if it is no molecule."""
    admissible = _admissible(text)
    return None if admissible is None else _canonical(admissible)


@functools.cache
def _pattern(smarts: str) -> Mol:
    from rdkit import Chem

    pattern = Chem.MolFromSmarts(smarts)
    if pattern is None:  # pragma: no cover - the patterns are constants
        raise ValueError(f"bad SMARTS {smarts!r}")
    return pattern


def group_count(mol: Mol, smarts: str) -> int:
    """Number of distinct (non-overlapping in atom set) matches of ``smarts`` in ``mol``."""
    return len(mol.GetSubstructMatches(_pattern(smarts), uniquify=True, maxMatches=10_000))


def group_counts(mol: Mol) -> dict[str, int]:
    """Count of every tracked group, by name."""
    return {g.name: group_count(mol, g.smarts) for g in TRACKED_GROUPS}


def heavy_atom_count(mol: Mol) -> int:
    return int(mol.GetNumHeavyAtoms())


def element_counts(mol: Mol) -> Counter[str]:
    """Heavy atoms by element symbol."""
    return Counter(atom.GetSymbol() for atom in mol.GetAtoms() if atom.GetAtomicNum() > 1)


def ring_count(mol: Mol) -> int:
    """Number of rings in RDKit's smallest set of smallest rings."""
    return int(mol.GetRingInfo().NumRings())


def _fragment_count(mol: Mol) -> int:
    from rdkit import Chem

    return len(Chem.GetMolFrags(mol))


def _formal_charge(mol: Mol) -> int:
    from rdkit import Chem

    return int(Chem.GetFormalCharge(mol))


def murcko_scaffold(mol: Mol) -> str:
    """Canonical SMILES of the Bemis-Murcko scaffold (``""`` for an acyclic molecule)."""
    return _to_smiles(_untyped("rdkit.Chem.Scaffolds.MurckoScaffold").GetScaffoldForMol(mol))


def property_value(mol: Mol, prop: str) -> float:
    """Crippen logP, QED or TPSA of ``mol``."""
    if prop == "logp":
        return float(_untyped("rdkit.Chem.Crippen").MolLogP(mol))
    if prop == "qed":
        return float(_untyped("rdkit.Chem.QED").qed(mol))
    if prop == "tpsa":
        from rdkit.Chem import rdMolDescriptors

        return float(rdMolDescriptors.CalcTPSA(mol))
    raise ValueError(f"unknown property {prop!r}; known: {', '.join(PROPERTIES)}")


# -- references ----------------------------------------------------------------------------


@attrs.frozen
class Edit:
    """Add ``group``, remove ``group``, or replace ``group`` by ``new_group``."""

    op: str = attrs.field(validator=attrs.validators.in_(EDIT_OPS))
    group: str = attrs.field(validator=attrs.validators.in_(tuple(_GROUPS_BY_NAME)))
    new_group: str | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if (self.op == "replace") != (self.new_group is not None):
            raise ValueError("an edit names a new_group exactly when it is a replacement")
        if self.new_group is not None and (
            self.new_group not in _GROUPS_BY_NAME or self.new_group == self.group
        ):
            raise ValueError(f"bad replacement group {self.new_group!r}")

    def count_deltas(self) -> dict[str, int]:
        """How many of each tracked group the edit adds (negative: removes)."""
        if self.op == "add":
            return {self.group: 1}
        if self.op == "remove":
            return {self.group: -1}
        assert self.new_group is not None
        return {self.group: -1, self.new_group: 1}

    def element_deltas(self) -> Counter[str]:
        """How many heavy atoms of each element the edit adds (negative: removes)."""
        out: Counter[str] = Counter()
        for name, delta in self.count_deltas().items():
            for element, n in _GROUPS_BY_NAME[name].composition.items():
                out[element] += delta * n
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "group": self.group}
        if self.new_group is not None:
            out["new_group"] = self.new_group
        return out

    @classmethod
    def from_json(cls, data: object) -> Edit:
        if not isinstance(data, dict):
            raise ValueError(f"an edit is a JSON object, got {type(data).__name__}")
        new_group = data.get("new_group")
        return cls(
            op=str(data.get("op")),
            group=str(data.get("group")),
            new_group=None if new_group is None else str(new_group),
        )


def load_reference(reference: str, required: Sequence[str]) -> dict[str, Any]:
    """A JSON reference document, checked for ``required`` keys (``ValueError`` otherwise)."""
    try:
        data = json.loads(reference)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"reference is not a JSON document: {reference!r}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"reference is not a JSON object: {reference!r}")
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"reference lacks {', '.join(missing)}: {reference!r}")
    return data


_Facts = TypeVar("_Facts")


def _source_facts(
    data: Mapping[str, Any], reference: str, facts_of: Callable[[str], _Facts | None]
) -> _Facts:
    admissible = _admissible(data["source"])
    facts = None if admissible is None else facts_of(admissible)
    if facts is None:
        raise ValueError(f"reference source is not a valid SMILES: {reference!r}")
    return facts


def edit_reference(source: str, edit: Edit, example: str | None = None) -> str:
    """The JSON reference of an edit item; ``example`` is one right answer, shown to humans."""
    data: dict[str, Any] = {"source": source, "edit": edit.to_json()}
    if example is not None:
        data["example"] = example
    return json.dumps(data, sort_keys=True)


def optimization_reference(source: str, prop: str, direction: str, example: str | None = None) -> str:
    """The JSON reference of an optimization item; ``example`` is one right answer."""
    if prop not in PROPERTIES or direction not in _DIRECTIONS:
        raise ValueError(f"bad optimization goal {direction!r} {prop!r}")
    data: dict[str, Any] = {"source": source, "property": prop, "direction": direction}
    if example is not None:
        data["example"] = example
    return json.dumps(data, sort_keys=True)


# -- the metrics' per-item scores -------------------------------------------------------


@attrs.frozen
class _EditFacts:
    """What the edit rule compares between a source and a prediction."""

    fragments: int
    charge: int
    groups: tuple[int, ...]  # in TRACKED_GROUPS order
    elements: Mapping[str, int]
    heavy_atoms: int
    rings: int


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _edit_facts(text: str) -> _EditFacts | None:
    mol = _parsed(text)
    if mol is None:
        return None
    return _EditFacts(
        fragments=_fragment_count(mol),
        charge=_formal_charge(mol),
        groups=tuple(group_count(mol, g.smarts) for g in TRACKED_GROUPS),
        elements=dict(element_counts(mol)),
        heavy_atoms=heavy_atom_count(mol),
        rings=ring_count(mol),
    )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _optimization_facts(text: str, prop: str) -> tuple[int, float, str] | None:
    """``(fragments, property value, Murcko scaffold)`` of ``text``."""
    mol = _parsed(text)
    if mol is None:
        return None
    return _fragment_count(mol), property_value(mol, prop), murcko_scaffold(mol)


def smiles_match(prediction: str | None, reference: str) -> float:
    """1.0 iff ``prediction`` is a molecule with the reference's canonical SMILES."""
    wanted = canonical_smiles(reference)
    if wanted is None:
        raise ValueError(f"reference is not a valid SMILES: {reference!r}")
    return 1.0 if canonical_smiles(prediction) == wanted else 0.0


def edit_correct(prediction: str | None, reference: str) -> float:
    """1.0 iff ``prediction`` applies the reference's edit to its source (rules in the module doc)."""
    data = load_reference(reference, ("source", "edit"))
    edit = Edit.from_json(data["edit"])
    source = _source_facts(data, reference, _edit_facts)
    admissible = _admissible(prediction)
    facts = None if admissible is None else _edit_facts(admissible)
    if facts is None or facts.fragments != 1 or facts.charge != source.charge:
        return 0.0
    deltas = edit.count_deltas()
    for group, before, after in zip(TRACKED_GROUPS, source.groups, facts.groups, strict=True):
        if after - before != deltas.get(group.name, 0):
            return 0.0
    wanted = edit.element_deltas()
    for element in set(facts.elements) | set(source.elements) | set(wanted):
        if facts.elements.get(element, 0) - source.elements.get(element, 0) != wanted[element]:
            return 0.0
    if facts.heavy_atoms - source.heavy_atoms != sum(wanted.values()):
        return 0.0  # implied by the element check; kept as the rule's headline
    return 1.0 if facts.rings == source.rings else 0.0


def optimization_success(prediction: str | None, reference: str) -> float:
    """1.0 iff ``prediction`` moves the property as asked and keeps the scaffold (module doc)."""
    data = load_reference(reference, ("source", "property", "direction"))
    prop, direction = data["property"], data["direction"]
    if prop not in PROPERTIES or direction not in _DIRECTIONS:
        raise ValueError(f"bad optimization goal in reference: {reference!r}")
    _, source_value, source_scaffold = _source_facts(
        data, reference, functools.partial(_optimization_facts, prop=prop)
    )
    admissible = _admissible(prediction)
    facts = None if admissible is None else _optimization_facts(admissible, prop)
    if facts is None or facts[0] != 1:
        return 0.0
    _, value, scaffold = facts
    change = value - source_value if direction == "increase" else source_value - value
    if not change > PROPERTY_EPSILON[prop]:
        return 0.0
    return 1.0 if scaffold == source_scaffold else 0.0


def smiles_property(text: object, prop: str) -> float | None:
    """``prop`` of the molecule ``text`` spells (cached per text), or ``None`` if it is no molecule."""
    admissible = _admissible(text)
    facts = None if admissible is None else _optimization_facts(admissible, prop)
    return None if facts is None else facts[1]
