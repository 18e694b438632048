"""``m3mem ingest``: videos (or folders of videos) in, one memory per video out."""

from __future__ import annotations

import sys
from pathlib import Path

from m3mem import build
from m3mem.cli import EXIT_INPUT, EXIT_OK
from m3mem.cli.output import emit_json, say
from m3mem.config import Settings
from m3mem.errors import InputError, ModelError

VIDEO_EXTS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv", ".ts"}


def find_videos(inputs: list[str]) -> tuple[list[Path], bool]:
    """Video files named or found in folders (recursive, sorted), and whether there are (or may
    be) several."""
    out, several = [], len(inputs) > 1
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            several = True
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTS and f.is_file())
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such video file or folder")
    return out, several


def cmd_ingest(args, settings: Settings) -> int:
    from tqdm import tqdm

    videos, several = find_videos(args.videos)
    if not videos:
        print("m3mem: no videos found", file=sys.stderr)
        return EXIT_INPUT
    target = Path(args.memory)
    if several or target.is_dir():
        target.mkdir(parents=True, exist_ok=True)
    ingestor = build.ingestor(settings)
    reports, failed = [], []
    for video in videos:
        memory = target / f"{video.stem}.m3mem" if target.is_dir() else target
        bar = tqdm(desc=video.name, unit="clip", disable=args.quiet, leave=True)

        def progress(done: int, total: int, stages: dict, bar=bar) -> None:
            bar.total = total
            bar.n = done
            top = sorted(stages.items(), key=lambda kv: -kv[1])[:3]
            bar.set_postfix_str(" ".join(f"{k} {v:.0f}s" for k, v in top))

        try:
            report = ingestor.run(video, memory, progress)
        except InputError as e:  # this video is bad: say so, go on with the others
            print(f"m3mem: {e} (committed clips are kept; re-run to resume)", file=sys.stderr)
            failed.append(str(video))
            continue
        except ModelError as e:  # the model is bad: every further video would fail too
            raise type(e)(f"{e} (committed clips are kept; re-run to resume)") from e
        finally:
            bar.close()
        reports.append(report.as_dict())
        if not args.json:
            _summary(video, memory, report)
    if args.json:
        emit_json({"reports": reports, "failed": failed})
    return EXIT_INPUT if failed else EXIT_OK


def _summary(video: Path, memory: Path, r) -> None:
    per = f"{r.wall_seconds / r.done:.1f} s per clip, {r.video_seconds / r.wall_seconds:.1f}x real time" \
        if r.done else "nothing new"
    say(f"{video} -> {memory}: {r.clips} clips ({r.skipped} already done, {r.cached} from cache), "
        f"{r.faces} faces, {r.voices} voices, {r.characters} characters, "
        f"{r.episodic} episodic + {r.semantic} semantic memories; {per}")
    if r.stages:
        say("  stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(r.stages.items(), key=lambda kv: -kv[1])))
