"""Hub tasks for patents: the PANORAMA tasks (PAR4PC, PI4PC, NOC4PC).

Dataset ids, configs, splits and columns, and where each comes from: ``docs/hub-tasks.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from ftdojo.errors import DataError
from ftdojo.scoring.labels import canonical_paragraphs, parse_paragraph_numbers
from ftdojo.tasks.hub._base import (
    FieldMap,
    HubDataset,
    HubRows,
    HubSource,
    HubTask,
    maybe_json,
    required_field,
)

__all__ = ["HubPatentNovelty", "HubPatentParagraph", "HubPatentPriorArt"]


_PANORAMA_ID = "LG-AI-Research/PANORAMA"
_ANSWER_LINE = re.compile(r"Answer:\s*(.+)")


def _panorama(task_dir: str, split: str) -> HubDataset:
    return HubDataset(
        key=f"panorama_{task_dir.lower()}_{split}", dataset_id=_PANORAMA_ID, data_dir=task_dir, split=split
    )


def _last_answer_line(output: str) -> str | None:
    matches = _ANSWER_LINE.findall(output)
    return matches[-1].strip() if matches else None


def _claims_text(claims: Any) -> list[str]:
    claims = maybe_json(claims)
    if not isinstance(claims, list):
        return []
    texts = []
    for claim in claims:
        if isinstance(claim, Mapping):
            texts.append(str(claim.get("claim_text", claim.get("text", ""))))
        else:
            texts.append(str(claim))
    return texts


def _target_claim(context: Mapping[str, Any], claim_number: Any) -> str:
    claims = _claims_text(context.get("claims"))
    try:
        index = int(str(claim_number)) - 1
    except ValueError:
        return ""
    return claims[index] if 0 <= index < len(claims) else ""


class _PanoramaTask(HubTask):
    """Shared prompt pieces of the three PANORAMA tasks (same columns in train and test)."""

    TASK_DIR: ClassVar[str]
    domain = "patent"
    # PANORAMA's records carry no worked reasoning; NOC4PC's answer may hold the examiner's reason.
    RAW_FIELDS = FieldMap(prompt="context", answer="gold_answers")
    BENCHMARK_FIELDS = FieldMap(prompt="context", answer="gold_answers")
    max_new_tokens = 32
    stop_strings = ("\n",)

    def _context_block(self, record: Mapping[str, Any], *, all_claims: bool) -> str:
        context = maybe_json(required_field(record, "context", self.name))
        if not isinstance(context, Mapping):
            raise DataError(
                f"{self.name} record field 'context' must be an object, got {type(context).__name__}"
            )
        number = record.get("claim_number", "?")
        lines = [
            f"Application {record.get('application_number', '?')}, target claim {number}",
            f"Title: {context.get('title', '')}",
            f"Abstract: {context.get('abstract', '')}",
        ]
        if all_claims:
            lines.append("Claims:")
            lines += [f"{k}. {text}" for k, text in enumerate(_claims_text(context.get("claims")), start=1)]
        else:
            lines.append(f"Claim {number}: {_target_claim(context, number)}")
        return "\n".join(lines)


def _letters(value: Any) -> list[str]:
    """Option letters A-H from a list, a JSON list or a comma/space separated string."""
    value = maybe_json(value)
    parts = [str(v) for v in value] if isinstance(value, list) else re.split(r"[,\s]+", str(value or ""))
    return sorted(
        {p.strip().upper() for p in parts if len(p.strip()) == 1 and "A" <= p.strip().upper() <= "H"}
    )


class HubPatentPriorArt(_PanoramaTask):
    """PANORAMA PAR4PC: which of eight candidate patents (A-H) were cited against a claim."""

    name = "hub_patent_prior_art"
    description = (
        "PANORAMA PAR4PC: given a patent application (title, abstract, claims), a target claim and "
        "eight candidate patents A-H, name the candidates the examiner cited against the claim. "
        "Scored by macro-F1 over the letters, as in the paper (an item is right when its set of "
        "letters is exactly the cited set)."
    )
    output_format = "Answer: <letters, e.g. A or A, C>"
    metric = "macro_f1"
    RAW = (
        HubSource(
            source_id="par4pc_train",
            rows=(HubRows(dataset=_panorama("PAR4PC", "train")),),
            note=(
                "USPTO office actions: application context, eight candidate patents with claims, "
                "gold (cited), silver and negative letters. No reasoning; prompts are long."
            ),
        ),
    )
    BENCHMARK = (HubRows(dataset=_panorama("PAR4PC", "test")),)
    INSTRUCTION = (
        "\nWhich candidates (A-H) were cited? End with one line 'Answer: <letters>', e.g. 'Answer: A, C'."
    )

    def format_prompt(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        options = maybe_json(required_field(record, "options", self.name))
        if not isinstance(options, Mapping):
            raise DataError(
                f"{self.name} record field 'options' must be an object, got {type(options).__name__}"
            )
        lines = [self._context_block(record, all_claims=True), "", "Candidates:"]
        for letter, details in sorted(options.items()):
            details = maybe_json(details)
            if not isinstance(details, Mapping):  # Arrow fills letters a row lacks with null
                continue
            lines.append(f"{letter}: {details.get('patent_id', '')} {details.get('title', '')}".rstrip())
            lines.append(f"   Abstract: {details.get('abstract', '')}")
            claims = _claims_text(details.get("claims"))
            if claims:
                lines.append("   Claims: " + " | ".join(claims))
        return "\n".join(lines) + self.INSTRUCTION

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        return ",".join(_letters(required_field(record, fields.answer, self.name)))

    def render_response(self, answer: str, rationale: str) -> str:
        return f"Answer: {answer.replace(',', ', ')}"

    def extract_answer(self, output: str) -> str | None:
        line = _last_answer_line(output)
        if line is None:
            return None
        letters = _letters(line)
        return ",".join(letters) if letters else None


class HubPatentParagraph(_PanoramaTask):
    """PANORAMA PI4PC: which paragraph of a prior-art document the examiner cited."""

    name = "hub_patent_paragraph"
    description = (
        "PANORAMA PI4PC: given a target claim, a prior-art specification and five of its "
        "paragraphs (keyed by paragraph number), name the paragraph the examiner cited. "
        "A gold paragraph scores 1; the metric reads gold and silver keys from the reference."
    )
    output_format = "Answer: <paragraph number>"
    metric = "gold_hit_rate"
    RAW = (
        HubSource(
            source_id="pi4pc_train",
            rows=(HubRows(dataset=_panorama("PI4PC", "train")),),
            note=(
                "Target claim, prior-art specification and five candidate paragraphs per record, "
                "with gold, silver and negative paragraph keys. No reasoning; specifications are long."
            ),
        ),
    )
    BENCHMARK = (HubRows(dataset=_panorama("PI4PC", "test")),)
    INSTRUCTION = "\nWhich paragraph was cited? End with one line 'Answer: <paragraph number>'."

    def format_prompt(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        prior = maybe_json(record.get("prior_art_specification")) or {}
        options = maybe_json(required_field(record, "options", self.name))
        if not isinstance(options, Mapping):
            raise DataError(
                f"{self.name} record field 'options' must be an object, got {type(options).__name__}"
            )
        if not isinstance(prior, Mapping):
            prior = {"specification": str(prior)}
        # A struct column holds every key any row has; this row's paragraphs are the non-null ones.
        options = {str(k): v for k, v in options.items() if v is not None}

        def order(key: str) -> tuple[int, str]:
            return (int(key), key) if key.isdigit() else (1 << 30, key)

        lines = [
            self._context_block(record, all_claims=False),
            "",
            f"Prior art {prior.get('patent_id', '')}: {prior.get('title', '')}".rstrip(),
            f"Abstract: {prior.get('abstract', '')}",
            f"Specification: {prior.get('specification', '')}",
            "",
            "Paragraphs:",
            *(f"{key}: {options[key]}" for key in sorted(map(str, options), key=order)),
        ]
        return "\n".join(lines) + self.INSTRUCTION

    @staticmethod
    def _keys(value: Any) -> list[int]:
        value = maybe_json(value)
        items = value if isinstance(value, list) else re.findall(r"\d+", str(value or ""))
        keys = []
        for item in items:
            try:
                keys.append(int(str(item).strip()))
            except ValueError:
                continue
        return sorted(set(keys))

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        # gold_hit_rate's reference: the gold paragraph number(s). Silver paragraphs (partly
        # relevant) are not gold, so a silver answer is a miss, as in the paper's gold hit rate.
        gold = self._keys(required_field(record, "gold_answers", self.name))
        return canonical_paragraphs(set(gold)) if gold else ""

    def answer_for_training(self, record: Mapping[str, Any]) -> str:
        gold = self._keys(required_field(record, "gold_answers", self.name))
        return str(gold[0]) if gold else ""

    def render_response(self, answer: str, rationale: str) -> str:
        return f"Answer: {answer}"

    def extract_answer(self, output: str) -> str | None:
        line = _last_answer_line(output)
        numbers = parse_paragraph_numbers(line.strip().rstrip(".")) if line is not None else None
        return canonical_paragraphs(numbers) if numbers else None


_NOVELTY_CODES = ("ALLOW", "102", "103")


class HubPatentNovelty(_PanoramaTask):
    """PANORAMA NOC4PC: allow the claim, or reject it under 35 U.S.C. 102 or 103."""

    name = "hub_patent_novelty"
    description = (
        "PANORAMA NOC4PC: given a target claim and the cited prior art (claims and cited "
        "paragraphs), decide ALLOW, 102 (anticipated, not novel) or 103 (obvious). Macro-F1."
    )
    output_format = "Answer: ALLOW | 102 | 103"
    metric = "macro_f1"
    RAW_FIELDS = FieldMap(prompt="context", answer="answer")
    BENCHMARK_FIELDS = FieldMap(prompt="context", answer="answer")
    RAW = (
        HubSource(
            source_id="noc4pc_train",
            rows=(HubRows(dataset=_panorama("NOC4PC", "train")),),
            note=(
                "Target claim with the cited prior art and the examiner's decision (ALLOW, 102, 103). "
                "Classes are imbalanced; the examiner's reason, where present, is office-action prose."
            ),
        ),
    )
    BENCHMARK = (HubRows(dataset=_panorama("NOC4PC", "test")),)
    INSTRUCTION = "\nDecide ALLOW, 102 or 103. End with one line 'Answer: <ALLOW|102|103>'."

    def format_prompt(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        lines = [self._context_block(record, all_claims=False), "", "Cited prior art:"]
        specs = maybe_json(record.get("prior_art_specifications")) or []
        for number, spec in enumerate(specs if isinstance(specs, list) else [], start=1):
            spec = maybe_json(spec)
            if not isinstance(spec, Mapping):
                continue
            lines.append(f"#{number} {spec.get('patent_id', '')}: {spec.get('title', '')}".rstrip())
            lines.append(f"   Abstract: {spec.get('abstract', '')}")
            claims = _claims_text(spec.get("claims"))
            if claims:
                lines.append("   Claims: " + " | ".join(claims))
            for paragraph in spec.get("paragraphs") or []:
                if isinstance(paragraph, Mapping):
                    lines.append(f"   [{paragraph.get('key', '')}] {paragraph.get('content', '')}")
        return "\n".join(lines) + self.INSTRUCTION

    def _answer(self, record: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        answer = maybe_json(required_field(record, name, self.name))
        return answer if isinstance(answer, Mapping) else {"code": answer}

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        code = str(self._answer(record, fields.answer).get("code") or "").strip().upper()
        return code if code in _NOVELTY_CODES else ""

    def rationale_of(self, record: Mapping[str, Any]) -> str:
        # The answer object's "reason" key is an assumption (the paper's loader reads only "code").
        reason = self._answer(record, self.RAW_FIELDS.answer).get("reason")
        return reason.strip() if isinstance(reason, str) else ""

    def render_response(self, answer: str, rationale: str) -> str:
        return f"{rationale}\nAnswer: {answer}" if rationale else f"Answer: {answer}"

    def extract_answer(self, output: str) -> str | None:
        line = _last_answer_line(output)
        if line is None:
            return None
        code = line.strip().strip(".'\"`").upper()
        return code if code in _NOVELTY_CODES else None
