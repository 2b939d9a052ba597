"""Hub tasks for chemistry: ChemCoTDataset for training, ChemCoTBench as the benchmark.

Dataset ids, configs, splits and columns, and where each comes from: ``docs/hub-tasks.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ftdojo.scoring.chemistry import (
    Edit,
    canonical_smiles,
    edit_reference,
    optimization_reference,
    parse_smiles,
)
from ftdojo.tasks.hub._base import FieldMap, HubDataset, HubRows, HubSource, HubTask, maybe_json, text_field
from ftdojo.tasks.spec import Example

__all__ = ["HubChemEditing", "HubChemOptimization", "HubChemReaction", "HubChemUnderstanding", "chem_answer"]


_CHEMCOT_ID = "OpenMol/ChemCoTDataset"
_CHEMCOTBENCH = HubDataset(key="chemcotbench", dataset_id="OpenMol/ChemCoTBench", split="train")

# The JSON key each subtask's query asks the answer under (from the paper's ChemCoTBench loaders).
_CHEM_ANSWER_KEYS: dict[str, str] = {
    "fg_count": "count",
    "ring_count": "count",
    "equivalence": "output",
    "ring_system_scaffold": "output",
    "Murcko_scaffold": "Output Scaffold",
    "add": "output",
    "delete": "output",
    "sub": "output",
    "logp": "Final Target Molecule",
    "solubility": "Final Target Molecule",
    "qed": "Final Target Molecule",
    "drd": "Final Target Molecule",
    "gsk": "Final Target Molecule",
    "jnk": "Final Target Molecule",
    "fs": "Major Product",
    "fs_major_product": "Major Product",
    "fs_by_product": "Major Product",
    "retro": "Reactants",
    "rcr": "condition",
    "nepp": "output",
    "mechsel": "choice",
}
_CHEM_KEY_ORDER = (
    "Final Target Molecule",
    "Final_Target_Molecule",
    "Major Product",
    "Reactants",
    "Output Scaffold",
    "count",
    "choice",
    "condition",
    "output",
    "answer",
)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


def _json_objects(text: str) -> list[Mapping[str, Any]]:
    """Every JSON object that can be decoded from ``text``, left to right."""
    decoder = json.JSONDecoder()
    found: list[Mapping[str, Any]] = []
    k = text.find("{")
    while k != -1:
        try:
            value, end = decoder.raw_decode(text, k)
        except json.JSONDecodeError:
            k = text.find("{", k + 1)
            continue
        if isinstance(value, Mapping):
            found.append(value)
        k = text.find("{", end)
    return found


def chem_answer(output: str, keys: Iterable[str] = _CHEM_KEY_ORDER) -> str | None:
    """The answer in a ChemCoT-style JSON response: the last object holding one of ``keys``."""
    ordered = tuple(keys)
    # Objects inside ```json fences are found as well: the fence is only backticks around them.
    for obj in reversed(_json_objects(_THINK.sub("", output))):
        for key in ordered:
            value = obj.get(key)
            if value is not None and not isinstance(value, (Mapping, list)) and str(value).strip():
                return str(value).strip()
    return None


def _meta(record: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = maybe_json(record.get("meta"))
    return meta if isinstance(meta, Mapping) else {}


class _ChemTask(HubTask):
    """ChemCoT tasks: the query is the prompt (it states its JSON answer format)."""

    domain = "chemistry"
    max_new_tokens = 1024
    BENCHMARK_FIELDS = FieldMap(prompt="query", answer="gt", category="subtask", item_id="id")
    # The gold answer of a ChemCoTDataset record is not a documented column: it is looked for
    # in "gt" (rcr), then in meta, then in the struct_cot JSON. Unconfirmed, see docs/hub-tasks.md.
    RAW_FIELDS = FieldMap(prompt="query", answer="gt", rationale="struct_cot", category="subtask")

    def answer_for_training(self, record: Mapping[str, Any]) -> str:
        if isinstance(record.get("gt"), (str, int, float)) and str(record["gt"]).strip():
            return self._raw_answer_text(str(record["gt"]).strip(), record)
        meta = _meta(record)
        for key in ("gt", "answer", "reference", "target", "output"):
            value = meta.get(key)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
                return self._raw_answer_text(str(value).strip(), record)
        cot = record.get("struct_cot")
        found = chem_answer(cot) if isinstance(cot, str) else None
        return self._raw_answer_text(found, record) if found else ""

    def _raw_answer_text(self, value: str, record: Mapping[str, Any]) -> str:
        inner = chem_answer(value) if value.startswith("{") else None
        return inner or value

    def rationale_of(self, record: Mapping[str, Any]) -> str:
        for name in ("struct_cot", "raw_cot", "cot_result"):
            value = record.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return ""

    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        prompt = self.format_prompt(record, self.RAW_FIELDS)
        answer = self.answer_for_training(record)
        if not prompt.strip() or not answer:
            return None
        subtask = str(record.get("subtask", ""))
        final = json.dumps({_CHEM_ANSWER_KEYS.get(subtask, "output"): answer}, ensure_ascii=False)
        rationale = self.rationale_of(record) if include_rationale else ""
        # A structured CoT may already end in the answer object; repeating it would teach a stutter.
        if rationale and chem_answer(rationale) == answer:
            response = rationale
        else:
            response = f"{rationale}\n{final}" if rationale else final
        return Example(prompt=prompt, response=response, category=subtask)

    def extract_answer(self, output: str) -> str | None:
        return chem_answer(output)


def _chemcot(task_dir: str) -> HubDataset:
    return HubDataset(
        key=f"chemcot_{task_dir}", dataset_id=_CHEMCOT_ID, data_dir=f"chemcotbench-cot/{task_dir}"
    )


class HubChemUnderstanding(_ChemTask):
    """ChemCoTBench mol_und: count groups and rings, extract scaffolds, decide SMILES equivalence."""

    name = "hub_chem_understanding"
    description = (
        "ChemCoTBench molecule understanding: functional-group and ring counts, Murcko and "
        'ring-system scaffolds, SMILES equivalence. Answers are JSON ({"count": n}, '
        '{"output": "Yes"}, {"Output Scaffold": SMILES}); SMILES compare canonicalised.'
    )
    output_format = 'JSON: {"count": n} | {"output": "Yes"/"No"} | {"Output Scaffold": "<SMILES>"}'
    metric = "accuracy"
    categories = ("fg_count", "ring_count", "Murcko_scaffold", "ring_system_scaffold", "equivalence")
    RAW = (
        HubSource(
            source_id="chemcot_mol_und",
            rows=(HubRows(dataset=_chemcot("mol_und")),),
            note=(
                "ChemCoT molecule-understanding queries with structured (struct_cot) and free "
                "(raw_cot) reasoning."
            ),
        ),
    )
    BENCHMARK = (HubRows(dataset=_CHEMCOTBENCH, where=(("task", "mol_und"),)),)

    @staticmethod
    def _canonical(answer: str) -> str:
        text = answer.strip().strip("'\"`")
        if text.lower() in ("yes", "no", "true", "false"):
            return "Yes" if text.lower() in ("yes", "true") else "No"
        if re.fullmatch(r"[+-]?\d+(?:\.0+)?", text):
            return str(int(float(text)))
        return canonical_smiles(text) or text

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        raw = text_field(record, fields.answer, self.name).strip()
        return self._canonical(chem_answer(raw) or raw) if raw else ""

    def extract_answer(self, output: str) -> str | None:
        found = chem_answer(output)
        return None if found is None else self._canonical(found)


# ChemCoTBench group name -> the mol_edit_correct group that means the same thing.
_CHEM_GROUPS = {"hydroxyl": "hydroxyl", "amine": "amino", "carboxyl": "carboxylic_acid", "nitrile": "nitrile"}


class HubChemEditing(_ChemTask):
    """ChemCoTBench mol_edit: add, delete or substitute a functional group."""

    name = "hub_chem_editing"
    description = (
        "ChemCoTBench molecule editing: add, delete or substitute one functional group of a "
        'molecule, answering {"output": "<SMILES>"}. Correct when the edited molecule is '
        "valid and its group counts changed exactly as asked (RDKit SMARTS)."
    )
    output_format = '{"output": "<SMILES>"}'
    metric = "mol_edit_correct"
    categories = ("add", "delete", "sub")
    RAW = (
        HubSource(
            source_id="chemcot_mol_edit",
            rows=(HubRows(dataset=_chemcot("mol_edit")),),
            note="ChemCoT editing queries (add/delete/sub a functional group) with reasoning traces.",
        ),
    )
    BENCHMARK = (HubRows(dataset=_CHEMCOTBENCH, where=(("task", "mol_edit"),)),)
    _SOURCE = re.compile(r"(?:Input Molecule|Molecule SMILES|Source Molecule):\s*([^\s,]+)")

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        """mol_edit_correct's reference, or ``""`` (item left out) for an edit it cannot score.

        The metric tracks eight groups; of ChemCoTBench's twenty, four have a counterpart
        there (hydroxyl, amine, carboxyl, nitrile). Items editing any other group are left
        out of the benchmark rather than scored by a rule that does not fit them.
        """
        found = self._SOURCE.search(text_field(record, fields.prompt, self.name))
        source = found.group(1).rstrip(".") if found else ""
        if parse_smiles(source) is None:
            return ""
        meta = _meta(record)
        added = _CHEM_GROUPS.get(str(meta.get("added_group", "")).strip().lower())
        removed = _CHEM_GROUPS.get(str(meta.get("removed_group", "")).strip().lower())
        subtask = str(record.get("subtask", ""))
        try:
            if subtask == "add" and added:
                edit = Edit(op="add", group=added)
            elif subtask == "delete" and removed:
                edit = Edit(op="remove", group=removed)
            elif subtask == "sub" and added and removed:
                edit = Edit(op="replace", group=removed, new_group=added)
            else:
                return ""
        except ValueError:  # e.g. a substitution of a group by itself
            return ""
        example = str(meta.get("reference", "")).strip() or None
        return edit_reference(source, edit, example=example)

    def display_reference(self, reference: str) -> str:
        try:
            ref = json.loads(reference)
            edit = ref["edit"]
        except (ValueError, KeyError, TypeError):
            return reference
        change = f"{edit.get('group')} -> {edit['new_group']}" if edit.get("new_group") else edit.get("group")
        example = f" (e.g. {ref['example']})" if ref.get("example") else ""
        return f"{edit.get('op')} {change} on {ref.get('source')}{example}"


class HubChemOptimization(_ChemTask):
    """ChemCoTBench mol_opt: change a molecule to improve a property (LogP, QED, DRD2, ...)."""

    name = "hub_chem_optimization"
    description = (
        "ChemCoTBench molecule optimisation: propose a molecule that improves a physicochemical "
        "(logp, solubility, qed) or target (drd, gsk, jnk) property of a source molecule, answering "
        '{"Final Target Molecule": "<SMILES>"}. Success when the property improves.'
    )
    output_format = '{"Final Target Molecule": "<SMILES>"}'
    metric = "mol_opt_success"
    # Benchmark categories: the properties the metric can compute (raw data has all six).
    categories = ("logp", "qed")
    RAW = (
        HubSource(
            source_id="chemcot_mol_opt",
            rows=(HubRows(dataset=_chemcot("mol_opt")),),
            note="ChemCoT optimisation queries over six properties with reasoning traces.",
        ),
    )
    BENCHMARK = (HubRows(dataset=_CHEMCOTBENCH, where=(("task", "mol_opt"),)),)
    _SOURCE = re.compile(r"Source Molecule:\s*([^\s]+)")

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        """mol_opt_success's reference, or ``""`` (item left out) for a property it cannot compute.

        The metric computes logP and QED (as ChemCoTBench does, with RDKit); solubility (ESOL)
        and the DRD2, GSK3-beta and JNK3 activity oracles are not available offline, so those
        items are left out. ChemCoTBench counts any improvement; the metric also asks for a
        change above noise and the same Murcko scaffold.
        """
        prop = str(record.get("subtask", ""))
        if prop not in self.categories:
            return ""
        found = self._SOURCE.search(text_field(record, fields.prompt, self.name))
        source = found.group(1).rstrip(".,") if found else str(_meta(record).get("source", ""))
        if parse_smiles(source) is None:
            return ""
        return optimization_reference(source, prop, "increase")

    def display_reference(self, reference: str) -> str:
        try:
            ref = json.loads(reference)
        except ValueError:
            return reference
        return f"same scaffold as {ref.get('source', '?')} with higher {ref.get('property', '?')}"


class HubChemReaction(_ChemTask):
    """ChemCoTBench reactions with SMILES answers: forward synthesis, retrosynthesis, next step."""

    name = "hub_chem_reaction"
    description = (
        "ChemCoTBench reaction prediction with SMILES answers: major product (fs), reactants "
        "(retro), next elementary-step product (nepp). Scored by exact match of the molecules."
    )
    output_format = '{"Major Product": "<SMILES>"} | {"Reactants": "<SMILES>"} | {"output": "<SMILES>"}'
    metric = "smiles_exact_match"
    categories = ("fs", "retro", "nepp")
    RAW = (
        HubSource(
            source_id="chemcot_rxn",
            rows=(
                HubRows(
                    dataset=HubDataset(
                        key="chemcot_rxn",
                        dataset_id=_CHEMCOT_ID,
                        # rcr.json has other columns than the fs files; the paper's code lists the
                        # three files and renames rcr's cot_result (handled in rationale_of).
                        data_files=(
                            "chemcotbench-cot/rxn/fs_major_product.json",
                            "chemcotbench-cot/rxn/fs_by_product.json",
                            "chemcotbench-cot/rxn/rcr.json",
                        ),
                    )
                ),
            ),
            note=(
                "ChemCoT reaction records: major- and by-product prediction with reasoning, and "
                "reaction-condition (catalyst) questions whose answers are not SMILES."
            ),
        ),
    )
    # rcr and mechsel answers are conditions and letters, which no SMILES metric can score.
    BENCHMARK = tuple(
        HubRows(dataset=_CHEMCOTBENCH, where=(("task", "reaction"), ("subtask", sub)))
        for sub in ("fs", "retro", "nepp")
    )
    BENCHMARK_ORDER = "round_robin"

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        raw = text_field(record, fields.answer, self.name).strip()
        answer = (chem_answer(raw) or raw) if raw else ""
        # smiles_exact_match refuses a reference that is not a molecule (a broken item).
        return answer if canonical_smiles(answer) is not None else ""
