"""End-to-end ingest speed on the offline defaults: perception + identity + memorizer + store.

    python -m bench.ingest [VIDEO ...] [--json PATH]

Default video: the episode joined from ../shared/media (bench/episode.py). The perception cache is
off, so every stage runs; models load before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="*", help="videos (default: the episode built from ../shared/media)")
    ap.add_argument("--json", metavar="PATH", help="write the reports as JSON")
    args = ap.parse_args(argv)
    from m3mem import build
    from m3mem.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        videos = [Path(v) for v in args.videos]
        if not videos:
            from bench.episode import MEDIA
            from bench.episode import build as build_episode

            if not (MEDIA / "video").is_dir():
                print(f"no videos given and shared media not found at {MEDIA} (set M3MEM_MEDIA)", file=sys.stderr)
                return 3
            videos = [Path(tmp) / "episode.mp4"]
            build_episode(videos[0])
        t = time.perf_counter()
        ingestor = build.ingestor(Settings())
        ingestor.cache_dir = None  # every stage runs
        load = time.perf_counter() - t
        reports = []
        print(f"models loaded in {load:.1f} s")
        print(f"{'video':<28} {'seconds':>8} {'clips':>5} {'wall s':>7} {'s/clip':>7} {'x real time':>11}")
        for i, video in enumerate(videos):
            r = ingestor.run(video, Path(tmp) / f"m{i}.m3mem")
            reports.append(r.as_dict())
            print(f"{video.name:<28} {r.video_seconds:8.1f} {r.done:5d} {r.wall_seconds:7.1f} "
                  f"{r.wall_seconds / r.done:7.2f} {r.video_seconds / r.wall_seconds:11.2f}")
            for k, v in sorted(r.stages.items(), key=lambda kv: -kv[1]):
                print(f"    {k:<20} {v:7.2f} s  rtf {v / r.video_seconds:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model_load_seconds": load, "reports": reports}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
