"""The reference system's way of storing and searching a memory, for side-by-side benchmarks.

Written after M3-Agent's ``VideoGraph``: a dict of nodes holding lists of embeddings, a dict of
directed edge pairs, neighbours found by scanning every edge, a query scored by cosine
against every text node (gathered from per-node float lists into a fresh array on every call),
then every scored node grouped by clip in Python. The reference also reloads its pickled graph
before every search round; that cost is NOT included here, so the baseline is a lower bound.
Not used by m3mem itself.
"""

from __future__ import annotations

import numpy as np

try:  # the reference scores with scikit-learn's cosine_similarity
    from sklearn.metrics.pairwise import cosine_similarity as _cosine
except ImportError:  # pragma: no cover
    def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        return a @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T


class ReferenceGraph:
    def __init__(self) -> None:
        self.nodes: dict[int, dict] = {}
        self.edges: dict[tuple[int, int], float] = {}
        self.text_nodes: list[int] = []
        self.text_nodes_by_clip: dict[int, list[int]] = {}
        self.reverse_character_mappings: dict[str, str] = {}

    def add_entity(self, node_id: int, kind: str, embeddings: list[np.ndarray]) -> None:
        self.nodes[node_id] = {"type": kind, "embeddings": list(embeddings), "contents": []}
        tag = f"{'face' if kind == 'face' else 'voice'}_{node_id}"
        self.reverse_character_mappings[tag] = f"character_{len(self.reverse_character_mappings)}"

    def add_text(self, node_id: int, kind: str, text: str, clip: int, embedding: np.ndarray,
                 entities: list[int]) -> None:
        # the reference keeps embeddings as the JSON float lists its embedding API returns
        self.nodes[node_id] = {"type": kind, "embeddings": [embedding.tolist()], "contents": [text],
                               "timestamp": clip}
        self.text_nodes.append(node_id)
        self.text_nodes_by_clip.setdefault(clip, []).append(node_id)
        for e in entities:
            self.edges[(node_id, e)] = 1.0
            self.edges[(e, node_id)] = 1.0

    def connected(self, node_id: int, types: tuple[str, ...]) -> list[int]:
        out = set()
        for (a, b) in self.edges:  # O(E) scan, as the reference does
            if a == node_id and self.nodes[b]["type"] in types:
                out.add(b)
        return list(out)

    def search_text_nodes(self, query: np.ndarray, range_nodes: list[int]) -> list[tuple[int, float]]:
        if range_nodes:
            ids = sorted({t for n in range_nodes for t in self.connected(n, ("episodic", "semantic"))})
        else:
            ids = self.text_nodes
        emb = np.array([self.nodes[i]["embeddings"] for i in ids]).reshape(len(ids), -1)
        sims = _cosine(query.reshape(1, -1), emb)[0]
        return sorted(zip(ids, sims.tolist()), key=lambda x: x[1], reverse=True)

    def translate(self, text: str) -> str:
        for tag, char in self.reverse_character_mappings.items():
            text = text.replace(f"<{tag}>", f"<{char}>")
        return text

    def clip_search(self, query: np.ndarray, range_nodes: list[int], top_k: int = 5,
                    before_clip: int | None = None) -> dict[str, list[str]]:
        """Clip-wise 'max' search: top-k clips' translated memories, in time order."""
        scored = self.search_text_nodes(query, range_nodes)
        clip_scores: dict[int, float] = {}
        for node_id, s in scored:
            clip = self.nodes[node_id]["timestamp"]
            if before_clip is not None and clip >= before_clip:
                continue
            clip_scores[clip] = max(clip_scores.get(clip, -2.0), s)
        top = sorted(clip_scores, key=lambda c: clip_scores[c], reverse=True)[:top_k]
        return {f"CLIP_{c}": [self.translate(self.nodes[n]["contents"][0])
                              for n in self.text_nodes_by_clip[c]] for c in sorted(top)}
