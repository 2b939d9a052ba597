"""Train a model on a built data set (runs in a sandbox worker).

Hugging Face ``Trainer`` does the optimisation, so that multi-GPU launchers
(``torchrun``/``accelerate``, DDP or FSDP) work unchanged; ftdojo adds the loss on
response tokens only (labels built by the data step), dynamic padding, length-grouped
batches, live loss events, a stop on a NaN loss and a stop at the token budget.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from ftdojo.feedback import ErrorKind, LossPoint, TrainingFeedback
from ftdojo.jobs.contracts import TrainJob, TrainResult
from ftdojo.sandbox import JobFailure
from ftdojo.sandbox.protocol import WorkerContext
from ftdojo.serialization import structure, unstructure


def pick_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def cpu_supports_bf16() -> bool:
    # bf16 matrix products only pay off where the CPU has native bf16 units (AMX or
    # AVX512-BF16); elsewhere they are emulated and slower than fp32.
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_bf16(precision: str, device: str) -> bool:
    import torch

    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    if device == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    # Autocast keeps the weights and the optimizer in fp32 (evaluation reads fp32 weights);
    # only the matrix products run in bf16, natively on AMX / AVX512-BF16 (about 3.5x fp32
    # on such a CPU), emulated and slower elsewhere.
    return device == "cpu" and cpu_supports_bf16()


def device_report(model: Any, precision: str) -> dict[str, Any]:
    """Where ``model``'s weights are and how the job ran it, for the job's ``device`` event.

    Read off the model after the work (not from :func:`pick_device`'s choice), so that a
    job that silently ran on the CPU says so; on a GPU, its name and peak memory too.
    """
    import torch

    parameter = next(model.parameters())
    report: dict[str, Any] = {
        "device": str(parameter.device),
        "dtype": str(parameter.dtype).removeprefix("torch."),
        "precision": precision,
    }
    if parameter.device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(parameter.device)
        report["bf16_supported"] = bool(torch.cuda.is_bf16_supported())
        report["gpu_peak_mb"] = round(torch.cuda.max_memory_allocated(parameter.device) / 2**20, 1)
    return report


class _Collator:
    """Dynamic padding to the longest sequence of the batch; counts trained tokens."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            input_ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            attention[i, :n] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}


def train(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    job = structure(payload, TrainJob)
    config = job.train
    data_path = Path(job.data_path)
    output_dir = Path(job.output_dir)
    max_train_tokens = job.max_train_tokens
    max_steps_cap = job.max_steps
    stop_after_seconds = job.stop_after_seconds
    job_started = time.monotonic()
    if job.threads:
        torch.set_num_threads(job.threads)

    rows = [json.loads(line) for line in data_path.read_text().splitlines() if line.strip()]
    if not rows:
        raise JobFailure(ErrorKind.DATA, f"{data_path} holds no training records")
    for row in rows:
        row["length"] = len(row["input_ids"])

    device = pick_device()
    bf16 = resolve_bf16(config.precision, device)
    loading = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(job.model_path, trust_remote_code=False)
    model: Any = AutoModelForCausalLM.from_pretrained(
        job.model_path, trust_remote_code=False, dtype=torch.float32, use_safetensors=True
    )
    total_parameters = sum(p.numel() for p in model.parameters())
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        targets: str | list[str] = (
            "all-linear" if config.lora_targets == ("all-linear",) else list(config.lora_targets)
        )
        model = get_peft_model(
            model,
            LoraConfig(
                r=config.lora_rank,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=targets,
                task_type="CAUSAL_LM",
            ),
        )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # What loading the model cost, apart from the job's fixed overhead (benchmarks/).
    ctx.emit("model_loaded", seconds=round(time.monotonic() - loading, 4))

    losses: list[LossPoint] = []
    state_box: dict[str, Any] = {"diverged": False, "stop_reason": ""}

    class Events(TrainerCallback):
        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any
        ) -> None:
            if not logs or "loss" not in logs:
                return
            loss = float(logs["loss"])
            point = LossPoint(
                step=int(state.global_step),
                loss=loss,
                learning_rate=logs.get("learning_rate"),
                grad_norm=float(logs["grad_norm"]) if logs.get("grad_norm") is not None else None,
            )
            losses.append(point)
            ctx.emit(
                "loss",
                step=point.step,
                max_steps=int(state.max_steps),
                loss=loss,
                learning_rate=point.learning_rate,
                grad_norm=point.grad_norm,
                tokens=int(state.num_input_tokens_seen),
            )
            if not math.isfinite(loss):
                state_box["diverged"] = True
                control.should_training_stop = True

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 0:
                ctx.emit("first_step")

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if max_train_tokens is not None and state.num_input_tokens_seen >= max_train_tokens:
                state_box["stop_reason"] = f"token budget reached ({max_train_tokens} tokens)"
                control.should_training_stop = True
            elif stop_after_seconds is not None and time.monotonic() - job_started >= stop_after_seconds:
                state_box["stop_reason"] = f"time budget reached (stopped after {stop_after_seconds:.0f} s)"
                control.should_training_stop = True

    steps_per_epoch = math.ceil(len(rows) / (config.batch_size * config.grad_accum))
    max_steps = config.max_steps or max(1, math.ceil(steps_per_epoch * config.epochs))
    if max_steps_cap is not None:
        max_steps = min(max_steps, max_steps_cap)
    args = TrainingArguments(
        output_dir=str(output_dir / "trainer"),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        max_steps=max_steps,
        logging_steps=max(1, min(10, max_steps // 20)),
        logging_nan_inf_filter=False,
        include_num_input_tokens_seen="non_padding",
        train_sampling_strategy="group_by_length",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=config.seed,
        bf16=bf16,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    from datasets import Dataset

    dataset = Dataset.from_list(rows)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=_Collator(int(tokenizer.pad_token_id or 0)),
        callbacks=[Events()],
    )
    ctx.emit("progress", message="training", max_steps=max_steps, records=len(rows), device=device, bf16=bf16)
    started = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - started
    # bf16 is autocast: the weights (the report's dtype) stay fp32, the matrix products don't.
    ctx.emit("device", **device_report(model, "bf16" if bf16 else "fp32"))
    tokens = int(trainer.state.num_input_tokens_seen)
    feedback = TrainingFeedback(
        steps=int(trainer.state.global_step),
        epochs=float(trainer.state.epoch or 0.0),
        tokens_trained=tokens,
        losses=tuple(losses),
        tokens_per_second=tokens / elapsed if elapsed > 0 else 0.0,
        trainable_parameters=trainable,
        total_parameters=total_parameters,
        diverged=bool(state_box["diverged"]),
        stopped_early_reason=str(state_box["stop_reason"]),
    )
    # Sent before any failure is raised, so a diverged run still shows its curve.
    ctx.emit("training_summary", training=unstructure(feedback))
    if feedback.diverged:
        bad = next(p for p in losses if not math.isfinite(p.loss))
        raise JobFailure(
            ErrorKind.DIVERGED,
            f"loss became {bad.loss} at step {bad.step} (learning rate {bad.learning_rate})",
        )
    if job.save:
        model_dir = output_dir / "model"
        # safetensors only: a pickle in an artifact would be code, not data.
        model.save_pretrained(model_dir, safe_serialization=True)
        tokenizer.save_pretrained(model_dir)
    answer: dict[str, Any] = unstructure(TrainResult(training=feedback, method=config.method))
    return answer
