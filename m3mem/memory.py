"""A memory opened once: graph + SQLite store + vector index, written one clip at a time.

    with Memory.open("video.m3mem", embedder, create=True) as mem:
        with mem.clip(0, 0.0, 30.0) as clip:
            face = clip.add_entity("face", face_embeddings, [jpeg_bytes])
            clip.add_text("episodic", f"<face_{face}> waves at the camera.")
        hits = mem.retriever().search("Who waved?")
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np

from m3mem.errors import EmbedderMismatchError, MemoryBusyError, MemoryFileError, StorageError
from m3mem.graph import GraphConfig, MemoryGraph, TextResult
from m3mem.index import IndexConfig, TextIndex
from m3mem.retrieval import Retriever, SearchOptions
from m3mem.store import Store, StoredTexts
from models.base import TextEmbedder

log = logging.getLogger(__name__)


class Memory:
    """One video's memory. A writer holds the whole graph in RAM and commits every clip as one
    database transaction; a reader (``readonly``) opens at once whatever the memory's length and
    reads memories, edges and vectors from the file when first asked for them."""

    def __init__(self, store: Store, graph: MemoryGraph, embedder: TextEmbedder | None,
                 index_config: IndexConfig | None = None):
        self.store = store
        self.graph = graph
        self.embedder = embedder
        self.index_config = index_config
        self.index: TextIndex | None = None
        self._next_id = int(store.get_meta("next_id") or 0)  # as committed: the concurrent-writer check
        self._index_graph()

    @classmethod
    def open(cls, path: str | Path, embedder: TextEmbedder | None = None, create: bool = False,
             config: GraphConfig | None = None, index_config: IndexConfig | None = None,
             readonly: bool = False) -> "Memory":
        """Open (or with ``create`` make) the memory at ``path``. A writable memory holds the
        memory's writer lock until it is closed; ``readonly`` never creates or changes anything.

        Raises MemoryFileError for a missing, foreign, too-new or damaged file, MemoryBusyError
        when another process is writing it, and EmbedderMismatchError when ``embedder`` produces
        embeddings of another dimension than the memory holds.
        """
        store = Store.open(path, create=create, readonly=readonly)
        try:
            graph = store.view(config) if readonly else store.load(config)
            text_dim = graph.dims.get("text")
            if embedder is not None and text_dim is not None and embedder.dim != text_dim:
                raise EmbedderMismatchError(f"{path}: memory holds {text_dim}-d text embeddings, "
                                 f"the text embedder makes {embedder.dim}-d ones")
            return cls(store, graph, embedder, index_config)
        except BaseException:
            store.close()
            raise

    @property
    def index_path(self) -> Path | None:
        """Where the vector index's HNSW graph is saved: ``MEMORY.index`` beside the memory."""
        path = getattr(self.store, "path", None)
        return Path(f"{path}.index") if path else None

    def _index_graph(self) -> None:
        dim = self.graph.dims.get("text")
        if dim is None:
            return
        self.index = TextIndex(dim, self.index_config, self.index_path)
        if isinstance(self.graph.texts, StoredTexts):  # a reader: vectors are read when needed
            store = self.store

            def rows_after(after: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                rows = store.query("SELECT id, clip, embedding FROM texts WHERE id > ? AND id < ? ORDER BY id",
                                   (after, self.graph.next_id))
                return (np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int64),
                        store.matrix([r[2] for r in rows], dim))

            def first(count: int, last: int) -> bool:  # the memory's first count text nodes end at last
                return store.query("SELECT count(*) FROM texts INDEXED BY texts_by_clip WHERE id <= ?",
                                   (last,))[0][0] == count and bool(store.query("SELECT 1 FROM texts WHERE id = ?", (last,)))

            self.index.open_stored(len(self.graph.texts), first, rows_after,
                                   lambda ids: store.text_vectors(ids, dim))
            return
        ids = sorted(self.graph.texts)
        if ids:
            nodes = [self.graph.texts[i] for i in ids]
            loaded, self.store.loaded_vectors = self.store.loaded_vectors, None
            if loaded is not None and np.array_equal(loaded[0], ids):
                vectors = loaded[1]  # the matrix the nodes' embeddings are rows of, as loaded
            else:
                vectors = np.stack([n.embedding for n in nodes])
            self.index.add(np.array(ids), np.array([n.clip for n in nodes]), vectors)

    # --------------------------------------------------------------- writing
    def completed_clips(self) -> set[int]:
        return set(self.graph.clips)

    def clip(self, clip: int, start: float, end: float) -> "ClipWriter":
        """Context manager writing one clip atomically; raises if the clip is already stored."""
        if self.store.readonly:
            raise ValueError(f"{self.store.path} was opened read-only")
        if clip in self.graph.clips:
            raise ValueError(f"clip {clip} is already in {self.store.path}")
        return ClipWriter(self, clip, start, end)

    def _commit(self, meta: dict[str, str] | None = None, clip: int | None = None) -> None:
        changes = self.graph.drain_changes()
        try:
            with self.store.transaction():
                stored = int(self.store.get_meta("next_id") or 0)
                if stored != self._next_id:  # ids are allocated from what this process loaded
                    raise MemoryBusyError(f"{self.store.path}: another process wrote this memory since it was "
                                          f"opened; nothing of clip {clip} was written")
                self.store.write(self.graph, changes)
                self.store.write_characters(self.graph)
                for key, value in (meta or {}).items():
                    self.store.set_meta(key, value)
        except sqlite3.OperationalError as e:  # disk full, read-only folder, I/O error
            done = max((c for c in self.graph.clips if c != clip), default=None)
            kept = f"clips up to {done} are kept" if done is not None else "no clip was committed yet"
            raise StorageError(f"{self.store.path}: could not write clip {clip} ({e}); {kept}") from e
        self._next_id = self.graph.next_id
        last = self.index.node_at(self.index.size - 1) if self.index and self.index.size else -1
        # text nodes are never rewritten: those above the last indexed id are the new ones
        new = sorted(n for n in changes.nodes if n in self.graph.texts and n > last)
        if new:
            if self.index is None:
                self.index = TextIndex(self.graph.dims["text"], self.index_config, self.index_path)
            nodes = [self.graph.texts[i] for i in new]
            self.index.add(np.array(new), np.array([n.clip for n in nodes]),
                           np.stack([n.embedding for n in nodes]))

    def _rollback(self) -> None:
        """Drop uncommitted in-RAM changes by reloading the committed state."""
        self.graph = self.store.load(self.graph.config)
        self._index_graph()

    # --------------------------------------------------------------- reading
    def retriever(self, options: SearchOptions | None = None, **fields) -> Retriever:
        """A retriever over this memory whose searches default to ``options`` (or to
        ``SearchOptions(**fields)``, e.g. ``retriever(top_k=3)``)."""
        return Retriever(self, options or SearchOptions(**fields))

    def lexical(self, query: str, limit: int, before_clip: int | None = None) -> list[tuple[int, float]] | None:
        """BM25 matches (text node id, score) from the memory's lexical index, best first; None
        when the memory has none (an older memory opened read-only)."""
        return self.store.lexical(query, limit, before_clip)

    def embed_query(self, text: str) -> np.ndarray:
        if self.embedder is None:
            raise RuntimeError("this memory was opened without a text embedder")
        return self.embedder.embed([text])[0]

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Memory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ClipWriter:
    """Adds one clip's entities and memories; commits on exit, or rolls back on error."""

    def __init__(self, memory: Memory, clip: int, start: float, end: float):
        self.memory, self.clip, self.start, self.end = memory, clip, start, end
        self.graph = memory.graph
        self._texts: list[tuple[str, str, np.ndarray | None]] = []
        self._facts: dict[int, list[tuple[int, str, str]]] = {}  # index in _texts -> facts it states
        self._meta: dict[str, str] = {}

    def __enter__(self) -> "ClipWriter":
        self.graph.add_clip(self.clip, self.start, self.end)
        return self

    def add_entity(self, kind: str, embeddings: np.ndarray, contents=()) -> int:
        """New face/voice node; returns its id (use it as ``<face_ID>`` / ``<voice_ID>``)."""
        return self.graph.add_entity(kind, embeddings, list(contents))

    def update_entity(self, node_id: int, embeddings: np.ndarray, contents=()) -> None:
        self.graph.update_entity(node_id, embeddings, list(contents))

    def add_text(self, kind: str, text: str, embedding: np.ndarray | None = None) -> None:
        """Queue a memory; texts without an embedding are embedded together at commit."""
        self._texts.append((kind, text, embedding))

    def add_fact(self, entity: int, key: str, value: str, text: str) -> None:
        """Record a fact about a face/voice node (e.g. ``key="name"``) with the sentence that says
        it; the sentence is stored as a semantic memory and the fact points at it."""
        self.graph.entity(entity)
        self._facts.setdefault(len(self._texts), []).append((entity, key, value))
        self._texts.append(("semantic", text, None))

    def set_meta(self, key: str, value: str) -> None:
        """Store ``key`` in the memory's meta table in this clip's transaction (e.g. state a
        memorizer carries across clips, which must resume exactly where the memory does)."""
        self._meta[key] = value

    def __exit__(self, exc_type, exc, tb) -> None:
        mem = self.memory
        if exc_type is None:
            try:
                self.results = self._flush()
                mem._commit(self._meta, self.clip)
                return
            except BaseException:
                mem._rollback()
                raise
        mem._rollback()

    def _flush(self) -> list[TextResult]:
        todo = [t for _, t, e in self._texts if e is None]
        if todo and self.memory.embedder is None:
            raise RuntimeError("memories without embeddings need a text embedder")
        embedded = iter(self.memory.embedder.embed(todo)) if todo else iter(())
        results = [self.graph.add_text(kind, text, self.clip, next(embedded) if e is None else e)
                   for kind, text, e in self._texts]
        for i, facts in self._facts.items():
            for entity, key, value in facts:
                self.graph.add_fact(entity, key, value, self.clip, results[i].node_id)
        return results


__all__ = ["ClipWriter", "Memory", "MemoryFileError"]
