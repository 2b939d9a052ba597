"""The four chemistry tasks and their three RDKit metrics.

Task instances here are small (a few dozen records per source) so that the whole file
runs in well under a minute; the suite-wide tests cover the default sizes.
"""

from __future__ import annotations

import difflib
import json
import re
import socket
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftdojo.errors import ConfigError, DataError
from ftdojo.metrics import load_metric
from ftdojo.rawformat import dump_records, parse_records
from ftdojo.scoring import chemistry as chem
from ftdojo.scoring import mean_score
from ftdojo.tasks.chemistry import (
    _REACTION_BY_CATEGORY,
    ANSWER_CLOSE,
    MoleculeEditing,
    MoleculeOptimization,
    MoleculeUnderstanding,
    ReactionPrediction,
    _edited_in_place,
    _in_place_product,
    _react,
    edit_text,
    parse_edit,
)
from ftdojo.tasks.registry import get_task, get_task_class, task_reference
from ftdojo.tasks.spec import EvalItem, normalize_text

TASK_CLASSES = (MoleculeUnderstanding, MoleculeEditing, MoleculeOptimization, ReactionPrediction)
ChemTask = MoleculeUnderstanding | MoleculeEditing | MoleculeOptimization | ReactionPrediction
METRIC_FUNCTIONS = {
    "smiles_exact_match": chem.smiles_match,
    "mol_edit_correct": chem.edit_correct,
    "mol_opt_success": chem.optimization_success,
}


def small(cls: type[ChemTask], seed: int = 0) -> ChemTask:
    curated, noisy, notebook, offtask = cls.SOURCE_IDS
    sizes = {curated: 24, noisy: 40, notebook: 20, offtask: 12, "validation_size": 12, "test_size": 12}
    return cls(seed=seed, **sizes)


@pytest.fixture(scope="module", params=TASK_CLASSES, ids=lambda c: c.name)
def task(request: pytest.FixtureRequest) -> ChemTask:
    return small(request.param)


def snapshot(task: ChemTask) -> str:
    validation, test = task.eval_splits()
    return json.dumps(
        {
            "sources": [(s.source_id, s.format, s.note, list(s.records)) for s in task.raw_sources()],
            "splits": [
                [(i.item_id, i.prompt, i.reference, i.category) for i in split]
                for split in (validation, test)
            ],
        },
        sort_keys=True,
    )


def source_map(task: ChemTask) -> dict[str, Any]:
    return {s.source_id: s for s in task.raw_sources()}


# -- entities: which molecules a record or an item is about -----------------------------------


def canonical_tokens(text: str) -> set[str]:
    """Canonical SMILES of every whitespace- or dot-separated token of ``text`` that is a molecule."""
    found = set()
    for token in re.split(r"[\s.]+", text):
        smiles = chem.canonical_smiles(token.strip(",;:()"))
        if smiles is not None:
            found.add(smiles)
    return found


def record_molecules(record: dict[str, Any]) -> set[str]:
    """Molecules in a raw record's molecule fields (in any spelling, answer formats included)."""
    found: set[str] = set()
    for field in ("smiles", "answer", "reactants"):
        value = record.get(field)
        if isinstance(value, str):
            found |= canonical_tokens(value)
    return found


def prompt_line(prompt: str, label: str) -> str | None:
    match = re.search(rf"^{label}: (\S+)$", prompt, re.MULTILINE)
    return None if match is None else match.group(1)


def item_molecules(task: ChemTask, item: EvalItem) -> set[str]:
    """The molecules an evaluation item is about: its molecule, answer, built reactant and product.

    A reaction's partner (ethanol, methylamine, ...) comes from a short shared list and is
    no entity; its scaffold-built reactant (listed first) and its product are.
    """
    found: set[str] = set()
    molecule = prompt_line(item.prompt, "Molecule")
    if molecule is not None:
        found |= canonical_tokens(molecule)
    reactants = prompt_line(item.prompt, "Reactants")
    if reactants is not None:
        found |= canonical_tokens(reactants.split(".")[0])
    if item.reference.startswith("{"):
        data = json.loads(item.reference)
        found |= canonical_tokens(data["source"]) | canonical_tokens(data["example"])
    elif isinstance(task, ReactionPrediction):
        found |= canonical_tokens(item.reference)
    assert found, item
    return found


# -- the classes as the registry and the Dojo see them -----------------------------------------


@pytest.mark.parametrize(
    ("cls", "metric"),
    [
        (MoleculeUnderstanding, "accuracy"),
        (MoleculeEditing, "mol_edit_correct"),
        (MoleculeOptimization, "mol_opt_success"),
        (ReactionPrediction, "smiles_exact_match"),
    ],
)
def test_class_attributes(cls: type[ChemTask], metric: str) -> None:
    assert get_task_class(cls.name) is cls
    assert cls.domain == "chemistry"
    assert cls.metric == metric
    assert 3 <= len(cls.categories) <= 5
    assert cls.stop_strings == (ANSWER_CLOSE,)
    assert "<answer>" in cls.output_format
    assert cls.description.strip()


