"""SQLite storage of a memory graph: one file per memory, versioned schema, one transaction per clip.

No pickle: embeddings are raw little-endian float32 blobs, everything else is plain columns.
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import socket
import sqlite3
import re
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from m3mem.errors import MemoryBusyError, MemoryFileError
from m3mem.graph import Changes, EntityNode, Fact, GraphConfig, MemoryGraph, TextNode
from models.mentions import is_equivalence

FORMAT = "m3mem-memory"
SCHEMA_VERSION = 3  # 2: facts table; 3: texts_fts lexical index (older memories are read as they are and
#                      upgraded at their next write)

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE clips (
    clip INTEGER PRIMARY KEY, start REAL NOT NULL, end REAL NOT NULL);
CREATE TABLE entities (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, birth INTEGER NOT NULL,
    dim INTEGER NOT NULL, embeddings BLOB NOT NULL);
CREATE TABLE entity_contents (
    entity INTEGER NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (entity, idx));
CREATE TABLE texts (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, clip INTEGER NOT NULL, text TEXT NOT NULL,
    entities TEXT NOT NULL,  -- comma-separated entity ids mentioned when written
    embedding BLOB NOT NULL);  -- little-endian float32
CREATE INDEX texts_by_clip ON texts (clip);
CREATE TABLE edges (
    text INTEGER NOT NULL, entity INTEGER NOT NULL, weight REAL NOT NULL,
    PRIMARY KEY (text, entity)) WITHOUT ROWID;
CREATE TABLE characters (entity INTEGER PRIMARY KEY, character INTEGER NOT NULL);
"""
_FACTS = """CREATE TABLE IF NOT EXISTS facts (
    entity INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    clip INTEGER NOT NULL, text INTEGER NOT NULL)"""
# BM25 over memory texts; external content (the text lives once, in ``texts``), Porter stemming
_FTS = """CREATE VIRTUAL TABLE IF NOT EXISTS texts_fts USING fts5(
    text, content='texts', content_rowid='id', tokenize='porter unicode61')"""


EXPECTED_TABLES = ("meta", "clips", "entities", "entity_contents", "texts", "edges", "characters")
BUSY_TIMEOUT_S = 30.0  # how long a statement waits for another connection's lock
_WORDS = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOPWORDS = set("""a an the of to in on at for and or is are was were be been being it its this that these those
with by as from what who whom whose when where which why how do does did done doing has have had having i you he
she we they me him her us them my your his our their not no yes so if then than there here about into over
said say says just very can could would should will shall may might must""".split())


