"""Memorizers: the offline perception memorizer, reply parsing, and the VLM memorizer over a real
local HTTP server speaking the OpenAI protocol."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.chat import OpenAIChat
from models.memorizer import (ClipContext, Memories, MemorizerError, PerceptionMemorizer, drop_unknown,
                              parse_reply)
from models.vlm import OpenAIMemorizer
from preprocessing.types import ClipPerception, FaceCluster, Utterance, VoiceCluster
from tests.openai_server import ScriptedServer


def face(times: list[float]) -> FaceCluster:
    return FaceCluster(np.ones((1, 4), np.float32) / 2, times, np.zeros((len(times), 4)), [b"\xff\xd8jpeg"], 1.0)


def voice(spans: list[tuple[float, float]]) -> VoiceCluster:
    return VoiceCluster(np.ones((1, 4), np.float32) / 2, spans)


def clip(i: int, faces=(), voices=(), utterances=()) -> ClipPerception:
    return ClipPerception("v.mp4", i, 30.0 * i, 30.0 * i + 30, list(faces), list(voices), list(utterances))


def test_episodic_memories_quote_speech_with_times_and_who_is_on_screen():
    m = PerceptionMemorizer()
    p = clip(0, [face([1, 2, 3, 4]), face([3, 4])], [voice([(1.0, 4.0)])],
             [Utterance(1.0, 2.5, "Hello there.", 0), Utterance(2.5, 4.0, "Nice day.", 0),
              Utterance(5.0, 6.0, "Who?", -1)])
    out = m.memorize(ClipContext(p, [3, 7], [9], {"face_3", "face_7", "voice_9"}))
    assert "<face_3> is on screen at 00:01-00:04." in out.episodic
    assert "<face_3> and <face_7> are on screen together." in out.episodic
    assert '<voice_9> says at 00:01-00:04: "Hello there. Nice day."' in out.episodic
    assert any(t.startswith("An unidentified voice says") for t in out.episodic)
    assert not any("Equivalence" in t for t in out.semantic)  # two faces: who spoke is unknown


def test_equivalence_needs_repeated_solo_cooccurrence_and_is_said_once():
    m, state = PerceptionMemorizer(), {}
    known = {"face_1", "voice_2", "voice_5"}
    # clip 0: face 1 alone on screen while voice 2 speaks 3 s: not yet enough (4 s needed)
    out0 = m.memorize(ClipContext(clip(0, [face([0, 1, 2, 3])], [voice([(0.5, 3.5)])]), [1], [2], known, state))
    assert out0.semantic == []
    # clip 1: again 3 s: now 6 s accumulated -> one equivalence
    out1 = m.memorize(ClipContext(clip(1, [face([30, 31, 32, 33])], [voice([(30.5, 33.5)])]), [1], [2], known, state))
    assert out1.semantic == ["Equivalence: <face_1>, <voice_2>"]
    # clip 2: another voice speaks a little while face 1 is alone: face 1 is taken, nothing new
    out2 = m.memorize(ClipContext(clip(2, [face([60, 61, 62, 63, 64, 65, 66])], [voice([(60, 66)])]), [1], [5],
                                  known, state))
    assert not any("Equivalence" in t for t in out2.semantic)
    json.dumps(state)  # the state is stored in the memory as JSON


def test_names_from_self_introduction_and_direct_address():
    m = PerceptionMemorizer()
    p = clip(0, [], [voice([(0, 3)]), voice([(3, 6)])],
             [Utterance(0, 2, "Hi, I'm Lily and I run the bakery.", 0),
              Utterance(2, 3, "Thank you, Marco.", 0),
              Utterance(3, 6, "You're welcome. I'm not sure though.", 1)])
    out = m.memorize(ClipContext(p, [], [4, 8], {"voice_4", "voice_8"}))
    text = " ".join(out.semantic)
    assert "<voice_4>'s name is Lily." in text
    assert "<voice_8>'s name is probably Marco." in text
    assert "Not" not in text  # "I'm not sure" is not a name


def test_silent_faceless_clip_says_so():
    out = PerceptionMemorizer().memorize(ClipContext(clip(2), [], [], set()))
    assert out.episodic == ["No face was seen and no speech was heard between 01:00 and 01:30."]


@pytest.mark.parametrize("reply", [
    '{"episodic": ["<face_1> waves."], "semantic": ["Equivalence: <face_1>, <voice_2>"]}',
    'Sure! Here you go:\n```json\n{"episodic": ["<face_1> waves."], "semantic": ["Equivalence: <face_1>, <voice_2>"]}\n```\nDone.',
    "{'episodic': ['<face_1> waves.'], 'semantic': ['Equivalence: <face_1>, <voice_2>']}",
    'The memories are {"Episodic Memory": ["<face_1> waves."], "Semantic Memory": ["Equivalence: <face_1>, <voice_2>"]} ok',
])
def test_parse_reply_variants(reply):
    out = parse_reply(reply)
    assert out.episodic == ["<face_1> waves."] and out.semantic == ["Equivalence: <face_1>, <voice_2>"]


def test_parse_reply_bare_list_and_garbage():
    assert parse_reply('["<face_1> sits."]').episodic == ["<face_1> sits."]
    with pytest.raises(ValueError):
        parse_reply("I cannot help with that.")


def test_unknown_ids_are_dropped():
    out = drop_unknown(Memories(["<face_1> waves.", "<face_99> runs."], ["Equivalence: <face_1>, <voice_7>"]),
                       {"face_1", "voice_2"})
    assert out.episodic == ["<face_1> waves."] and out.semantic == []


def _ctx() -> ClipContext:
    p = clip(0, [face([1, 2])], [voice([(1, 2)])], [Utterance(1, 2, "Hello.", 0)])
    p.keyframes = [b"\xff\xd8frame"]
    return ClipContext(p, [1], [2], {"face_1", "voice_2"})


GOOD = '```json\n{"episodic": ["<face_1> says hello.", "<face_5> leaves."], "semantic": ["Equivalence: <face_1>, <voice_2>"]}\n```'


def test_vlm_memorizer_over_a_real_socket_retries_transient_errors():
    with ScriptedServer([500, 429, GOOD]) as server:
        m = OpenAIMemorizer(OpenAIChat("vlm-test", server.base_url, "k", timeout=5, retries=3))
        out = m.memorize(_ctx())
    assert out.episodic == ["<face_1> says hello."]  # <face_5> does not exist: dropped
    assert out.semantic == ["Equivalence: <face_1>, <voice_2>"]
    assert len(server.requests) == 3
    parts = server.requests[-1]["messages"][1]["content"]
    assert any(p["type"] == "image_url" and p["image_url"]["url"].startswith("data:image/jpeg;base64,")
               for p in parts)
    assert any("<voice_2>: Hello." in p.get("text", "") for p in parts)
    assert any("<face_1>" in p.get("text", "") for p in parts)


def test_vlm_memorizer_reasks_on_malformed_reply_then_fails_naming_the_clip():
    with ScriptedServer(["not json at all", GOOD]) as server:
        out = OpenAIMemorizer(OpenAIChat("m", server.base_url, timeout=5, retries=0)).memorize(_ctx())
    assert out.semantic
    with ScriptedServer([], default="still not json") as server:
        with pytest.raises(MemorizerError, match="v.mp4 clip 0"):
            OpenAIMemorizer(OpenAIChat("m", server.base_url, timeout=5, retries=0)).memorize(_ctx())


def test_vlm_memorizer_does_not_retry_client_errors_and_times_out():
    with ScriptedServer([400, GOOD]) as server:
        with pytest.raises(MemorizerError, match="BadRequest"):
            OpenAIMemorizer(OpenAIChat("m", server.base_url, timeout=5, retries=3)).memorize(_ctx())
        assert len(server.requests) == 1
    with ScriptedServer(["sleep:2", GOOD]) as server:
        with pytest.raises(MemorizerError, match="Timeout"):
            OpenAIMemorizer(OpenAIChat("m", server.base_url, timeout=0.5, retries=0)).memorize(_ctx())
