"""The Dojo's check of a trial's saved model: plain safetensors derived from the base model."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import anyio
import pytest

from ftdojo import Dojo
from ftdojo.artifacts import check_model_artifacts, open_plain_file


@pytest.fixture(scope="module")
def base(ftdojo_home: Path) -> Path:
    return anyio.run(Dojo(home=ftdojo_home).ensure_model, "tiny")


@pytest.fixture
def trained(base: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(base, folder, ignore=shutil.ignore_patterns("CHECKSUM"))
    return folder


def _kinds(folder: Path, base: Path) -> list[str]:
    return [kind for kind, _detail in check_model_artifacts(folder, base)]


def test_an_honest_copy_passes(trained: Path, base: Path) -> None:
    assert check_model_artifacts(trained, base) == []


def test_pickles_links_and_foreign_models_are_refused(trained: Path, base: Path, tmp_path: Path) -> None:
    (trained / "optimizer.pt").write_bytes(b"\x80\x04.")
    assert _kinds(trained, base) == ["pickle_artifact"]
    (trained / "optimizer.pt").unlink()

    (trained / "extra.json").symlink_to(tmp_path / "elsewhere.json")
    assert _kinds(trained, base) == ["link"]
    (trained / "extra.json").unlink()

    os.link(trained / "config.json", tmp_path / "second-name.json")
    assert _kinds(trained, base) == ["link"]
    (tmp_path / "second-name.json").unlink()

    config = json.loads((trained / "config.json").read_text())
    config["num_hidden_layers"] += 1
    (trained / "config.json").write_text(json.dumps(config))
    assert _kinds(trained, base) == ["foreign_model"]


def test_another_vocabulary_is_a_foreign_model(trained: Path, base: Path) -> None:
    tokenizer = json.loads((trained / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    vocab[next(iter(vocab))] = len(vocab) + 3
    (trained / "tokenizer.json").write_text(json.dumps(tokenizer))
    assert _kinds(trained, base) == ["foreign_model"]
    assert _kinds(trained.parent / "missing", base) == ["missing_model"]


def test_open_plain_file_refuses_links(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    with open_plain_file(tmp_path / "a.txt") as handle:
        assert handle.read() == b"a"
    (tmp_path / "b.txt").symlink_to(tmp_path / "a.txt")
    with pytest.raises(OSError, match="symbolic links"):
        open_plain_file(tmp_path / "b.txt")
    os.link(tmp_path / "a.txt", tmp_path / "c.txt")
    with pytest.raises(OSError, match="single link"):
        open_plain_file(tmp_path / "c.txt")
