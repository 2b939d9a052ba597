"""One prompt format for training and evaluation.

A chat-template mismatch between training and evaluation is a silent, common failure
of fine-tuning toolkits: the model learns one format and is asked in another. Both
the data build and the evaluator therefore render text through this module, and the
resolved template (with a hash of its text) is recorded with the trial so that the
evaluator can refuse a mismatch instead of scoring it.

Works with any object that has the Hugging Face tokenizer surface used below; no
heavy import happens here.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

__all__ = ["PLAIN_TEMPLATE", "ResolvedTemplate", "render_prompt", "render_response", "resolve_template"]

#: Used when the tokenizer has no chat template. Kept short: with the tiny
#: character-level model every character is a token.
PLAIN_TEMPLATE = "Question: {prompt}\nAnswer: "

ResolvedTemplate = Literal["chat", "plain"]


def resolve_template(tokenizer: Any, choice: str) -> tuple[ResolvedTemplate, str]:
    """``("chat" | "plain", fingerprint)`` for a recipe's template choice.

    The fingerprint hashes the template text, so a tokenizer whose chat template
    changed between training and evaluation is caught too.
    """
    chat_template = getattr(tokenizer, "chat_template", None)
    if choice == "chat" and not chat_template:
        from ftdojo.errors import ConfigError

        raise ConfigError("template 'chat' asked for, but the tokenizer has no chat template")
    resolved: ResolvedTemplate = (
        "chat" if choice == "chat" or (choice == "auto" and chat_template) else "plain"
    )
    text = chat_template if resolved == "chat" else PLAIN_TEMPLATE
    return resolved, hashlib.sha256(str(text).encode()).hexdigest()[:16]


def render_prompt(tokenizer: Any, prompt: str, template: ResolvedTemplate) -> str:
    """The full text the model sees before it starts answering."""
    if template == "chat":
        return str(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        )
    bos = tokenizer.bos_token or ""
    return bos + PLAIN_TEMPLATE.format(prompt=prompt)


def render_response(tokenizer: Any, prompt: str, response: str, template: ResolvedTemplate) -> str:
    """The text after :func:`render_prompt` that the loss is taken on, end marker included."""
    if template == "chat":
        prompt_text = render_prompt(tokenizer, prompt, template)
        full = str(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
                tokenize=False,
            )
        )
        # Templates that render the conversation as prompt + answer let us take the
        # exact assistant turn, end-of-turn marker included.
        if full.startswith(prompt_text):
            return full[len(prompt_text) :]
    return response + (tokenizer.eos_token or "")