def test_importing_the_tasks_does_not_import_rdkit() -> None:
    script = (
        "import sys, ftdojo.tasks.chemistry, ftdojo.scoring.chemistry\n"
        "print(sorted(m for m in sys.modules if m == 'rdkit' or m.startswith('rdkit.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_registry_recreates_the_same_task(task: ChemTask) -> None:
    ref = task_reference(task)
    clone = get_task(ref["name"], **ref["params"])
    assert type(clone) is type(task)
    assert clone.version() == task.version()
    assert snapshot(clone) == snapshot(task)


def test_unknown_or_too_large_sizes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown parameter"):
        MoleculeEditing(curated=5)
    with pytest.raises(ConfigError, match="periodic_table_quiz"):
        MoleculeUnderstanding(periodic_table_quiz=10_000)


# -- generation ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", TASK_CLASSES, ids=lambda c: c.name)
def test_generation_is_deterministic_per_seed(cls: type[ChemTask]) -> None:
    first = snapshot(small(cls, seed=3))
    assert first == snapshot(small(cls, seed=3))
    assert first != snapshot(small(cls, seed=4))


def test_splits_are_balanced_disjoint_and_short(task: ChemTask) -> None:
    validation, test = task.eval_splits()
    assert len(validation) == len(test) == 12
    for split in (validation, test):
        counts = Counter(item.category for item in split)
        assert set(counts) == set(task.categories)
        assert max(counts.values()) - min(counts.values()) <= 1
    val_prompts = {normalize_text(i.prompt) for i in validation}
    test_prompts = {normalize_text(i.prompt) for i in test}
    assert len(val_prompts) == len(test_prompts) == 12
    assert not val_prompts & test_prompts
    assert all(len(item.prompt) <= 300 for item in (*validation, *test))


def test_evaluation_molecules_never_occur_in_any_raw_source(task: ChemTask) -> None:
    validation, test = task.eval_splits()
    val_molecules = [item_molecules(task, i) for i in validation]
    test_molecules = [item_molecules(task, i) for i in test]
    eval_molecules = set().union(*val_molecules, *test_molecules)
    # No two evaluation items (across both splits) share a molecule.
    assert len(eval_molecules) == sum(len(m) for m in (*val_molecules, *test_molecules))
    for source in task.raw_sources():
        for index, record in enumerate(source.records):
            shared = record_molecules(record) & eval_molecules
            assert not shared, f"{source.source_id} record {index} mentions evaluation molecules {shared}"


def test_evaluation_reactant_pairs_never_occur_in_any_raw_source() -> None:
    task = small(ReactionPrediction)
    validation, test = task.eval_splits()

    def pair(reactants: str) -> frozenset[str]:
        return frozenset(canonical_tokens(reactants))

    eval_pairs = {pair(prompt_line(i.prompt, "Reactants") or "") for i in (*validation, *test)}
    raw_pairs = {pair(r["reactants"]) for s in task.raw_sources() for r in s.records}
    assert len(eval_pairs) == 24
    assert not eval_pairs & raw_pairs


def test_sources_read_back_from_their_files_give_the_same_examples(task: ChemTask) -> None:
    formats = set()
    for source in task.raw_sources():
        formats.add(source.format)
        stored = dump_records(list(source.records), source.format, where=source.source_id)
        parsed = parse_records(stored, source.format, where=source.source_id)
        assert len(parsed) == len(source.records)
        for original, back in zip(source.records, parsed, strict=True):
            if source.format != "jsonl":
                assert all(isinstance(v, str) for v in back.values())
            for rationale in (True, False):
                assert task.to_example(back, include_rationale=rationale) == task.to_example(
                    original, include_rationale=rationale
                )
            assert task.verify(back) == task.verify(original)
    assert {"csv", "markdown"} <= formats


def test_verify_passes_curated_records_and_catches_exactly_the_injected_errors(task: ChemTask) -> None:
    curated, noisy, notebook, offtask = (source_map(task)[s] for s in task.SOURCE_IDS)
    assert all(task.verify(r) is True for r in curated.records)
    verdicts = Counter(task.verify(r) for r in noisy.records)
    n = len(noisy.records)
    assert verdicts == {False: round(task.NOISE_RATE * n), True: n - round(task.NOISE_RATE * n)}
    assert task.quality[noisy.source_id].wrong_label_rate == pytest.approx(round(0.35 * n) / n)
    # The notebook's wrong-format answers fail verification; its right-format ones pass.
    messy = sum(task.verify(r) is False for r in notebook.records)
    assert messy >= round(task.MESSY_FORMAT_RATE * task.sizes[notebook.source_id])
    assert all(task.verify(r) is None for r in offtask.records)
    assert task.quality[offtask.source_id].off_domain


def test_sources_differ_the_way_real_data_does(task: ChemTask) -> None:
    curated, noisy, notebook, _ = (source_map(task)[s] for s in task.SOURCE_IDS)
    assert all(r["rationale"] for r in curated.records)
    assert not any("rationale" in r for r in (*noisy.records, *notebook.records))
    assert (noisy.format, notebook.format) == ("csv", "markdown")
    quality = task.quality[notebook.source_id]
    n_dup = round(task.DUPLICATE_RATE * task.sizes[notebook.source_id])
    assert quality.exact_duplicates == quality.near_duplicates == n_dup
    assert len(notebook.records) == task.sizes[notebook.source_id] + 2 * n_dup
    field = "reactants" if isinstance(task, ReactionPrediction) else "smiles"
    rewritten = [r for r in notebook.records if chem.canonical_smiles(r[field]) != r[field]]
    assert rewritten, "the notebook should hold some non-canonically written SMILES"
    for source in task.raw_sources():
        # Notes describe what one sees, never the generator's exact rates.
        assert not re.search(r"\d+ ?%|0\.\d", source.note), source.note
    assert set(task.quality) == set(task.SOURCE_IDS)


def test_responses_are_short_and_fit_the_generation_budget(task: ChemTask) -> None:
    for source in task.raw_sources():
        for record in source.records:
            example = task.to_example(record, include_rationale=True)
            assert example is not None
            assert len(example.prompt) <= 300
            assert len(example.response) <= 120
            assert len(example.response) + 8 <= task.max_new_tokens
            assert example.response.endswith(ANSWER_CLOSE)
            assert example.response.count(ANSWER_CLOSE) == 1  # generation stops exactly at the end


def test_training_and_evaluation_prompts_share_the_instruction(task: ChemTask) -> None:
    validation, _ = task.eval_splits()
    instruction = validation[0].prompt.splitlines()[-1]
    assert "<answer>" in instruction
    assert all(item.prompt.splitlines()[-1] == instruction for item in validation)
    for source in task.raw_sources():
        for record in source.records:
            example = task.to_example(record, include_rationale=False)
            assert example is not None
            assert example.prompt.splitlines()[-1] == instruction


def test_gold_responses_score_1_with_the_tasks_own_metric(task: ChemTask) -> None:
    validation, test = task.eval_splits()
    for item in (*validation, *test):
        answer = task.extract_answer(task.gold_response(item))
        if task.metric == "accuracy":
            assert answer == item.reference
        else:
            assert METRIC_FUNCTIONS[task.metric](answer, item.reference) == 1.0
        assert task.extract_answer("") is None


def test_curated_rationale_and_answer_are_the_training_response(task: ChemTask) -> None:
    record = source_map(task)[task.SOURCE_IDS[0]].records[0]
    with_rationale = task.to_example(record, include_rationale=True)
    without = task.to_example(record, include_rationale=False)
    assert with_rationale is not None
    assert without is not None
    assert with_rationale.response == f"{record['rationale']}\n<answer>{record['answer']}</answer>"
    assert without.response == f"<answer>{record['answer']}</answer>"
    assert with_rationale.prompt == without.prompt
    assert with_rationale.category == record["category"]


def test_to_example_names_missing_fields_and_skips_blank_ones(task: ChemTask) -> None:
    record = dict(source_map(task)[task.SOURCE_IDS[0]].records[0])
    for field in (*task.PROMPT_FIELDS, "answer"):
        broken = {k: v for k, v in record.items() if k != field}
        with pytest.raises(DataError, match=field):
            task.to_example(broken, include_rationale=True)
    with pytest.raises(DataError, match="answer"):
        task.to_example({**record, "answer": ["CCO"]}, include_rationale=True)
    assert task.to_example({**record, "answer": "  "}, include_rationale=True) is None
    assert task.to_example({**record, task.PROMPT_FIELDS[0]: ""}, include_rationale=True) is None


# -- answer extraction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("ring sizes: 6\n<answer>1</answer>", "1"),
        ("<answer> Yes. </answer>", "yes"),
        ("<answer>NO</answer>", "no"),
        ("<answer>02</answer>", "2"),
        ("<answer>3.0</answer>", "3"),
        ("<answer>1</answer> wait <answer>3</answer>", "3"),
        ("<answer>three</answer>", "three"),
        ("The answer is 3.", None),
        ("<answer>3", None),
        ("", None),
    ],
)
def test_understanding_extracts_a_normalised_label(output: str, expected: str | None) -> None:
    assert MoleculeUnderstanding().extract_answer(output) == expected


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("OH added; heavy atoms 7 -> 8\n<answer>Oc1ccccc1</answer>", "Oc1ccccc1"),
        ("<answer> CC(=O)O \n</answer>", "CC(=O)O"),
        ("<answer></answer>", ""),
        ("<answer>CCO</answer><answer>CCN</answer>", "CCN"),
        ("Answer: CCO", None),
        ("<answer>CCO", None),
    ],
)
def test_smiles_tasks_extract_the_last_answer(output: str, expected: str | None) -> None:
    for cls in (MoleculeEditing, MoleculeOptimization, ReactionPrediction):
        assert cls().extract_answer(output) == expected


