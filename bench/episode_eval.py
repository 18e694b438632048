"""Evaluate the project's own episode benchmark end to end on the offline defaults.

    python -m bench.episode_eval [--work DIR] [--judge both] [--json]

Builds the episode video from ../shared/media (bench/episode.py) unless present in DIR, then
runs ``m3mem eval bench/episode_qa.json --videos DIR --memories DIR`` (ingesting the episode on
the first run), writing results.jsonl, report.json and accuracy.png in DIR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
QA = HERE / "episode_qa.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.episode_eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="bench_out/episode", help="working folder (default bench_out/episode)")
    ap.add_argument("--judge", default="both", choices=["llm", "match", "both"])
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)
    from bench.episode import MEDIA, build
    from m3mem.cli import main as cli

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    video = work / "episode.mp4"
    if not video.is_file():
        if not (MEDIA / "video").is_dir():
            print(f"shared media not found at {MEDIA}", file=sys.stderr)
            return 3
        tmp = work / "episode.tmp.mp4"
        build(tmp)
        tmp.replace(video)
    return cli(["eval", str(QA), "--videos", str(work), "--memories", str(work), "--out", str(work / "results.jsonl"),
                "--report", str(work / "report.json"), "--chart", str(work / "accuracy.png"),
                "--judge", args.judge, "--quiet"] + (["--json"] if args.json else []))


if __name__ == "__main__":
    sys.exit(main())
