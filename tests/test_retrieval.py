import numpy as np
import pytest

from m3mem.index import IndexConfig
from m3mem.memory import Memory
from m3mem.retrieval import SearchOptions

from conftest import unit

DIM = 64


def _memory(tmp_path, clips: int = 20, index_config: IndexConfig | None = None, seed: int = 0):
    """Memory with a face per clip parity and one planted 'needle' node per clip.

    Clip c holds random memories plus one whose embedding is e_c (orthonormal directions),
    so a query along e_c must find clip c.
    """
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((DIM, clips)))[0].T.astype(np.float32)  # orthonormal
    mem = Memory.open(tmp_path / "m.m3mem", None, create=True, index_config=index_config)
    with mem.clip(0, 0, 30) as w:
        faces = [w.add_entity("face", rng.standard_normal((1, 8))) for _ in range(2)]
        w.add_text("episodic", f"<face_{faces[0]}> opens the door", basis[0])
    for c in range(1, clips):
        with mem.clip(c, c * 30.0, c * 30.0 + 30.0) as w:
            f = faces[c % 2]
            for _ in range(4):
                w.add_text("episodic", f"<face_{f}> noise {c}", unit(rng, DIM) * 0.1 + unit(rng, DIM))
            w.add_text("episodic", f"<face_{f}> needle {c}", basis[c])
    return mem, basis, faces


def test_clip_search_finds_planted_clip_in_time_order(tmp_path):
    mem, basis, _ = _memory(tmp_path)
    r = mem.retriever().clip_search("q", SearchOptions(top_k=3), embedding=basis[7] + 0.8 * basis[12])
    clips = [h.clip for h in r.clips]
    assert 7 in clips and 12 in clips and clips == sorted(clips)
    hit = next(h for h in r.clips if h.clip == 7)
    assert (hit.start, hit.end) == (210.0, 240.0)
    assert "<character_1> needle 7" in hit.memories  # translated
    assert r.as_dict()["CLIP_7"] == hit.memories


@pytest.mark.parametrize("mode", ["max", "mean", "sum"])
def test_modes_rank_the_planted_clip_first(tmp_path, mode):
    mem, basis, _ = _memory(tmp_path)
    r = mem.retriever().clip_search("q", SearchOptions(top_k=1, mode=mode), embedding=basis[5])
    assert [h.clip for h in r.clips] == [5]
    g, idx = mem.graph, mem.index
    sims = np.array([idx.vectors[idx.positions([n])[0]] @ basis[5] for n in g.clip_texts[5]])
    expected = {"max": sims.max(), "mean": sims.mean(), "sum": sims.sum()}[mode]
    assert r.clips[0].score == pytest.approx(expected, rel=1e-5)


def test_threshold_and_exclude_and_before_clip(tmp_path):
    mem, basis, _ = _memory(tmp_path)
    ret = mem.retriever()
    assert ret.clip_search("q", SearchOptions(threshold=1.1), embedding=basis[5]).clips == []
    r = ret.clip_search("q", SearchOptions(top_k=2, exclude_clips=frozenset({5})), embedding=basis[5])
    assert 5 not in [h.clip for h in r.clips]
    r = ret.clip_search("q", SearchOptions(top_k=5, before_clip=6), embedding=basis[15])
    assert r.clips and all(h.clip < 6 for h in r.clips)
    r = ret.memory_search("q", SearchOptions(top_k=10, before_clip=3), embedding=basis[15])
    assert r.memories and all(m.clip < 3 for m in r.memories)


def test_entity_restricted_search(tmp_path):
    mem, basis, faces = _memory(tmp_path)
    ret = mem.retriever()
    # clip 7 (odd) belongs to face 1; restricting to face 0 must not return it
    r = ret.clip_search(f"what does <face_{faces[0]}> do", SearchOptions(top_k=3), embedding=basis[7])
    assert r.clips and all(h.clip % 2 == 0 for h in r.clips)
    # character ids in queries resolve to their faces
    ch = mem.graph.character_of(faces[1])
    r = ret.clip_search(f"<character_{ch}>", SearchOptions(top_k=1), embedding=basis[7])
    assert [h.clip for h in r.clips] == [7]