# -- verification of hand-written records -------------------------------------------------------

QUESTIONS = {
    "oh": "How many hydroxyl groups (OH, not in COOH) does it have?",
    "rings": "How many rings does it have?",
    "aromatic": "How many aromatic rings does it have?",
    "halogens": "How many halogen atoms (F, Cl, Br, I) does it have?",
    "amines": "How many amine nitrogens (not amides) does it have?",
    "carbonyls": "How many C=O groups does it have?",
    "heavy": "How many heavy (non-hydrogen) atoms does it have?",
    "oh_sloppy": "  how MANY hydroxyl groups (OH not in COOH) does it have",
    "scaffold": "Is c1ccc(C2CC2)cc1 its Bemis-Murcko scaffold? Answer yes or no.",
    "benzene": "is C1=CC=CC=C1 its Bemis-Murcko scaffold? answer yes or no",
    "element": "What is the atomic number of this element?",
}


@pytest.mark.parametrize(
    ("smiles", "question", "answer", "expected"),
    [
        ("Oc1ccc(CO)cc1", "oh", "2", True),
        ("OC(=O)c1ccccc1", "oh", "0", True),  # an acid's OH is no hydroxyl
        ("Oc1ccc(CO)cc1", "oh_sloppy", "2.", True),
        ("Oc1ccc(CO)cc1", "oh", "two", False),
        ("Oc1ccc(CO)cc1", "oh", "3", False),
        ("c1ccc(", "oh", "0", False),
        ("C1CCC2CCCCC2C1", "rings", "2", True),
        ("c1ccc2ccccc2c1", "aromatic", "2", True),
        ("Clc1ccc(C(F)(F)F)cc1", "halogens", "4", True),
        ("CNC(=O)c1ccc(N)cc1", "amines", "1", True),
        ("CC(=O)c1ccc(C(=O)O)cc1", "carbonyls", "2", True),
        ("CC(=O)c1ccccc1", "heavy", "9", True),
        ("Cc1ccc(C2CC2)cc1", "scaffold", "Yes", True),
        ("Cc1ccc(C2CC2)cc1", "benzene", "yes", False),
        ("[Na]", "element", "11", None),
    ],
)
def test_understanding_verify_cases(smiles: str, question: str, answer: str, expected: bool | None) -> None:
    record = {"smiles": smiles, "question": QUESTIONS[question], "answer": answer}
    assert MoleculeUnderstanding().verify(record) is expected


