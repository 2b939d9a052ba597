"""Training throughput: ftdojo's training job against a plain ``Trainer``, side by side.

Both train the same LoRA adapter (rank 16, all linear layers) on the embedded
SmolLM2-135M, on the same variable-length records (chunks of real text: the Python
sources of the installed ``transformers``, 24 to 384 tokens), for one epoch with the same
batch size, so both see the same tokens:

- **plain**: ``transformers.Trainer`` as a user writes it first: random batches padded to
  their longest record (``DataCollatorWithPadding``), fp32;
- **ftdojo**: :func:`ftdojo.jobs.train.train`, the job every trial runs (called in this
  process): batches grouped by length, dynamic padding, bf16 autocast where the CPU has
  native bf16 (AMX or AVX512-BF16), else fp32.

It prints tokens per second (non-padding tokens), the ratio, the loss of each trained
model on the same held-out records (equal within noise means the speed was not bought
with worse training; measured in fp32, one record at a time), and effective FLOP/s
(4 x matmul parameters x tokens per second: LoRA computes no weight gradients for the
frozen matrices) as a share of the fp32 and bf16
matrix-product peaks measured at the start of the same run. Medians over ``--repeats``.

    python benchmarks/bench_train.py                 # 96 records, 3 repeats
    python benchmarks/bench_train.py --quick         # tiny model, 16 records, 1 repeat (CI)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import torch

from ftdojo import Dojo
from ftdojo.jobs.train import cpu_supports_bf16
from ftdojo.jobs.train import train as ftdojo_train
from ftdojo.plans import TrainConfig
from ftdojo.serialization import unstructure

BATCH = 8
# Higher than a LoRA default (2e-4) so that one short epoch moves the held-out loss
# visibly: the loss check compares where the two trainings got to, not just the start.
LEARNING_RATE = 1e-3


def matmul_peak(dtype: torch.dtype, size: int = 2048, seconds: float = 2.0) -> float:
    """FLOP/s of a square matrix product in ``dtype`` on this machine (best of a few)."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)  # warm-up
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - started))
    return best


def records(tokenizer: Any, count: int, seed: int = 0) -> list[dict[str, Any]]:
    import transformers

    rng = random.Random(seed)
    sources = sorted(Path(transformers.__file__).parent.rglob("*.py"))
    rng.shuffle(sources)
    rows: list[dict[str, Any]] = []
    for source in sources:
        ids = tokenizer(source.read_text(errors="replace"), add_special_tokens=False)["input_ids"]
        start = 0
        while start < len(ids) and len(rows) < count:
            length = rng.randint(24, 384)
            chunk = ids[start : start + length]
            start += length
            if len(chunk) >= 24:
                rows.append({"input_ids": chunk, "labels": list(chunk)})
        if len(rows) >= count:
            break
    return rows


class _Context:
    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.events: list[dict[str, Any]] = []

    def emit(self, type: str, **fields: Any) -> None:
        self.events.append({"type": type, **fields})


def held_out_loss(model: Any, rows: list[dict[str, Any]]) -> float:
    """Mean token loss of ``model`` on ``rows``, fp32, one record at a time (no padding)."""
    model.eval()
    total, tokens = 0.0, 0
    with torch.inference_mode():
        for row in rows:
            ids = torch.tensor([row["input_ids"]])
            loss = model(input_ids=ids, labels=ids).loss
            total += float(loss) * (ids.shape[1] - 1)
            tokens += ids.shape[1] - 1
    return total / tokens


def run_ftdojo(
    model_path: Path, data: Path, workspace: Path, threads: int, held_out: list[dict[str, Any]]
) -> dict[str, float]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = TrainConfig(
        method="lora",
        lora_rank=16,
        lora_alpha=32,
        learning_rate=LEARNING_RATE,
        epochs=1.0,
        batch_size=BATCH,
        max_length=512,
    )
    ctx = _Context(workspace)
    result = ftdojo_train(
        {
            "train": unstructure(config),
            "data_path": str(data),
            "output_dir": str(workspace),
            "model_path": str(model_path),
            "save": True,
            "threads": threads,
        },
        ctx,
    )
    training = result["training"]
    bf16 = next((e.get("bf16") for e in ctx.events if e["type"] == "progress"), False)
    base = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    trained = PeftModel.from_pretrained(base, workspace / "model")
    return {
        "tokens_per_second": training["tokens_per_second"],
        "tokens": training["tokens_trained"],
        "held_out_loss": held_out_loss(trained, held_out),
        "bf16": float(bool(bf16)),
    }