class Store:
    """One memory database. ``open`` checks it; ``load`` rebuilds the graph; ``write`` commits.

    Writers hold an exclusive lock on ``PATH.lock`` for as long as they are open (one writer per
    memory); readers open the database read-only and read one consistent snapshot."""

    def __init__(self, path: str | Path, conn: sqlite3.Connection, readonly: bool = False):
        self.path = Path(path)
        self.conn = conn
        self.readonly = readonly
        self._lock: WriterLock | None = None
        self._fts = False  # set by _check: the memory has its lexical index
        self._read_lock = threading.Lock()  # one connection, queried from evaluation threads
        self.loaded_vectors: tuple[np.ndarray, np.ndarray] | None = None  # (text ids, embeddings) of the last load

    @classmethod
    def open(cls, path: str | Path, create: bool = False, readonly: bool = False) -> "Store":
        """Open ``path``; with ``create`` a missing file becomes an empty memory. ``readonly``
        never creates or changes anything; otherwise the writer lock is taken (MemoryBusyError
        naming the other process when it is held)."""
        path = Path(path)
        exists = path.exists()
        if not exists and (readonly or not create):
            raise MemoryFileError(f"{path}: no such memory file")
        if exists and not path.is_file():
            raise MemoryFileError(f"{path}: is not a file")
        if readonly and path.stat().st_size == 0:
            wal = path.with_name(path.name + "-wal")
            hint = f" (its data is in {wal.name}, which must be copied with it)" if wal.exists() else ""
            raise MemoryFileError(f"{path}: memory file is empty{hint}")
        lock = None
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = WriterLock.acquire(path)
        try:
            if readonly:
                conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False, timeout=BUSY_TIMEOUT_S)
            else:
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
            conn.execute("PRAGMA trusted_schema=OFF")  # a foreign file's views/triggers call no functions
            store = cls(path, conn, readonly)
            store._lock = lock
            if not readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                store._create()
            store._check()
        except BaseException as e:
            if lock is not None:
                lock.release()
            if isinstance(e, sqlite3.DatabaseError):
                raise MemoryFileError(f"{path}: not a readable m3mem memory ({e})") from e
            raise
        return store

    def _create(self) -> None:
        """Make the schema if the file is empty; safe when several processes create at once
        (the check and the creation are one write transaction)."""
        with self.transaction():
            if self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                return
            for stmt in _SCHEMA.split(";") + [_FACTS, _FTS]:
                if stmt.strip():
                    self.conn.execute(stmt)
            self.conn.executemany("INSERT INTO meta VALUES (?, ?)",
                                  [("format", FORMAT), ("schema_version", str(SCHEMA_VERSION))])

    def _check(self) -> None:
        kinds = dict(self.conn.execute("SELECT name, type FROM sqlite_master"))
        if not kinds:
            raise MemoryFileError(f"{self.path}: holds no memory: an empty database (a memory copied without "
                                  f"its {self.path.name}-wal file loses what was not yet checkpointed)")
        if "meta" not in kinds:
            raise MemoryFileError(f"{self.path}: not an m3mem memory (no meta table)")
        meta = dict(self.conn.execute("SELECT key, value FROM meta"))
        if meta.get("format") != FORMAT:
            raise MemoryFileError(f"{self.path}: not an m3mem memory (format {meta.get('format')!r})")
        try:
            version = int(meta.get("schema_version", "0"))
        except ValueError:
            version = 0
        if version > SCHEMA_VERSION:
            raise MemoryFileError(
                f"{self.path}: schema version {version} is newer than this m3mem supports "
                f"({SCHEMA_VERSION}); upgrade m3mem")
        if version < 1:
            raise MemoryFileError(f"{self.path}: unknown schema version {version}")
        wrong = [t for t in EXPECTED_TABLES + (("facts",) if version >= 2 else ())
                 if kinds.get(t) != "table"]
        if wrong:  # missing, or a view posing as a table (a view could make reading never end)
            raise MemoryFileError(f"{self.path}: damaged memory: {', '.join(wrong)} missing or not plain tables")
        self._fts = version >= 3 and kinds.get("texts_fts") == "table"

    def transaction(self) -> "_Txn":
        return _Txn(self.conn)

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def completed_clips(self) -> set[int]:
        """Clip indices whose memories are committed (the resume point)."""
        return {r[0] for r in self.conn.execute("SELECT clip FROM clips")}

    # ------------------------------------------------------------------ load
    def load(self, config: GraphConfig | None = None) -> MemoryGraph:
        """Rebuild the graph exactly as it was committed, from one snapshot (a read transaction,
        so a writer committing meanwhile is either wholly seen or not at all)."""
        collecting = gc.isenabled()
        gc.disable()  # hundreds of thousands of new nodes, no cycles: collection passes only cost
        try:
            self.conn.execute("BEGIN")
            try:
                return self._load(config)
            finally:
                self.conn.execute("COMMIT")
        except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as e:
            raise MemoryFileError(f"{self.path}: memory file is damaged or truncated ({type(e).__name__}: {e})") from e
        finally:
            if collecting:
                gc.enable()

    def _load(self, config: GraphConfig | None) -> MemoryGraph:
        graph = self._load_small(config)
        rows = self.conn.execute("SELECT id, kind, clip, text, entities, embedding FROM texts ORDER BY id").fetchall()
        # one matrix for all text embeddings (each node holds a row of it; the index takes it whole)
        vectors = _matrix([r[5] for r in rows], graph.dims.get("text", 0))
        for (nid, kind, clip, text, ents, _), emb in zip(rows, vectors):
            start, end = graph.clips[clip]
            graph.restore_text(TextNode(nid, kind, text, clip, start, end, emb, _entity_ids(ents)))
        self.loaded_vectors = (np.array([r[0] for r in rows], np.int64), vectors)
        for text, entity, weight in self.conn.execute("SELECT text, entity, weight FROM edges"):
            graph.restore_edge(text, entity, weight)
        graph.drain_changes()
        return graph

    def _load_small(self, config: GraphConfig | None) -> MemoryGraph:
        """The graph with its clips, entities and facts (what stays small however long the video)."""
        dims = json.loads(self.get_meta("dims") or "{}")
        graph = MemoryGraph(config, dims)
        for clip, start, end in self.conn.execute("SELECT clip, start, end FROM clips ORDER BY clip"):
            graph.clips[clip] = (start, end)
            graph.clip_texts[clip] = []
        contents: dict[int, list[bytes | str]] = {}
        for entity, data in self.conn.execute(
                "SELECT entity, data FROM entity_contents ORDER BY entity, idx"):
            contents.setdefault(entity, []).append(data)
        for nid, kind, birth, dim, blob in self.conn.execute(
                "SELECT id, kind, birth, dim, embeddings FROM entities ORDER BY id"):
            emb = np.frombuffer(blob, "<f4").reshape(-1, dim).astype(np.float32)
            graph.restore_entity(EntityNode(nid, kind, birth, emb, contents.get(nid, [])))
        if self._has_table("facts"):
            for row in self.conn.execute("SELECT entity, key, value, clip, text FROM facts ORDER BY rowid"):
                graph.restore_fact(Fact(*row))
        last = self.conn.execute("SELECT max(id) FROM texts").fetchone()[0]
        graph.next_id = max(graph.next_id, int(self.get_meta("next_id") or 0), -1 if last is None else last + 1)
        return graph

    def view(self, config: GraphConfig | None = None) -> MemoryGraph:
        """The graph for reading, at once whatever the memory's length: clips, entities and facts
        are read now; text nodes, their embeddings and edges when first asked for (then kept).
        Text nodes are never rewritten, so what a view reads later is what was committed when it
        was made (rows written since are not seen), except the weight of an edge, read when asked."""
        try:
            with self._read_lock:
                self.conn.execute("BEGIN")
                try:
                    graph = self._load_small(config)
                    count = self.conn.execute("SELECT count(*) FROM texts").fetchone()[0]
                    bound = graph.next_id
                    equivalences = self._equivalences(bound)
                finally:
                    self.conn.execute("COMMIT")
        except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as e:
            raise MemoryFileError(f"{self.path}: memory file is damaged or truncated ({type(e).__name__}: {e})") from e
        texts = StoredTexts(self, graph.clips, bound, count, graph.dims.get("text", 0))
        graph.texts = texts
        graph.clip_texts = StoredClipTexts(self, graph.clips, bound)
        graph.adj = StoredEdges(self, graph.entities, texts, bound)
        graph._equivalences = equivalences
        graph.drain_changes()
        return graph

    def _equivalences(self, bound: int) -> set[int]:
        """Ids of the equivalence memories ("Equivalence: <face_1>, <voice_2>"): found through the
        lexical index when the memory has one, else by reading every semantic memory."""
        if self._fts:
            rows = self.conn.execute(
                "SELECT t.id, t.kind, t.text, t.entities FROM texts_fts JOIN texts t ON t.id = texts_fts.rowid "
                "WHERE texts_fts MATCH 'equivalence' AND t.id < ?", (bound,))
        else:
            rows = self.conn.execute("SELECT id, kind, text, entities FROM texts WHERE kind = 'semantic' AND id < ?",
                                     (bound,))
        return {nid for nid, kind, text, ents in rows if kind == "semantic" and ents and is_equivalence(text)}

    def text_rows(self, ids: list[int], columns: str = "id, kind, clip, text, entities, embedding") -> list[tuple]:
        """Rows (``columns``) of the given text node ids, in id order."""
        with self._read_lock:
            try:
                out: list[tuple] = []
                for i in range(0, len(ids), 500):
                    chunk = ids[i: i + 500]
                    out += self.conn.execute(
                        f"SELECT {columns} FROM texts WHERE id IN ({','.join('?' * len(chunk))}) ORDER BY id",
                        chunk).fetchall()
                return out
            except sqlite3.DatabaseError as e:
                raise MemoryFileError(f"{self.path}: memory file is damaged or truncated ({e})") from e

    def text_vectors(self, ids: np.ndarray, dim: int) -> np.ndarray:
        """Embeddings (n, dim) of text node ids, in the order given."""
        ids = [int(i) for i in ids]
        rows = dict(self.text_rows(sorted(set(ids)), "id, embedding"))
        missing = [i for i in ids if i not in rows]
        if missing:
            raise MemoryFileError(f"{self.path}: text memories {missing[:5]} are missing from the memory file")
        return self.matrix([rows[i] for i in ids], dim)

    def matrix(self, blobs: list[bytes], dim: int) -> np.ndarray:
        """Text embedding blobs -> one (n, dim) float32 matrix (MemoryFileError when one is damaged)."""
        if any(len(b) != 4 * dim for b in blobs):
            raise MemoryFileError(f"{self.path}: memory file is damaged: a text embedding is not {dim} float32 values")
        return _matrix(blobs, dim)

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._read_lock:
            try:
                return self.conn.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as e:
                raise MemoryFileError(f"{self.path}: memory file is damaged or truncated ({e})") from e

    def lexical(self, query: str, limit: int, before_clip: int | None = None) -> list[tuple[int, float]] | None:
        """(text node id, BM25 score, higher is better) of the memories matching any word of
        ``query``, best first; None when this memory has no lexical index (written before schema 3
        and opened read-only)."""
        if not self._fts:
            return None
        terms = [w for w in _WORDS.findall(query.lower()) if w not in _STOPWORDS and len(w) > 1]
        if not terms:
            return []
        match = " OR ".join(f'"{w}"' for w in dict.fromkeys(terms))
        sql = ("SELECT t.id, -bm25(texts_fts) FROM texts_fts JOIN texts t ON t.id = texts_fts.rowid "
               "WHERE texts_fts MATCH ?" + (" AND t.clip < ?" if before_clip is not None else "") +
               " ORDER BY bm25(texts_fts) LIMIT ?")
        args = (match, before_clip, limit) if before_clip is not None else (match, limit)
        with self._read_lock:
            try:
                return [(int(i), float(s)) for i, s in self.conn.execute(sql, args)]
            except sqlite3.DatabaseError as e:
                raise MemoryFileError(f"{self.path}: lexical index is damaged ({e})") from e

    def _has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                 (name,)).fetchone() is not None

    # ----------------------------------------------------------------- write
    def write(self, graph: MemoryGraph, changes: Changes) -> None:
        """Write what ``changes`` names from ``graph``; call inside ``transaction()``."""
        c = self.conn
        version = int(self.get_meta("schema_version") or 0)
        if version < SCHEMA_VERSION:  # upgrade: facts (2), lexical index of what is already there (3)
            c.execute(_FACTS)
            c.execute(_FTS)
            c.execute("INSERT INTO texts_fts(texts_fts) VALUES ('rebuild')")
            self.set_meta("schema_version", str(SCHEMA_VERSION))
            self._fts = True
        c.executemany("INSERT INTO facts VALUES (?, ?, ?, ?, ?)",
                      [(f.entity, f.key, f.value, f.clip, f.text) for f in changes.facts])
        new_texts = [(n, graph.texts[n].text) for n in sorted(changes.nodes) if n in graph.texts]
        c.executemany("INSERT INTO texts_fts(rowid, text) VALUES (?, ?)", new_texts)
        c.executemany("INSERT OR REPLACE INTO clips VALUES (?, ?, ?)",
                      [(k, *graph.clips[k]) for k in sorted(changes.clips)])
        for nid in sorted(changes.nodes):
            if nid in graph.entities:
                e = graph.entities[nid]
                c.execute("INSERT OR REPLACE INTO entities VALUES (?, ?, ?, ?, ?)",
                          (nid, e.kind, e.birth, e.embeddings.shape[1],
                           e.embeddings.astype("<f4").tobytes()))
                c.execute("DELETE FROM entity_contents WHERE entity = ?", (nid,))
                c.executemany("INSERT INTO entity_contents VALUES (?, ?, ?)",
                              [(nid, i, d) for i, d in enumerate(e.contents)])
        c.executemany(
            "INSERT OR REPLACE INTO texts VALUES (?, ?, ?, ?, ?, ?)",
            [(t.id, t.kind, t.clip, t.text, ",".join(map(str, t.entities)),
              t.embedding.astype("<f4").tobytes())
             for t in (graph.texts[n] for n in sorted(changes.nodes) if n in graph.texts)])
        upserts, deletes = [], []
        for text, entity in sorted(changes.edges):
            w = graph.adj[text].get(entity)
            (upserts if w is not None else deletes).append(
                (text, entity, w) if w is not None else (text, entity))
        c.executemany("INSERT OR REPLACE INTO edges VALUES (?, ?, ?)", upserts)
        c.executemany("DELETE FROM edges WHERE text = ? AND entity = ?", deletes)
        self.set_meta("dims", json.dumps(graph.dims, sort_keys=True))
        self.set_meta("next_id", str(graph.next_id))

    def write_characters(self, graph: MemoryGraph) -> None:
        """Replace the stored entity -> character table (derived; kept for outside readers)."""
        self.conn.execute("DELETE FROM characters")
        self.conn.executemany("INSERT INTO characters VALUES (?, ?)",
                              [(e, graph.character_of(e)) for e in sorted(graph.entities)])

    def close(self) -> None:
        self.conn.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _entity_ids(field: str) -> tuple[int, ...]:
    return tuple(map(int, field.split(","))) if field else ()