def test_edit_instructions_round_trip_and_tolerate_cosmetic_changes() -> None:
    for op, group, new in [
        ("add", "hydroxyl", None),
        ("remove", "chlorine", None),
        ("replace", "methyl", "amino"),
    ]:
        edit = chem.Edit(op=op, group=group, new_group=new)
        assert parse_edit(edit_text(edit)) == edit
        assert parse_edit("  " + edit_text(edit).upper() + ".") == edit
    assert edit_text(chem.Edit(op="replace", group="methyl", new_group="amino")) == (
        "replace a methyl group with an amino group"
    )
    assert parse_edit("write its molecular formula") is None
    assert parse_edit("add a unicorn") is None
    assert parse_edit("replace a methyl group with a methyl group") is None


@pytest.mark.parametrize(
    ("smiles", "edit", "answer", "expected"),
    [
        ("Cc1ccccc1", "add a hydroxyl group", "Cc1ccc(O)cc1", True),
        ("Cc1ccccc1", "Add a hydroxyl group.", "OC1=CC=C(C)C=C1", True),
        ("Cc1ccccc1", "add a hydroxyl group", "Product: Cc1ccc(O)cc1", False),
        ("Cc1ccccc1", "add a hydroxyl group", "Cc1ccc(OC)cc1", False),
        ("Clc1ccc(Cl)cc1", "remove a chlorine atom", "Clc1ccccc1", True),
        ("Cc1ccc(Cl)cc1", "replace a methyl group with an amino group", "Nc1ccc(Cl)cc1", True),
        ("Cc1ccccc1", "write its molecular formula", "C7H8", None),
        ("not a smiles", "add a hydroxyl group", "CCO", False),
    ],
)
def test_editing_verify_cases(smiles: str, edit: str, answer: str, expected: bool | None) -> None:
    assert MoleculeEditing().verify({"smiles": smiles, "edit": edit, "answer": answer}) is expected


@pytest.mark.parametrize(
    ("smiles", "goal", "answer", "expected"),
    [
        ("Cc1ccccc1", "increase logP", "Cc1ccc(Cl)cc1", True),
        ("Cc1ccccc1", "INCREASE LOGP", "Cc1ccc(Cl)cc1", True),
        ("Cc1ccccc1", "decrease logP", "Cc1ccc(Cl)cc1", False),
        ("Cc1ccccc1", "increase TPSA", "Cc1ccc(O)cc1", True),
        ("Cc1ccccc1", "increase TPSA", "Cc1ccc(O)nc1", False),  # the scaffold changed
        ("Cc1ccccc1", "report logP", "2.31", None),
    ],
)
def test_optimization_verify_cases(smiles: str, goal: str, answer: str, expected: bool | None) -> None:
    assert MoleculeOptimization().verify({"smiles": smiles, "goal": goal, "answer": answer}) is expected


