"""Shared fixtures: a deterministic fake text embedder and the path of the shared real media."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from bench.media import MEDIA


class HashEmbedder:
    """Bag-of-words hashing embedder: texts sharing words get a positive cosine. Tests only."""

    def __init__(self, dim: int = 64):
        self.dim = dim

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            n = np.linalg.norm(out[i])
            out[i] = out[i] / n if n else np.eye(self.dim, dtype=np.float32)[0]
        return out


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def media() -> Path:
    if not MEDIA.is_dir():
        pytest.skip(f"shared real media not found at {MEDIA} (set M3MEM_MEDIA)")
    return MEDIA


def unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)
