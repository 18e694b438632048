"""Average-linkage clustering of L2-normalised embeddings under cannot-link groups."""

from __future__ import annotations

import numpy as np


def agglomerate(emb: np.ndarray, groups: list[int], threshold: float | np.ndarray) -> list[int]:
    """Average-linkage agglomeration on cosine similarity (Lance-Williams updates): merge the pair
    of clusters most above its threshold while one is; never merge clusters that share a frame
    (``groups``), since one frame cannot show the same person twice. ``threshold`` may be one value
    per item: a pair needs the stricter of its two, and a merged cluster keeps the stricter."""
    n = len(emb)
    sim = (emb @ emb.T).astype(np.float64)
    t = np.broadcast_to(np.asarray(threshold, np.float64), (n,)).copy()
    g = np.asarray(groups)
    blocked = g[:, None] == g[None, :]
    size = np.ones(n)
    alive = np.ones(n, bool)
    parent = np.arange(n)
    while True:
        masked = np.where(blocked | ~alive[:, None] | ~alive[None, :], -np.inf, sim - np.maximum(t[:, None], t[None, :]))
        a, b = np.unravel_index(np.argmax(masked), masked.shape)
        if masked[a, b] <= 0:
            break
        a, b = min(a, b), max(a, b)
        t[a] = max(t[a], t[b])
        sim[a, :] = sim[:, a] = (size[a] * sim[a] + size[b] * sim[b]) / (size[a] + size[b])
        blocked[a, :] = blocked[:, a] = blocked[a] | blocked[b]
        size[a] += size[b]
        alive[b] = False
        parent[parent == b] = a
    roots = sorted(set(parent.tolist()))
    return [roots.index(p) for p in parent.tolist()]
