"""Model names, where their files are, and what an agent may know about them.

A model is any Hugging Face causal LM id or local folder, or an embedded name that
ftdojo builds offline:

* ``tiny`` — a small Llama (about 1.8M parameters) with a character-level tokenizer
  (every digit a token), built deterministically from a seed on first use and cached.
  It has no chat template, so it exercises the plain prompt format. For tests and
  quick runs, where speed matters more than quality.

Building and loading happen in sandbox workers (:mod:`ftdojo.jobs.models`); this
module only reads small JSON files, so the Dojo's own process never imports torch.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import attrs

from ftdojo.errors import ModelError

__all__ = ["EMBEDDED_MODELS", "ModelInfo", "TinySpec", "default_home", "model_info", "resolve_local_model"]


def default_home() -> Path:
    """ftdojo's cache directory: ``$FTDOJO_HOME`` or ``~/.cache/ftdojo``."""
    env = os.environ.get("FTDOJO_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ftdojo"


@attrs.frozen(kw_only=True)
class TinySpec:
    """The recipe of the ``tiny`` model; changing any field builds a new cached folder."""

    seed: int = 0
    hidden_size: int = 192
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    max_position_embeddings: int = 512

    @property
    def slug(self) -> str:
        return (
            f"tiny-s{self.seed}-h{self.hidden_size}-i{self.intermediate_size}"
            f"-l{self.num_hidden_layers}-a{self.num_attention_heads}-p{self.max_position_embeddings}"
        )


#: Names ftdojo can build without a hub, mapped to their build recipe.
EMBEDDED_MODELS: dict[str, TinySpec] = {"tiny": TinySpec()}


@attrs.frozen(kw_only=True)
class ModelInfo:
    """What an agent may know about the base model (read from its config files)."""

    name: str
    path: str
    architecture: str
    parameters: int
    context_length: int
    has_chat_template: bool
    vocab_size: int


def resolve_local_model(name: str, home: Path) -> Path | None:
    """The local folder for ``name`` if it is an embedded model or an existing path.

    ``None`` means: treat ``name`` as a Hugging Face id (the worker resolves it, from
    the local Hugging Face cache when offline).
    """
    if name in EMBEDDED_MODELS:
        return home / "models" / EMBEDDED_MODELS[name].slug
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a model folder: it has no config.json")
        return path.resolve()
    return None


def _count_safetensors_parameters(folder: Path) -> int:
    # The safetensors header is JSON with every tensor's shape: counting parameters
    # this way needs neither torch nor reading the weights.
    total = 0
    for file in sorted(folder.glob("*.safetensors")):
        with file.open("rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            header: dict[str, Any] = json.loads(fh.read(header_len))
        for key, meta in header.items():
            if key == "__metadata__":
                continue
            count = 1
            for dim in meta["shape"]:
                count *= int(dim)
            total += count
    return total


def model_info(name: str, folder: Path) -> ModelInfo:
    """Read a model folder's config and tokenizer config (no torch, no weights loaded)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {folder / 'config.json'}: {exc}") from exc
    has_chat_template = (folder / "chat_template.jinja").is_file()
    tok_config_path = folder / "tokenizer_config.json"
    if tok_config_path.is_file():
        try:
            tok_config = json.loads(tok_config_path.read_text())
            has_chat_template = has_chat_template or bool(tok_config.get("chat_template"))
        except json.JSONDecodeError as exc:
            raise ModelError(f"cannot read {tok_config_path}: {exc}") from exc
    architectures = config.get("architectures") or [config.get("model_type", "unknown")]
    return ModelInfo(
        name=name,
        path=str(folder),
        architecture=str(architectures[0]),
        parameters=_count_safetensors_parameters(folder),
        context_length=int(config.get("max_position_embeddings", 2048)),
        has_chat_template=has_chat_template,
        vocab_size=int(config.get("vocab_size", 0)),
    )
