"""The HNSW graph saved beside a memory: reused at the next opening, extended by what came later,
and rebuilt (never trusted) when damaged, foreign or unreadable."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from m3mem.index import IndexConfig
from m3mem.memory import Memory

SMALL = IndexConfig(hnsw_from=100, delta_max=10_000)


def write(path, clips: range, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with Memory.open(path, None, create=True) as mem:
        for c in clips:
            with mem.clip(c, 30.0 * c, 30.0 * c + 30) as w:
                for i in range(10):
                    v = rng.standard_normal(32).astype(np.float32)
                    w.add_text("episodic", f"clip {c} memory {i}", v / np.linalg.norm(v))


def search(path, query):
    with Memory.open(path, None, readonly=True, index_config=SMALL) as mem:
        scores, pos = mem.index.search(query, 5)
        return mem.index.kind, mem.index.indexed, [mem.index.node_at(p) for p in pos], scores


@pytest.fixture
def memory(tmp_path):
    path = tmp_path / "m.m3mem"
    write(path, range(30))  # 300 memories: past hnsw_from
    return path


def test_saved_graph_is_reused(memory, caplog):
    q = np.random.default_rng(9).standard_normal(32).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="m3mem.index"):
        first = search(memory, q)
    assert "building HNSW" in caplog.text and memory.with_name("m.m3mem.index").is_file()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="m3mem.index"):
        again = search(memory, q)
    assert caplog.text == ""  # loaded, not rebuilt
    assert again[:3] == first[:3] == ("hnsw", 300, first[2]) and np.allclose(again[3], first[3])


def test_memory_grown_since_uses_the_saved_prefix(memory, caplog):
    q = np.random.default_rng(9).standard_normal(32).astype(np.float32)
    search(memory, q)
    write(memory, range(30, 35), seed=1)  # 50 more memories after the graph was saved
    with caplog.at_level(logging.INFO, logger="m3mem.index"):
        kind, indexed, nodes, _ = search(memory, q)
    assert caplog.text == "" and (kind, indexed) == ("hnsw", 300)  # the 50 new ones are searched exactly
    with Memory.open(memory, None, readonly=True) as mem:
        exact = np.stack([n.embedding for n in mem.graph.texts.values()]) @ q
        ids = sorted(mem.graph.texts)
    assert nodes[0] == ids[int(np.argmax(exact))]


def _regions(b: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the codes, graph, node ids and clips in a saved index file."""
    n = int.from_bytes(b[-8:], "little")
    cut = np.cumsum([0, *json.loads(b[-8 - n: -8])["parts"]])
    return [(int(cut[i]), int(cut[i + 1])) for i in range(4)]


def _flip(b: bytes, at: int, n: int = 8) -> bytes:
    return b[:at] + bytes(x ^ 0xFF for x in b[at: at + n]) + b[at + n:]


@pytest.mark.parametrize("harm, why", [
    (lambda b: _flip(b, sum(_regions(b)[1]) // 2), "it is damaged"),  # the graph
    (lambda b: _flip(b, _regions(b)[3][1] - 8), "it is damaged"),  # the last clip
    (lambda b: _flip(b, _regions(b)[0][1] - 8), "codes are not this memory's"),  # the last vector's code
    (lambda b: b[:-100] + bytes(x ^ 0xFF for x in b[-100:]), "cannot be read"),  # the header
    (lambda b: b"garbage\n\x00\x01", "cannot be read"),
    (lambda b: b[:40], "cannot be read"),
])
def test_damaged_index_is_rebuilt(memory, caplog, harm, why):
    q = np.random.default_rng(9).standard_normal(32).astype(np.float32)
    expected = search(memory, q)
    index = memory.with_name("m.m3mem.index")
    index.write_bytes(harm(index.read_bytes()))
    with caplog.at_level(logging.INFO, logger="m3mem.index"):
        got = search(memory, q)
    assert why in caplog.text and "rebuilding" in caplog.text
    assert got[2] == expected[2]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="m3mem.index"):
        search(memory, q)  # saved again, whole
    assert caplog.text == ""


def test_a_damaged_code_between_the_checked_ones_never_changes_a_score(memory, caplog):
    """Codes are checked at sampled positions only (reading them all would cost what mapping
    saves); the others only propose candidates, every hit is scored on the memory's vectors."""
    q = np.random.default_rng(9).standard_normal(32).astype(np.float32)
    search(memory, q)
    index = memory.with_name("m.m3mem.index")
    b = index.read_bytes()
    end = _regions(b)[0][1]
    index.write_bytes(_flip(b, end - 32 * 298, 32))  # position 1 of 300 (32-d codes end the region)
    with Memory.open(memory, None, readonly=True, index_config=SMALL) as mem:
        with caplog.at_level(logging.INFO, logger="m3mem.index"):
            scores, pos = mem.index.search(mem.graph.texts[1].embedding, 3)
        assert caplog.text == "" and mem.index.approximate
        assert mem.index.node_at(pos[0]) == 1 and scores[0] == pytest.approx(1.0)
        exact = mem.index.rows(pos) @ mem.graph.texts[1].embedding
    assert np.allclose(scores, exact)


def test_foreign_index_is_rebuilt(memory, tmp_path, caplog):
    other = tmp_path / "other.m3mem"
    write(other, range(30), seed=5)  # same shape, other vectors
    q = np.random.default_rng(9).standard_normal(32).astype(np.float32)
    search(other, q)
    expected = search(memory, q)
    memory.with_name("m.m3mem.index").write_bytes(other.with_name("other.m3mem.index").read_bytes())
    with caplog.at_level(logging.INFO, logger="m3mem.index"):
        got = search(memory, q)
    assert "another state" in caplog.text and got[2] == expected[2]  # its vector fingerprint differs


def test_reader_reads_only_the_vectors_it_scores(tmp_path):
    """With the saved graph a reader searches 8-bit codes of the vectors and scores the hits
    again on the memory's own vectors, read from it when needed: not every vector is read, and
    the answer is the exact one."""
    path = tmp_path / "m.m3mem"
    write(path, range(100))  # 1000 memories
    q = np.random.default_rng(9).standard_normal(32).astype(np.float32)
    search(path, q)  # builds and saves the graph
    with Memory.open(path, None, readonly=True, index_config=SMALL) as mem:
        scores, pos = mem.index.search(q, 5)
        unread = int(mem.index._missing.sum())
        exact = np.stack([n.embedding for n in mem.graph.texts.values()]) @ q
        ids = np.array(sorted(mem.graph.texts))
        got = [mem.index.node_at(p) for p in pos]
    assert mem.index.approximate and unread > 600
    assert got == ids[np.argsort(-exact)[:5]].tolist() and np.allclose(scores, np.sort(exact)[::-1][:5], atol=1e-6)


def test_index_of_another_version_is_rebuilt(memory, caplog):
    q = np.random.default_rng(9).standard_normal(32).astype(np.float32)
    expected = search(memory, q)
    index = memory.with_name("m.m3mem.index")
    b = index.read_bytes()
    n = int.from_bytes(b[-8:], "little")
    header = json.loads(b[-8 - n: -8])
    header["version"] = 1
    trailer = json.dumps(header).encode()
    index.write_bytes(b[:-8 - n] + trailer + len(trailer).to_bytes(8, "little"))
    with caplog.at_level(logging.INFO, logger="m3mem.index"):
        got = search(memory, q)
    assert "another version" in caplog.text and "rebuilding" in caplog.text and got[2] == expected[2]
