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

The HNSW graph is saved beside the memory (``MEMORY.index``: faiss's 8-bit scalar codes of the
indexed vectors (384 bytes per memory at 384-d), faiss's serialisation of the graph without its
vectors (``IO_FLAG_SKIP_STORAGE``, about 140 bytes per memory), the node id and clip of every
position, and a JSON header as a trailer), written atomically by whichever process built it, so
the next opening does not rebuild it. A writer searches the graph over its own float32 vectors.
A reader (``open_stored``) reads no vector at opening: it maps the codes from the file (faiss's
``IO_FLAG_MMAP_IFC``), searches the graph over them and scores the hits again on the memory's own
vectors, read from the memory when first needed. The file is a cache, never trusted blindly: it is
used only when its header matches this index (format version, dimension, graph parameters,
vector count, last node id, a fingerprint of sampled vectors), its graph, ids and clips match the
header's sha256, its node ids are the memory's first ones and its codes are those of the
memory's vectors at the sampled positions (a damaged code elsewhere can cost a candidate, never
a wrong score); otherwise it is rebuilt (with a log line) and saved again. faiss parses it as
data; nothing in it is executed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class _OldVersion(Exception):
    pass


@dataclass(frozen=True)
class IndexConfig:
    hnsw_from: int = 60_000  # switch the CPU index from exact flat to HNSW at this many vectors
    hnsw_m: int = 16  # HNSW graph degree
    hnsw_ef_construction: int = 40  # HNSW build-time beam width
    hnsw_ef_search: int = 128  # HNSW search-time beam width
    delta_max: int = 8192  # vectors added since the last HNSW update, searched exactly until then
    filter_exact_share: float = 0.25  # a filter keeping at most this share of the vectors is searched exactly
    use_gpu: bool | None = None  # None: GPU when faiss has one, else CPU


def _gpu_count(faiss) -> int:
    try:
        return faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0
    except RuntimeError:
        return 0


