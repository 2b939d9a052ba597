"""Build the embedded ``tiny`` model (runs in a sandbox worker)."""

from __future__ import annotations

import hashlib
import os
import shutil
import string
from pathlib import Path
from typing import Any

from ftdojo.models import TinySpec

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


def folder_digest(folder: Path) -> str:
    """sha256 over every file's name and bytes, in a stable order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "CHECKSUM"):
        digest.update(str(file.relative_to(folder)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def build_tiny(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Build the tiny model into ``payload["target"]`` atomically.

    The folder is written under a temporary name and renamed into place, so an
    interrupted build never leaves a folder that later counts as done.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    spec = TinySpec(**payload["spec"])
    target = Path(payload["target"])
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
