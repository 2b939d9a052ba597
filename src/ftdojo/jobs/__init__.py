"""Entry points that run inside sandbox workers (``module:function``).

These modules import torch, transformers and peft; nothing in the Dojo's own process
imports them. Each entry takes ``(payload: dict, ctx: WorkerContext)`` and returns a
JSON-serialisable dict.
"""
