"""Batch ingest of video archives: plan the jobs, run them serially, on a local worker pool, or on
Ray, and report every video.

A job is one video and the memory it is written to. Every runner gives each worker its models once
and calls :func:`ingest_one` per video, which never raises for a bad video: it returns the video's
entry for the report (done, skipped, failed with the error's kind). The memory's own guarantees do
the rest: one transaction per clip (a killed worker loses only the clip it was on), a writer lock
(two workers or two runs never write one memory), and resume at the next clip (so a retried or
re-run video continues where it stopped, with no duplicates).
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import socket
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from m3mem.config import Settings
from m3mem.errors import M3memError, ModelError, UsageError

if TYPE_CHECKING:
    from m3mem.ingest import Ingestor

VIDEO_EXTS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv", ".ts"}
MANIFEST_EXTS = {".jsonl", ".csv"}
Factory = Callable[[Settings], "Ingestor"]
Event = dict  # {"event": "start"|"clip"|"video", "id": ..., ...}


@dataclass(frozen=True)
class Job:
    id: str
    video: Path
    memory: Path


# ------------------------------------------------------------------ plan
def plan(inputs: list[str], memory: str | Path) -> list[Job]:
    """The jobs named by ``inputs``: video files, folders (recursive, sorted, video extensions only)
    and manifests (``.jsonl`` / ``.csv`` with ``id``, ``video`` and optional ``memory``).

    One video file and a ``memory`` path that is not a folder: that memory. Otherwise ``memory`` is a
    folder and each video's memory is ``<memory>/<id>.m3mem``, where the id is the file name without
    extension, the path inside a folder input (``ID9/016``), or the manifest's ``id``: stable across
    runs. Duplicate ids (or memories) are refused.
    """
    root = Path(memory)
    if len(inputs) == 1 and Path(inputs[0]).suffix.lower() not in MANIFEST_EXTS and Path(inputs[0]).is_file() \
            and not root.is_dir() and not str(memory).endswith(os.sep):
        video = Path(inputs[0])
        return [Job(video.stem, video, root)]
    jobs: list[Job] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTS and f.is_file()):
                rel = f.relative_to(p).with_suffix("").as_posix()
                jobs.append(Job(rel, f, root / f"{rel}.m3mem"))
        elif p.suffix.lower() in MANIFEST_EXTS and p.is_file():
            jobs += _manifest(p, root)
        elif p.is_file():
            jobs.append(Job(p.stem, p, root / f"{p.stem}.m3mem"))
        else:
            raise FileNotFoundError(f"{p}: no such video file, folder or manifest")
    _refuse_duplicates(jobs)
    return jobs


def _manifest(path: Path, root: Path) -> list[Job]:
    """Rows of a JSONL or CSV manifest; relative videos are relative to the manifest's folder,
    relative memories to the memory folder."""
    try:
        with path.open(newline="") as f:
            if path.suffix.lower() == ".csv":
                rows = [(n + 2, row) for n, row in enumerate(csv.DictReader(f))]
            else:
                rows = [(n + 1, json.loads(line)) for n, line in enumerate(f) if line.strip()]
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: not a JSONL or CSV manifest ({e})") from e
    jobs = []
    for line, row in rows:
        if not isinstance(row, dict) or not str(row.get("id") or "").strip() or not row.get("video"):
            raise UsageError(f"{path}:{line}: each entry needs an id and a video")
        job_id = str(row["id"]).strip()
        if Path(job_id).is_absolute() or ".." in Path(job_id).parts:
            raise UsageError(f"{path}:{line}: id {job_id!r} must be a relative name (it names the memory file)")
        video = Path(row["video"])
        video = video if video.is_absolute() else path.parent / video
        memory = Path(row["memory"]) if row.get("memory") else Path(f"{job_id}.m3mem")
        jobs.append(Job(job_id, video, memory if memory.is_absolute() else root / memory))
    return jobs


def _refuse_duplicates(jobs: list[Job]) -> None:
    for what, key in (("id", lambda j: j.id), ("memory", lambda j: str(j.memory))):
        seen: dict[str, Job] = {}
        for job in jobs:
            k = key(job)
            if k in seen:
                raise UsageError(f"two videos have the {what} {k!r} ({seen[k].video} and {job.video}); "
                                 f"{'ids name the memories, so ' if what == 'id' else ''}give them distinct ids "
                                 f"(a manifest) or put them in distinct folders")
            seen[k] = job


# ------------------------------------------------------------------ one video
def ingest_one(job: Job, ingestor: "Ingestor", worker: str,
               emit: Callable[[Event], None] | None = None, startup: float | None = None) -> dict:
    """Ingest one video and return its report entry; a bad video, a busy memory or a failing model
    is reported (``status`` failed, the error's kind and message), never raised. ``fatal`` marks
    errors every further video would hit too (a model that fails)."""
    emit = emit or (lambda event: None)
    entry = {"id": job.id, "video": str(job.video), "memory": str(job.memory), "worker": worker,
             "worker_startup_seconds": startup}
    emit({"event": "start", "id": job.id, "worker": worker})

    def progress(done: int, total: int, stages: dict) -> None:
        emit({"event": "clip", "id": job.id, "done": done, "total": total})

    t = time.perf_counter()
    try:
        job.memory.parent.mkdir(parents=True, exist_ok=True)
        report = ingestor.run(job.video, job.memory, progress)
    except (M3memError, OSError) as e:
        entry.update(status="failed", error_kind=type(e).__name__, error=str(e), fatal=isinstance(e, ModelError))
    except Exception as e:  # noqa: BLE001  a bug: reported as one, and the archive goes on
        entry.update(status="failed", error_kind=f"internal {type(e).__name__}", error=str(e),
                     traceback=traceback.format_exc(), fatal=False)
    else:
        r = report.as_dict()
        entry.update(status="skipped" if report.done == 0 and report.skipped >= report.clips else "done",
                     clips=report.clips, committed=report.done, already=report.skipped, cached=report.cached,
                     video_seconds=report.video_seconds, faces=report.faces, voices=report.voices,
                     characters=report.characters, episodic=report.episodic, semantic=report.semantic,
                     realtime_factor=r["realtime_factor"], stages=report.stages)
    entry["seconds"] = time.perf_counter() - t
    return entry


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# ------------------------------------------------------------------ runners
@dataclass
class Runner:
    """Runs jobs and calls ``on_event`` with every start/clip event and every finished video
    (``{"event": "video", "entry": ...}``); returns the entries in job order."""

    settings: Settings
    factory: Factory | None = None  # settings -> Ingestor; default m3mem.build.ingestor
    on_event: Callable[[Event], None] | None = None

    def run(self, jobs: list[Job]) -> list[dict]:
        factory = self.factory or _default_factory
        workers = max(1, int(self.settings.workers))
        # several workers take the largest files first, so that no long video is left for the end
        # while the other workers idle
        largest_first = sorted(jobs, key=lambda j: -(j.video.stat().st_size if j.video.is_file() else 0))
        if self.settings.ray:
            entries = run_ray(largest_first, self.settings, factory, workers, self._event)
        elif workers > 1 and len(jobs) > 1:
            entries = run_pool(largest_first, self.settings, factory, workers, self._event)
        else:
            entries = run_serial(jobs, self.settings, factory, self._event)
        order = {job.id: k for k, job in enumerate(jobs)}
        return sorted(entries, key=lambda e: order[e["id"]])

    def _event(self, event: Event) -> None:
        if self.on_event:
            self.on_event(event)


def _default_factory(settings: Settings) -> "Ingestor":
    from m3mem import build

    return build.ingestor(settings)


def _not_started(job: Job, why: str, kind: str = "NotStarted", fatal: bool = False) -> dict:
    """The entry of a video that failed without being ingested (its worker never ran it through)."""
    return {"id": job.id, "video": str(job.video), "memory": str(job.memory), "worker": None,
            "status": "failed", "error_kind": kind, "error": why, "fatal": fatal, "seconds": 0.0}


def _rest_not_started(jobs: Iterable[Job], emit: Callable[[Event], None]) -> list[dict]:
    """Entries of the videos left when a fatal (model) error stopped the run."""
    return [_finish(_not_started(j, "a model failed on an earlier video"), emit) for j in jobs]


def _finish(entry: dict, emit: Callable[[Event], None]) -> dict:
    emit({"event": "video", "id": entry["id"], "entry": entry})
    return entry


def run_serial(jobs: list[Job], settings: Settings, factory: Factory, emit: Callable[[Event], None]) -> list[dict]:
    """One process, one ingestor; stops at a fatal (model) error and reports the rest not started."""
    t = time.perf_counter()
    ingestor, entries = factory(settings), []
    startup = time.perf_counter() - t
    for k, job in enumerate(jobs):
        entries.append(_finish(ingest_one(job, ingestor, worker_name(), emit, startup), emit))
        if entries[-1].get("fatal"):
            entries += _rest_not_started(jobs[k + 1:], emit)
            break
    return entries


# ---- local pool: worker processes (forked from a clean fork server), models loaded once per worker
_worker: dict = {}


def _pool_init(settings: Settings, factory: Factory, threads: int, events) -> None:
    from models.device import limit_threads

    t = time.perf_counter()
    limit_threads(threads)  # this worker's share of the cores, before its models load
    _worker.update(events=events, error=None)
    try:
        _worker["ingestor"] = factory(settings)
    except Exception as e:  # noqa: BLE001  told to the parent with the first video (a crash would hide it)
        _worker["error"] = (type(e).__name__, str(e))
    _worker["startup"] = time.perf_counter() - t


def _pool_work(job: Job) -> dict:
    if _worker["error"] is not None:  # the models did not load: neither would they for the next video
        kind, message = _worker["error"]
        return {**_not_started(job, f"the worker could not start: {message}", kind, fatal=True), "worker": worker_name()}
    return ingest_one(job, _worker["ingestor"], worker_name(), _worker["events"].put, _worker["startup"])


# imported once by the fork server; every worker forked from it starts with them imported
PRELOAD = ["m3mem.archive", "m3mem.build", "m3mem.ingest", "torch", "cv2", "sentence_transformers",
           "faster_whisper", "resemblyzer", "librosa", "librosa.feature.spectral", "models.faces", "models.audio",
           "models.text_embedding"]


def _worker_context():
    """Workers fork from a fork server that imported the heavy libraries once (no threads run there,
    unlike in this process); spawned from scratch where there is no fork server."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def run_pool(jobs: list[Job], settings: Settings, factory: Factory, workers: int,
             emit: Callable[[Event], None]) -> list[dict]:
    """``workers`` worker processes take videos from the executor's queue. A worker that dies
    (killed, out of memory) breaks the pool: the videos it and its siblings were on are retried (up
    to ``worker_retries`` times) in a fresh pool and resume at their next clip; videos not yet
    started are resubmitted as they were."""
    ctx = _worker_context()
    threads = max(1, (os.cpu_count() or 1) // workers)  # measured: 2 workers x 2 threads on 2 cores is 15% slower
    attempts: dict[str, int] = {}
    entries: list[dict] = []
    todo = deque(jobs)
    stop, fruitless = False, 0
    while todo and not stop:
        events = ctx.SimpleQueue()  # written synchronously: a worker killed after "start" still told us
        started: set[str] = set()

        def drain() -> None:
            while not events.empty():
                event = events.get()
                if event["event"] == "start":
                    started.add(event["id"])
                emit(event)

        pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_pool_init,
                                   initargs=(settings, factory, threads, events))
        broke = False
        try:
            running = {}
            for job in todo:
                try:
                    running[pool.submit(_pool_work, job)] = job
                except BrokenProcessPool:  # a worker died before all were queued: the rest wait for the next pool
                    broke = True
                    break
            queued = {job.id for job in running.values()}
            todo = deque(job for job in todo if job.id not in queued)
            while running:
                done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                drain()
                for fut in done:
                    job = running.pop(fut)
                    if fut.cancelled():
                        todo.append(job)
                        continue
                    try:
                        entry = fut.result()
                    except BrokenProcessPool:
                        broke = True
                        if job.id not in started:  # never began: run it in the next pool as it is
                            todo.append(job)
                            continue
                        attempts[job.id] = attempts.get(job.id, 0) + 1
                        if attempts[job.id] <= settings.worker_retries:
                            todo.append(job)
                            continue
                        entry = _not_started(job, f"its worker died {attempts[job.id]} times", "WorkerDied")
                    entry["attempts"] = attempts.get(job.id, 0) + 1
                    entries.append(_finish(entry, emit))
                    if entry.get("fatal") and not stop:
                        stop = True
                        for other in running:
                            other.cancel()
        except BaseException:  # Ctrl-C: stop the workers now; each loses only its uncommitted clip
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        fruitless = fruitless + 1 if broke and not started else 0
        if fruitless > settings.worker_retries:  # workers die before they take any video
            why = f"workers died {fruitless} times before taking a video"
            return entries + [_finish(_not_started(job, why, "WorkerDied", fatal=True), emit) for job in todo]
    return entries + _rest_not_started(todo, emit)


