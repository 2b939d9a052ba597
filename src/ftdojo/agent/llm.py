"""A planner backed by any OpenAI-compatible chat-completions endpoint.

The prompt holds what a practitioner would read before the next trial: the task card,
the data catalogue (notes, fields, sizes, token lengths), the trials so far (plan,
score, diagnosis), the reasons the validator rejected plans this iteration, and the
:class:`~ftdojo.Plan` schema with an example. The answer must be one JSON object: a plan,
or ``{"stop": true, "reason": "..."}`` to end the search.

An answer that is not valid JSON, does not fit the schema (the error names the field),
names an unknown source or repeats a plan already tried is sent back with the problem,
at most ``max_repairs`` times. Timeouts, rate limits (429) and server errors (5xx) are
retried by the client with exponential backoff (honouring ``Retry-After``) up to
``max_retries`` times; what is left ends as an :class:`LLMError`, never a hang, since
every request has a ``timeout``.

Configuration comes from :class:`LLMConfig`, or from the environment:
``FTDOJO_LLM_BASE_URL``, ``FTDOJO_LLM_MODEL`` and ``FTDOJO_LLM_API_KEY`` (local servers
such as vLLM, Ollama or llama.cpp accept any key).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from ftdojo.agent.heuristics import assess_sources, default_train_config, rationale_field
from ftdojo.agent.protocols import Diagnosis, PlanningContext
from ftdojo.errors import ConfigError, LLMError, PlanError
from ftdojo.plans import DataRecipe, Plan, SourceSelection
from ftdojo.serialization import structure, unstructure

if TYPE_CHECKING:
    from ftdojo.results import Trial

__all__ = ["LLMConfig", "LLMPlanner", "RationaleSynthesizer"]

log = structlog.get_logger("ftdojo.agent.llm")

_ENV = {"base_url": "FTDOJO_LLM_BASE_URL", "model": "FTDOJO_LLM_MODEL", "api_key": "FTDOJO_LLM_API_KEY"}
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)

SYSTEM_PROMPT = """\
You are an expert in fine-tuning language models. You plan the next training trial for a \
task: which raw data sources to use and how to clean them, and the training configuration. \
Base every choice on the evidence given (catalogue notes, earlier scores, diagnoses). \
Reply with exactly one JSON object and nothing else: either a plan in the schema shown, \
or {"stop": true, "reason": "..."} when nothing is left worth trying."""


@attrs.frozen(kw_only=True)
class LLMConfig:
    """Where the chat endpoint is and how patient to be with it."""

    base_url: str
    model: str
    api_key: str = attrs.field(default="none", repr=False)
    #: Seconds for one request, connection included.
    timeout: float = 120.0
    #: Retries of a request after a timeout, a connection error, 429 or 5xx.
    max_retries: int = 3
    #: How many times an invalid answer is sent back with its problem.
    max_repairs: int = 2
    temperature: float = 0.2
    #: Ask for a JSON object (``response_format``); not every server supports it.
    json_mode: bool = False
    #: How many earlier trials the prompt shows (the latest ones).
    history_limit: int = 12

    def __attrs_post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"LLM base_url must be an http(s) URL, got {self.base_url!r}")
        if not self.model:
            raise ConfigError("LLM model must be named")
        if self.timeout <= 0 or self.max_retries < 0 or self.max_repairs < 0:
            raise ConfigError("LLM timeout must be positive, max_retries and max_repairs not negative")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> LLMConfig:
        """From ``FTDOJO_LLM_*`` variables; ``overrides`` win. A missing one is a :class:`ConfigError`."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {k: env[v] for k, v in _ENV.items() if env.get(v)}
        values.update(overrides)
        for key in ("base_url", "model"):
            if key not in values:
                raise ConfigError(f"LLM planner: set {_ENV[key]} (or pass {key}=...)")
        return cls(**values)


def _catalog_text(context: PlanningContext) -> str:
    lines = []
    for entry in context.catalog.entries:
        tokens = ", ".join(f"{f} p50 {s.p50:.0f} / p99 {s.p99:.0f}" for f, s in entry.token_stats.items())
        lines.append(
            f"- {entry.source_id} ({entry.format}, {entry.records} records; "
            f"fields {', '.join(entry.fields)}; tokens {tokens})\n  note: {entry.note.strip()}"
        )
        for sample in entry.samples[:1]:
            lines.append(f"  sample: {json.dumps(sample, ensure_ascii=False)[:400]}")
    return "\n".join(lines)


