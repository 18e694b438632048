"""The seams of issue "architecture": composition root, error kinds and exit codes, packaged weights,
structured facts, and the bugs found by a new contributor (each reproduced first)."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from m3mem.cli import EXIT_FAIL, EXIT_INPUT, EXIT_USAGE, main
from m3mem.memory import Memory
from m3mem.store import SCHEMA_VERSION
from models.weights import assemble
from preprocessing.errors import WeightsError
from tests.conftest import HashEmbedder, unit

ROOT = Path(__file__).resolve().parents[1]


def _memory(path: Path, clips: int = 1, start: float = 0.0, name: str | None = None) -> Path:
    rng = np.random.default_rng(0)
    with Memory.open(path, HashEmbedder(), create=True) as mem:
        for c in range(clips):
            with mem.clip(c, start + 30.0 * c, start + 30.0 * c + 30) as w:
                v = w.add_entity("voice", unit(rng, 8))
                w.add_text("episodic", f'<voice_{v}> says: "line {c} ' + "word " * 40 + '"')
                if name and c == 0:
                    w.add_fact(v, "name", name, f"<voice_{v}>'s name is {name}.")
    return path


# ------------------------------------------------------------------ bugs
def test_memory_retriever_takes_search_options(tmp_path):
    with Memory.open(_memory(tmp_path / "m.m3mem", clips=5), HashEmbedder()) as mem:
        r = mem.retriever(top_k=3)  # raised TypeError before
        assert len(r.search("line word").clips) == 3
        assert len(r.search("line word", r.with_options(top_k=1)).clips) == 1


def test_show_into_a_closed_pipe_ends_quietly(tmp_path):
    path = _memory(tmp_path / "big.m3mem", clips=400)  # JSON far larger than a pipe buffer
    p = subprocess.Popen([sys.executable, "-m", "m3mem.cli", "show", str(path), "--json"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(100)
    p.stdout.close()  # like `| head -c 100`
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141  # as if killed by SIGPIPE
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_show_writes_hours_like_the_memories_do(tmp_path, capsys):
    path = _memory(tmp_path / "late.m3mem", start=3700.0)
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "CLIP_0  1:01:40-1:02:10" in out  # was "61:40-62:10"


def test_offline_chat_model_is_named_what_it_is():
    from m3mem import build
    from m3mem.config import Settings, cache_root
    from models.chat import OFFLINE_NAME

    pytest.importorskip("gguf")
    from gguf import GGUFReader

    from models.gguf import offline_gguf

    try:
        path = offline_gguf(cache_root(Settings()))
    except WeightsError as e:
        pytest.skip(f"offline chat model not installed: {e}")
    field = GGUFReader(path).fields["general.name"]
    declared = bytes(field.parts[field.data[0]]).decode()  # "Qwen2.5 Coder 0.5B Instruct AWQ"
    assert "Coder" in declared and "coder" in OFFLINE_NAME and "coder" in Settings().llm
    assert build.OFFLINE_LLM == Settings().llm


def test_media_path_honours_the_environment(tmp_path):
    r = subprocess.run([sys.executable, "-c", "from bench.media import MEDIA; print(MEDIA)"], cwd=ROOT,
                       env={**os.environ, "M3MEM_MEDIA": str(tmp_path)}, capture_output=True, text=True)
    assert r.stdout.strip() == str(tmp_path)


# ------------------------------------------------------- errors -> exit codes
def test_an_internal_bug_is_not_reported_as_bad_usage(tmp_path, capsys, monkeypatch):
    from m3mem.cli import commands

    def broken(args, settings):
        return {}["missing"]  # a bug inside a command

    monkeypatch.setitem(commands.COMMANDS, "show", broken)
    assert main(["show", "x.m3mem"]) == EXIT_FAIL
    err = capsys.readouterr().err
    assert "internal error: KeyError" in err and "Traceback" not in err
    assert main(["-v", "show", "x.m3mem"]) == EXIT_FAIL
    assert "Traceback" in capsys.readouterr().err


def test_error_kinds_map_to_exit_codes(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("top_kk = 3\n")
    assert main(["--config", str(bad), "show", "x.m3mem"]) == EXIT_USAGE
    (tmp_path / "notes.m3mem").write_text("not a memory")
    assert main(["show", str(tmp_path / "notes.m3mem")]) == EXIT_INPUT
    assert main(["show", str(tmp_path / "nope.m3mem")]) == EXIT_INPUT
    memory = _memory(tmp_path / "m.m3mem")
    assert main(["search", str(memory), "line", "--top-k", "0"]) == EXIT_USAGE  # an option out of range


# ----------------------------------------------------------- packaged weights
def _parts(tmp_path: Path) -> tuple[list[Path], str]:
    import hashlib

    rng = np.random.default_rng(1)
    blobs = [rng.bytes(300_000) for _ in range(3)]
    parts = []
    for i, b in enumerate(blobs):
        parts.append(tmp_path / f"part{i}")
        parts[-1].write_bytes(b)
    return parts, hashlib.sha256(b"".join(blobs)).hexdigest()


def _assemble(args) -> str:
    parts, target, sha = args
    return str(assemble(parts, target, sha))


def test_weights_joined_once_when_many_processes_start_at_once(tmp_path):
    parts, sha = _parts(tmp_path)
    target = tmp_path / "cache" / "model.bin"
    target.parent.mkdir()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        out = pool.map(_assemble, [(parts, target, sha)] * 8)
    assert set(out) == {str(target)}
    assert target.read_bytes() == b"".join(p.read_bytes() for p in parts)
    assert not list(target.parent.glob("*.tmp"))  # no temporary file left behind


def test_weights_changed_after_verification_are_rebuilt_and_wrong_parts_refused(tmp_path):
    parts, sha = _parts(tmp_path)
    target = assemble(parts, tmp_path / "model.bin", sha)
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))  # a flipped byte in the cache
    assert assemble(parts, target, sha).read_bytes() == b"".join(p.read_bytes() for p in parts)
    with pytest.raises(WeightsError, match="expected"):
        assemble(parts[:2], tmp_path / "other.bin", sha)
    assert not (tmp_path / "other.bin").exists()


# ------------------------------------------------------------ structured facts
def test_names_are_stored_facts_and_survive_reopening(tmp_path):
    path = _memory(tmp_path / "m.m3mem", clips=2, name="Lily")
    with Memory.open(path) as mem:
        g = mem.graph
        (fact,) = g.facts
        assert (fact.key, fact.value, fact.clip) == ("name", "Lily", 0)
        assert g.texts[fact.text].text.endswith("name is Lily.")
        assert g.names() == {g.character_of(fact.entity): "Lily"}


def test_reworded_sentences_do_not_lose_names(tmp_path):
    """Names no longer come from a regex over English: any wording keeps the fact."""
    rng = np.random.default_rng(0)
    with Memory.open(tmp_path / "m.m3mem", HashEmbedder(), create=True) as mem:
        with mem.clip(0, 0.0, 30.0) as w:
            v = w.add_entity("voice", unit(rng, 8))
            w.add_fact(v, "name", "Marco", f"Everyone calls <voice_{v}> by the name Marco.")
        assert mem.graph.names() == {mem.graph.character_of(v): "Marco"}


def test_a_version_1_memory_is_read_and_upgraded_on_write(tmp_path):
    path = _memory(tmp_path / "old.m3mem", clips=1)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE facts")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    rng = np.random.default_rng(3)
    with Memory.open(path, HashEmbedder()) as mem:
        assert mem.graph.facts == [] and mem.completed_clips() == {0}
        with mem.clip(1, 30.0, 60.0) as w:
            v = w.add_entity("voice", unit(rng, 8))
            w.add_fact(v, "name", "Ana", f"<voice_{v}>'s name is Ana.")
    with Memory.open(path) as mem:
        assert [f.value for f in mem.graph.facts] == ["Ana"]
        assert mem.store.get_meta("schema_version") == str(SCHEMA_VERSION)


# ------------------------------------------------------------ composition root
@pytest.mark.slow
def test_composition_root_builds_typed_perception_with_vad_in_the_cache_key():
    import dataclasses

    from m3mem import build
    from m3mem.config import Settings
    from models.audio import SileroVAD
    from preprocessing.interfaces import (FaceModel, SpeakerEncoder, SpeechRecognizer,
                                          VoiceActivityDetector)

    models = build.perception_models(Settings())
    assert isinstance(models.faces, FaceModel) and isinstance(models.speakers, SpeakerEncoder)
    assert isinstance(models.asr, SpeechRecognizer) and isinstance(models.vad, VoiceActivityDetector)
    other = dataclasses.replace(models, vad=SileroVAD(min_silence_s=1.0))
    assert models.names() != other.names() and "silero" in models.names()


def test_a_converted_model_file_is_checked_against_its_recorded_hash(tmp_path):
    from models.weights import record, verified

    f = tmp_path / "model.safetensors"
    f.write_bytes(b"weights" * 1000)
    assert not verified(f)  # never stamped: not trusted
    record(f)
    assert verified(f)
    data = bytearray(f.read_bytes())
    data[10] ^= 1
    f.write_bytes(bytes(data))  # a flipped byte
    assert not verified(f)


def test_a_storage_failure_is_reported_as_such_not_as_a_bug(capsys, monkeypatch):
    from m3mem.cli import commands
    from m3mem.errors import StorageError

    def full(args, settings):
        raise StorageError("m.m3mem: could not write clip 3 (database or disk is full); clips up to 2 are kept")

    monkeypatch.setitem(commands.COMMANDS, "show", full)
    assert main(["show", "m.m3mem"]) == EXIT_FAIL
    err = capsys.readouterr().err
    assert "clips up to 2 are kept" in err and "internal error" not in err