def run_plain(
    model_path: Path,
    rows: list[dict[str, Any]],
    workspace: Path,
    threads: int,
    held_out: list[dict[str, Any]],
) -> dict[str, float]:
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model: Any = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    pad = DataCollatorWithPadding(tokenizer, padding="longest")

    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        padded = pad([{"input_ids": r["input_ids"]} for r in batch])
        labels = padded["input_ids"].clone()
        labels[padded["attention_mask"] == 0] = -100
        padded["labels"] = labels
        return padded

    steps = -(-len(rows) // BATCH)
    args = TrainingArguments(
        output_dir=str(workspace),
        per_device_train_batch_size=BATCH,
        learning_rate=LEARNING_RATE,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        max_steps=steps,
        logging_steps=max(1, min(10, steps // 20)),
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
        remove_unused_columns=False,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([{"input_ids": r["input_ids"]} for r in rows]),
        data_collator=collate,
    )
    started = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - started
    tokens = sum(len(r["input_ids"]) for r in rows)
    return {
        "tokens_per_second": tokens / elapsed,
        "tokens": tokens,
        "held_out_loss": held_out_loss(trainer.model, held_out),
        "bf16": 0.0,
    }


def main(count: int, repeats: int, threads: int, model: str = "smollm2-135m") -> dict[str, Any]:
    torch.set_num_threads(threads)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    model_path = anyio.run(Dojo().ensure_model, model)
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    everything = records(tokenizer, count + max(8, count // 4))
    rows, held_out = everything[:count], everything[count:]
    config = AutoConfig.from_pretrained(model_path)
    layer = (
        4 * config.hidden_size**2 * (1 + config.num_key_value_heads / config.num_attention_heads) / 2
        + 3 * config.hidden_size * config.intermediate_size
    )
    matmul_parameters = config.num_hidden_layers * layer + config.vocab_size * config.hidden_size
    folder = Path(tempfile.mkdtemp(prefix="ftdojo-bench-train-"))
    data = folder / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))

    from transformers import AutoModelForCausalLM

    # What training moved: the untouched model's loss on the same held-out records.
    base_loss = held_out_loss(AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32), held_out)
    results: dict[str, list[dict[str, float]]] = {"plain": [], "ftdojo": []}
    for repeat in range(repeats):
        results["plain"].append(run_plain(model_path, rows, folder / f"plain-{repeat}", threads, held_out))
        results["ftdojo"].append(run_ftdojo(model_path, data, folder / f"ftdojo-{repeat}", threads, held_out))

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    figures: dict[str, Any] = {
        "records": len(rows),
        "held_out_records": len(held_out),
        "held_out_loss_before_training": round(base_loss, 4),
        "tokens": int(results["plain"][0]["tokens"]),
        "repeats": repeats,
        "threads": threads,
        "cpu_bf16": cpu_supports_bf16(),
        "peak_fp32_gflops": round(peaks["fp32"] / 1e9, 1),
        "peak_bf16_gflops": round(peaks["bf16"] / 1e9, 1),
    }
    for name in ("plain", "ftdojo"):
        speed = median(name, "tokens_per_second")
        flops = 4 * matmul_parameters * speed
        figures[name] = {
            "tokens_per_second": round(speed, 1),
            "held_out_loss": round(median(name, "held_out_loss"), 4),
            "bf16": bool(median(name, "bf16")),
            "gflops": round(flops / 1e9, 1),
            "share_of_fp32_peak": round(flops / peaks["fp32"], 3),
            "share_of_bf16_peak": round(flops / peaks["bf16"], 3),
        }
    figures["speedup"] = round(
        figures["ftdojo"]["tokens_per_second"] / figures["plain"]["tokens_per_second"], 2
    )
    plain, ours = figures["plain"], figures["ftdojo"]
    print(
        f"{model} LoRA r16, {figures['records']} records, {figures['tokens']} tokens, batch {BATCH}, "
        f"{threads} threads, medians of {repeats}"
    )
    print(
        "| | plain Trainer (pad to longest, fp32) "
        "| ftdojo (grouped, dynamic padding, bf16 autocast) | ratio |"
    )
    print("|---|---|---|---|")
    print(
        f"| tokens/s | {plain['tokens_per_second']} | {ours['tokens_per_second']} | {figures['speedup']}x |"
    )
    print(
        f"| held-out loss after training (before: {figures['held_out_loss_before_training']}) "
        f"| {plain['held_out_loss']} | {ours['held_out_loss']} | |"
    )
    print(f"| effective GFLOP/s | {plain['gflops']} | {ours['gflops']} | |")
    print(
        f"| share of fp32 peak ({figures['peak_fp32_gflops']} GFLOP/s) | {plain['share_of_fp32_peak']:.1%} "
        f"| {ours['share_of_fp32_peak']:.1%} | |"
    )
    print(
        f"| share of bf16 peak ({figures['peak_bf16_gflops']} GFLOP/s) | {plain['share_of_bf16_peak']:.1%} "
        f"| {ours['share_of_bf16_peak']:.1%} | |"
    )
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument(
        "--quick", action="store_true", help="16 records, one repeat, tiny model: checks that it works"
    )
    args = parser.parse_args()
    if args.quick:
        main(16, 1, args.threads, "tiny")
    else:
        main(args.records, args.repeats, args.threads, args.model)
