import json
import subprocess
import sys

import numpy as np
import pytest

from m3mem.cli import EXIT_INPUT, EXIT_USAGE, main
from m3mem.config import load_settings
from m3mem.memory import Memory


@pytest.fixture
def memory_path(tmp_path):
    """A small memory written with the real packaged MiniLM text embedder."""
    from models.text_embedding import SentenceTransformerEmbedder

    path = tmp_path / "talk.m3mem"
    with Memory.open(path, SentenceTransformerEmbedder(), create=True) as mem:
        with mem.clip(0, 0.0, 30.0) as w:
            f = w.add_entity("face", np.ones((1, 128)))
            v = w.add_entity("voice", np.ones((1, 256)))
            w.add_text("episodic", f"<face_{f}> stands at a podium in front of flags.")
            w.add_text("episodic", f'<voice_{v}> says: "after two years of negotiations we reached a deal."')
            w.add_text("semantic", f"Equivalence: <face_{f}>, <voice_{v}>")
            w.add_fact(v, "name", "Barack", f"<voice_{v}>'s name is Barack.")
        with mem.clip(1, 30.0, 60.0) as w:
            w.add_text("episodic", "A dog runs across a green field chasing a ball.")
    return path


def test_show_json_lists_characters_and_clips(memory_path, capsys):
    assert main(["show", str(memory_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["characters"] == [{"character": 0, "name": "Barack", "faces": [0], "voices": [1], "clips": [0]}]
    assert [c["clip"] for c in out["clips"]] == [0, 1]
    assert out["clips"][0]["memories"][1]["text"].startswith("<character_0> says")


def test_search_with_the_packaged_embedder(memory_path, capsys):
    assert main(["search", str(memory_path), "What was agreed after the negotiations?", "--json",
                 "--top-k", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["route"] == "clips" and [c["clip"] for c in out["clips"]] == [0]
    assert main(["search", str(memory_path), "animal playing outside", "--json", "--top-k", "1"]) == 0
    assert [c["clip"] for c in json.loads(capsys.readouterr().out)["clips"]] == [1]
    assert main(["search", str(memory_path), "dog", "--before-clip", "1", "--json"]) == 0
    assert all(c["clip"] < 1 for c in json.loads(capsys.readouterr().out)["clips"])


def test_bad_memory_path_exit_code(tmp_path, capsys):
    assert main(["show", str(tmp_path / "missing.m3mem")]) == EXIT_INPUT
    assert "missing.m3mem: no such memory file" in capsys.readouterr().err


def test_help_explains_commands():
    out = subprocess.run([sys.executable, "-m", "m3mem.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "exit codes" in out.stdout and "search" in out.stdout


def test_settings_precedence(tmp_path):
    cfg = tmp_path / "m3mem.toml"
    cfg.write_text('top_k = 7\nmode = "mean"\n')
    s = load_settings(cfg, {}, environ={})
    assert (s.top_k, s.mode) == (7, "mean")
    s = load_settings(cfg, {}, environ={"M3MEM_TOP_K": "9"})
    assert s.top_k == 9
    s = load_settings(cfg, {"top_k": 3}, environ={"M3MEM_TOP_K": "9"})
    assert s.top_k == 3
    cfg.write_text("topk = 7\n")
    with pytest.raises(ValueError, match="unknown settings"):
        load_settings(cfg, {}, environ={})
    with pytest.raises(ValueError, match="must be int"):
        load_settings(None, {}, environ={"M3MEM_TOP_K": "many"})


def test_bad_config_exit_code(tmp_path, memory_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("this is = = not toml")
    assert main(["--config", str(cfg), "show", str(memory_path)]) == EXIT_USAGE