def _matrix(blobs: list[bytes], dim: int) -> np.ndarray:
    """Little-endian float32 blobs of one length -> one (n, dim) float32 matrix."""
    if len({len(b) for b in blobs}) > 1:
        raise ValueError("text embeddings of different lengths")
    return np.frombuffer(b"".join(blobs), "<f4").astype(np.float32).reshape(len(blobs), -1 if blobs else dim)


class StoredTexts(Mapping):
    """A reader's text nodes (id -> TextNode), read from the memory file when first asked for."""

    def __init__(self, store: Store, clips: dict[int, tuple[float, float]], bound: int, count: int, dim: int):
        self._store, self._clips, self._bound, self._count, self._dim = store, clips, bound, count, dim
        self._nodes: dict[int, TextNode] = {}

    def _make(self, rows: list[tuple]) -> list[TextNode]:
        new = [r for r in rows if r[0] not in self._nodes]
        vectors = self._store.matrix([r[5] for r in new], self._dim)
        for (nid, kind, clip, text, ents, _), emb in zip(new, vectors):
            if clip not in self._clips:
                raise MemoryFileError(f"{self._store.path}: memory file is damaged: memory {nid} is of clip {clip}, "
                                      f"which is not in it")
            start, end = self._clips[clip]
            self._nodes[nid] = TextNode(nid, kind, text, clip, start, end, emb, _entity_ids(ents))
        return [self._nodes[r[0]] for r in rows]

    def __getitem__(self, nid: int) -> TextNode:
        node = self._nodes.get(nid)
        if node is not None:
            return node
        if not isinstance(nid, (int, np.integer)) or not 0 <= nid < self._bound:
            raise KeyError(nid)
        got = self._make(self._store.text_rows([int(nid)]))
        if not got:
            raise KeyError(nid)
        return got[0]

    def many(self, ids: list[int]) -> list[TextNode]:
        """The nodes of ``ids`` (all must exist), read in one query."""
        missing = sorted({int(i) for i in ids if i not in self._nodes})
        if missing:
            self._make(self._store.text_rows(missing))
        return [self[i] for i in ids]

    def __iter__(self):
        return iter([r[0] for r in self._store.query("SELECT id FROM texts WHERE id < ? ORDER BY id", (self._bound,))])

    def __len__(self) -> int:
        return self._count

    def values(self):
        return (node for _, node in self.items())

    def items(self):
        after = -1
        while True:  # in chunks: the whole memory need not be in RAM twice
            rows = self._store.query("SELECT id, kind, clip, text, entities, embedding FROM texts "
                                     "WHERE id > ? AND id < ? ORDER BY id LIMIT 4096", (after, self._bound))
            if not rows:
                return
            yield from ((n.id, n) for n in self._make(rows))
            after = rows[-1][0]


