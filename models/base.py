"""Interfaces every backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TextEmbedder(Protocol):
    """Sentences -> L2-normalised float32 embeddings of shape (n, dim)."""

    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...
