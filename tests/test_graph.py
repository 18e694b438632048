import logging

import numpy as np
import pytest

from m3mem.graph import GraphConfig, MemoryGraph, keep_spread
from models.mentions import Mention, clip_references, is_equivalence, parse_mentions

from conftest import unit


def _graph(**cfg) -> MemoryGraph:
    g = MemoryGraph(GraphConfig(**cfg))
    g.add_clip(0, 0.0, 30.0)
    return g


def test_parse_mentions_and_clip_refs():
    text = "<face_3> talks to <voice_12>; later <face_3> and <character_7>."
    assert parse_mentions(text) == [Mention("face", 3), Mention("voice", 12), Mention("character", 7)]
    assert is_equivalence("Equivalence: <face_1>, <voice_2>")
    assert not is_equivalence("<face_1> mentions equivalence: x")
    assert clip_references("compare CLIP_3 with CLIP_10 and CLIP_3") == [3, 10]


def test_entity_embeddings_bounded_and_deterministic():
    rng = np.random.default_rng(0)
    g = _graph(max_face_embeddings=4, max_face_contents=2)
    vecs = np.stack([unit(rng, 8) for _ in range(10)])
    f = g.add_entity("face", vecs[:3], [b"a", b"b", b"c"])
    g.update_entity(f, vecs[3:], [b"d"])
    node = g.entity(f)
    assert node.embeddings.shape == (4, 8)
    # evenly spread over the 10 seen: first and last kept
    np.testing.assert_allclose(node.embeddings[0], vecs[0], rtol=1e-6)
    np.testing.assert_allclose(node.embeddings[-1], vecs[-1], rtol=1e-6)
    assert node.contents == [b"a", b"d"]
    assert list(keep_spread(10, 4)) == [0, 3, 6, 9]


def test_wrong_dimension_is_a_clear_error():
    g = _graph()
    g.add_entity("face", np.ones((1, 128)))
    with pytest.raises(ValueError, match="dimension 64, this memory uses 128"):
        g.add_entity("face", np.ones((1, 64)))
    g.add_text("episodic", "a", 0, np.ones(16))
    with pytest.raises(ValueError, match="dimension 8"):
        g.add_text("episodic", "b", 0, np.ones(8))


def test_mentions_link_text_to_entities_and_unknown_is_kept(caplog):
    g = _graph()
    f = g.add_entity("face", np.ones((1, 4)))
    v = g.add_entity("voice", np.ones((1, 4)))
    with caplog.at_level(logging.WARNING):
        r = g.add_text("episodic", f"<face_{f}> greets <voice_{v}> and <face_77>", 0, np.ones(4))
    assert r.inserted
    assert g.neighbours(r.node_id) == {f: 1.0, v: 1.0}
    assert g.neighbours(f) == {r.node_id: 1.0}
    assert "<face_77> names no entity" in caplog.text
    assert "<face_77>" in g.texts[r.node_id].text
    # a voice id used as a face is not a face
    r2 = g.add_text("episodic", f"<face_{v}> waves", 0, np.ones(4))
    assert g.neighbours(r2.node_id) == {}


def test_semantic_consolidation_reinforce_weaken_insert():
    g = _graph()
    f = g.add_entity("face", np.ones((1, 4)))
    e = np.array([1.0, 0, 0, 0])
    first = g.add_text("semantic", f"<face_{f}> likes tea", 0, e)
    again = g.add_text("semantic", f"<face_{f}> enjoys tea", 0, e + [0, 0.1, 0, 0])  # cos > .85
    assert not again.inserted and again.node_id == first.node_id
    assert g.neighbours(first.node_id)[f] == 2.0
    other = g.add_text("semantic", f"<face_{f}> hates tea", 0, -e)  # cos < 0: weaken, insert
    assert other.inserted and other.weakened == (first.node_id,)
    assert g.neighbours(first.node_id)[f] == 1.0
    g.add_text("semantic", f"<face_{f}> avoids tea", 0, -e)  # reinforces "hates", weakens "likes"
    assert f not in g.neighbours(first.node_id)  # weight reached 0: edge removed
    neutral = g.add_text("semantic", f"<face_{f}> is tall", 0, [0, 0, 1.0, 0])
    assert neutral.inserted and not neutral.weakened
    # same text about a different entity set is a separate memory
    f2 = g.add_entity("face", np.ones((1, 4)))
    assert g.add_text("semantic", f"<face_{f2}> likes tea", 0, e).inserted


def test_thresholds_are_configurable():
    g = _graph(reinforce_threshold=0.99)
    f = g.add_entity("face", np.ones((1, 4)))
    g.add_text("semantic", f"<face_{f}> likes tea", 0, [1.0, 0, 0, 0])
    assert g.add_text("semantic", f"<face_{f}> enjoys tea", 0, [1.0, 0.2, 0, 0]).inserted
    with pytest.raises(ValueError):
        GraphConfig(reinforce_threshold=0.1, contradict_threshold=0.5)


def test_equivalence_merges_and_ids_are_stable():
    g = _graph()
    emb = np.ones((1, 4))
    f0 = g.add_entity("face", emb)
    f1 = g.add_entity("face", emb)
    v0 = g.add_entity("voice", emb)
    assert [g.character_of(x) for x in (f0, f1, v0)] == [0, 1, 2]
    g.add_text("semantic", f"Equivalence: <face_{f1}>, <voice_{v0}>", 0, [1.0, 0, 0, 0])
    assert g.character_of(v0) == 1 and g.character_of(f1) == 1
    assert g.translate(f"<voice_{v0}> speaks to <face_{f0}>") == "<character_1> speaks to <character_0>"
    # growing the memory never renumbers existing characters
    f2 = g.add_entity("face", emb)
    assert g.character_of(f2) == 3
    assert [g.character_of(x) for x in (f0, f1, v0)] == [0, 1, 1]
    # the merged-away id still resolves to the whole character
    assert sorted(g.character_entities(2)) == [f1, v0]
    assert sorted(g.resolve_query("who is <character_1>")) == [f1, v0]


def test_voice_keeps_only_its_strongest_face():
    g = _graph()
    emb = np.ones((1, 4))
    fa, fb = g.add_entity("face", emb), g.add_entity("face", emb)
    v = g.add_entity("voice", emb)
    g.add_text("semantic", f"Equivalence: <face_{fa}>, <voice_{v}>", 0, [1.0, 0, 0, 0])
    assert g.character_of(v) == g.character_of(fa)
    for _ in range(2):  # seen twice with face b: its equivalence grows stronger
        g.add_text("semantic", f"Equivalence: <face_{fb}>, <voice_{v}>", 0, [0, 1.0, 0, 0])
    assert g.character_of(v) == g.character_of(fb) == 1
    assert g.character_of(fa) == 0  # face a is its own character again, with its old id
    assert sorted(g.characters()[1]) == [fb, v]


def test_neighbour_lookup_is_adjacency():
    g = _graph()
    f = g.add_entity("face", np.ones((1, 4)))
    ids = [g.add_text("episodic", f"<face_{f}> event {i}", 0, np.eye(4)[i % 4]).node_id for i in range(5)]
    assert g.texts_of_entities([f]) == ids
    assert set(g.neighbours(f)) == set(ids)


def test_drain_changes_reports_touched_rows():
    g = _graph()
    f = g.add_entity("face", np.ones((1, 4)))
    t = g.add_text("episodic", f"<face_{f}> waves", 0, np.ones(4)).node_id
    ch = g.drain_changes()
    assert ch.nodes == {f, t} and ch.edges == {(t, f)} and ch.clips == {0}
    assert not g.drain_changes()
