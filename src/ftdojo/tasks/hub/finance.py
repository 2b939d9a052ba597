"""Hub tasks for finance: FinanceIQ.

Dataset ids, configs, splits and columns, and where each comes from: ``docs/hub-tasks.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ftdojo.errors import DataError
from ftdojo.tasks.hub._base import FieldMap, HubDataset, HubRows, HubSource, HubTask

__all__ = ["HubFinanceIQExam"]


_FINANCEIQ_ID = "Duxiaoman-DI/FinanceIQ"
# English slug -> the Chinese file name (OpenCompass's FinanceIQ subject mapping).
_FINANCEIQ_SUBJECTS: dict[str, str] = {
    "certified_public_accountant": "注册会计师（CPA）",
    "banking_qualification": "银行从业资格",
    "securities_qualification": "证券从业资格",
    "fund_qualification": "基金从业资格",
    "insurance_qualification": "保险从业资格CICE",
    "economic_analyst": "经济师",
    "taxation_practitioner": "税务师",
    "futures_qualification": "期货从业资格",
    "certified_fin_planner": "理财规划师",
    "actuary_fin_math": "精算师-金融数学",
}
_FINANCE_ANSWER = re.compile(r"答案\s*[:：]\s*\(?([A-Da-d])\)?")


def _financeiq(slug: str) -> HubDataset:
    return HubDataset(
        key=f"financeiq_{slug}",
        dataset_id=_FINANCEIQ_ID,
        data_files=(f"data/test/{_FINANCEIQ_SUBJECTS[slug]}.csv",),
        split="train",
    )


def _column(record: Mapping[str, Any], name: str, task: str) -> Any:
    """Column ``name`` matched case-insensitively (the CSV headers are capitalised)."""
    if name in record:
        return record[name]
    for key, value in record.items():
        if key.strip().lower() == name.lower():
            return value
    raise DataError(f"{task} record is missing the {name!r} field (has: {sorted(record)})")


class HubFinanceIQExam(HubTask):
    """FinanceIQ: Chinese financial certification exams, single choice A-D, ten subjects."""

    name = "hub_finance_exam"
    domain = "finance"
    description = (
        "FinanceIQ: single-choice questions (A-D, in Chinese) from ten financial certification "
        "exams (CPA, banking, securities, funds, insurance, economist, tax, futures, financial "
        "planner, actuary). The last line must read 答案：<letter>."
    )
    output_format = "答案：<A|B|C|D>"
    metric = "accuracy"
    categories = tuple(_FINANCEIQ_SUBJECTS)
    max_new_tokens = 16
    stop_strings = ("\n",)
    RAW = (
        HubSource(
            source_id="financeiq_train",
            rows=tuple(HubRows(dataset=_financeiq(s), take="head", category=s) for s in _FINANCEIQ_SUBJECTS),
            note=(
                "Exam questions with four options and the answer letter, no explanations. Subjects "
                "are very unevenly sized (CPA and banking large, actuary tiny)."
            ),
        ),
    )
    # The paper's code takes each subject file's last min(ceil(n/2), 100) rows as its benchmark
    # and the rows before as training data; interleaving the subjects keeps both splits mixed.
    BENCHMARK = tuple(HubRows(dataset=_financeiq(s), take="tail", category=s) for s in _FINANCEIQ_SUBJECTS)
    BENCHMARK_ORDER = "round_robin"
    RAW_FIELDS = FieldMap(prompt="Question", answer="Answer", category="category")
    BENCHMARK_FIELDS = FieldMap(prompt="Question", answer="Answer", category="category")
    INSTRUCTION = "\n请在最后一行写出“答案：”和正确选项的字母，例如“答案：A”。"

    def format_prompt(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        subject = str(record.get("category", ""))
        subject_name = _FINANCEIQ_SUBJECTS.get(subject, subject)
        question = str(_column(record, fields.prompt, self.name) or "").strip()
        if not question:
            return ""
        options = "\n".join(f"{x}. {str(_column(record, x, self.name) or '').strip()}" for x in "ABCD")
        header = f"以下是关于{subject_name}的单项选择题，请给出正确答案。"
        return f"{header}\n\n题目：{question}\n{options}{self.INSTRUCTION}"

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        answer = str(_column(record, fields.answer, self.name) or "").strip().upper()
        return answer if answer in ("A", "B", "C", "D") else ""

    def render_response(self, answer: str, rationale: str) -> str:
        return f"答案：{answer}"

    def extract_answer(self, output: str) -> str | None:
        matches = _FINANCE_ANSWER.findall(output)
        if matches:
            return str(matches[-1]).upper()
        bare = output.strip().strip(".。").upper()
        return bare if bare in ("A", "B", "C", "D") else None