def test_routes(tmp_path):
    mem, basis, _ = _memory(tmp_path)
    ret = mem.retriever()
    r = ret.search("What happens in CLIP_3 and CLIP_4?", SearchOptions(before_clip=4))
    assert r.route == "clip_refs" and [h.clip for h in r.clips] == [3]
    r = ret.search("What is the character id of the man?", SearchOptions(top_k=3), embedding=basis[9])
    assert r.route == "memories" and len(r.memories) == 3 and r.memories[0].clip == 9
    r = ret.search("What is the name of <character_0>?", embedding=basis[9])
    assert r.route == "memories"
    assert ret.search("where is the needle", embedding=basis[2]).route == "clips"


def test_hnsw_index_agrees_with_exact(tmp_path):
    exact, basis, _ = _memory(tmp_path / "a", clips=60)
    approx, _, _ = _memory(tmp_path / "b", clips=60, index_config=IndexConfig(hnsw_from=50))
    for c in (3, 17, 42, 59):
        for opts in (SearchOptions(top_k=1), SearchOptions(top_k=1, before_clip=c + 1),
                     SearchOptions(top_k=1, exclude_clips=frozenset({c - 1}))):
            a = exact.retriever().clip_search("q", opts, embedding=basis[c])
            b = approx.retriever().clip_search("q", opts, embedding=basis[c])
            assert [h.clip for h in a.clips] == [h.clip for h in b.clips] == [c]
    assert exact.index.kind == "flat" and approx.index.kind == "hnsw"  # built at the first search


def test_incremental_index_matches_reopened(tmp_path):
    mem, basis, _ = _memory(tmp_path, clips=10)
    before = mem.retriever().clip_search("q", SearchOptions(top_k=3), embedding=basis[4])
    mem.close()
    with Memory.open(tmp_path / "m.m3mem") as again:
        after = again.retriever().clip_search("q", SearchOptions(top_k=3), embedding=basis[4])
    assert [(h.clip, round(h.score, 5)) for h in before.clips] == [(h.clip, round(h.score, 5)) for h in after.clips]


def test_query_embedding_of_wrong_dimension(tmp_path):
    mem, _, _ = _memory(tmp_path, clips=2)
    with pytest.raises(ValueError, match="this memory uses"):
        mem.retriever().clip_search("q", embedding=np.ones(DIM + 1))


def test_empty_memory_returns_nothing(tmp_path, embedder):
    with Memory.open(tmp_path / "e.m3mem", embedder, create=True) as mem:
        assert mem.retriever().search("anything").clips == []


def test_hnsw_delta_segment_is_searched_and_folded(tmp_path):
    mem, basis, faces = _memory(tmp_path, clips=40, index_config=IndexConfig(hnsw_from=50, delta_max=30))
    ret = mem.retriever()
    assert ret.clip_search("q", SearchOptions(top_k=1), embedding=basis[3]).clips[0].clip == 3
    assert mem.index.kind == "hnsw" and mem.index.indexed == mem.index.size
    rng = np.random.default_rng(5)
    extra = np.linalg.qr(rng.standard_normal((DIM, 8)))[0].T.astype(np.float32)
    for i in range(8):  # 8 new nodes: below delta_max, so searched exactly from the delta
        with mem.clip(40 + i, 1200.0 + 30 * i, 1230.0 + 30 * i) as w:
            w.add_text("episodic", f"<face_{faces[0]}> new {i}", extra[i])
    assert mem.index.indexed < mem.index.size
    assert ret.clip_search("q", SearchOptions(top_k=1), embedding=extra[6]).clips[0].clip == 46
    for i in range(8, 40):  # past delta_max: the next search folds the delta into the graph
        with mem.clip(40 + i, 1200.0 + 30 * i, 1230.0 + 30 * i) as w:
            w.add_text("episodic", f"<face_{faces[0]}> more {i}", unit(rng, DIM))
    assert ret.clip_search("q", SearchOptions(top_k=1), embedding=extra[2]).clips[0].clip == 42
    assert mem.index.indexed == mem.index.size


