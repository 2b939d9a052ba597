"""The environment of a sandboxed child: built from an allowlist, never from the parent's.

API keys, tokens and proxies of the Dojo's process do not reach a job; a variable that
looks like a secret is refused even when it is passed on purpose.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ftdojo.errors import ConfigError
from ftdojo.sandbox.jobs import Limits

__all__ = ["check_extra_environment", "looks_secret", "scrubbed_environment"]

# The GPU a user chose reaches the job (CUDA_VISIBLE_DEVICES and friends).
_ALLOWED_VARIABLES = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
)
_ALLOWED_PREFIXES = ("OPENBLAS_",)
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
_SECRET_PREFIXES = ("AWS_", "OPENAI_", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def looks_secret(key: str) -> bool:
    """Whether an environment variable's name suggests it holds a secret."""
    upper = key.upper()
    return any(word in upper for word in _SECRET_WORDS) or upper.startswith(_SECRET_PREFIXES)


def check_extra_environment(extra: Mapping[str, str]) -> None:
    """Raise :class:`ConfigError` for a variable in ``extra`` that looks like a secret."""
    for key in extra:
        if looks_secret(key):
            raise ConfigError(
                f"environment variable {key!r} looks like a secret; "
                "secrets are never passed to sandboxed jobs"
            )


def scrubbed_environment(
    *, workspace: Path, limits: Limits, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The child's environment, built from an allowlist rather than the parent's environment.

    Nothing else of the parent's environment (API keys, tokens, proxies) reaches the job.
    ``extra`` is added last; a key that looks like a secret raises :class:`ConfigError`.
    Creates ``workspace/"tmp"`` for TMPDIR.
    """
    env = {key: value for key, value in os.environ.items() if key in _ALLOWED_VARIABLES}
    env.update((key, value) for key, value in os.environ.items() if key.startswith(_ALLOWED_PREFIXES))
    # Only passed through when set: running from a source checkout relies on it to find
    # ftdojo (and the entry's package) in the child, and setting it to anything when it
    # is unset would change the child's import path.
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    tmp = workspace / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(workspace),
        TMPDIR=str(tmp),
        HF_HOME=str(workspace / ".hf"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
        # ``python -m`` would otherwise put the workspace first on sys.path, where files
        # written by a job could shadow real modules (honoured by Python 3.11+).
        PYTHONSAFEPATH="1",
    )
    if limits.threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(limits.threads)
    if extra:
        check_extra_environment(extra)
        env.update(extra)
    return env