def _trial_text(trial: Trial, context: PlanningContext) -> str:
    diagnosis = context.memory.diagnosis(trial.trial_id)
    score = "failed" if trial.score is None else f"validation {trial.score:.3f}"
    error = trial.feedback.execution.error_kind
    plan = json.dumps(unstructure(trial.plan), sort_keys=True)
    return (
        f"- {trial.trial_id} (parent {trial.plan.parent or '-'}): {score}"
        + (f", error {error.value}" if error is not None else "")
        + f"\n  plan: {plan}\n  diagnosis: {_diagnosis_text(diagnosis)}"
    )


def _diagnosis_text(diagnosis: Diagnosis | None) -> str:
    if diagnosis is None or not diagnosis.findings:
        return "no findings"
    return "; ".join(
        f"{f.kind.value}: {f.evidence}" + (f" (suggests: {f.action})" if f.action else "")
        for f in diagnosis.findings
    )


def build_prompt(context: PlanningContext, *, history_limit: int = 12) -> str:
    """The user message for one planning step."""
    card = context.card
    trials = context.memory.trials[-history_limit:]
    best = context.memory.best()
    left = context.budget_left
    first_source = context.catalog.source_ids[0] if context.catalog.source_ids else "source"
    example = {
        "data": unstructure(DataRecipe(sources=(SourceSelection(source=first_source),))),
        "train": unstructure(default_train_config(context.model, 256.0)),
        "hypothesis": "what this trial tests and why",
        "focus": "both",
        "parent": best.trial_id if best else None,
    }
    parts = [
        f"# Task: {card.name} ({card.domain})\n{card.description}\n"
        f"Output format the evaluator reads: {card.output_format}\nMetric: {card.metric}",
        f"# Model\n{context.model.name}: {context.model.parameters or 'unknown'} parameters, "
        f"context {context.model.context_length} tokens, chat template: {context.model.has_chat_template}",
        f"# Raw data sources\n{_catalog_text(context)}",
        "# Trials so far\n"
        + ("\n".join(_trial_text(t, context) for t in trials) if trials else "none yet")
        + (f"\nBest so far: {best.trial_id} ({best.score:.3f})" if best and best.score is not None else ""),
        "# Budget left\n"
        + ", ".join(
            f"{axis} {'no limit' if value is None else format(value, '.0f')}"
            for axis, value in (
                ("trials", left.trials),
                ("seconds", left.seconds),
                ("trained tokens", left.train_tokens),
            )
        ),
    ]
    if context.rejections:
        parts.append(
            "# Plans rejected this iteration\n" + "\n".join(f"- {r}" for r in context.rejection_reasons)
        )
    parts.append(
        "# Answer\nOne JSON object in this schema (every field optional except data.sources; "
        "sources must be among the raw sources above; focus is data, training or both; "
        "method is full or lora):\n" + json.dumps(example, indent=1)
    )
    return "\n\n".join(parts)


