"""Score a model on one evaluation split (runs in a Dojo-owned sandbox worker).

Only this job ever reads an evaluation split, and only the Dojo starts it: the agent
gets back the validation result; a test result goes to the journal alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ftdojo.feedback import ErrorKind, ErrorSample, EvaluationFeedback
from ftdojo.jobs.contracts import EvalJob, EvalResult
from ftdojo.jobs.train import pick_device
from ftdojo.prompting import render_prompt, resolve_template
from ftdojo.sandbox import JobFailure
from ftdojo.sandbox.protocol import WorkerContext
from ftdojo.serialization import structure, unstructure
from ftdojo.tasks.registry import task_from_reference


def load_for_inference(base_path: str, trained_path: str | None, device: str) -> tuple[Any, Any]:
    """The base model, or a trained one: a LoRA adapter merged into its base, or a full model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model: Any
    kwargs: dict[str, Any] = {"trust_remote_code": False, "dtype": torch.float32, "use_safetensors": True}
    if trained_path is None:
        model = AutoModelForCausalLM.from_pretrained(base_path, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(base_path, trust_remote_code=False)
    elif (Path(trained_path) / "adapter_config.json").is_file():
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(base_path, **kwargs)
        # Merged once, so generation pays no adapter overhead per token.
        model = PeftModel.from_pretrained(base, trained_path).merge_and_unload()
        tokenizer = AutoTokenizer.from_pretrained(trained_path, trust_remote_code=False)
    else:
        model = AutoModelForCausalLM.from_pretrained(trained_path, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(trained_path, trust_remote_code=False)
    model.to(device)
    model.eval()
    return model, tokenizer


def generate_batched(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    *,
    batch_size: int,
    max_new_tokens: int,
    stop_strings: tuple[str, ...],
    device: str,
    on_batch: Any = None,
) -> list[str]:
    """Greedy outputs for ``prompts`` (rendered texts), in their original order.

    Prompts are sorted by length so a batch holds similar lengths (little padding),
    padded on the left so every row's generation starts at the same position.
    """
    import torch

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    outputs: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = tokenizer.pad({"input_ids": [encoded[i] for i in chunk]}, return_tensors="pt").to(device)
        with torch.inference_mode():
            generated = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                stop_strings=list(stop_strings) or None,
                tokenizer=tokenizer if stop_strings else None,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = generated[:, batch["input_ids"].shape[1] :]
        for row, i in enumerate(chunk):
            outputs[i] = tokenizer.decode(new_tokens[row], skip_special_tokens=True)
        if on_batch is not None:
            on_batch(min(start + batch_size, len(order)), len(order))
    return outputs


def evaluate(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    import torch

    from ftdojo.metrics import load_metric

    job = structure(payload, EvalJob)
    if job.threads:
        torch.set_num_threads(job.threads)
    task = task_from_reference(job.task)
    items = [json.loads(line) for line in Path(job.items_path).read_text().splitlines() if line.strip()]
    device = pick_device()
    model, tokenizer = load_for_inference(job.model_path, job.trained_path, device)

    template, template_hash = resolve_template(tokenizer, job.template)
    expected_hash = job.expected_template_hash
    if expected_hash is not None and expected_hash != template_hash:
        raise JobFailure(
            ErrorKind.CONFIG,
            f"prompt template mismatch: trained with {expected_hash}, evaluation would use {template_hash}",
        )
    prompts = [render_prompt(tokenizer, item["prompt"], template) for item in items]
    started = time.perf_counter()
    outputs = generate_batched(
        model,
        tokenizer,
        prompts,
        batch_size=job.batch_size,
        max_new_tokens=job.max_new_tokens or task.max_new_tokens,
        stop_strings=task.stop_strings,
        device=device,
        on_batch=lambda done, total: ctx.emit("progress", step="generate", done=done, total=total),
    )
    elapsed = time.perf_counter() - started
    from ftdojo.jobs.train import device_report

    # Inference runs in the weights' own dtype (fp32, as loaded): no autocast here.
    precision = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    ctx.emit("device", **device_report(model, precision.get(dtype, dtype)))
    predictions = [task.extract_answer(o) for o in outputs]
    references = [item["reference"] for item in items]
    metric = load_metric(task.metric)
    result = metric.compute(predictions=predictions, references=references)
    score = float(result[task.metric])
    item_scores = [float(v) for v in result["item_scores"]]

    per_category: dict[str, float] = {}
    for category in sorted({item.get("category", "") for item in items} - {""}):
        idx = [i for i, item in enumerate(items) if item.get("category") == category]
        # Recomputed rather than averaged: macro-averaged metrics are not a mean of items.
        sub = metric.compute(
            predictions=[predictions[i] for i in idx], references=[references[i] for i in idx]
        )
        per_category[category] = float(sub[task.metric])

    errors: list[ErrorSample] = []
    wanted = job.error_samples
    for i, item in enumerate(items):
        if len(errors) >= wanted:
            break
        if item_scores[i] < 1.0:
            errors.append(
                ErrorSample(
                    prompt=item["prompt"],
                    expected=task.display_reference(references[i]),
                    output=outputs[i][:1000],
                    prediction=predictions[i],
                    category=item.get("category", ""),
                )
            )
    feedback = EvaluationFeedback(
        metric=task.metric,
        score=score,
        n=len(items),
        per_category=per_category,
        format_compliance=sum(p is not None for p in predictions) / len(items) if items else 0.0,
        errors=tuple(errors),
        samples_per_second=len(items) / elapsed if elapsed > 0 else 0.0,
    )
    answer: dict[str, Any] = unstructure(
        EvalResult(evaluation=feedback, template=template, template_hash=template_hash)
    )
    return answer
