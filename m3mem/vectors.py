"""Small vector helpers of the memory graph: a growable matrix, normalisation, even thinning."""

from __future__ import annotations

import numpy as np


class Rows:
    """Growable float32 matrix with amortised O(1) append."""

    def __init__(self, dim: int) -> None:
        self.data = np.empty((8, dim), np.float32)
        self.ids: list[int] = []

    def append(self, node_id: int, vec: np.ndarray) -> None:
        n = len(self.ids)
        if n == len(self.data):
            self.data = np.concatenate([self.data, np.empty_like(self.data)])
        self.data[n] = vec
        self.ids.append(node_id)

    def view(self) -> np.ndarray:
        return self.data[: len(self.ids)]


def normalise(vec: np.ndarray, dim: int, what: str) -> np.ndarray:
    v = np.asarray(vec, np.float32).reshape(-1)
    if v.shape[0] != dim:
        raise ValueError(f"{what}: embedding has dimension {v.shape[0]}, this memory uses {dim}")
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"{what}: embedding is zero or not finite")
    return v / norm


def keep_spread(n: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` items out of ``n``, evenly spread, first and last included."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))
