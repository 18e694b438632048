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
    assert "Two people are on screen together: <face_3> and <face_7>." in out.episodic
    assert '<voice_9> says at 00:01-00:04: "Hello there. Nice day."' in out.episodic
    assert any(t.startswith("An unidentified voice says") for t in out.episodic)
    assert not any("Equivalence" in t for t in out.semantic)  # two faces: who spoke is unknown


def test_equivalence_needs_repeated_solo_cooccurrence_and_is_said_once():
    m, state = PerceptionMemorizer(), {}
    known = {"face_1", "voice_2", "voice_5"}
    # clip 0: face 1 alone on screen while voice 2 speaks 2 s: not yet enough (3 s needed)
    out0 = m.memorize(ClipContext(clip(0, [face([0, 1, 2, 3])], [voice([(0.5, 2.5)])]), [1], [2], known, state))
    assert out0.semantic == []
    # clip 1: again 2 s: now 4 s accumulated -> one equivalence
    out1 = m.memorize(ClipContext(clip(1, [face([30, 31, 32, 33])], [voice([(30.5, 32.5)])]), [1], [2], known, state))
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
    # names are data (entity, key, value), each with the sentence that says it
    assert [(f.entity, f.key, f.value) for f in out.facts] == [("<voice_4>", "name", "Lily"),
                                                                ("<voice_8>", "name", "Marco")]
    text = " ".join(f.text for f in out.facts)
    assert "<voice_4>'s name is Lily." in text
    assert "<voice_8>'s name is probably Marco." in text
    assert "Not" not in text + " ".join(out.semantic)  # "I'm not sure" is not a name


def test_names_from_a_vlm_reply_are_facts_and_unknown_tags_dropped():
    out = drop_unknown(parse_reply('{"episodic": ["<face_1> waves."], "semantic": [], '
                                   '"names": {"<face_1>": "Lily", "<face_9>": "Ghost", "bad": "X"}}'),
                       {"face_1"})
    assert [(f.entity, f.key, f.value, f.text) for f in out.facts] == [
        ("<face_1>", "name", "Lily", "<face_1>'s name is Lily.")]


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


def _tokenizer(folder, specials: list[str]):
    """A small BPE tokenizer trained here, holding Qwen's special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(['{"episodic": ["<face_1> says hello."], "semantic": []}'] * 20,
                            trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>",
                                                                                "<|endoftext|>"] + specials,
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>")
    fast.save_pretrained(folder)
    return fast


TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=4096, rope_scaling={"rope_type": "default", "mrope_section": [1, 1, 2]})
VISION = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32, patch_size=14,
              spatial_merge_size=2, temporal_patch_size=2, fullatt_block_indexes=[0], window_size=56)


def _tiny_qwen_vl(folder) -> str:
    """A tiny random Qwen2.5-VL checkpoint; returns its image placeholder token."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    fast = _tokenizer(folder, ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"])
    ids = fast.convert_tokens_to_ids
    cfg = Qwen2_5_VLConfig(
        text_config=dict(TEXT, vocab_size=len(fast), bos_token_id=None, eos_token_id=ids("<|im_end|>"),
                         pad_token_id=ids("<|endoftext|>")),
        vision_config=VISION, image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))
    Qwen2_5_VLForConditionalGeneration(cfg).save_pretrained(folder)
    return "<|image_pad|>"


def _tiny_qwen_omni_thinker(folder) -> str:
    """A tiny random Qwen2.5-Omni thinker (the part of M3-Agent-Memorization that writes text)."""
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    fast = _tokenizer(folder, ["<|vision_bos|>", "<|vision_eos|>", "<|IMAGE|>", "<|VIDEO|>", "<|AUDIO|>",
                               "<|audio_bos|>", "<|audio_eos|>"])
    ids = fast.convert_tokens_to_ids
    cfg = Qwen2_5OmniThinkerConfig(
        text_config=dict(TEXT, vocab_size=len(fast)), vision_config=VISION,
        audio_config=dict(d_model=32, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64, output_dim=32,
                          num_mel_bins=128, max_source_positions=100, n_window=50),
        image_token_index=ids("<|IMAGE|>"), video_token_index=ids("<|VIDEO|>"), audio_token_index=ids("<|AUDIO|>"),
        audio_start_token_id=ids("<|audio_bos|>"), audio_end_token_id=ids("<|audio_eos|>"),
        vision_start_token_id=ids("<|vision_bos|>"), pad_token_id=ids("<|endoftext|>"))
    Qwen2_5OmniThinkerForConditionalGeneration(cfg).save_pretrained(folder)
    return "<|IMAGE|>"


@pytest.mark.parametrize("build", [_tiny_qwen_vl, _tiny_qwen_omni_thinker])
def test_local_transformers_vlm_memorizer_runs_the_real_code(tmp_path, build):
    import cv2

    from models.vlm import TransformersMemorizer

    image_token = build(tmp_path / "vl")
    m = TransformersMemorizer(str(tmp_path / "vl"), device="cpu", max_tokens=8, max_pixels=56 * 56 * 4)
    assert m.image_pad == image_token
    ctx = _ctx()
    frame = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8))[1].tobytes()
    ctx.perception.keyframes = [frame]
    ctx.perception.faces[0].crops = [frame]
    inputs = m._inputs(clip_messages_for(ctx))
    grid = inputs["image_grid_thw"]
    assert grid.shape == (2, 3)  # one keyframe + one face crop
    pads = int((inputs["input_ids"] == m.tokenizer.convert_tokens_to_ids(image_token)).sum())
    assert pads == int(grid.prod(-1).sum()) // 4  # each image expanded to its merged patch count
    # random weights write random text: either it holds no JSON (the memorizer re-asks, then fails
    # naming the clip) or whatever it parsed mentions only ids the memory has
    try:
        out = m.memorize(ctx)
    except MemorizerError as e:
        assert "v.mp4 clip 0" in str(e)
    else:
        assert all(t == drop_unknown(Memories([t]), ctx.known).episodic[0] for t in out.episodic)


def clip_messages_for(ctx):
    from models.vlm import clip_messages

    return clip_messages(ctx)


def test_local_memorizer_given_an_unreadable_keyframe_names_the_clip(tmp_path):
    from models.vlm import TransformersMemorizer

    _tiny_qwen_vl(tmp_path / "vl")
    m = TransformersMemorizer(str(tmp_path / "vl"), device="cpu", max_tokens=8, max_pixels=56 * 56 * 4)
    ctx = _ctx()  # its keyframe is b"\xff\xd8frame": a JPEG marker and no image
    with pytest.raises(MemorizerError, match="v.mp4 clip 0: an image of the clip cannot be read"):
        m.memorize(ctx)
