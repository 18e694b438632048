"""The identity scorer (bench/identity.py) on a memory whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from bench.identity import node_seconds, score_equivalence, score_kind
from m3mem.memory import Memory
from tests.conftest import HashEmbedder, unit

# three 10 s parts: A, B, A again (scored, one face and one voice each)
MANIFEST = [{"faces": [p], "voices": [p], "scored": True, "start": s, "end": s + 10.0}
            for p, s in (("A", 0.0), ("B", 10.0), ("A", 20.0))]


def _memory(tmp_path, merge_b_into_a: bool):
    rng = np.random.default_rng(0)
    mem = Memory.open(tmp_path / "m.m3mem", HashEmbedder(), create=True)
    with mem.clip(0, 0.0, 30.0) as w:
        fa, va = w.add_entity("face", unit(rng, 8)), w.add_entity("voice", unit(rng, 8))
        fb = fa if merge_b_into_a else w.add_entity("face", unit(rng, 8))
        w.add_text("episodic", f"<face_{fa}> is on screen at 00:00-00:09, 00:20-00:29.")
        w.add_text("episodic", f"<face_{fb}> is on screen at 00:10-00:19.")
        w.add_text("episodic", f'<voice_{va}> says at 00:01-00:08: "hello"')
        w.add_text("semantic", f"Equivalence: <face_{fa}>, <voice_{va}>")
    return mem


def test_two_people_kept_apart_score_perfectly(tmp_path):
    with _memory(tmp_path, merge_b_into_a=False) as mem:
        secs = node_seconds(mem.graph)
        face = score_kind(mem.graph, MANIFEST, "face", secs)
        voice = score_kind(mem.graph, MANIFEST, "voice", secs)
        assert (face["coverage"], face["purity"], face["pair_precision"], face["pair_recall"]) == (1.0, 1.0, 1.0, 1.0)
        assert face["nodes_per_person"] == 1.0
        assert voice["coverage"] == 0.5 and voice["missed"] == ["B"]  # B's voice has no node
        eq = score_equivalence(mem.graph, face, voice)
        assert (eq["precision"], eq["recall"]) == (1.0, 1.0)


def test_two_people_in_one_node_lower_purity_and_precision(tmp_path):
    with _memory(tmp_path, merge_b_into_a=True) as mem:
        face = score_kind(mem.graph, MANIFEST, "face", node_seconds(mem.graph))
        assert face["coverage"] == 0.5 and face["missed"] == ["B"]
        assert face["purity"] < 0.75
        assert face["pair_precision"] == 1 / 3 and face["pair_recall"] == 1.0  # A-A right, A-B twice wrong


@pytest.mark.parametrize("part", ["long_qa.json", "long_qa_test.json", "long_qa_test2.json"])
def test_the_long_qa_set_is_m3bench_format_with_answer_clips(part):
    import json

    from bench.long_qa import HERE, QA, kind
    from m3mem.evaluate import TYPES, load_annotations

    path = HERE / part
    questions = load_annotations(path)
    raw = {q["question_id"]: q for q in next(iter(json.loads(path.read_text()).values()))["qa_list"]}
    assert len(questions) >= {QA.name: 40, "long_qa_test.json": 20}.get(part, 12) and len(raw) == len(questions)
    for other in {QA.name, "long_qa_test.json", "long_qa_test2.json"} - {part}:  # each part's questions are its own
        seen = next(iter(json.loads((HERE / other).read_text()).values()))["qa_list"]
        assert not {q["question_id"] for q in seen} & set(raw) and not {q["question"] for q in seen} & {
            q["question"] for q in raw.values()}
    for q in questions:
        item = raw[q.question_id]
        assert any(t in TYPES for t in q.types) and kind(item) != "other"
        if "unanswerable" in q.types:
            assert q.answer == "not known"
        else:
            assert item["clips"] and all(isinstance(c, int) for c in item["clips"])
            if q.before_clip is not None:
                assert max(item["clips"]) <= q.before_clip  # the answer lies in what may be seen
