"""Evaluation throughput: ftdojo's batched generation against one prompt at a time.

Both generate greedily with the embedded SmolLM2-135M, fp32, KV cache on, for the
validation prompts of a suite task rendered as the evaluator renders them:

- **one at a time**: ``model.generate`` per prompt with the task's ``max_new_tokens``,
  as a user writes it first (it stops at the end-of-sequence token only);
- **ftdojo**: :func:`ftdojo.jobs.evaluate.generate_batched`, what every evaluation runs:
  prompts sorted by length into batches, left padding, the task's stop strings (generation
  ends at the answer's end, not at a fixed token count).

It prints prompts per second, the ratio, and how many outputs are identical (the
one-at-a-time output cut at the same stop string; fp32 batched and unbatched matrix
products can differ in their last bits, which greedy decoding can turn into a different
token, so this is counted, not assumed).

    python benchmarks/bench_eval.py                  # math, 64 prompts
    python benchmarks/bench_eval.py --task finance_exam --prompts 32
    python benchmarks/bench_eval.py --quick          # tiny model, 8 prompts (CI)
    python benchmarks/bench_eval.py --device cuda    # on a GPU (after one warm-up generation)
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import anyio
import torch

from ftdojo import Dojo
from ftdojo.jobs.evaluate import generate_batched, load_for_inference
from ftdojo.prompting import render_prompt, resolve_template
from ftdojo.tasks.registry import get_task


def _cut(text: str, stops: tuple[str, ...]) -> str:
    """``text`` up to and including the first stop string, as generation with it would end."""
    ends = [text.find(s) + len(s) for s in stops if s in text]
    return text[: min(ends)] if ends else text


def one_at_a_time(
    model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int, device: str = "cpu"
) -> list[str]:
    outputs = []
    for prompt in prompts:
        encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
        with torch.inference_mode():
            generated = model.generate(
                **encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id
            )
        outputs.append(
            tokenizer.decode(generated[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        )
    return outputs


def _linear_seconds(model: Any, rows: int, skip_head: bool = False) -> float:
    """Seconds for one pass of ``rows`` tokens through every linear layer of ``model``.

    Each distinct weight shape is timed once (best of 3) and counted as often as it occurs.
    """
    import collections

    head = model.get_output_embeddings()
    shapes = collections.Counter(
        tuple(m.weight.shape)
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and not (skip_head and m is head)
    )
    device = head.weight.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    total = 0.0
    with torch.inference_mode():
        for (out_features, in_features), count in shapes.items():
            x = torch.randn(rows, in_features, device=device)
            w = torch.randn(out_features, in_features, device=device)
            torch.nn.functional.linear(x, w)
            best = float("inf")
            for _ in range(3):
                sync()
                started = time.perf_counter()
                torch.nn.functional.linear(x, w)
                sync()
                best = min(best, time.perf_counter() - started)
            total += best * count
    return total


def matmul_floor(
    model: Any, tokenizer: Any, prompts: list[str], outputs: list[str], batch_size: int
) -> float:
    """What the batched run would take if it did nothing but its matrix products.

    Per batch (prompts sorted by length, as :func:`generate_batched` does): the prefill's
    products over every prompt token (the output head only for the last one), then one
    decode step of ``rows`` tokens per token of the batch's longest output.
    """
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    generated = [len(tokenizer(o, add_special_tokens=False)["input_ids"]) for o in outputs]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    floor = 0.0
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        rows, width = len(chunk), max(lengths[i] for i in chunk)
        floor += _linear_seconds(model, rows * width, skip_head=True)
        floor += max(generated[i] for i in chunk) * _linear_seconds(model, rows)
    return floor


def main(
    task_name: str,
    count: int,
    batch_size: int,
    threads: int,
    model_name: str = "smollm2-135m",
    device: str = "cpu",
) -> dict[str, Any]:
    torch.set_num_threads(threads)
    task = get_task(task_name)
    model_path = anyio.run(Dojo().ensure_model, model_name)
    model, tokenizer = load_for_inference(str(model_path), None, device)
    template, _hash = resolve_template(tokenizer, "auto")
    validation, _test = task.eval_splits()
    prompts = [render_prompt(tokenizer, item.prompt, template) for item in list(validation)[:count]]
    if device != "cpu":
        # The first generation on a GPU pays for its start (context, kernels, library
        # handles); neither timed side should.
        one_at_a_time(model, tokenizer, prompts[:1], 4, device)

    started = time.perf_counter()
    batched = generate_batched(
        model,
        tokenizer,
        prompts,
        batch_size=batch_size,
        max_new_tokens=task.max_new_tokens,
        stop_strings=task.stop_strings,
        device=device,
    )
    ours = time.perf_counter() - started
    started = time.perf_counter()
    single = one_at_a_time(model, tokenizer, prompts, task.max_new_tokens, device)
    plain = time.perf_counter() - started

    floor = matmul_floor(model, tokenizer, prompts, batched, batch_size)
    identical = sum(
        _cut(a, task.stop_strings).strip() == b.strip() for a, b in zip(single, batched, strict=True)
    )
    same_answer = sum(
        task.extract_answer(a) == task.extract_answer(b) for a, b in zip(single, batched, strict=True)
    )
    figures = {
        "task": task_name,
        "prompts": len(prompts),
        "batch_size": batch_size,
        "threads": threads,
        "device": device,
        "one_at_a_time_prompts_per_second": round(len(prompts) / plain, 3),
        "ftdojo_prompts_per_second": round(len(prompts) / ours, 3),
        "speedup": round(plain / ours, 1),
        "identical_outputs": identical,
        "same_extracted_answer": same_answer,
        # The ratio ftdojo would reach if its batched generation spent every second in
        # its matrix products (measured here, same shapes): an upper bound in fp32.
        "matmul_only_seconds": round(floor, 2),
        "matmul_only_bound": round(plain / floor, 1),
    }
    where = f"{threads} threads" if device == "cpu" else f"{device}, {threads} threads"
    print(f"{model_name}, {task_name}: {len(prompts)} validation prompts, fp32, {where}")
    print("| | one prompt at a time | ftdojo (sorted batches, stop strings) | ratio |")
    print("|---|---|---|---|")
    print(
        f"| prompts/s | {figures['one_at_a_time_prompts_per_second']} "
        f"| {figures['ftdojo_prompts_per_second']} "
        f"| {figures['speedup']}x |"
    )
    print(f"| identical outputs | | {identical}/{len(prompts)} (same extracted answer: {same_answer}) | |")
    print(
        f"| seconds | {plain:.1f} | {ours:.1f} (its matrix products alone: {floor:.1f}) "
        f"| at most {figures['matmul_only_bound']}x in fp32 |"
    )
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="math")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps")
    parser.add_argument("--quick", action="store_true", help="8 prompts, tiny model: checks that it works")
    args = parser.parse_args()
    if args.quick:
        main(args.task, 8, args.batch_size, args.threads, "tiny", args.device)
    else:
        main(args.task, args.prompts, args.batch_size, args.threads, args.model, args.device)
