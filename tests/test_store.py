import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from m3mem.memory import Memory
from m3mem.store import SCHEMA_VERSION, MemoryFileError, Store

from conftest import HashEmbedder


def _snapshot(mem: Memory):
    g = mem.graph
    ents = {i: (e.kind, e.birth, e.embeddings.tobytes(), list(e.contents)) for i, e in g.entities.items()}
    texts = {i: (t.kind, t.text, t.clip, t.start, t.end, t.embedding.tobytes(), t.entities)
             for i, t in g.texts.items()}
    adj = {k: dict(v) for k, v in g.adj.items()}
    chars = {e: g.character_of(e) for e in g.entities}
    reading = ({c: list(g.clip_texts[c]) for c in g.clips}, {i: g.translated_text(i) for i in g.texts},
               sorted(i for i in g.texts if g.is_equivalence_node(i)), len(g.texts), list(g.texts))
    return ents, texts, adj, dict(g.clips), chars, g.next_id, reading


clip_ops = st.lists(
    st.tuples(
        st.integers(0, 2),  # new faces in this clip
        st.integers(0, 2),  # new voices
        st.lists(st.tuples(st.sampled_from(["episodic", "semantic", "equivalence"]),
                           st.integers(0, 5), st.integers(0, 5), st.sampled_from(["tea", "coffee", "cake"])),
                 max_size=6),
    ),
    min_size=1, max_size=5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=clip_ops, seed=st.integers(0, 2**16))