@pytest.mark.parametrize(
    ("reaction", "reactants", "answer", "expected"),
    [
        ("esterification", "O=C(O)c1ccccc1.CCO", "CCOC(=O)c1ccccc1", True),
        ("Esterification", "CCO.OC(=O)c1ccccc1", "O=C(OCC)c1ccccc1", True),  # any order, any spelling
        ("amide coupling", "O=C(O)c1ccccc1.CN", "CNC(=O)c1ccccc1", True),
        ("amide coupling", "O=C(O)c1ccccc1.CN", "CCOC(=O)c1ccccc1", False),
        ("reductive amination", "O=Cc1ccccc1.C1CCNCC1", "c1ccc(CN2CCCCC2)cc1", True),
        ("N-alkylation", "Nc1ccccc1.BrCc1ccccc1", "c1ccc(CNc2ccccc2)cc1", True),
        ("N-alkylation", "Nc1ccccc1.BrCc1ccccc1", "Nc1ccccc1", False),
        ("esterification", "c1ccccc1.CCO", "CCO", False),  # no acid: no product
        ("name this reaction", "O=C(O)c1ccccc1.CCO", "esterification", None),
    ],
)
def test_reaction_verify_cases(reaction: str, reactants: str, answer: str, expected: bool | None) -> None:
    record = {"reaction": reaction, "reactants": reactants, "answer": answer}
    assert ReactionPrediction().verify(record) is expected


def test_display_reference_shows_an_example_answer() -> None:
    edit_ref = chem.edit_reference("Cc1ccccc1", chem.Edit(op="add", group="hydroxyl"), "Cc1ccc(O)cc1")
    shown = MoleculeEditing().display_reference(edit_ref)
    assert shown.startswith("Cc1ccc(O)cc1 (")
    assert "add a hydroxyl group" in shown
    opt_ref = chem.optimization_reference("Cc1ccccc1", "tpsa", "decrease", "Cc1ccccc1C")
    shown = MoleculeOptimization().display_reference(opt_ref)
    assert shown.startswith("Cc1ccccc1C (")
    assert "lower TPSA" in shown
    assert MoleculeEditing().display_reference("not json") == "not json"
    assert ReactionPrediction().display_reference("CCO") == "CCO"


# -- metrics: scoring functions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("OCC", "CCO", 1.0),
        ("C1=CC=CC=C1", "c1ccccc1", 1.0),  # Kekulé and aromatic forms are one molecule
        ("  CCO ", "CCO", 1.0),
        ("C1CC1", "CCC", 0.0),
        ("CCO.O", "CCO", 0.0),
        ("CCO junk", "CCO", 0.0),  # RDKit alone would read this as ethanol named "junk"
        ("C(", "C", 0.0),
        ("C(C)(C)(C)(C)C", "CC(C)(C)C", 0.0),  # pentavalent carbon does not sanitise
        ("", "CCO", 0.0),
        (None, "CCO", 0.0),
        ("C" * (chem.MAX_SMILES_CHARS + 1), "C" * (chem.MAX_SMILES_CHARS + 1), 0.0),
    ],
)
def test_smiles_match_cases(prediction: str | None, reference: str, expected: float) -> None:
    if chem.canonical_smiles(reference) is None:
        with pytest.raises(ValueError, match="reference"):
            chem.smiles_match(prediction, reference)
    else:
        assert chem.smiles_match(prediction, reference) == expected


def edit_ref(source: str, op: str, group: str, new: str | None = None) -> str:
    return chem.edit_reference(source, chem.Edit(op=op, group=group, new_group=new))


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("Cc1ccc(O)cc1", edit_ref("Cc1ccccc1", "add", "hydroxyl"), 1.0),
        ("Cc1ccccc1O", edit_ref("Cc1ccccc1", "add", "hydroxyl"), 1.0),  # any position will do
        ("OCc1ccccc1", edit_ref("Cc1ccccc1", "add", "hydroxyl"), 0.0),  # the methyl is gone
        ("Cc1ccc(OC)cc1", edit_ref("Cc1ccccc1", "add", "hydroxyl"), 0.0),  # a methoxy, not a hydroxyl
        ("Oc1ccccc1", edit_ref("Cc1ccccc1", "add", "hydroxyl"), 0.0),
        ("Cc1ccccc1.O", edit_ref("Cc1ccccc1", "add", "hydroxyl"), 0.0),  # two molecules
        ("Cc1ccc(O)nc1", edit_ref("Cc1ccccc1", "add", "hydroxyl"), 0.0),  # a ring C became N
        ("CC1CCCC(O)C1", edit_ref("Cc1ccccc1", "add", "hydroxyl"), 1.0),  # saturating keeps the counts
        ("OC1CC1c1ccccc1", edit_ref("c1ccccc1", "add", "hydroxyl"), 0.0),
        ("Cc1ccccc1", edit_ref("Cc1ccccc1", "add", "hydroxyl"), 0.0),  # unchanged
        (None, edit_ref("Cc1ccccc1", "add", "hydroxyl"), 0.0),
        ("not smiles", edit_ref("Cc1ccccc1", "add", "hydroxyl"), 0.0),
        ("Clc1ccccc1", edit_ref("Clc1ccc(Cl)cc1", "remove", "chlorine"), 1.0),
        ("Clc1cccc(Cl)c1", edit_ref("Clc1ccc(Cl)cc1", "remove", "chlorine"), 0.0),
        ("Nc1ccc(Cl)cc1", edit_ref("Cc1ccc(Cl)cc1", "replace", "methyl", "amino"), 1.0),
        ("Cc1ccc(N)cc1", edit_ref("Cc1ccc(Cl)cc1", "replace", "methyl", "amino"), 0.0),
        ("NCc1ccc(Cl)cc1", edit_ref("Cc1ccc(Cl)cc1", "replace", "methyl", "amino"), 0.0),
        ("C[NH3+]", edit_ref("CN", "add", "methyl"), 0.0),
        ("OC(=O)c1ccccc1", edit_ref("c1ccccc1", "add", "carboxylic_acid"), 1.0),
        ("COC(=O)c1ccccc1", edit_ref("c1ccccc1", "add", "carboxylic_acid"), 0.0),
        ("N#Cc1ccccc1", edit_ref("Brc1ccccc1", "replace", "bromine", "nitrile"), 1.0),
    ],
)
def test_edit_correct_cases(prediction: str | None, reference: str, expected: float) -> None:
    assert chem.edit_correct(prediction, reference) == expected


