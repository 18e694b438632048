"""An hour of video through the real command: cost and memory over length, then opening the result.

    python -m bench.long [--minutes 60] [--workdir bench_out/hour] [--json PATH]

Builds a video of at least ``--minutes`` (and a short one of at least 2) from ../shared/media: the long benchmark video's schedule
(bench/long_video.py: 33 people, off-screen voices, black and silent stretches) played in a
different order each round (as it is, reversed, rotated), and a 2-minute video from its start. Then
runs ``m3mem ingest`` on each as a user would (a fresh process, a fresh perception cache), watching
the process from outside: its resident memory (/proc) and the clips committed to the memory (a
read-only SQLite connection) twice a second. Reports the real-time factor including start-up, the
start-up seconds (process start to ingest start: imports, model load), seconds per clip over the
first and the last 10% of clips, peak RSS at 10, 30 and 60 minutes of video, memory bytes per
video hour (database and saved index), and opening the memory plus its first search.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.media import MEDIA


def build_video(out: Path, minutes: float) -> float:
    """A video of at least ``minutes``; returns its length in seconds."""
    from bench.encode import LetterboxWriter
    from bench.long_video import FPS, SIZE, part_media, parts

    schedule = parts(MEDIA)
    orders = [lambda p: p, lambda p: p[::-1], lambda p: p[len(p) // 2:] + p[:len(p) // 2]]
    total, k = 0.0, 0
    with LetterboxWriter(out, SIZE, FPS) as writer:
        while total < minutes * 60:
            for part in orders[k % len(orders)](schedule):
                _, total = writer.append(*part_media(MEDIA, part, FPS))  # decoded again each round: flat RAM
                if total >= minutes * 60:
                    break
            k += 1
    return total


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _clips(memory: Path) -> int:
    if not memory.exists():
        return 0
    try:
        conn = sqlite3.connect(f"{memory.as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def watch_ingest(video: Path, memory: Path, cache: Path, duration: float) -> dict:
    """Run ``m3mem ingest`` and watch it; per-clip commit times and RSS samples."""
    cmd = [sys.executable, "-m", "m3mem.cli", "ingest", str(video), "--memory", str(memory), "--cache-dir",
           str(cache), "--quiet", "--report", str(memory.with_suffix(".report.json"))]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    commits, samples, seen = [], [], 0  # commits: (seconds since start, clips), samples: (clips, rss KB)
    while proc.poll() is None:
        rss, n = _rss_kb(proc.pid), _clips(memory)
        samples.append((n, rss))
        if n > seen:
            commits.append((time.perf_counter() - t0, n))
            seen = n
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    err = proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"m3mem ingest failed ({proc.returncode}): {err[-2000:]}")
    entry = json.loads(memory.with_suffix(".report.json").read_text())["videos"][0]
    clips = entry["clips"]
    per_clip = []  # seconds per clip between successive observed commits
    for (t1, n1), (t2, n2) in zip(commits, commits[1:]):
        per_clip += [(t2 - t1) / (n2 - n1)] * (n2 - n1)
    tenth = max(1, clips // 10)
    peak = {}
    for minutes in (10, 30, 60):
        upto = [rss for n, rss in samples if n <= minutes * 2]
        if duration >= minutes * 60 and upto:
            peak[f"peak_rss_mb_at_{minutes}_min"] = max(upto) / 1024
    return {"video_seconds": duration, "clips": clips, "wall_seconds": wall,
            "x_realtime_with_startup": duration / wall, "startup_seconds": wall - entry["seconds"],
            "model_load_seconds": entry["worker_startup_seconds"],
            "first_10pct_s_per_clip": sum(per_clip[:tenth]) / max(1, len(per_clip[:tenth])),
            "last_10pct_s_per_clip": sum(per_clip[-tenth:]) / max(1, len(per_clip[-tenth:])),
            "peak_rss_mb": max((rss for _, rss in samples), default=0) / 1024, **peak,
            "memory_bytes_per_hour": sum(p.stat().st_size for p in memory.parent.glob(memory.name + "*"))
            / (duration / 3600)}


def open_and_search(memory: Path) -> dict:
    from m3mem import build
    from m3mem.config import Settings
    from m3mem.memory import Memory

    embedder = build.text_embedder(Settings())
    out = {}
    for label in ("first", "again"):  # the first opening saves nothing new; both should be alike
        t = time.perf_counter()
        mem = Memory.open(memory, embedder, readonly=True)
        out[f"open_s_{label}"] = time.perf_counter() - t
        t = time.perf_counter()
        mem.retriever(top_k=5).search("What did the woman say about the campaign?")
        out[f"first_search_s_{label}"] = time.perf_counter() - t
        mem.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.long", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--workdir", default="bench_out/hour", help="videos and memories (kept for reruns)")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    if not (MEDIA / "video").is_dir():
        print(f"shared media not found at {MEDIA} (set M3MEM_MEDIA)", file=sys.stderr)
        return 3
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    rows = {}
    for minutes in (2.0, args.minutes):
        video = work / f"video_{minutes:g}.mp4"
        if not video.is_file():
            tmp = work / f"video_{minutes:g}.tmp.mp4"
            build_video(tmp, minutes)
            tmp.replace(video)
        from preprocessing.video import probe

        duration = probe(video).duration
        name = f"{duration / 60:.1f} min"
        memory = work / f"memory_{minutes:g}.m3mem"
        for old in work.glob(f"memory_{minutes:g}.*"):
            old.unlink()
        print(f"ingesting {video} ({duration / 60:.1f} min)...", file=sys.stderr, flush=True)
        cache = work / f"cache_{minutes:g}_{os.getpid()}"
        try:
            rows[name] = watch_ingest(video, memory, cache, duration)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        rows[name].update(open_and_search(memory))
    print(f"{'video':<9} {'x real time':>11} {'start-up s':>10} {'s/clip first 10%':>16} {'last 10%':>8} "
          f"{'RSS MB 10/30/60 min':>20} {'MB per hour':>11} {'open s':>6} {'1st search s':>12}")
    for name, r in rows.items():
        rss = "/".join(f"{r[k]:.0f}" for k in ("peak_rss_mb_at_10_min", "peak_rss_mb_at_30_min",
                                               "peak_rss_mb_at_60_min") if k in r) or f"{r['peak_rss_mb']:.0f}"
        print(f"{name:<9} {r['x_realtime_with_startup']:11.2f} {r['startup_seconds']:10.1f} "
              f"{r['first_10pct_s_per_clip']:16.2f} {r['last_10pct_s_per_clip']:8.2f} {rss:>20} "
              f"{r['memory_bytes_per_hour'] / 1e6:11.2f} {r['open_s_again']:6.2f} {r['first_search_s_again']:12.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
