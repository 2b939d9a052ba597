"""Deliberately misbehaving sandbox jobs, for checking that a sandbox contains them.

Each function is an entry for :class:`ftdojo.sandbox.Job`, e.g.
``Job(entry="ftdojo.testing.jobs:hang", payload={"ignore_sigterm": True}, stage=Stage.TRAIN)``.
They import nothing heavy, so they start in a fraction of a second.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ftdojo.feedback import ErrorKind
from ftdojo.sandbox.protocol import MAX_EVENT_BYTES, JobFailure, WorkerContext

__all__ = [
    "allocate",
    "compromised_trainer",
    "crash",
    "echo",
    "env",
    "fill_disk",
    "flood",
    "garbage_events",
    "hang",
    "hard_exit",
    "kill_self",
    "many_events",
    "nan_loss",
    "network",
    "run_code",
    "segfault",
]


def echo(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Emits ``payload["steps"]`` (default 3) progress events, prints to stdout, returns the payload."""
    for step in range(int(payload.get("steps", 3))):
        ctx.emit("progress", step=step)
    # Lands in the captured output, not in the event channel.
    print("echo: printed to stdout")
    return payload


def crash(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Raises ``RuntimeError(payload["message"])``."""
    raise RuntimeError(payload.get("message", "deliberate crash"))


def _sleep_forever(beat: Path | None = None) -> None:
    # With ``beat``, the process proves it is alive by rewriting that file every 50 ms:
    # inside a pid namespace its pid means nothing to the parent, a file does.
    while True:
        if beat is None:
            time.sleep(3600)
        else:
            beat.write_text(str(time.monotonic_ns()))
            time.sleep(0.05)


def hang(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Sleeps forever. ``ignore_sigterm``: ignore SIGTERM; ``grandchild``: fork one that hangs too.

    Emits ``{"type": "pids", "pid": ..., "grandchild": ...}`` first (pids as the job sees
    them), and each process rewrites ``beat-pid`` / ``beat-grandchild`` in the workspace
    every 50 ms while it lives.
    """
    if payload.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = None
    (ctx.workspace / "beat-pid").write_text("0")
    if payload.get("grandchild"):
        (ctx.workspace / "beat-grandchild").write_text("0")
        grandchild = os.fork()
        if grandchild == 0:
            try:
                _sleep_forever(ctx.workspace / "beat-grandchild")
            finally:
                os._exit(0)
    ctx.emit("pids", pid=os.getpid(), grandchild=grandchild)
    _sleep_forever(ctx.workspace / "beat-pid")
    raise AssertionError("unreachable")


def allocate(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Allocates ``payload["bytes"]`` and touches every page.

    With ``chunk_bytes`` it allocates chunk by chunk, so that memory is already full when
    the allocation fails (the worker must still report the error).
    """
    total = int(payload["bytes"])
    chunk = int(payload.get("chunk_bytes", total))
    held: list[bytearray] = []
    allocated = 0
    while allocated < total:
        size = min(chunk, total - allocated)
        block = bytearray(size)
        for offset in range(0, size, 4096):
            block[offset] = 1
        held.append(block)
        allocated += size
    return {"allocated": allocated}


def segfault(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Dies of SIGSEGV (``how="ctypes"`` dereferences NULL; the default sends the signal)."""
    if payload.get("how") == "ctypes":
        import ctypes

        ctypes.string_at(0)
    else:
        os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(10)
    raise RuntimeError("still alive after SIGSEGV")


def kill_self(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Sends itself ``payload["signal"]`` (default SIGKILL, as the kernel's OOM killer would)."""
    os.kill(os.getpid(), int(payload.get("signal", signal.SIGKILL)))
    time.sleep(10)
    raise RuntimeError("still alive after the signal")


def hard_exit(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Writes ``payload["stderr"]`` to stderr and leaves with ``os._exit(payload["code"])``."""
    sys.stderr.write(str(payload.get("stderr", "")))
    sys.stderr.flush()
    os._exit(int(payload.get("code", 3)))


def flood(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Writes ``payload["megabytes"]`` MiB to stdout and as much to stderr."""
    line = "x" * 1023 + "\n"
    block = line * 1024
    megabytes = int(payload.get("megabytes", 50))
    for _ in range(megabytes):
        sys.stdout.write(block)
        sys.stderr.write(block)
    sys.stdout.flush()
    sys.stderr.flush()
    return {"megabytes": megabytes}


def nan_loss(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Reports a NaN loss, then fails with ``DIVERGED``."""
    ctx.emit("train_step", step=1, loss=2.5)
    ctx.emit("train_step", step=2, loss=float("nan"), grad_norm=float("inf"))
    raise JobFailure(ErrorKind.DIVERGED, "loss became NaN at step 2")


def env(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Returns the child's environment."""
    return dict(os.environ)


def network(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Returns the names of the network interfaces the child can see."""
    return {"interfaces": sorted(name for _index, name in socket.if_nameindex())}


def garbage_events(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Writes lines that are not events to the event channel, then one real event."""
    ctx._write_raw(b"this is not json\n")
    ctx._write_raw(b"[1, 2, 3]\n")
    ctx._write_raw(b'{"no_type": true}\n')
    ctx._write_raw(b"\xff\xfe\n")
    ctx._write_raw(b'{"type": "huge", "pad": "' + b"x" * (MAX_EVENT_BYTES + 1000) + b'"}\n')
    ctx.emit("after_garbage")
    return {"survived": True}


def many_events(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Emits ``payload["count"]`` events."""
    count = int(payload["count"])
    for index in range(count):
        ctx.emit("tick", index=index)
    return {"count": count}


def run_code(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Runs ``payload["code"]`` as untrusted code (as a recipe's transform runs) and returns
    the dict it leaves in ``result``; an exception it raises is returned as ``error``.

    With ``trusted`` the code runs as the Dojo's own job code does (starting processes is
    then not a violation): tests use it to reach the kernel's protections with tools the
    audit hook cannot see, such as ``sh``.
    """
    import contextlib

    from ftdojo.sandbox.guard import untrusted_code

    namespace: dict[str, Any] = {"result": {}, "workspace": str(ctx.workspace)}
    marker = contextlib.nullcontext() if payload.get("trusted") else untrusted_code()
    try:
        with marker:
            exec(compile(str(payload["code"]), "<run_code>", "exec"), namespace)
    except Exception as exc:
        return {**namespace["result"], "error": f"{type(exc).__name__}: {exc}"}
    return dict(namespace["result"])


def compromised_trainer(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Plays a trainer that was tampered with: it trains nothing and leaves a model the
    Dojo must refuse. ``train.seed`` picks the trick: 1 a pickle beside the weights, 2 a
    model of another architecture, 3 another tokenizer, 4 a symbolic link to a file the
    job cannot see, 5 an honest copy of the base model (accepted), 6 dies of SIGKILL
    mid-training."""
    import json
    import shutil

    trick = int(payload["train"]["seed"])
    if trick == 6:  # killed from outside mid-training (the kernel's OOM killer, an operator)
        ctx.emit("progress", message="training")
        os.kill(os.getpid(), signal.SIGKILL)
    base = Path(payload["model_path"])
    model_dir = Path(payload["output_dir"]) / "model"
    if payload.get("save", True):
        shutil.copytree(base, model_dir, ignore=shutil.ignore_patterns("CHECKSUM"))
        if trick == 1:
            (model_dir / "optimizer.pt").write_bytes(b"\x80\x04cos\nsystem\n.")
        elif trick == 2:
            config = json.loads((model_dir / "config.json").read_text())
            config["num_hidden_layers"] = int(config["num_hidden_layers"]) * 2
            (model_dir / "config.json").write_text(json.dumps(config))
        elif trick == 3:
            tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
            vocab = tokenizer["model"]["vocab"]
            vocab[next(iter(vocab))] = len(vocab) + 7
            (model_dir / "tokenizer.json").write_text(json.dumps(tokenizer))
        elif trick == 4:
            (model_dir / "special_tokens_map.json").symlink_to(str(payload.get("target", "/etc/hostname")))
    training = {"steps": 1, "epochs": 0.01, "tokens_trained": 1, "losses": [{"step": 1, "loss": 1.0}]}
    return {"training": training, "method": "full"}


def fill_disk(payload: dict[str, Any], ctx: WorkerContext) -> dict[str, Any]:
    """Writes ``payload["bytes"]`` into the workspace in 1 MiB chunks, slowly enough for
    the parent's disk watch to see it grow."""
    chunk = os.urandom(2**20)
    written = 0
    with (ctx.workspace / "fill.bin").open("wb") as handle:
        while written < int(payload["bytes"]):
            handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
            written += len(chunk)
            time.sleep(0.01)
    return {"written": written}