@pytest.mark.parametrize(
    "reference",
    [
        "CCO",
        "[1, 2]",
        json.dumps({"source": "CCO"}),
        json.dumps({"source": "C(", "edit": {"op": "add", "group": "methyl"}}),
        json.dumps({"source": "CCO", "edit": {"op": "paint", "group": "methyl"}}),
        json.dumps({"source": "CCO", "edit": {"op": "add", "group": "methyl", "new_group": "amino"}}),
    ],
)
def test_edit_correct_rejects_a_broken_reference(reference: str) -> None:
    with pytest.raises(ValueError, match=r"reference|edit|op|group|must be in"):
        chem.edit_correct("CCO", reference)


def opt_ref(source: str, prop: str, direction: str) -> str:
    return chem.optimization_reference(source, prop, direction)


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("Cc1ccc(Cl)cc1", opt_ref("Cc1ccccc1", "logp", "increase"), 1.0),
        ("CCc1ccccc1", opt_ref("Cc1ccccc1", "logp", "increase"), 1.0),
        ("Cc1ccc(O)cc1", opt_ref("Cc1ccccc1", "logp", "increase"), 0.0),
        ("Cc1ccc(O)cc1", opt_ref("Cc1ccccc1", "logp", "decrease"), 1.0),
        ("Cc1ccc(Cl)nc1", opt_ref("Cc1ccccc1", "logp", "increase"), 0.0),  # scaffold is now pyridine
        ("CC1CCC(Cl)CC1", opt_ref("Cc1ccccc1", "logp", "increase"), 0.0),  # scaffold is now cyclohexane
        ("Cc1ccccc1.CCCCCCCC", opt_ref("Cc1ccccc1", "logp", "increase"), 0.0),  # two molecules
        ("Cc1ccccc1", opt_ref("Cc1ccccc1", "logp", "increase"), 0.0),  # unchanged
        ("Cc1ccc(N)cc1", opt_ref("Cc1ccccc1", "tpsa", "increase"), 1.0),
        ("Cc1ccccc1", opt_ref("Nc1ccccc1", "tpsa", "decrease"), 1.0),
        (None, opt_ref("Cc1ccccc1", "qed", "increase"), 0.0),
        ("C1CC", opt_ref("Cc1ccccc1", "qed", "increase"), 0.0),
    ],
)
def test_optimization_success_cases(prediction: str | None, reference: str, expected: float) -> None:
    assert chem.optimization_success(prediction, reference) == expected


def test_optimization_needs_a_change_strictly_above_epsilon(monkeypatch: pytest.MonkeyPatch) -> None:
    source, better = "Cc1ccccc1", "Cc1ccc(Cl)cc1"
    change = chem.smiles_property(better, "logp") - chem.smiles_property(source, "logp")  # type: ignore[operator]
    reference = opt_ref(source, "logp", "increase")
    monkeypatch.setitem(chem.PROPERTY_EPSILON, "logp", change)  # type: ignore[index]
    assert chem.optimization_success(better, reference) == 0.0
    monkeypatch.setitem(chem.PROPERTY_EPSILON, "logp", change - 1e-9)  # type: ignore[index]
    assert chem.optimization_success(better, reference) == 1.0


def test_optimization_rejects_a_broken_reference() -> None:
    with pytest.raises(ValueError, match="goal"):
        chem.optimization_success(
            "CCO", json.dumps({"source": "CCO", "property": "mass", "direction": "increase"})
        )
    with pytest.raises(ValueError, match="goal"):
        chem.optimization_reference("CCO", "logp", "sideways")


def test_mean_score_of_nothing_is_zero() -> None:
    assert mean_score([]) == 0.0
    assert mean_score([1.0, 0.0, 1.0, 0.0]) == 0.5


def test_parse_smiles_hands_out_copies() -> None:
    first = chem.parse_smiles("c1ccccc1O")
    assert first is not None
    first.GetAtomWithIdx(0).SetAtomicNum(7)
    again = chem.parse_smiles("c1ccccc1O")
    assert again is not None
    assert again.GetAtomWithIdx(0).GetSymbol() == "C"


# -- metrics: property tests on the scoring functions ----------------------------------------------

