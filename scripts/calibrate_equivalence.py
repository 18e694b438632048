"""Calibrate the face-voice equivalence rule (seconds a voice must speak while one face is alone on
screen) on a tuning part and a test part.

    python scripts/calibrate_equivalence.py [--seconds 4 3 2] [--workdir bench_out/long] [--json PATH]

Tuning: the long identity benchmark video (bench.long_video, 23 people who speak on screen),
scored by bench.identity (equivalence precision / recall, and the voice figures the equivalences
feed through the audio-visual voice rule). Test: the episode video (bench.episode, 11 real clips
of 9 people, built fresh), scored the same way from its segment list. Perception is cached in the
work folders, so each value re-runs the memorizer and identity only.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from bench.episode import build as build_episode
from bench.identity import score
from bench.long_video import MEDIA, ensure
from m3mem import build
from m3mem.config import Settings
from m3mem.ingest import Ingestor
from models.memorizer import PerceptionMemorizer, PerceptionMemorizerOptions


def ingest(ingestor: Ingestor, video: Path, memory: Path, cache: Path, seconds: float) -> None:
    """A fresh memory of ``video`` from its cached perception, with the rule at ``seconds``."""
    for old in memory.parent.glob(memory.name + "*"):
        old.unlink()
    replace(ingestor, memorizer=PerceptionMemorizer(PerceptionMemorizerOptions(equivalence_seconds=seconds)),
            cache_dir=cache / "perception").run(video, memory)


def episode_manifest(segments) -> list[dict]:
    """The episode's segments in bench.identity's manifest form: one person on screen and speaking
    in each; the Obama segment (Biden beside him) is not scored, like two-person parts there."""
    return [{"source": s.source, "faces": [s.person], "voices": [s.person], "scored": s.person != "obama",
             "start": s.start, "end": s.end} for s in segments]


def _f(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, nargs="+", default=[4.0, 3.0, 2.0])
    ap.add_argument("--workdir", default="bench_out/long", help="the long video, its manifest and cache")
    ap.add_argument("--episode-dir", default="bench_out/episode_eq", help="where the episode is built")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    if not (MEDIA / "video").is_dir():
        print(f"shared media not found at {MEDIA} (set M3MEM_MEDIA)", file=sys.stderr)
        return 3
    work, epi = Path(args.workdir), Path(args.episode_dir)
    work.mkdir(parents=True, exist_ok=True)
    epi.mkdir(parents=True, exist_ok=True)
    video, _ = ensure(work)
    manifest = json.loads((work / "long.json").read_text())
    episode = epi / "episode.mp4"
    segments = build_episode(episode)
    ingestor = build.ingestor(Settings())
    rows = []
    for sec in args.seconds:
        row = {"equivalence_seconds": sec}
        for part, folder, clip_video, truth in (("tuning", work, video, manifest),
                                                ("test", epi, episode, episode_manifest(segments))):
            memory = folder / f"equivalence-{sec:g}.m3mem"
            ingest(ingestor, clip_video, memory, folder / "cache", sec)
            row[part] = score(memory, truth)
        rows.append(row)
    print(f"{'seconds':>7} {'part':>6} {'pairs':>5} {'eq P':>5} {'eq R':>5} {'voice nodes/p':>13} "
          f"{'voice pair P':>12} {'voice pair R':>12} {'face nodes/p':>12}")
    for r in rows:
        for part in ("tuning", "test"):
            e, v, f = r[part]["equivalence"], r[part]["voice"], r[part]["face"]
            print(f"{r['equivalence_seconds']:7g} {part:>6} {e['pairs']:5d} {_f(e['precision']):>5} {_f(e['recall']):>5} "
                  f"{_f(v['nodes_per_person']):>13} {_f(v['pair_precision']):>12} {_f(v['pair_recall']):>12} "
                  f"{_f(f['nodes_per_person']):>12}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
