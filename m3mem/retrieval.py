"""Retrieval over a memory, with M3-Agent's modes.

- clip-wise: score each clip by its text nodes (max / mean / sum), keep those above a threshold,
  return the top-k clips' memories in time order, skipping clips already shown;
- memory-wise: the top-k text nodes themselves (for "character id of ..." / "name of
  <character_k>" questions);
- entity-restricted: a query that mentions a character/face/voice only searches the memories
  linked to those entities;
- ``CLIP_n`` references return those clips directly;
- ``before_clip``: only clips with a smaller index are visible (questions asked mid-video).

Candidates come from the vector index; clips are then rescored exactly from their own nodes. With
``ranker="hybrid"`` the dense ranking is fused with a BM25 ranking of the same memories (SQLite
FTS5, kept in the clip's transaction) by weighted reciprocal rank fusion, so an exact name, number
or rare word said in the video is found even when the embedding of a short question misses it;
``ranker="lexical"`` is BM25 alone. Dense is the default: it measured best on bench/long_qa.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np

from m3mem.errors import UsageError
from m3mem.graph import MemoryGraph
from m3mem.index import TextIndex
from models.mentions import MENTION_RE, clip_references, parse_mentions

Mode = Literal["max", "mean", "sum"]
Ranker = Literal["hybrid", "dense", "lexical"]
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)
MEMORY_WISE_RE = re.compile(r"character\s*id|name of\s*<character_\d+>|<character_\d+>'s name",
                            re.IGNORECASE)
EXACT_SUBSET = 4096  # subsets up to this size are scored exactly instead of through the index


@dataclass(frozen=True)
class SearchOptions:
    top_k: int = 5  # clips (clip-wise) or memories (memory-wise) to return
    mode: Mode = "max"  # how a clip's node scores combine
    threshold: float = 0.0  # clips/memories scoring below this are dropped
    before_clip: int | None = None  # only clips with index < before_clip are visible
    exclude_clips: frozenset[int] = frozenset()  # clips already shown to the agent
    depth: int = 64  # index candidates fetched per round of clip-wise search
    ranker: Ranker = "dense"  # dense (embeddings), lexical (BM25) or both fused ("hybrid"): on the long QA
    #                           benchmark fusion did not beat dense (README, bench/long_qa.py)
    lexical_weight: float = 1.0  # weight of the BM25 ranking in the fusion (dense: 1)

    def __post_init__(self) -> None:
        if self.mode not in ("max", "mean", "sum"):
            raise UsageError(f"mode must be max, mean or sum, got {self.mode!r}")
        if self.ranker not in ("hybrid", "dense", "lexical"):
            raise UsageError(f"ranker must be hybrid, dense or lexical, got {self.ranker!r}")
        if self.top_k < 1 or self.depth < 1:
            raise UsageError("top_k and depth must be >= 1")


@dataclass
class ClipHit:
    clip: int
    start: float  # seconds
    end: float  # seconds
    score: float
    memories: list[str]  # translated to <character_N>
    nodes: list[int] = field(default_factory=list)  # the text node of each memory


@dataclass
class MemoryHit:
    node_id: int
    clip: int
    start: float
    end: float
    kind: str
    score: float
    text: str  # translated to <character_N>


@dataclass
class SearchResult:
    query: str
    route: str  # "clips" | "memories" | "clip_refs"
    clips: list[ClipHit] = field(default_factory=list)  # in time order
    memories: list[MemoryHit] = field(default_factory=list)
    ranked: list[int] = field(default_factory=list)  # clip-wise: the clips in rank order, best first

    def as_dict(self) -> dict[str, list[str]]:
        """``{"CLIP_n": [memories...]}`` in time order (memory-wise hits grouped by clip)."""
        if self.clips:
            return {f"CLIP_{h.clip}": h.memories for h in self.clips}
        out: dict[str, list[str]] = {}
        for m in sorted(self.memories, key=lambda m: (m.clip, m.node_id)):
            out.setdefault(f"CLIP_{m.clip}", []).append(m.text)
        return out


class Searchable(Protocol):
    """What retrieval reads: an open memory (``m3mem.memory.Memory``) or anything like it."""

    graph: MemoryGraph
    index: TextIndex | None

    def embed_query(self, text: str) -> np.ndarray: ...

    def lexical(self, query: str, limit: int, before_clip: int | None = None) -> list[tuple[int, float]] | None: ...


class Retriever:
    """Searches one open memory. Cheap to create; holds no state between searches.

    ``options`` are the defaults of every search; a search may pass its own."""

    def __init__(self, memory: Searchable, options: SearchOptions | None = None):
        self.memory = memory
        self.options = options or SearchOptions()

    @property
    def graph(self) -> MemoryGraph:
        return self.memory.graph

    def with_options(self, **changes) -> SearchOptions:
        """The default options with some fields changed."""
        return replace(self.options, **changes)

    def search(self, query: str, options: SearchOptions | None = None,
               embedding: np.ndarray | None = None) -> SearchResult:
        """Route a query the way M3-Agent does and run it."""
        options = options or self.options
        refs = clip_references(query)
        if refs:
            return self.clips_by_index(query, refs, options)
        if MEMORY_WISE_RE.search(query):
            return self.memory_search(query, options, embedding)
        return self.clip_search(query, options, embedding)

    # ------------------------------------------------------------- routes
    def clips_by_index(self, query: str, clips: list[int], options: SearchOptions) -> SearchResult:
        hits = [self._hit(c, float("nan")) for c in sorted(set(clips))
                if c in self.graph.clips and self._visible(c, options)]
        return SearchResult(query, "clip_refs", clips=hits)

    def clip_search(self, query: str, options: SearchOptions | None = None,
                    embedding: np.ndarray | None = None) -> SearchResult:
        options = options or self.options
        index = self.memory.index
        if index is None or index.size == 0:
            return SearchResult(query, "clips")
        q = self._embed(query, embedding)
        subset, mask = self._scope(query, options)
        dense = self._dense_clips(q, options, subset, mask) if options.ranker != "lexical" else {}
        if options.mode != "max":
            dense = {c: self._clip_score(q, c, subset, options.mode) for c in dense}
        order = sorted(dense, key=lambda c: (-dense[c], c))
        lexical = self._lexical_clips(query, options, subset) if options.ranker != "dense" else None
        if lexical is not None:  # None: dense only (asked for, or no lexical index in this memory)
            fused: dict[int, float] = {}
            for ranking, weight in ((order, 1.0), (lexical, options.lexical_weight)):
                for rank, c in enumerate(ranking):
                    fused[c] = fused.get(c, 0.0) + weight / (RRF_K + rank + 1)
            order = sorted(fused, key=lambda c: (-fused[c], c))
        if options.threshold > 0:  # the threshold is on the dense similarity of the clip's best memory
            order = [c for c in order if self._clip_score(q, c, subset, "max") >= options.threshold]
        chosen = order[: options.top_k]
        # a hit's score is its dense similarity (under ``mode``), whatever ranked it
        return SearchResult(query, "clips", clips=[
            self._hit(c, dense[c] if c in dense else self._clip_score(q, c, subset, options.mode))
            for c in sorted(chosen)], ranked=chosen)

    def _dense_clips(self, q: np.ndarray, options: SearchOptions, subset, mask) -> dict[int, float]:
        """Clip -> its best memory's cosine, for at least top_k clips (or all there are)."""
        depth = options.depth
        while True:
            s, pos = self._nodes(q, depth, subset, mask)
            scores: dict[int, float] = {}
            for score, p in zip(s.tolist(), pos.tolist()):
                scores.setdefault(self.memory.index.clip_at(p), score)  # best first: the clip's max
            if len(scores) >= options.top_k or len(pos) < depth:
                return scores
            depth *= 4

    def _lexical_clips(self, query: str, options: SearchOptions, subset) -> list[int] | None:
        """Clips in order of their best BM25 memory, or None when the memory has no lexical index."""
        hits = self.memory.lexical(_without_mentions(query), options.depth * 4, options.before_clip)
        if hits is None:
            return None
        allowed = None if subset is None else {self.memory.index.node_at(p) for p in subset.tolist()}
        out: dict[int, None] = {}
        for node, _ in hits:
            text = self.graph.texts.get(node)
            if text is None or (allowed is not None and node not in allowed) or text.clip in options.exclude_clips:
                continue
            if not self.graph.is_equivalence_node(node):
                out.setdefault(text.clip, None)
        return list(out)

    def memory_search(self, query: str, options: SearchOptions | None = None,
                      embedding: np.ndarray | None = None) -> SearchResult:
        options = options or self.options
        q = self._embed(query, embedding)
        if self.memory.index is None or self.memory.index.size == 0:
            return SearchResult(query, "memories")
        subset, mask = self._scope(query, options)
        s, pos = self._nodes(q, options.top_k, subset, mask)
        hits = []
        for score, p in zip(s.tolist(), pos.tolist()):
            if score < options.threshold:
                continue
            node = self.graph.texts[self.memory.index.node_at(p)]
            hits.append(MemoryHit(node.id, node.clip, node.start, node.end, node.kind, score,
                                  self.graph.translated_text(node.id)))
        return SearchResult(query, "memories", memories=hits)

    # ------------------------------------------------------------ helpers
    def _embed(self, query: str, embedding: np.ndarray | None) -> np.ndarray:
        q = self.memory.embed_query(query) if embedding is None else np.asarray(embedding, np.float32)
        dim = self.memory.index.dim if self.memory.index is not None else len(q)
        if q.shape != (dim,):
            raise ValueError(f"query embedding has shape {q.shape}, this memory uses ({dim},)")
        return q / max(float(np.linalg.norm(q)), 1e-12)

    def _visible(self, clip: int, options: SearchOptions) -> bool:
        before = options.before_clip
        return (before is None or clip < before) and clip not in options.exclude_clips

    def _scope(self, query: str, options: SearchOptions) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(positions the query is restricted to, or None; boolean mask of visible positions, or None)."""
        index = self.memory.index
        mask = index.visible(options.before_clip, options.exclude_clips)
        subset = None
        if any(m.kind in ("face", "voice", "character") for m in parse_mentions(query)):
            entities = self.graph.resolve_query(query)
            subset = index.positions(self.graph.texts_of_entities(entities))
            if mask is not None:
                subset = subset[mask[subset]]
        return subset, mask

    def _nodes(self, q: np.ndarray, k: int, subset: np.ndarray | None, mask: np.ndarray | None):
        index = self.memory.index
        if subset is None:
            return index.search(q, k, mask)
        if len(subset) <= EXACT_SUBSET:
            return index.score_subset(q, subset, k)
        allowed = np.zeros(index.size, bool)
        allowed[subset] = True
        return index.search(q, k, allowed)

    def _clip_score(self, q: np.ndarray, clip: int, subset: np.ndarray | None, mode: Mode) -> float:
        index = self.memory.index
        pos = index.positions(self.graph.clip_texts[clip])
        if subset is not None:
            pos = np.intersect1d(pos, subset)
        if len(pos) == 0:
            return float("-inf")
        s = index.score_subset(q, pos, len(pos))[0]
        return float(s.max() if mode == "max" else s.sum() if mode == "sum" else s.mean())

    def _hit(self, clip: int, score: float) -> ClipHit:
        start, end = self.graph.clips[clip]
        # equivalence lines read "<character_1>, <character_1>" once translated: not shown
        nodes = [n for n in self.graph.clip_texts[clip] if not self.graph.is_equivalence_node(n)]
        self.graph.text_nodes(nodes)  # read together
        return ClipHit(clip, start, end, score, [self.graph.translated_text(n) for n in nodes], nodes)


def _without_mentions(query: str) -> str:
    """The query's words, without <character_N> / <face_N> / <voice_N> tags (entity restriction
    handles those)."""
    return MENTION_RE.sub(" ", query)