class StoredClipTexts(Mapping):
    """A reader's clip -> text node ids (in id order), read when first asked for."""

    def __init__(self, store: Store, clips: dict[int, tuple[float, float]], bound: int):
        self._store, self._clips, self._bound = store, clips, bound
        self._ids: dict[int, list[int]] = {}

    def __getitem__(self, clip: int) -> list[int]:
        ids = self._ids.get(clip)
        if ids is None:
            if clip not in self._clips:
                raise KeyError(clip)
            ids = self._ids[clip] = [r[0] for r in self._store.query(
                "SELECT id FROM texts WHERE clip = ? AND id < ? ORDER BY id", (clip, self._bound))]
        return ids

    def __iter__(self):
        return iter(self._clips)

    def __len__(self) -> int:
        return len(self._clips)


class StoredEdges(Mapping):
    """A reader's adjacency (node -> {neighbour: weight}), read per node when first asked for.
    A text node's edges are one indexed lookup; an entity's are a scan of the edges table."""

    def __init__(self, store: Store, entities: dict[int, EntityNode], texts: StoredTexts, bound: int):
        self._store, self._entities, self._texts, self._bound = store, entities, texts, bound
        self._adj: dict[int, dict[int, float]] = {}

    def __getitem__(self, node: int) -> dict[int, float]:
        adj = self._adj.get(node)
        if adj is None:
            if node in self._entities:
                rows = self._store.query("SELECT text, weight FROM edges WHERE entity = ? AND text < ?",
                                         (node, self._bound))
            elif node in self._texts:
                rows = self._store.query("SELECT entity, weight FROM edges WHERE text = ?", (node,))
            else:
                raise KeyError(node)
            adj = self._adj[node] = dict(rows)
        return adj

    def __iter__(self):
        yield from self._entities
        yield from self._texts

    def __len__(self) -> int:
        return len(self._entities) + len(self._texts)


class _Txn:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` when the block raises."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
            self.conn.execute("ROLLBACK")


class WriterLock:
    """An exclusive ``flock`` on ``PATH.lock`` held while a memory is open for writing; the file
    names the holder. The OS releases it when the process dies, so a killed ingest never leaves a
    stale lock behind."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    @classmethod
    def acquire(cls, memory: Path) -> "WriterLock":
        path = memory.with_name(memory.name + ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 500, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise MemoryBusyError(f"{memory}: is being written by {holder}; one writer per memory: wait for it "
                                  f"to finish or write to another memory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')} "
                       f"({' '.join(sys.argv[:3])})").encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1
