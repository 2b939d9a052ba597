"""Hub tasks for math: DeepScaleR-Preview for training, AIME 2025 as the benchmark.

Dataset ids, configs, splits and columns, and where each comes from: ``docs/hub-tasks.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftdojo.scoring.answers import last_boxed, normalize_math_answer
from ftdojo.tasks.hub._base import FieldMap, HubDataset, HubRows, HubSource, HubTask, text_field

__all__ = ["HubAimeMath"]


_DEEPSCALER = HubDataset(
    key="deepscaler", dataset_id="agentica-org/DeepScaleR-Preview-Dataset", split="train"
)
_AIME_I = HubDataset(key="aime2025_i", dataset_id="opencompass/AIME2025", config="AIME2025-I", split="test")
_AIME_II = HubDataset(
    key="aime2025_ii", dataset_id="opencompass/AIME2025", config="AIME2025-II", split="test"
)


class HubAimeMath(HubTask):
    """Competition math: train on DeepScaleR-Preview, evaluate on AIME 2025 (15 + 15 problems)."""

    name = "hub_aime"
    domain = "math"
    description = (
        "Competition mathematics (AIME level). Raw data: DeepScaleR-Preview (~40k problems from "
        "AIME 1984-2023, AMC, Omni-MATH and STILL with answers, most without worked solutions). "
        "Evaluation: AIME 2025 I (validation) and II (test); the last \\boxed{...} is read."
    )
    output_format = "\\boxed{<answer>}"
    metric = "accuracy"
    max_new_tokens = 2048
    RAW = (
        HubSource(
            source_id="deepscaler",
            rows=(HubRows(dataset=_DEEPSCALER),),
            note=(
                "Competition problems (problem, answer, solution). Most records have an empty "
                "solution; the solutions present are short official write-ups with a boxed answer."
            ),
        ),
    )
    BENCHMARK = (HubRows(dataset=_AIME_I), HubRows(dataset=_AIME_II))
    RAW_FIELDS = FieldMap(prompt="problem", answer="answer", rationale="solution")
    BENCHMARK_FIELDS = FieldMap(prompt="question", answer="answer")
    # The wording of the AIME 2025 prompt in the paper's OpenCompass configuration.
    INSTRUCTION = "\nRemember to put your final answer within \\boxed{}."

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        return normalize_math_answer(text_field(record, fields.answer, self.name).strip())

    def render_response(self, answer: str, rationale: str) -> str:
        final = f"The answer is \\boxed{{{answer}}}."
        if not rationale:
            return final
        return rationale if last_boxed(rationale) is not None else f"{rationale}\n{final}"

    def extract_answer(self, output: str) -> str | None:
        content = last_boxed(output)
        return None if content is None else normalize_math_answer(content)

    def verify(self, record: dict[str, Any]) -> bool | None:
        """Whether the solution's boxed answer equals the answer field; ``None`` without both."""
        solution, answer = record.get("solution"), record.get("answer")
        if not isinstance(solution, str) or answer is None:
            return None
        boxed = self.extract_answer(solution)
        return None if boxed is None else boxed == normalize_math_answer(str(answer).strip())