class TextIndex:
    """Embeddings of text nodes with their node ids and clips, searchable under a filter."""

    FORMAT, VERSION = "m3mem-hnsw", 2  # 2: 8-bit codes, node ids and clips saved with the graph

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
        self._storage = None  # the vectors the HNSW graph searches over
        self._missing: np.ndarray | None = None  # positions whose vectors are not read yet (a reader)
        self._fetch: Callable[[np.ndarray], np.ndarray] | None = None  # node ids -> their vectors
        self._saved_tried = False
        self.approximate = False  # the graph searches 8-bit codes: its hits are scored again exactly
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
            if self.approximate:  # codes mapped from the file are read-only: take a copy to extend
                faiss = self.faiss
                self._storage = faiss.deserialize_index(faiss.serialize_index(self._storage))
                self.index.storage = self._storage
            self.index.add(self.vectors[self.indexed: self.size])
            self.indexed = self.size
            self._save()

    def _to_hnsw(self) -> None:
        faiss = self.faiss
        tried, self._saved_tried = self._saved_tried, True
        if not tried and self._load():
            return
        log.info("building HNSW index over %d text nodes", self.size)
        self._fill()
        index = faiss.IndexHNSWFlat(self.dim, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.config.hnsw_ef_construction
        index.hnsw.efSearch = self.config.hnsw_ef_search
        index.add(self.vectors[: self.size])
        self.index, self.kind, self.indexed = index, "hnsw", self.size
        self._save()

    def _header(self, count: int) -> dict:
        c = self.config
        sample = np.unique(np.linspace(0, count - 1, 65).astype(int)) if count else np.empty(0, np.int64)
        return {"format": self.FORMAT, "version": self.VERSION, "dim": self.dim, "m": c.hnsw_m,
                "ef_construction": c.hnsw_ef_construction, "count": count,
                "last_node": int(self.node_ids[count - 1]) if count else -1,
                "vectors": hashlib.sha256(np.ascontiguousarray(self.rows(sample)).tobytes()).hexdigest()}

    def _codes(self):
        """The indexed vectors as 8-bit scalar codes (what a reader searches the saved graph with)."""
        storage = self._storage
        if isinstance(storage, self.faiss.IndexScalarQuantizer) and storage.ntotal == self.indexed:
            return storage
        faiss = self.faiss
        codes = faiss.IndexScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        self._fill()
        vectors = self.vectors[: self.indexed]
        codes.train(vectors)
        codes.add(vectors)
        return codes

    def _save(self) -> None:
        """Write 8-bit codes of the indexed vectors, the HNSW graph and the node ids and clips of
        its positions beside the memory, then the header as a trailer (faiss reads the codes from
        the file's start, mapped), atomically; a folder that cannot be written only costs the next
        opening a rebuild."""
        if self.cache_path is None or self.kind != "hnsw":
            return
        faiss = self.faiss
        parts = [faiss.serialize_index(self._codes()).tobytes(),
                 faiss.serialize_index(self.index, faiss.IO_FLAG_SKIP_STORAGE).tobytes(),
                 self.node_ids[: self.indexed].astype("<i8").tobytes(), self.clips[: self.indexed].astype("<i8").tobytes()]
        digest = hashlib.sha256()
        for part in parts[1:]:
            digest.update(part)
        header = json.dumps({**self._header(self.indexed), "parts": [len(x) for x in parts],
                             "sha256": digest.hexdigest()}).encode()
        tmp = self.cache_path.with_name(f".{self.cache_path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                for part in parts:
                    f.write(part)
                f.write(header + len(header).to_bytes(8, "little"))
            os.replace(tmp, self.cache_path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            log.warning("%s: could not save the HNSW index (%s); the next opening rebuilds it", self.cache_path, e)

    def _read_saved(self, size: int, first: Callable[[int, int], bool]):
        """(header, graph, node ids, clips) from the saved file when its graph, ids and clips are
        whole and its node ids are this memory's first ones, else None with a log line (see the
        module docstring). ``first(count, last)``: the memory's first ``count`` text nodes end
        with node id ``last``. The file is mapped, not read: only what is checked is touched."""
        path = self.cache_path
        if path is None or not path.is_file():
            return None
        why = None
        try:
            with open(path, "rb") as f:
                data = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
            if bytes(data[:64]).startswith(b'{"format": "m3mem-hnsw"'):  # version 1: the header came first
                raise _OldVersion
            length = int.from_bytes(data[-8:], "little")
            if not 0 < length <= min(len(data) - 8, 1 << 16):
                raise ValueError("no header")
            header = json.loads(bytes(data[-8 - length: -8]))
            parts = [int(x) for x in header.get("parts", [])]
            count = int(header.get("count", -1))
            if (header.get("format"), header.get("version")) != (self.FORMAT, self.VERSION) or len(parts) != 4:
                why = "it was written by another version"
            elif sum(parts) != len(data) - 8 - length or min(parts) < 0:
                why = "it is damaged"
            elif hashlib.sha256(data[parts[0]: sum(parts)]).hexdigest() != header.get("sha256"):
                why = "it is damaged"
            elif not 0 < count <= size or parts[2] != parts[3] or parts[2] != 8 * count:
                why = "it belongs to another state of this memory (or another memory)"
            else:
                cut = np.cumsum([0, *parts])
                graph, ids, clips = (np.frombuffer(data[cut[i]: cut[i + 1]], np.uint8) for i in (1, 2, 3))
                ids, clips = ids.view("<i8").astype(np.int64), clips.view("<i8").astype(np.int64)
                if not first(count, int(ids[-1])):
                    why = "it belongs to another state of this memory (or another memory)"
                else:
                    return header, graph, ids, clips
        except _OldVersion:
            why = "it was written by another version"
        except (OSError, ValueError, RuntimeError, UnicodeDecodeError, AttributeError, TypeError) as e:
            why = f"it cannot be read ({type(e).__name__})"
        log.warning("%s: saved HNSW index not used (%s); rebuilding it", path, why)
        return None

    def _attach(self, header: dict, graph: np.ndarray, storage, count: int):
        """The saved graph over ``storage`` when its header is this index's first ``count``
        vectors (same parameters, same sampled vectors), else why not (the caller logs)."""
        faiss = self.faiss
        expected = self._header(count)
        if {k: header.get(k) for k in expected} != expected:
            return "it belongs to another state of this memory (or another memory)"
        index = faiss.deserialize_index(graph, faiss.IO_FLAG_SKIP_STORAGE)
        if not isinstance(index, faiss.IndexHNSWFlat) or index.ntotal != count or index.d != self.dim \
                or storage.ntotal != count or storage.d != self.dim:
            return "it is not this memory's HNSW index"
        index.storage, index.own_fields = storage, False
        self._storage = storage  # kept alive as long as the graph uses it
        index.hnsw.efSearch = self.config.hnsw_ef_search
        self.index, self.kind, self.indexed = index, "hnsw", count
        return None

    def _mapped_codes(self, count: int):
        """The saved 8-bit codes, mapped from the file, when they are codes of this index's
        vectors at the sampled positions (elsewhere a damaged code can only cost a candidate:
        every hit is scored again on the memory's own vectors), else why not."""
        faiss = self.faiss
        codes = faiss.read_index(str(self.cache_path), faiss.IO_FLAG_MMAP_IFC)
        if not isinstance(codes, faiss.IndexScalarQuantizer) or codes.ntotal != count or codes.d != self.dim:
            return None, "it is not this memory's HNSW index"
        sample = np.unique(np.linspace(0, count - 1, 65).astype(int))
        stored = np.stack([codes.reconstruct(int(i)) for i in sample])
        if not np.array_equal(stored, codes.sa_decode(codes.sa_encode(np.ascontiguousarray(self.rows(sample))))):
            return None, "its codes are not this memory's vectors"
        return codes, None

    def _load(self) -> bool:
        """Use the saved HNSW graph over this index's own vectors when it is this index's."""
        saved = self._read_saved(self.size, lambda count, last: int(self.node_ids[count - 1]) == last)
        if saved is None:
            return False
        header, graph, _, _ = saved
        storage = self.faiss.IndexFlatIP(self.dim)  # the memory's own vectors, exact
        count = int(header["count"])
        storage.add(self.vectors[:count])
        try:
            why = self._attach(header, graph, storage, count)
        except (RuntimeError, ValueError) as e:
            why = f"it cannot be read ({type(e).__name__})"
        if why is None:
            return True
        log.warning("%s: saved HNSW index not used (%s); rebuilding it", self.cache_path, why)
        return False

    def open_stored(self, size: int, first: Callable[[int, int], bool], rows_after: Callable[[int], tuple],
                    vectors_of: Callable[[np.ndarray], np.ndarray]) -> None:
        """Index a memory of ``size`` text nodes for reading, without reading all its vectors:
        with a saved graph that matches, only node ids and clips come from its file, the vectors
        newer than it from the memory, and vectors the search scores exactly are read when needed
        (``vectors_of(node ids)``). ``rows_after(node id)`` gives (ids, clips, vectors) of the
        memory's text nodes above that id; ``first`` is as in ``_read_saved``."""
        saved = None
        if not self.on_gpu and size >= self.config.hnsw_from:
            saved = self._read_saved(size, first)
            self._saved_tried = True  # not looked at again at the first search: rebuilt there if unused
        if saved is None:
            self.add(*rows_after(-1))
            return
        header, graph, ids, clips = saved
        count = len(ids)
        self.vectors = np.empty((size, self.dim), np.float32)  # pages are touched only when read
        self.node_ids, self.clips = np.empty(size, np.int64), np.empty(size, np.int64)
        self.node_ids[:count], self.clips[:count] = ids, clips
        self._fetch, self._missing = vectors_of, np.zeros(size, bool)
        self._missing[:count] = True
        self.size = count
        try:
            expected = self._header(count)  # this memory's (checked again by _attach, at no cost)
            why = None if {k: header.get(k) for k in expected} == expected else \
                "it belongs to another state of this memory (or another memory)"
            if why is None:
                storage, why = self._mapped_codes(count)
                why = why or self._attach(header, graph, storage, count)
        except (RuntimeError, ValueError) as e:
            why = f"it cannot be read ({type(e).__name__})"
        if why is not None:
            log.warning("%s: saved HNSW index not used (%s); rebuilding it", self.cache_path, why)
            self.kind, self.index, self.indexed = "flat", None, 0
            self._fill()
        self.approximate = why is None  # graph search over 8-bit codes: hits are scored again exactly
        self.add(*rows_after(int(ids[-1])))

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The vectors at ``positions`` (read from the memory first when not yet read)."""
        positions = np.asarray(positions, np.int64)
        missing = self._missing  # (evaluation threads search one index; a second read of a row is harmless)
        if missing is not None:
            need = np.unique(positions[missing[positions]])
            if len(need):
                self.vectors[need] = self._fetch(self.node_ids[need])
                missing[need] = False
        return self.vectors[positions]

    def _fill(self) -> None:
        """Read every vector not read yet (before exact search over all, or building a graph)."""
        if self._missing is not None:
            self.rows(np.flatnonzero(self._missing[: self.size]))
            self._missing = None

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
        if self.kind == "hnsw" and allowed is not None:
            kept = np.flatnonzero(allowed[: self.size])
            if len(kept) <= self.config.filter_exact_share * self.size:
                # a filter that keeps a small share (one person's memories, the first clips) leaves
                # the graph's search beam with none of them: faiss HNSW then finds few or none
                return self.score_subset(q[0], kept, k)
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
        if not self.approximate:
            scores, pos = self.index.search(q, k, params=params)
            keep = pos[0] >= 0
            scores, pos = scores[0][keep], pos[0][keep]
        else:
            _, pos = self.index.search(q, min(max(2 * k, k + 16), self.indexed), params=params)
            pos = pos[0][pos[0] >= 0]
            scores = self.rows(pos) @ q[0]
            top = np.argsort(-scores, kind="stable")[:k]
            scores, pos = scores[top], pos[top]
        if allowed is not None and len(pos) < k:  # the beam met too few of those kept: all of them, exactly
            kept = np.flatnonzero(allowed[: self.indexed])
            if len(kept) > len(pos):
                return self.score_subset(q[0], kept, k)
        return scores, pos

    def _exact(self, q: np.ndarray, k: int, allowed: np.ndarray | None, start: int = 0):
        """Exact top ``k`` over positions [start, size)."""
        if self._missing is not None and self._missing[start: self.size].any():
            self._fill()
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
        scores = self.rows(positions) @ np.asarray(query, np.float32)
        top = np.argsort(-scores, kind="stable")[:k]
        return scores[top], positions[top]