def test_random_graphs_round_trip(tmp_path_factory, ops, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path_factory.mktemp("rt") / "m.m3mem"
    emb = HashEmbedder(16)
    with Memory.open(path, emb, create=True) as mem:
        faces, voices = [], []
        for clip, (nf, nv, texts) in enumerate(ops):
            with mem.clip(clip, clip * 30.0, clip * 30.0 + 30.0) as w:
                faces += [w.add_entity("face", rng.standard_normal((2, 8)), [rng.bytes(5)]) for _ in range(nf)]
                voices += [w.add_entity("voice", rng.standard_normal((1, 6)), ["hi"]) for _ in range(nv)]
                for kind, a, b, word in texts:
                    fa = f"<face_{faces[a % len(faces)]}>" if faces else "someone"
                    vb = f"<voice_{voices[b % len(voices)]}>" if voices else "<voice_999>"
                    if kind == "equivalence":
                        w.add_text("semantic", f"Equivalence: {fa}, {vb}")
                    else:
                        w.add_text(kind, f"{fa} likes {word}")
        before = _snapshot(mem)
    with Memory.open(path, emb) as again:
        assert _snapshot(again) == before
        assert again.completed_clips() == set(range(len(ops)))
    with Memory.open(path, emb, readonly=True) as reader:  # reads texts and edges when asked
        assert _snapshot(reader) == before


def test_a_reader_sees_the_memory_as_it_was_when_opened(tmp_path):
    """A reader reads memories when asked for them, yet never what a writer committed after it
    opened: not in a clip's lines, a lookup, a lexical hit or the index."""
    path = tmp_path / "m.m3mem"
    emb = HashEmbedder(16)
    with Memory.open(path, emb, create=True) as mem:
        with mem.clip(0, 0.0, 30.0) as w:
            face = w.add_entity("face", np.ones((1, 4)))
            w.add_text("episodic", f"<face_{face}> pours the tea")
    reader = Memory.open(path, emb, readonly=True)
    with Memory.open(path, emb) as mem:
        with mem.clip(1, 30.0, 60.0) as w:
            w.add_text("episodic", f"<face_{face}> pours more tea")
        new = max(mem.graph.texts)
    g = reader.graph
    assert list(g.texts) == [1] and new not in g.texts and len(g.texts) == 1
    assert g.clip_texts[0] == [1] and 1 not in g.clip_texts and g.adj[face] == {1: 1.0}
    assert [c.clip for c in reader.retriever().search("who pours tea").clips] == [0]
    assert reader.index.size == 1
    reader.close()


def test_missing_path_is_clear(tmp_path):
    with pytest.raises(MemoryFileError, match="no such memory file"):
        Memory.open(tmp_path / "nope.m3mem")


def test_directory_is_not_a_memory(tmp_path):
    with pytest.raises(MemoryFileError, match="is not a file"):
        Store.open(tmp_path)


def test_non_memory_files_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a database\n" * 100)
    with pytest.raises(MemoryFileError, match="notes.txt"):
        Memory.open(text)
    other = tmp_path / "other.db"
    sqlite3.connect(other).executescript("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
    with pytest.raises(MemoryFileError, match="not an m3mem memory"):
        Memory.open(other)


def test_newer_schema_is_refused(tmp_path, embedder):
    path = tmp_path / "m.m3mem"
    Memory.open(path, embedder, create=True).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    with pytest.raises(MemoryFileError, match="newer than this m3mem supports"):
        Memory.open(path, embedder)


def _filled(path, embedder, clips=40):
    with Memory.open(path, embedder, create=True) as mem:
        for c in range(clips):
            with mem.clip(c, c * 30.0, c * 30.0 + 30) as w:
                f = w.add_entity("face", np.ones((1, 128)) + c, [b"x" * 2000])
                for i in range(10):
                    w.add_text("episodic", f"<face_{f}> does thing {i} in clip {c} " + "words " * 20)
    # fold the WAL into the main file so truncation hits real pages
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def test_truncated_memory_is_a_clear_error(tmp_path, embedder):
    path = tmp_path / "m.m3mem"
    _filled(path, embedder)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MemoryFileError, match="m.m3mem"):
        Memory.open(path, embedder)


def test_embedder_dimension_mismatch_is_clear(tmp_path, embedder):
    path = tmp_path / "m.m3mem"
    _filled(path, embedder, clips=1)
    with pytest.raises(ValueError, match="64-d text embeddings"):
        Memory.open(path, HashEmbedder(32))


def test_failed_clip_leaves_nothing_and_keeps_committed(tmp_path, embedder):
    path = tmp_path / "m.m3mem"
    with Memory.open(path, embedder, create=True) as mem:
        with mem.clip(0, 0, 30) as w:
            f = w.add_entity("face", np.ones((1, 4)))
            w.add_text("episodic", f"<face_{f}> sits")
        with pytest.raises(ValueError, match="dimension"):
            with mem.clip(1, 30, 60) as w:
                w.add_entity("face", np.ones((1, 4)))
                w.add_text("episodic", "stands", embedding=np.ones(3))  # wrong dimension
        assert mem.completed_clips() == {0}
        assert len(mem.graph.entities) == 1 and len(mem.graph.texts) == 1
        with mem.clip(1, 30, 60) as w:  # the clip can be redone
            w.add_text("episodic", f"<face_{f}> stands")
    with Memory.open(path, embedder) as mem:
        assert mem.completed_clips() == {0, 1}
        assert [t.text for t in mem.graph.texts.values()] == [f"<face_{f}> sits", f"<face_{f}> stands"]
    with pytest.raises(ValueError, match="already"):
        with Memory.open(path, embedder) as mem:
            mem.clip(0, 0, 30)


def test_process_killed_mid_clip_keeps_previous_clips(tmp_path, embedder):
    """A process killed inside a clip's transaction leaves the last committed clip intact."""
    path = tmp_path / "m.m3mem"
    _filled(path, embedder, clips=3)
    script = f"""
import os, sys
import numpy as np
sys.path.insert(0, {str(Path(__file__).parent)!r})
from conftest import HashEmbedder
from m3mem.memory import Memory
from m3mem.store import Store
real_write = Store.write
def dying_write(self, graph, changes):
    real_write(self, graph, changes)  # rows are written inside the open transaction...
    os._exit(9)  # ...and the process dies before COMMIT
Store.write = dying_write
mem = Memory.open({str(path)!r}, HashEmbedder())
with mem.clip(3, 90, 120) as w:
    w.add_entity("face", np.ones((1, 128)))
    w.add_text("episodic", "half written")
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[1])
    assert proc.returncode == 9
    with Memory.open(path, embedder) as mem:
        assert mem.completed_clips() == {0, 1, 2}
        assert all(t.text != "half written" for t in mem.graph.texts.values())
        with mem.clip(3, 90, 120) as w:  # resume at the next clip
            w.add_text("episodic", "written again")
        assert mem.completed_clips() == {0, 1, 2, 3}


def test_no_pickle_in_the_file(tmp_path, embedder):
    path = tmp_path / "m.m3mem"
    _filled(path, embedder, clips=2)
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"meta", "clips", "entities", "entity_contents", "texts", "edges", "characters", "facts",
                      "texts_fts", "texts_fts_data", "texts_fts_idx", "texts_fts_docsize", "texts_fts_config"}
    assert dict(conn.execute("SELECT entity, character FROM characters")) == {0: 0, 11: 1}


def test_loading_shares_one_embedding_matrix_and_leaves_garbage_collection_as_it_was(tmp_path):
    """Opening to write reads all text embeddings as one matrix (nodes hold its rows, the index
    takes it whole) with the cyclic collector paused; it is running again afterwards, also when
    the file turns out damaged, and stays off for a caller who had turned it off. A reader reads
    the same embeddings when asked and names the damage too."""
    import gc

    with Memory.open(tmp_path / "m.m3mem", HashEmbedder(), create=True) as mem:
        for c in range(3):
            with mem.clip(c, 30.0 * c, 30.0 * c + 30) as w:
                w.add_text("episodic", f"line {c} about the garden")
                w.add_text("episodic", f"line {c} about the kitchen")
        written = {i: n.embedding.copy() for i, n in mem.graph.texts.items()}
    with Memory.open(tmp_path / "m.m3mem", HashEmbedder()) as mem:
        assert gc.isenabled()
        rows = [mem.graph.texts[i].embedding for i in sorted(written)]
        assert all(np.array_equal(r, written[i]) for r, i in zip(rows, sorted(written)))
        assert len({id(r.base) for r in rows}) == 1  # one matrix
        assert mem.retriever().search("garden").clips
    with Memory.open(tmp_path / "m.m3mem", HashEmbedder(), readonly=True) as mem:
        assert all(np.array_equal(mem.graph.texts[i].embedding, written[i]) for i in written)
    conn = sqlite3.connect(tmp_path / "m.m3mem")
    conn.execute("UPDATE texts SET embedding = x'00000000' WHERE id = (SELECT min(id) FROM texts)")
    conn.commit()
    conn.close()
    for readonly in (True, False):
        with pytest.raises(MemoryFileError, match="damaged"):
            Memory.open(tmp_path / "m.m3mem", readonly=readonly)
    assert gc.isenabled()
    gc.disable()
    try:
        Memory.open(tmp_path / "m.m3mem.2", HashEmbedder(), create=True).close()
        Memory.open(tmp_path / "m.m3mem.2", readonly=True).close()
        assert not gc.isenabled()
    finally:
        gc.enable()