def parse_answer(text: str | None, context: PlanningContext) -> Plan | None:
    """The plan in an answer, or ``None`` for a stop. Raises :class:`PlanError` saying what is wrong."""
    if text is None or not text.strip():
        raise PlanError("the answer was empty")
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        raise PlanError("the answer holds no JSON object")
    try:
        data = json.loads(body[start : end + 1])
    except json.JSONDecodeError as exc:
        raise PlanError(f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PlanError("the answer must be a JSON object")
    if data.get("stop") is True:
        return None
    plan = structure(data, Plan)
    unknown = [s.source for s in plan.data.sources if s.source not in context.catalog.source_ids]
    if unknown:
        raise PlanError(
            f"unknown source(s) {unknown}; the sources are {list(context.catalog.source_ids)}",
            field="data.sources",
        )
    if plan.parent is not None and plan.parent not in {t.trial_id for t in context.memory.trials}:
        raise PlanError(f"no trial {plan.parent!r} to be the parent", field="parent")
    if context.memory.tried(plan):
        raise PlanError("this plan was already tried; change what the evidence points at")
    return plan


def _openai() -> Any:
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - the extra is part of the test install
        raise ConfigError("the LLM planner needs the openai client: pip install 'ftdojo[llm]'") from exc
    return openai


class LLMPlanner:
    """Plans with a chat model over an OpenAI-compatible endpoint (see the module docstring)."""

    def __init__(
        self,
        config: LLMConfig | None = None,
        *,
        client: Any = None,
        synthesize_rationales: int = 0,
    ) -> None:
        """``synthesize_rationales`` > 0 lets the planner ask the endpoint for that many worked
        rationales (one request each, over the whole run) for answer-only records of the
        sources its plans use; see :class:`RationaleSynthesizer`."""
        self.config = config if config is not None else LLMConfig.from_env()
        self._client = client
        #: Requests sent and answers rejected, for reports.
        self.requests = 0
        self.repairs = 0
        self.synthesizer = (
            RationaleSynthesizer(self.complete, max_calls=synthesize_rationales)
            if synthesize_rationales > 0
            else None
        )

    def _chat(self) -> Any:
        if self._client is None:
            self._client = _openai().OpenAI(
                base_url=self.config.base_url,
                api_key=self.config.api_key,
                timeout=self.config.timeout,
                max_retries=self.config.max_retries,
            )
        return self._client

    def complete(self, messages: list[dict[str, str]]) -> str | None:
        """One chat completion; transport failures left after the client's retries are :class:`LLMError`."""
        openai = _openai()

        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
        }
        if self.config.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        self.requests += 1
        where = f"{self.config.base_url} ({self.config.model})"
        tries = self.config.max_retries + 1
        try:
            response = self._chat().chat.completions.create(**kwargs)
        except openai.APITimeoutError as exc:
            raise LLMError(f"{where}: no answer within {self.config.timeout:g} s, {tries} tries") from exc
        except openai.RateLimitError as exc:
            raise LLMError(f"{where}: rate limited (429) on all {tries} tries") from exc
        except openai.APIStatusError as exc:
            raise LLMError(f"{where}: HTTP {exc.status_code}: {str(exc)[:300]}") from exc
        except openai.APIConnectionError as exc:
            raise LLMError(f"{where}: cannot connect: {exc}") from exc
        except openai.OpenAIError as exc:
            raise LLMError(f"{where}: {exc}") from exc
        choices = getattr(response, "choices", None) or []
        if not choices:
            return None
        return getattr(choices[0].message, "content", None)

    def propose(self, context: PlanningContext) -> Plan | None:
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": build_prompt(context, history_limit=self.config.history_limit)},
        ]
        problem: PlanError | None = None
        for _ in range(self.config.max_repairs + 1):
            answer = self.complete(messages)
            try:
                plan = parse_answer(answer, context)
            except PlanError as exc:
                problem = exc
                self.repairs += 1
                log.info("LLM answer rejected", problem=str(exc)[:300])
                messages += [
                    {"role": "assistant", "content": answer or ""},
                    {
                        "role": "user",
                        "content": f"That answer is invalid: {exc}. Reply with one corrected JSON object.",
                    },
                ]
                continue
            if plan is not None and self.synthesizer is not None:
                plan = self.synthesizer.enrich(plan, context)
            return plan
        raise LLMError(
            f"{self.config.base_url} ({self.config.model}) gave no valid plan in "
            f"{self.config.max_repairs + 1} answers; the last problem: {problem}"
        )


_ANSWER_FIELDS = ("answer", "label", "target", "output", "final_answer")

RATIONALE_PROMPT = """\
Task: {task}
{description}
Output format the evaluator reads: {output_format}

Here is a record with a worked {field}:
{example}

Write the {field} for this record, in the same style, ending with the given answer in the \
output format:
{record}

Reply with one JSON object: {{"{field}": "..."}}"""


