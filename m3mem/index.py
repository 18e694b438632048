"""Vector index over text nodes: faiss inner product on L2-normalised float32 embeddings.

Small memories are searched exactly on the CPU with one BLAS matrix-vector product over the
contiguous embedding matrix (measured 3x faster than faiss's IndexFlatIP for single queries at
10k vectors, and adding is a copy, so opening is fast). Once a memory passes ``hnsw_from`` vectors
the CPU index becomes faiss HNSW (approximate, O(log n) search, filtered by an ID bitmap).
Adding is always an append: vectors newer than the HNSW graph form an exact "delta" segment, and
the graph is built or extended lazily, at the first search that finds the delta over
``delta_max`` - so ingest never pays HNSW insertion and searches stay fast. With
faiss's GPU build and a CUDA device the index is faiss's exact flat index on the GPU.
Positions in the index are assigned in insertion order; node ids must arrive in increasing order.

The HNSW graph is saved beside the memory (``MEMORY.index``: a JSON header line, then faiss's own
serialisation of the graph without its vectors, ``IO_FLAG_SKIP_STORAGE``: about 140 bytes per
memory), written atomically by whichever process built it, so the next opening does not rebuild
it; the vectors are always the memory's own. It is a cache, never trusted blindly: it is used only
when its header matches this index (format version, dimension, graph parameters, vector count,
last node id, a fingerprint of sampled vectors) and its payload matches the header's sha256;
otherwise it is rebuilt (with a log line) and saved again. faiss parses it as data; nothing in it
is executed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexConfig:
    hnsw_from: int = 60_000  # switch the CPU index from exact flat to HNSW at this many vectors
    hnsw_m: int = 16  # HNSW graph degree
    hnsw_ef_construction: int = 40  # HNSW build-time beam width
    hnsw_ef_search: int = 128  # HNSW search-time beam width
    delta_max: int = 8192  # vectors added since the last HNSW update, searched exactly until then
    use_gpu: bool | None = None  # None: GPU when faiss has one, else CPU


def _gpu_count(faiss) -> int:
    try:
        return faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0
    except RuntimeError:
        return 0


class TextIndex:
    """Embeddings of text nodes with their node ids and clips, searchable under a filter."""

    FORMAT, VERSION = "m3mem-hnsw", 1

    def __init__(self, dim: int, config: IndexConfig | None = None, cache_path: Path | None = None):
        import faiss

        self.cache_path = cache_path  # where the HNSW graph is saved and looked for
        self.faiss = faiss
        self.dim = dim
        self.config = config or IndexConfig()
        self.vectors = np.empty((1024, dim), np.float32)
        self.node_ids = np.empty(1024, np.int64)
        self.clips = np.empty(1024, np.int64)
        self.size = 0
        self.indexed = 0  # vectors [0, indexed) are in the HNSW graph; the rest are the delta
        gpu = self.config.use_gpu
        self.on_gpu = bool(_gpu_count(faiss)) if gpu is None else gpu
        self.kind = "flat"
        self.index = None  # CPU flat: numpy over self.vectors; else a faiss index
        if self.on_gpu:
            self._gpu_res = faiss.StandardGpuResources()
            self.index = faiss.index_cpu_to_gpu(self._gpu_res, 0, faiss.IndexFlatIP(dim))
            self.kind = "gpu-flat"

    def _grow(self, need: int) -> None:
        cap = len(self.node_ids)
        if need <= cap:
            return
        while cap < need:
            cap *= 2
        for name in ("vectors", "node_ids", "clips"):
            old = getattr(self, name)
            new = np.empty((cap, *old.shape[1:]), old.dtype)
            new[: self.size] = old[: self.size]
            setattr(self, name, new)

    def add(self, node_ids: np.ndarray, clips: np.ndarray, vectors: np.ndarray) -> None:
        """Append ``vectors`` (n, dim), L2-normalised, for nodes with increasing ids."""
        vectors = np.ascontiguousarray(vectors, np.float32).reshape(-1, self.dim)
        n = len(vectors)
        if n == 0:
            return
        node_ids = np.asarray(node_ids, np.int64)
        if self.size and node_ids[0] <= self.node_ids[self.size - 1]:
            raise ValueError("text node ids must be added in increasing order")
        self._grow(self.size + n)
        sl = slice(self.size, self.size + n)
        self.vectors[sl], self.node_ids[sl], self.clips[sl] = vectors, node_ids, clips
        self.size += n
        if self.on_gpu:
            self.index.add(vectors)

    def _maintain(self) -> None:
        """Build the HNSW graph once the index is large, or fold a large delta into it."""
        if self.on_gpu:
            return
        if self.kind == "flat" and self.size >= self.config.hnsw_from:
            self._to_hnsw()
        elif self.kind == "hnsw" and self.size - self.indexed > self.config.delta_max:
            self.index.add(self.vectors[self.indexed: self.size])
            self.indexed = self.size
            self._save()

    def _to_hnsw(self) -> None:
        faiss = self.faiss
        loaded = self._load()
        if loaded is not None:
            self.index, self.kind, self.indexed = loaded, "hnsw", loaded.ntotal
            return
        log.info("building HNSW index over %d text nodes", self.size)
        index = faiss.IndexHNSWFlat(self.dim, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.config.hnsw_ef_construction
        index.hnsw.efSearch = self.config.hnsw_ef_search
        index.add(self.vectors[: self.size])
        self.index, self.kind, self.indexed = index, "hnsw", self.size
        self._save()

    def _header(self, count: int) -> dict:
        c = self.config
        sample = self.vectors[np.unique(np.linspace(0, count - 1, 257).astype(int))] if count else self.vectors[:0]
        return {"format": self.FORMAT, "version": self.VERSION, "dim": self.dim, "m": c.hnsw_m,
                "ef_construction": c.hnsw_ef_construction, "count": count,
                "last_node": int(self.node_ids[count - 1]) if count else -1,
                "vectors": hashlib.sha256(np.ascontiguousarray(sample).tobytes()).hexdigest()}

    def _save(self) -> None:
        """Write the HNSW graph beside the memory, atomically; a folder that cannot be written
        only costs the next opening a rebuild."""
        if self.cache_path is None or self.kind != "hnsw":
            return
        payload = self.faiss.serialize_index(self.index, self.faiss.IO_FLAG_SKIP_STORAGE).tobytes()
        header = {**self._header(self.indexed), "sha256": hashlib.sha256(payload).hexdigest()}
        tmp = self.cache_path.with_name(f".{self.cache_path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(json.dumps(header).encode() + b"\n" + payload)
            os.replace(tmp, self.cache_path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            log.warning("%s: could not save the HNSW index (%s); the next opening rebuilds it", self.cache_path, e)

    def _load(self):
        """The saved HNSW graph when it is this index's (see the module docstring), else None."""
        path = self.cache_path
        if path is None or not path.is_file():
            return None
        why = None
        try:
            with open(path, "rb") as f:
                header = json.loads(f.readline(4096))
                payload = f.read()
            count = int(header.get("count", -1))
            expected = self._header(count) if 0 < count <= self.size else None
            if expected is None or {k: header.get(k) for k in expected} != expected:
                why = "it belongs to another state of this memory (or another memory)"
            elif hashlib.sha256(payload).hexdigest() != header.get("sha256"):
                why = "it is damaged"
            else:
                index = self.faiss.deserialize_index(np.frombuffer(payload, np.uint8), self.faiss.IO_FLAG_SKIP_STORAGE)
                if not isinstance(index, self.faiss.IndexHNSWFlat) or index.ntotal != count or index.d != self.dim:
                    why = "it is not this memory's HNSW index"
                else:
                    storage = self.faiss.IndexFlatIP(self.dim)  # the memory's own vectors
                    storage.add(self.vectors[:count])
                    index.storage, index.own_fields = storage, False
                    self._storage = storage  # kept alive as long as the graph uses it
                    index.hnsw.efSearch = self.config.hnsw_ef_search
                    return index
        except (OSError, ValueError, RuntimeError, UnicodeDecodeError, AttributeError) as e:
            why = f"it cannot be read ({type(e).__name__})"
        log.warning("%s: saved HNSW index not used (%s); rebuilding it", path, why)
        return None

    def visible(self, before_clip: int | None = None, exclude_clips: frozenset[int] = frozenset()
                ) -> np.ndarray | None:
        """Boolean mask over positions of clips < ``before_clip`` and not excluded (None: all)."""
        if before_clip is None and not exclude_clips:
            return None
        clips = self.clips[: self.size]
        mask = np.ones(self.size, bool)
        if before_clip is not None:
            mask &= clips < before_clip
        if exclude_clips:
            mask &= ~np.isin(clips, np.fromiter(exclude_clips, np.int64))
        return mask

    def clip_at(self, position: int) -> int:
        return int(self.clips[position])

    def node_at(self, position: int) -> int:
        return int(self.node_ids[position])

    def positions(self, node_ids: list[int] | np.ndarray) -> np.ndarray:
        """Index positions of text node ids (which must be in the index)."""
        return np.searchsorted(self.node_ids[: self.size], np.asarray(node_ids, np.int64))

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, positions) for one query (dim,), best first.

        ``allowed`` is a boolean mask over positions; only those positions are returned.
        """
        q = np.ascontiguousarray(query, np.float32).reshape(1, self.dim)
        k = min(k, self.size)
        if k <= 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        self._maintain()
        if self.kind == "flat":
            return self._exact(q[0], k, allowed)
        if self.kind == "hnsw" and self.indexed < self.size:
            s1, p1 = self._graph_search(q, k, allowed)
            s2, p2 = self._exact(q[0], k, allowed, start=self.indexed)
            s, p = np.concatenate([s1, s2]), np.concatenate([p1, p2])
            top = np.argsort(-s, kind="stable")[:k]
            return s[top], p[top]
        return self._graph_search(q, k, allowed)

    def _graph_search(self, q: np.ndarray, k: int, allowed: np.ndarray | None):
        k = min(k, self.indexed if self.kind == "hnsw" else self.size)
        if k <= 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        params = None
        if allowed is not None:
            if self.on_gpu:  # GPU flat indexes take no selector: score the allowed rows exactly
                return self.score_subset(q[0], np.flatnonzero(allowed[: self.size]), k)
            n = self.indexed if self.kind == "hnsw" else self.size
            bits = np.packbits(allowed[:n], bitorder="little")
            sel = self.faiss.IDSelectorBitmap(n, self.faiss.swig_ptr(bits))
            if self.kind == "hnsw":
                params = self.faiss.SearchParametersHNSW(sel=sel, efSearch=max(self.config.hnsw_ef_search, k))
            else:
                params = self.faiss.SearchParameters(sel=sel)
            params._bits = bits  # keep the buffer alive for the call
        elif self.kind == "hnsw":
            params = self.faiss.SearchParametersHNSW(efSearch=max(self.config.hnsw_ef_search, k))
        scores, pos = self.index.search(q, k, params=params)
        keep = pos[0] >= 0
        return scores[0][keep], pos[0][keep]

    def _exact(self, q: np.ndarray, k: int, allowed: np.ndarray | None, start: int = 0):
        """Exact top ``k`` over positions [start, size)."""
        scores = self.vectors[start: self.size] @ q
        if allowed is not None:
            scores[~allowed[start: self.size]] = -np.inf
        k = min(k, len(scores))
        if k <= 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[np.isfinite(scores[top])]
        return scores[top], top + start

    def score_subset(self, query: np.ndarray, positions: np.ndarray, k: int
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top ``k`` over the given positions (for small subsets)."""
        if len(positions) == 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        scores = self.vectors[positions] @ np.asarray(query, np.float32)
        top = np.argsort(-scores, kind="stable")[:k]
        return scores[top], positions[top]