# ---- Ray: an actor per worker (models loaded once per actor), restarted and retried by Ray
class IngestActor:
    """A Ray actor that holds one ingestor; Ray restarts it (``max_restarts``) and retries the video
    it was on (``max_task_retries``) when its process dies."""

    def __init__(self, settings: Settings, factory: Factory, threads: int):
        from models.device import limit_threads

        t = time.perf_counter()
        limit_threads(threads)  # this actor's share of the cores, before its models load
        self.ingestor = factory(settings)
        self.startup = time.perf_counter() - t

    def ingest(self, job: Job) -> dict:
        return ingest_one(job, self.ingestor, worker_name(), startup=self.startup)


def run_ray(jobs: list[Job], settings: Settings, factory: Factory, workers: int,
            emit: Callable[[Event], None]) -> list[dict]:
    """``workers`` actors, each reserving ``worker_cpus`` / ``worker_gpus``; videos go to idle actors.
    Memories are written by the actors at their paths, so on a cluster they must be on storage every
    node sees. ``ray.init()`` starts a local Ray when ``settings.ray`` is ``local``."""
    try:
        import ray
    except ImportError as e:
        raise ImportError("--ray needs Ray: pip install 'm3mem[ray]'") from e
    started_here = not ray.is_initialized()
    if started_here:
        os.environ.setdefault("RAY_enable_metrics_collection", "0")  # no metrics agent runs without a dashboard
        ray.init(address=None if settings.ray == "local" else settings.ray, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    threads = max(1, int(settings.worker_cpus))
    actor_class = ray.remote(num_cpus=settings.worker_cpus, num_gpus=settings.worker_gpus,
                             max_restarts=settings.worker_retries,
                             max_task_retries=settings.worker_retries)(IngestActor)

    def new_actor():
        return actor_class.remote(settings, factory, threads)

    idle = [new_actor() for _ in range(min(workers, len(jobs)))]
    running: dict = {}
    todo, entries = deque(jobs), []
    try:
        _ray_loop(ray, idle, running, todo, entries, settings, new_actor, emit)
    finally:  # also on Ctrl-C: the actors stop; each loses only its uncommitted clip
        for actor in idle + [a for a, _ in running.values()]:
            ray.kill(actor)
        if started_here:
            ray.shutdown()
    return entries


def _ray_loop(ray, idle: list, running: dict, todo: deque, entries: list, settings: Settings,
              new_actor: Callable, emit: Callable[[Event], None]) -> None:
    from ray.exceptions import ActorDiedError, RayError

    stop = False
    while running or (todo and not stop):
        while idle and todo and not stop:
            actor, job = idle.pop(), todo.popleft()
            running[actor.ingest.remote(job)] = (actor, job)
            emit({"event": "start", "id": job.id, "worker": "ray"})
        ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
        for ref in ready:
            actor, job = running.pop(ref)
            try:
                entry = ray.get(ref)
            except ActorDiedError as e:
                if getattr(e, "actor_init_failed", False):  # its models did not load: neither will the next
                    entry = _not_started(job, f"the worker could not start: {e}", "WorkerStartFailed", fatal=True)
                else:  # died more often than Ray restarts it: a fresh actor goes on
                    entry = _not_started(job, f"its worker died more than {settings.worker_retries} times ({e})",
                                         "WorkerDied")
                actor = new_actor()
            except RayError as e:
                entry = _not_started(job, f"Ray failed: {e}", type(e).__name__)
            idle.append(actor)
            entries.append(_finish(entry, emit))
            stop = stop or bool(entry.get("fatal"))
    entries += _rest_not_started(todo, emit)
    todo.clear()


# ------------------------------------------------------------------ report
def summary(entries: Iterable[dict], wall_seconds: float) -> dict:
    entries = list(entries)
    count = {s: sum(1 for e in entries if e["status"] == s) for s in ("done", "skipped", "failed")}
    video_s = sum(e.get("video_seconds") or 0.0 for e in entries if e["status"] == "done")
    return {"videos": len(entries), **count, "video_hours_done": video_s / 3600, "wall_seconds": wall_seconds,
            "video_seconds_per_wall_second": video_s / wall_seconds if wall_seconds else None,
            "fatal": any(e.get("fatal") for e in entries)}


def write_report(path: str | Path, entries: list[dict], wall_seconds: float) -> None:
    """The run's report as JSON, written atomically (a crash leaves the previous one whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"summary": summary(entries, wall_seconds), "videos": entries}, indent=1))
    os.replace(tmp, path)