class RationaleSynthesizer:
    """Worked rationales for answer-only records, written by the chat endpoint.

    A source is answer-only when its records lack the rationale field (``solution``,
    ``rationale``, ...) that a sibling source of the same task fills; the sibling's
    catalogue sample is the example the endpoint imitates. Each record costs one request,
    and at most ``max_calls`` requests are made over the planner's life (answers are
    cached, so later plans reuse them for free). A rationale that does not contain the
    record's answer is discarded: it would teach a wrong derivation.

    The rationales reach the sandboxed build as data inside the plan's ``transform_code``
    (a JSON table keyed by the record's other fields), so the build stays offline and the
    plan stays a complete, replayable description of the trial.
    """

    def __init__(
        self, complete: Callable[[list[dict[str, str]]], str | None], *, max_calls: int = 20
    ) -> None:
        if max_calls < 0:
            raise ConfigError(f"max_calls must not be negative, got {max_calls}")
        self._complete = complete
        self.max_calls = max_calls
        self.calls = 0
        #: Answers discarded (no JSON, no rationale, or the answer missing from it).
        self.discarded = 0
        #: field -> record key -> rationale
        self._rationales: dict[str, dict[str, str]] = {}
        self._asked: set[tuple[str, str]] = set()

    def enrich(self, plan: Plan, context: PlanningContext) -> Plan:
        """``plan`` with synthesized rationales for its answer-only sources, when any apply."""
        if not plan.data.include_rationale or plan.data.transform_code is not None:
            return plan
        if context.read_source is None:
            return plan
        assessed = {
            a.source_id: a
            for a in assess_sources(
                context.catalog, categories=context.card.categories, read_source=context.read_source
            )
        }
        filled = 0
        fields: set[str] = set()
        for selection in plan.data.sources:
            assessment = assessed.get(selection.source)
            if assessment is None or assessment.has_rationale or assessment.off_domain:
                continue
            sibling = self._sibling(selection.source, context)
            if sibling is None:
                continue
            field, example = sibling
            filled += self._synthesize(selection.source, field, example, context)
            if self._rationales.get(field):
                fields.add(field)
        table = {f: self._rationales[f] for f in sorted(fields) if self._rationales.get(f)}
        if not table:
            return plan
        count = sum(len(v) for v in table.values())
        return attrs.evolve(
            plan,
            data=attrs.evolve(plan.data, transform_code=_transform_code(table)),
            hypothesis=(
                plan.hypothesis + f" (with {count} rationales written by the LLM for answer-only records)"
            ).strip(),
        )

    @staticmethod
    def _sibling(source_id: str, context: PlanningContext) -> tuple[str, dict[str, Any]] | None:
        """The rationale field and an example record from a source with the same fields that fills it."""
        entry = context.catalog[source_id]
        for other in context.catalog.entries:
            field = rationale_field(other)
            if other.source_id == source_id or field is None:
                continue
            if set(entry.fields) - {field} <= set(other.fields) and other.samples:
                example = next((s for s in other.samples if str(s.get(field) or "").strip()), None)
                if example is not None:
                    return field, example
        return None

    def _synthesize(
        self, source_id: str, field: str, example: dict[str, Any], context: PlanningContext
    ) -> int:
        assert context.read_source is not None
        table = self._rationales.setdefault(field, {})
        made = 0
        for record in context.read_source(source_id):
            if self.calls >= self.max_calls:
                break
            if str(record.get(field) or "").strip():
                continue
            key = record_key(record, field)
            if (field, key) in self._asked:
                continue
            self._asked.add((field, key))
            rationale = self._ask(record, field, example, context)
            if rationale is not None:
                table[key] = rationale
                made += 1
        return made

    def _ask(
        self, record: dict[str, Any], field: str, example: dict[str, Any], context: PlanningContext
    ) -> str | None:
        card = context.card
        prompt = RATIONALE_PROMPT.format(
            task=card.name,
            description=card.description,
            output_format=card.output_format,
            field=field,
            example=json.dumps(example, ensure_ascii=False)[:1500],
            record=json.dumps(record, ensure_ascii=False)[:1500],
        )
        self.calls += 1
        answer = self._complete([{"role": "user", "content": prompt}])
        rationale = _rationale_in(answer, field)
        expected = next((str(record[f]).strip() for f in _ANSWER_FIELDS if f in record), None)
        if rationale is None or (expected and expected not in rationale):
            self.discarded += 1
            log.info("synthesized rationale discarded", field=field, answer=(answer or "")[:200])
            return None
        return rationale


def record_key(record: dict[str, Any], field: str) -> str:
    """A record's identity without its rationale field: what the transform looks rationales up by."""
    return json.dumps({k: v for k, v in record.items() if k != field}, sort_keys=True, ensure_ascii=False)


def _rationale_in(answer: str | None, field: str) -> str | None:
    if not answer:
        return None
    fenced = _FENCE.search(answer)
    body = fenced.group(1) if fenced else answer
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        data = json.loads(body[start : end + 1])
    except json.JSONDecodeError:
        return None
    value = data.get(field) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value.strip() or len(value) > 4000:
        return None
    return value.strip()


def _transform_code(table: dict[str, dict[str, str]]) -> str:
    """``transform_code`` that fills each field from ``table`` where a record leaves it empty."""
    return (
        "import json\n"
        f"_RATIONALES = json.loads({json.dumps(json.dumps(table, sort_keys=True, ensure_ascii=False))})\n"
        "\n"
        "def transform(record):\n"
        "    for field, by_key in _RATIONALES.items():\n"
        "        if str(record.get(field) or '').strip():\n"
        "            continue\n"
        "        key = json.dumps({k: v for k, v in record.items() if k != field}, sort_keys=True,"
        " ensure_ascii=False)\n"
        "        if key in by_key:\n"
        "            record = {**record, field: by_key[key]}\n"
        "    return record\n"
    )