# (reference, right answers, wrong answers) per metric, for the property tests.
CASES: dict[str, list[tuple[str, list[str], list[str]]]] = {
    "smiles_exact_match": [
        ("CCO", ["CCO", "OCC"], ["CCN", "CC"]),
        ("c1ccccc1O", ["Oc1ccccc1", "OC1=CC=CC=C1"], ["c1ccccc1", "Cc1ccccc1"]),
        ("CNC(=O)c1ccccc1", ["O=C(NC)c1ccccc1"], ["CNCc1ccccc1", "CN"]),
    ],
    "mol_edit_correct": [
        (
            edit_ref("Cc1ccccc1", "add", "hydroxyl"),
            ["Cc1ccc(O)cc1", "Cc1cccc(O)c1"],
            ["Cc1ccc(OC)cc1", "Cc1ccccc1"],
        ),
        (edit_ref("Clc1ccc(Br)cc1", "remove", "bromine"), ["Clc1ccccc1"], ["Brc1ccccc1", "c1ccccc1"]),
        (edit_ref("Cc1ccncc1", "replace", "methyl", "fluorine"), ["Fc1ccncc1"], ["Fc1ccccc1", "Cc1ccncc1F"]),
    ],
    "mol_opt_success": [
        (
            opt_ref("Cc1ccccc1", "logp", "increase"),
            ["Cc1ccc(Cl)cc1", "CCc1ccccc1"],
            ["Cc1ccc(O)cc1", "Cc1ccccn1"],
        ),
        (opt_ref("Oc1ccccc1", "tpsa", "decrease"), ["Cc1ccccc1", "c1ccccc1"], ["Oc1ccc(O)cc1", "Oc1ccncc1"]),
        (
            opt_ref("CC(=O)c1ccccc1", "qed", "decrease"),
            ["CC(=O)c1ccc(C=O)cc1", "c1ccccc1"],
            ["CC(=O)c1ccccc1", "CC(=O)c1ccncc1"],
        ),
    ],
}
choices = st.sampled_from(["right", "wrong", "none", "garbage"])
picks = st.lists(st.tuples(st.integers(0, 2), choices, st.integers(0, 1)), max_size=12)


def predictions_for(
    metric: str, chosen: list[tuple[int, str, int]], garbage: str
) -> tuple[list[Any], list[str]]:
    predictions: list[str | None] = []
    references = []
    for case, kind, which in chosen:
        reference, right, wrong = CASES[metric][case]
        options = {"right": right[which % len(right)], "wrong": wrong[which % len(wrong)], "none": None}
        predictions.append(options.get(kind, garbage))
        references.append(reference)
    return predictions, references


def test_the_property_test_cases_are_right_and_wrong_as_labelled() -> None:
    for metric, cases in CASES.items():
        for reference, right, wrong in cases:
            assert all(METRIC_FUNCTIONS[metric](p, reference) == 1.0 for p in right), (metric, reference)
            assert all(METRIC_FUNCTIONS[metric](p, reference) == 0.0 for p in wrong), (metric, reference)


@pytest.mark.parametrize("metric", sorted(METRIC_FUNCTIONS))
@settings(max_examples=40, deadline=None)
@given(chosen=picks, garbage=st.text(max_size=16), rng=st.randoms(use_true_random=False))
def test_scores_are_fractions_perfect_is_one_and_order_does_not_matter(
    metric: str, chosen: list[tuple[int, str, int]], garbage: str, rng: Any
) -> None:
    score = METRIC_FUNCTIONS[metric]
    predictions, references = predictions_for(metric, chosen, garbage)
    items = [score(p, r) for p, r in zip(predictions, references, strict=True)]
    assert all(s in (0.0, 1.0) for s in items)
    total = mean_score(items)
    assert 0.0 <= total <= 1.0
    if all(kind == "right" for _, kind, _ in chosen):
        assert total == (1.0 if chosen else 0.0)
    if all(kind == "none" for _, kind, _ in chosen):
        assert total == 0.0
    order = list(range(len(items)))
    rng.shuffle(order)
    assert mean_score([score(predictions[k], references[k]) for k in order]) == pytest.approx(total)


# -- metrics: through evaluate, as the evaluator loads them -----------------------------------------


@pytest.fixture(scope="module")
def metric_modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The three metric modules, loaded once with every network connection refused."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted while loading a local metric")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_EVALUATE_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", no_network)
        cache = tmp_path_factory.mktemp("metric-cache")
        return {name: load_metric(name, cache_dir=cache) for name in METRIC_FUNCTIONS}


@pytest.mark.parametrize("metric", sorted(METRIC_FUNCTIONS))
def test_metric_modules_score_like_the_scoring_functions(metric_modules: dict[str, Any], metric: str) -> None:
    module = metric_modules[metric]
    chosen = [(0, "right", 0), (1, "wrong", 0), (2, "none", 0), (0, "garbage", 1), (2, "right", 0)]
    predictions, references = predictions_for(metric, chosen, "%%not a molecule")
    result = module.compute(predictions=predictions, references=references)
    assert set(result) == {metric, "item_scores"}
    assert result["item_scores"] == [1.0, 0.0, 0.0, 0.0, 1.0]
    assert result[metric] == pytest.approx(0.4)
    # A None in first position must not trip evaluate's type check of the column.
    first_none = module.compute(predictions=[None, *predictions[1:]], references=references)
    assert first_none["item_scores"][0] == 0.0
    empty = module.compute(predictions=[], references=[])
    assert empty == {metric: 0.0, "item_scores": []}


