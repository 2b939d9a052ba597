"""Build a trial's training data from raw sources (runs in a sandbox worker).

Every step counts what goes in and what comes out, so the agent can see where its
recipe lost records. Output: ``train.jsonl`` with token ids ready for training
(prompt tokens masked from the loss) and ``template.json`` naming the prompt format,
which the evaluator checks against its own.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ftdojo.errors import DataError
from ftdojo.feedback import DataFeedback, StepCount
from ftdojo.jobs.contracts import BuildJob, BuildResult
from ftdojo.prompting import render_prompt, render_response, resolve_template
from ftdojo.rawformat import iter_records
from ftdojo.sandbox.protocol import WorkerContext
from ftdojo.serialization import structure, unstructure
from ftdojo.tasks.registry import task_from_reference


def _read_source(source_id: str, path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        yield from iter_records(fh, fmt, where=f"source {source_id!r} ({path})")


def _compile_transform(code: str) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    from ftdojo.sandbox.guard import untrusted_code

    namespace: dict[str, Any] = {}
    try:
        with untrusted_code():
            exec(compile(code, "<recipe.transform_code>", "exec"), namespace)
    except SyntaxError as exc:
        raise DataError(f"data.transform_code does not compile: {exc}") from exc
    transform = namespace.get("transform")
    if not callable(transform):
        raise DataError("data.transform_code must define a function transform(record) -> dict | None")
    return transform  # type: ignore[no-any-return]


def _percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return float(sorted_values[index])


def _stratified_sample(rows: list[dict[str, Any]], k: int, rng: random.Random) -> list[dict[str, Any]]:
    # Round-robin over categories keeps rare categories in a small sample.
    by_category: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_category[row["category"]].append(row)
    for bucket in by_category.values():
        rng.shuffle(bucket)
    picked: list[dict[str, Any]] = []
    buckets = [by_category[c] for c in sorted(by_category)]
    while len(picked) < k and any(buckets):
        for bucket in buckets:
            if bucket and len(picked) < k:
                picked.append(bucket.pop())
    return picked


def build_data(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    job = structure(payload, BuildJob)
    recipe = job.recipe
    task = task_from_reference(job.task)
    sources = job.sources
    formats = job.source_formats
    max_length = job.max_length
    limit_records = job.limit_records
    out_dir = Path(job.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(recipe.seed)
    steps: list[StepCount] = []

    # 1. load, capped per source (a random subset, not the first N: raw files are
    #    often sorted by difficulty or date).
    loaded: list[tuple[str, dict[str, Any]]] = []
    for selection in recipe.sources:
        if selection.source not in sources:
            raise DataError(f"data.sources: unknown source {selection.source!r}; known: {sorted(sources)}")
        fmt = formats.get(selection.source, "jsonl")
        records = list(_read_source(selection.source, Path(sources[selection.source]), fmt))
        cap = selection.max_records
        if limit_records is not None:
            cap = min(cap or limit_records, limit_records)
        if cap is not None and cap < len(records):
            records = rng.sample(records, cap)
        loaded.extend((selection.source, r) for r in records)
    total_loaded = len(loaded)
    steps.append(StepCount(step="load", records_in=total_loaded, records_out=total_loaded))
    ctx.emit("progress", step="load", records=total_loaded)

    # 2. user transform, in this sandboxed process only.
    if recipe.transform_code:
        from ftdojo.sandbox.guard import untrusted_code

        transform = _compile_transform(recipe.transform_code)
        transformed: list[tuple[str, dict[str, Any]]] = []
        for source, record in loaded:
            with untrusted_code():
                result = transform(dict(record))
            if result is not None:
                if not isinstance(result, dict):
                    raise DataError(
                        f"data.transform_code: transform returned {type(result).__name__}, not dict"
                    )
                transformed.append((source, result))
        steps.append(StepCount(step="transform", records_in=len(loaded), records_out=len(transformed)))
        loaded = transformed

    # transformers is imported only now: a recipe that tries to cross the sandbox is
    # stopped before the job pays for the import.
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(job.model_path, trust_remote_code=False)
    template, template_hash = resolve_template(tokenizer, recipe.template)

    # 3. verification by outcome.
    failed_verification = 0
    failed_per_source: dict[str, int] = {}
    checked_per_source: dict[str, int] = {}
    if recipe.verified_only:
        kept = []
        for source, record in loaded:
            checked_per_source[source] = checked_per_source.get(source, 0) + 1
            verdict = task.verify(record)
            if verdict is False:
                failed_verification += 1
                failed_per_source[source] = failed_per_source.get(source, 0) + 1
            else:
                kept.append((source, record))
        steps.append(StepCount(step="verify", records_in=len(loaded), records_out=len(kept)))
        loaded = kept

    # 4. examples; records the task cannot use are counted, not fatal.
    examples = []
    for source, record in loaded:
        example = task.to_example(record, include_rationale=recipe.include_rationale)
        if example is not None:
            examples.append((source, example))
    steps.append(StepCount(step="to_example", records_in=len(loaded), records_out=len(examples)))

    # 5. dedupe on the rendered pair.
    duplicates = 0
    if recipe.dedupe:
        seen: set[tuple[str, str]] = set()
        unique = []
        for source, example in examples:
            key = (example.prompt.strip(), example.response.strip())
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            unique.append((source, example))
        steps.append(StepCount(step="dedupe", records_in=len(examples), records_out=len(unique)))
        examples = unique

    # 6. render and tokenize with the one template; drop what does not fit.
    rows: list[dict[str, Any]] = []
    too_long = 0
    for source, example in examples:
        prompt_text = render_prompt(tokenizer, example.prompt, template)
        response_text = render_response(tokenizer, example.prompt, example.response, template)
        prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        response_ids = tokenizer(response_text, add_special_tokens=False)["input_ids"]
        if len(prompt_ids) + len(response_ids) > max_length:
            too_long += 1
            continue
        rows.append(
            {
                "input_ids": prompt_ids + response_ids,
                "labels": [-100] * len(prompt_ids) + response_ids,
                "category": example.category or "",
                "source": source,
            }
        )
    steps.append(StepCount(step="length_filter", records_in=len(examples), records_out=len(rows)))

    # 7. sample.
    cap = recipe.max_records if limit_records is None else min(recipe.max_records, limit_records)
    if len(rows) > cap:
        rows = _stratified_sample(rows, cap, rng) if recipe.stratify else rng.sample(rows, cap)
        steps.append(StepCount(step="sample", records_in=len(examples) - too_long, records_out=len(rows)))
    rng.shuffle(rows)
    if not rows:
        raise DataError(
            "the recipe produced no training records; steps: "
            + ", ".join(f"{s.step} {s.records_in}->{s.records_out}" for s in steps)
        )

    with (out_dir / "train.jsonl").open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    (out_dir / "template.json").write_text(json.dumps({"template": template, "hash": template_hash}))

    lengths = sorted(len(r["input_ids"]) for r in rows)
    feedback = DataFeedback(
        records=len(rows),
        tokens=sum(lengths),
        steps=tuple(steps),
        per_source=dict(Counter(r["source"] for r in rows)),
        duplicates_removed=duplicates,
        too_long_dropped=too_long,
        failed_verification=failed_verification,
        failed_verification_per_source=failed_per_source,
        verified_per_source=checked_per_source,
        length_p50=_percentile(lengths, 0.5),
        length_p99=_percentile(lengths, 0.99),
        length_max=lengths[-1],
        template=template,
        template_hash=template_hash,
    )
    ctx.emit("progress", step="written", records=len(rows))
    answer: dict[str, Any] = unstructure(
        BuildResult(data=feedback, template=template, template_hash=template_hash)
    )
    return answer
