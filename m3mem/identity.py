"""Matching a clip's face/voice clusters to the memory's face/voice nodes across clips.

A cluster is scored against a node by the mean cosine between the cluster's centroid and the
node's identity embeddings; each node takes at most one cluster per clip (greedy, best first).
Thresholds were calibrated on real media (see ``scripts/calibrate_identity.py`` and README).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from m3mem.graph import MemoryGraph


@dataclass(frozen=True)
class IdentityOptions:
    face_threshold: float = 0.92  # dlib 128-d cosine; vasp_ids: precision 0.993, recall 0.900
    voice_threshold: float = 0.75  # resemblyzer 256-d: same speaker ~0.8-0.95, different ~0.55-0.7


def centroid(embeddings: np.ndarray) -> np.ndarray:
    c = np.asarray(embeddings, np.float32).mean(0)
    return c / max(float(np.linalg.norm(c)), 1e-12)


def match(graph: MemoryGraph, kind: str, clusters: list[np.ndarray], threshold: float
          ) -> list[int | None]:
    """Node id for each cluster's embeddings (k, d), or None when no node is close enough."""
    nodes = [graph.entities[i] for i in graph.entity_ids(kind)]
    if not clusters or not nodes:
        return [None] * len(clusters)
    cents = np.stack([centroid(c) for c in clusters])
    scores = np.stack([(n.embeddings @ cents.T).mean(0) for n in nodes], 1)  # (clusters, nodes)
    out: list[int | None] = [None] * len(clusters)
    taken: set[int] = set()
    for flat in np.argsort(-scores, axis=None):
        ci, ni = divmod(int(flat), len(nodes))
        if scores[ci, ni] < threshold:
            break
        if out[ci] is None and ni not in taken:
            out[ci] = nodes[ni].id
            taken.add(ni)
    return out