@pytest.mark.parametrize("metric", sorted(METRIC_FUNCTIONS))
@settings(max_examples=8, deadline=None)
@given(chosen=picks, garbage=st.text(max_size=16), rng=st.randoms(use_true_random=False))
def test_metric_modules_keep_the_contract(
    metric_modules: dict[str, Any], metric: str, chosen: list[tuple[int, str, int]], garbage: str, rng: Any
) -> None:
    module = metric_modules[metric]
    predictions, references = predictions_for(metric, chosen, garbage)
    result = module.compute(predictions=predictions, references=references)
    assert 0.0 <= result[metric] <= 1.0
    assert len(result["item_scores"]) == len(chosen)
    if chosen and all(kind == "right" for _, kind, _ in chosen):
        assert result[metric] == 1.0
    order = list(range(len(chosen)))
    rng.shuffle(order)
    shuffled = module.compute(
        predictions=[predictions[k] for k in order], references=[references[k] for k in order]
    )
    assert shuffled[metric] == pytest.approx(result[metric])


def test_understanding_references_score_through_accuracy() -> None:
    task = small(MoleculeUnderstanding)
    validation, _ = task.eval_splits()
    accuracy = load_metric("accuracy")
    predictions = [task.extract_answer(task.gold_response(i)) for i in validation]
    result = accuracy.compute(predictions=predictions, references=[i.reference for i in validation])
    assert result["accuracy"] == 1.0
    assert {i.reference for i in validation} <= {"yes", "no", *map(str, range(60))}


@pytest.mark.parametrize(
    ("category", "first", "partner", "written"),
    [
        ("amide_coupling", "Cc1ccccc1C(=O)O", "CCNCC", "Cc1ccccc1C(=O)N(CC)CC"),
        ("esterification", "CCc1ccccc1C(=O)O", "CC(C)O", "CCc1ccccc1C(=O)OC(C)C"),
        ("reductive_amination", "Cc1ccccc1C=O", "C1CCNCC1", "Cc1ccccc1CN1CCCCC1"),
        ("n_alkylation", "Cc1ccccc1N", "CCCCBr", "Cc1ccccc1NCCCC"),
    ],
)
def test_a_product_is_written_as_an_edit_of_the_first_reactant(
    category: str, first: str, partner: str, written: str
) -> None:
    # The canonical form reorders every atom; the in-place form copies the reactant.
    reaction = _REACTION_BY_CATEGORY[category]
    assert _in_place_product(reaction, first, partner) == written
    assert chem.canonical_smiles(written) == _react(reaction, first, partner)


@pytest.mark.parametrize(
    ("source", "core", "edited", "written"),
    [
        ("N#CC1CCC(C=O)C1", "O=CC1CCCC1", "O=CC1CCCC1", "C1CCC(C=O)C1"),  # remove
        ("Oc1ccc(Cl)s1", "Clc1cccs1", "N#Cc1ccc(Cl)s1", "N#Cc1ccc(Cl)s1"),  # replace, group first
        ("COc1ccc(N)cc1", "COc1ccccc1", "COc1ccc(C(=O)O)cc1", "COc1ccc(C(=O)O)cc1"),  # replace inside
        ("Cc1cccs1", "Cc1cccs1", "Cc1ccc(F)s1", "Cc1ccc(F)s1"),  # add
    ],
)
def test_an_edited_molecule_is_written_as_an_edit_of_the_given_string(
    source: str, core: str, edited: str, written: str
) -> None:
    assert _edited_in_place(source, core, chem.canonical_smiles(edited)) == written
    assert chem.canonical_smiles(written) == chem.canonical_smiles(edited)
    assert _edited_in_place(source, "CCCCCCCCCCCC", edited) is None  # no shared core


def test_editing_sources_write_in_place_answers_that_verify() -> None:
    task = small(MoleculeEditing)
    curated = next(s for s in task.raw_sources() if s.source_id == "curated_edits")
    in_place = canonical = 0.0
    for record in curated.records:
        assert task.verify(dict(record)) is True
        answer, given = str(record["answer"]), str(record["smiles"])
        in_place += difflib.SequenceMatcher(None, answer, given).ratio()
        canonical += difflib.SequenceMatcher(None, str(chem.canonical_smiles(answer)), given).ratio()
    # Written in place, answers read closer to the given SMILES than the canonical SMILES
    # of the same molecules (mean similarity 0.88 against 0.81 at the default size).
    assert in_place / len(curated.records) >= canonical / len(curated.records) + 0.02


def test_reaction_sources_write_in_place_products_that_score_against_canonical_references() -> None:
    task = small(ReactionPrediction)
    curated = next(s for s in task.raw_sources() if s.source_id == "curated_reactions")
    in_place = 0
    for record in curated.records:
        assert task.verify(dict(record)) is True
        first = str(record["reactants"]).split(".")[0]
        in_place += str(record["answer"]).startswith(first[:4])
    assert in_place >= len(curated.records) // 2
    validation, _ = task.eval_splits()
    for item in validation:
        assert item.reference == chem.canonical_smiles(item.reference)
