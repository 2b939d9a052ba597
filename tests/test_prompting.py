"""One prompt format for training and evaluation, with and without a chat template."""

from __future__ import annotations

from typing import Any

import pytest

from ftdojo import ConfigError
from ftdojo.prompting import PLAIN_TEMPLATE, render_prompt, render_response, resolve_template

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizers() -> tuple[Any, Any]:
    from ftdojo.jobs.models import build_tokenizer

    plain = build_tokenizer()
    chat = build_tokenizer()
    chat.chat_template = CHATML
    return plain, chat


def test_plain_template_when_the_tokenizer_has_none(tokenizers: tuple[Any, Any]) -> None:
    plain, _ = tokenizers
    template, _ = resolve_template(plain, "auto")
    assert template == "plain"
    assert render_prompt(plain, "2+2?", template) == "<s>" + PLAIN_TEMPLATE.format(prompt="2+2?")
    assert render_response(plain, "2+2?", "4", template) == "4</s>"
    with pytest.raises(ConfigError, match="no chat template"):
        resolve_template(plain, "chat")


def test_chat_template_renders_prompt_and_answer_as_one_conversation(tokenizers: tuple[Any, Any]) -> None:
    _, chat = tokenizers
    template, _ = resolve_template(chat, "auto")
    assert template == "chat"
    prompt = render_prompt(chat, "2+2?", template)
    response = render_response(chat, "2+2?", "4", template)
    assert prompt == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert response == "4<|im_end|>\n"  # the end-of-turn marker is trained on too
    assert resolve_template(chat, "plain")[0] == "plain"


def test_the_fingerprint_changes_with_the_template_text(tokenizers: tuple[Any, Any]) -> None:
    plain, chat = tokenizers
    assert resolve_template(plain, "auto")[1] != resolve_template(chat, "auto")[1]
    assert resolve_template(chat, "auto")[1] == resolve_template(chat, "chat")[1]