def _said(tmp_path, lines: list[str]):
    from tests.conftest import HashEmbedder

    rng = np.random.default_rng(0)
    mem = Memory.open(tmp_path / "said.m3mem", HashEmbedder(), create=True)
    for c, line in enumerate(lines):
        with mem.clip(c, 30.0 * c, 30.0 * c + 30) as w:
            v = w.add_entity("voice", unit(rng, 8))
            w.add_text("episodic", f'<voice_{v}> says: "{line}"')
    return mem


def test_hybrid_finds_a_rare_word_the_embedding_misses(tmp_path):
    lines = ["the weather is cold", "we walked to the old mill", "Beatman's diner is back down the road",
             "the train leaves at nine", "lunch is in the garden"]
    with _said(tmp_path, lines) as mem:
        wrong = mem.embedder.embed(["the train leaves at nine"])[0]  # a query embedding that misses
        ret = mem.retriever()
        dense = ret.clip_search("Beatman's", SearchOptions(top_k=1, ranker="dense"), embedding=wrong)
        lexical = ret.clip_search("Beatman's", SearchOptions(top_k=1, ranker="lexical"), embedding=wrong)
        fused = ret.clip_search("Beatman's", SearchOptions(top_k=2, ranker="hybrid"), embedding=wrong)
        assert dense.ranked == [3] and lexical.ranked == [2]
        assert set(fused.ranked) == {2, 3}  # both rankings contribute
        early = ret.clip_search("Beatman's", SearchOptions(top_k=5, before_clip=2, ranker="hybrid"), embedding=wrong)
        assert sorted(early.ranked) == [0, 1]  # before_clip holds for the lexical ranking too


def test_an_older_memory_is_searched_densely_then_indexed_at_its_next_write(tmp_path):
    import sqlite3

    from tests.conftest import HashEmbedder

    mem = _said(tmp_path, ["the password is swordfish", "lunch is at noon"])
    path = mem.store.path
    mem.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE texts_fts")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with Memory.open(path, HashEmbedder(), readonly=True) as old:
        assert old.lexical("swordfish", 5) is None  # no index: dense only, no error
        assert old.retriever().search("swordfish password").clips
    rng = np.random.default_rng(1)
    with Memory.open(path, HashEmbedder()) as mem:
        with mem.clip(2, 60.0, 90.0) as w:
            v = w.add_entity("voice", unit(rng, 8))
            w.add_text("episodic", f'<voice_{v}> says: "goodbye"')
        assert [mem.graph.texts[n].clip for n, _ in mem.lexical("swordfish", 5)] == [0]  # old text indexed
        assert [mem.graph.texts[n].clip for n, _ in mem.lexical("goodbye", 5)] == [2]


@pytest.mark.parametrize("share", [0.25, 0.0])  # searched exactly at once; through the graph, then exactly
def test_a_filter_keeping_few_memories_far_from_the_query_still_finds_them(share):
    """HNSW's filtered search only sees what its beam meets: with one person's memories (or the
    first clips) kept and the query close to others, faiss returns few or none. The index then
    scores the kept ones exactly, so a filter never hides what it keeps."""
    from m3mem.index import TextIndex

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2, 32)).astype(np.float32)
    vecs = centres[np.arange(4000) % 2] + 0.3 * rng.standard_normal((4000, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = TextIndex(32, IndexConfig(hnsw_from=100, hnsw_ef_search=16, filter_exact_share=share, use_gpu=False))
    index.add(np.arange(4000), np.arange(4000) // 20, vecs)
    allowed = np.zeros(4000, bool)
    allowed[1::2][:150] = True  # 150 memories of the second cluster
    q = centres[0] / np.linalg.norm(centres[0])  # close to the first cluster
    scores, pos = index.search(q, 5, allowed)
    kept = np.flatnonzero(allowed)
    best = kept[np.argsort(-(vecs[kept] @ q))[:5]]
    assert index.kind == "hnsw" and pos.tolist() == best.tolist()
    assert np.allclose(scores, vecs[best] @ q)
