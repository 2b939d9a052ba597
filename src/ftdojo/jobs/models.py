"""Build the embedded ``tiny`` model (runs in a sandbox worker)."""

from __future__ import annotations

import os
import shutil
import string
from pathlib import Path
from typing import Any

from ftdojo.jobs.contracts import GgufModelJob, TinyModelJob
from ftdojo.models import folder_digest
from ftdojo.serialization import structure

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")


def _char_vocabulary() -> list[str]:
    # Printable ASCII plus newline and tab: every digit, letter and symbol a token of
    # its own, so arithmetic is never hidden inside multi-digit tokens.
    chars = sorted(set(string.printable) - set("\r\x0b\x0c"))
    return [*SPECIAL_TOKENS, *chars]


def build_tokenizer() -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(_char_vocabulary())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
    )


def build_tiny(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Build the tiny model into ``payload["target"]`` atomically.

    The folder is written under a temporary name and renamed into place, so an
    interrupted build never leaves a folder that later counts as done.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    job = structure(payload, TinyModelJob)
    spec, target = job.spec, Path(job.target)
    if (target / "CHECKSUM").is_file():
        return {"path": str(target), "built": False}
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = build_tokenizer()
    vocab_size = len(tokenizer)
    config = LlamaConfig(
        vocab_size=(vocab_size + 63) // 64 * 64,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_attention_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "CHECKSUM").write_text(folder_digest(tmp) + "\n")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, target)
    except OSError:
        # Another process finished first (the caller holds a lock, so this is rare).
        shutil.rmtree(tmp, ignore_errors=True)
    ctx.emit("progress", message=f"built tiny model: {sum(p.numel() for p in model.parameters())} parameters")
    return {"path": str(target), "built": True, "parameters": sum(p.numel() for p in model.parameters())}


def convert_gguf(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Dequantise a GGUF file into a plain Hugging Face folder, atomically.

    ``save_pretrained`` refuses a model loaded from GGUF (it carries a quantizer), so
    the dequantised weights are loaded into a fresh model of the same config and that
    one is saved: fp32 safetensors, the tokenizer with its chat template, and a
    CHECKSUM that later loads verify.
    """
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    job = structure(payload, GgufModelJob)
    gguf, target = Path(job.gguf), Path(job.target)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    source = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    ctx.emit("progress", message="dequantised", seconds=round(time.perf_counter() - started, 2))
    config = source.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
    missing, unexpected = plain.load_state_dict(source.state_dict(), strict=False)
    # A tied output layer may be absent from one side; anything else is a real mismatch.
    real_missing = [k for k in missing if k != "lm_head.weight"]
    if real_missing or unexpected:
        raise RuntimeError(
            f"GGUF weights do not fit the config: missing {real_missing}, unexpected {unexpected}"
        )
    plain.generation_config = source.generation_config
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "CHECKSUM").write_text(folder_digest(tmp) + "\n")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # a corrupt earlier conversion, already detected by the caller
        shutil.rmtree(target)
    os.replace(tmp, target)
    seconds = time.perf_counter() - started
    return {"path": str(target), "parameters": sum(p.numel() for p in plain.parameters()), "seconds": seconds}
