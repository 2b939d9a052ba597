"""A trial's saved model is data, not code: what the Dojo checks before it loads one.

The evaluator loads a trial's model with safetensors only and ``trust_remote_code`` off,
so weights cannot run code. What is left to check happens here, in the Dojo, on the
files as the trial left them:

- every entry is a plain file with one link (a symbolic or hard link could make the
  evaluator, which may read the private splits, open something else);
- no pickle-based weights or other code-carrying files sit beside the safetensors;
- the model derives from the task's base model: the same architecture (the config's
  shape fields) and the same tokenizer (vocabulary and merges). A swapped-in model,
  say a stronger one downloaded by a recipe, fails this.

Each problem is a ``(kind, detail)`` pair; the Dojo fails the trial and records each as
a violation.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["ARCHITECTURE_FIELDS", "check_model_artifacts", "open_plain_file"]

#: Files a saved model or adapter is made of.
_ALLOWED_SUFFIXES = (".safetensors", ".json", ".jinja", ".txt", ".model", ".md")
#: Formats that run code when loaded.
_PICKLE_SUFFIXES = (
    ".bin",
    ".pt",
    ".pth",
    ".pkl",
    ".pickle",
    ".ckpt",
    ".joblib",
    ".npy",
    ".npz",
    ".h5",
    ".msgpack",
)
#: The config fields that fix a model's architecture.
ARCHITECTURE_FIELDS = (
    "model_type",
    "architectures",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
    "max_position_embeddings",
)
_MAX_HEADER_BYTES = 100 * 2**20
_MAX_ENTRIES = 1000

Problem = tuple[str, str]


def open_plain_file(path: Path) -> BinaryIO:
    """``path`` opened for reading, refusing a symbolic or hard link a job may have left.

    The Dojo reads what jobs wrote outside any sandbox: a link would let a job make the
    Dojo read (and report back) a file the job itself cannot see.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise OSError(f"{path.name} is not a plain file with a single link")
    return os.fdopen(fd, "rb")


def _read_json(path: Path) -> Any:
    with open_plain_file(path) as handle:
        return json.loads(handle.read().decode("utf-8"))


def _safetensors_shapes(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (dtype, shape), from the file's header alone."""
    with open_plain_file(path) as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > _MAX_HEADER_BYTES:
            raise ValueError(f"header of {length} bytes")
        header = json.loads(handle.read(length))
    return {
        name: (str(info["dtype"]), tuple(int(n) for n in info["shape"]))
        for name, info in header.items()
        if name != "__metadata__"
    }


def _files(model_dir: Path, problems: list[Problem]) -> list[Path]:
    files = []
    for count, entry in enumerate(os.scandir(model_dir)):
        if count >= _MAX_ENTRIES:
            problems.append(("unexpected_file", f"more than {_MAX_ENTRIES} entries in {model_dir.name}/"))
            break
        info = entry.stat(follow_symlinks=False)
        name = entry.name
        if stat.S_ISLNK(info.st_mode):
            problems.append(("link", f"{name} is a symbolic link to {os.readlink(entry.path)}"))
        elif not stat.S_ISREG(info.st_mode):
            problems.append(("unexpected_file", f"{name} is not a plain file"))
        elif info.st_nlink != 1:
            problems.append(("link", f"{name} is a hard link ({info.st_nlink} names)"))
        elif name.lower().endswith(_PICKLE_SUFFIXES):
            problems.append(("pickle_artifact", f"{name}: weights in a format that runs code when loaded"))
        elif not name.lower().endswith(_ALLOWED_SUFFIXES):
            problems.append(("unexpected_file", f"{name} is not part of a saved model or adapter"))
        else:
            files.append(Path(entry.path))
    return files


def _compare_architecture(trained: Path, base: Path, problems: list[Problem]) -> None:
    mine, theirs = _read_json(trained / "config.json"), _read_json(base / "config.json")
    for field in ARCHITECTURE_FIELDS:
        if mine.get(field) != theirs.get(field):
            problems.append(
                (
                    "foreign_model",
                    f"config.json: {field} is {mine.get(field)!r}, the base model's is {theirs.get(field)!r}",
                )
            )
    base_shapes: dict[str, tuple[str, tuple[int, ...]]] = {}
    for file in sorted(base.glob("*.safetensors")):
        base_shapes.update(_safetensors_shapes(file))
    trained_shapes: dict[str, tuple[str, tuple[int, ...]]] = {}
    for file in sorted(trained.glob("*.safetensors")):
        trained_shapes.update(_safetensors_shapes(file))
    if not trained_shapes:
        problems.append(("foreign_model", "config.json without safetensors weights"))
        return
    extra = sorted(set(trained_shapes) - set(base_shapes))
    if extra:
        problems.append(("foreign_model", f"weights the base model does not have: {', '.join(extra[:5])}"))
    changed = [n for n in trained_shapes if n in base_shapes and trained_shapes[n][1] != base_shapes[n][1]]
    if changed:
        name = changed[0]
        problems.append(
            (
                "foreign_model",
                f"{name} has shape {trained_shapes[name][1]}, the base model's {base_shapes[name][1]}",
            )
        )


def _compare_tokenizer(trained: Path, base: Path, problems: list[Problem]) -> None:
    mine, theirs = trained / "tokenizer.json", base / "tokenizer.json"
    if not theirs.is_file():
        return
    if not mine.is_file():
        problems.append(("foreign_model", "tokenizer.json is missing"))
        return
    # The vocabulary and merges; added special tokens may legitimately differ (a pad token).
    if _read_json(mine).get("model") != _read_json(theirs).get("model"):
        problems.append(("foreign_model", "tokenizer.json: the vocabulary differs from the base model's"))


def check_model_artifacts(model_dir: Path, base_dir: Path) -> list[Problem]:
    """Problems with the model a trial saved in ``model_dir``; empty when it is fit to load."""
    model_dir, base_dir = Path(model_dir), Path(base_dir)
    problems: list[Problem] = []
    try:
        info = os.lstat(model_dir)
    except FileNotFoundError:
        return [("missing_model", f"{model_dir.name}/ does not exist")]
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        return [("link", f"{model_dir.name}/ is not a plain folder")]
    try:
        files = {path.name for path in _files(model_dir, problems)}
        if problems:
            return problems
        if "adapter_config.json" in files:
            if not any(name.endswith(".safetensors") for name in files):
                problems.append(("foreign_model", "adapter_config.json without safetensors weights"))
        elif "config.json" in files:
            _compare_architecture(model_dir, base_dir, problems)
        else:
            problems.append(("missing_model", "neither config.json nor adapter_config.json"))
        _compare_tokenizer(model_dir, base_dir, problems)
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        problems.append(("unreadable_model", f"{type(exc).__name__}: {exc}"))
    return problems
