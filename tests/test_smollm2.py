"""The embedded SmolLM2-135M-Instruct: converted offline from the real PyPI wheel.

Slow (a ~98 MB wheel and a dequantisation of ~40 s), but it runs in CI: the
conversion must keep working on the real file.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from ftdojo import Dojo
from ftdojo.models import SMOLLM2_135M, checksum_ok, locate_gguf, model_info

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

PROMPTS = [
    "What is 7 + 5?",
    "Name a primary color.",
    "Tom has 3 apples and buys 4 more. How many apples does he have?\nPut the final answer in \\boxed{}.",
    "Write one word that rhymes with cat.",
]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, object]]]:
    """Two Dojos convert at once in a fresh home: one converts, the other waits."""
    home = tmp_path_factory.mktemp("smollm2-home")
    events: list[dict[str, object]] = []
    paths: list[Path] = []

    async def main() -> None:
        async def ensure() -> None:
            paths.append(
                await Dojo(home=home, on_event=events.append, threads=2).ensure_model("smollm2-135m")
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(ensure)
            tg.start_soon(ensure)

    anyio.run(main)
    assert paths[0] == paths[1]
    return paths[0], events


def test_a_second_concurrent_conversion_waits(converted: tuple[Path, list[dict[str, object]]]) -> None:
    _, events = converted
    dequantised = [e for e in events if e.get("type") == "progress" and e.get("message") == "dequantised"]
    assert len(dequantised) == 1


def test_the_folder_is_a_plain_llama_with_its_chat_template(
    converted: tuple[Path, list[dict[str, object]]],
) -> None:
    folder, _ = converted
    info = model_info("smollm2-135m", folder)
    assert info.architecture == "LlamaForCausalLM"
    assert info.parameters == 134_515_008
    assert info.has_chat_template
    assert "<|im_start|>" in (folder / "chat_template.jinja").read_text()
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert sorted(p.suffix for p in folder.iterdir() if p.suffix in {".safetensors", ".bin", ".gguf"}) == [
        ".safetensors"
    ]
    assert checksum_ok(folder)


def test_greedy_outputs_match_the_gguf_model(converted: tuple[Path, list[dict[str, object]]]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, _ = converted
    home = folder.parent.parent
    gguf = locate_gguf(SMOLLM2_135M, home)
    assert gguf is not None
    torch.set_num_threads(2)
    reference = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    converted_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    for prompt in PROMPTS:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        outputs = [
            m.generate(**ids, max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.eos_token_id)[
                0
            ].tolist()
            for m in (reference, converted_model)
        ]
        assert outputs[0] == outputs[1], prompt


def test_the_checksum_catches_a_corrupted_file(converted: tuple[Path, list[dict[str, object]]]) -> None:
    folder, _ = converted
    config = folder / "config.json"
    original = config.read_bytes()
    try:
        config.write_bytes(original.replace(b"silu", b"gelu"))
        assert not checksum_ok(folder)
    finally:
        config.write_bytes(original)
    assert checksum_ok(folder)
