"""``m3mem ingest``: videos, folders or manifests in, one memory per video out; serially, on a local
worker pool (``--workers N``) or on Ray (``--ray [ADDRESS]``), with one progress bar and a report."""

from __future__ import annotations

import sys
import time

from m3mem import archive
from m3mem.cli import EXIT_INPUT, EXIT_MODEL, EXIT_OK
from m3mem.cli.output import emit_json, safe, say
from m3mem.config import Settings


def _duration(video) -> float:
    from preprocessing.video import probe

    try:
        return probe(video).duration
    except Exception:  # noqa: BLE001  an unreadable video: its worker reports why
        return 0.0


class ArchiveProgress:
    """One bar over the archive, in seconds of video: videos done, failures so far, ETA."""

    def __init__(self, jobs: list[archive.Job], quiet: bool):
        from tqdm import tqdm

        self.durations = {job.id: _duration(job.video) for job in jobs}
        self.credited = dict.fromkeys(self.durations, 0.0)
        self.entries: dict[str, dict] = {}
        self.total = len(jobs)
        self.bar = tqdm(total=round(sum(self.durations.values()), 1), unit="s", desc="ingest", disable=quiet,
                        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s of video [{elapsed}<{remaining}{postfix}]")
        self._postfix()

    def __call__(self, event: dict) -> None:
        key = event["id"]
        if event["event"] == "clip" and event["total"]:
            self._credit(key, self.durations[key] * event["done"] / event["total"])
        elif event["event"] == "video":
            entry = self.entries[key] = event["entry"]
            self._credit(key, self.durations[key])
            if entry["status"] == "failed":
                self.bar.write(safe(f"m3mem: {entry['video']}: {entry['error_kind']}: {entry['error']} "
                                    f"(committed clips are kept; re-run to resume)"), file=sys.stderr)
            self._postfix()

    def _credit(self, key: str, seconds: float) -> None:
        delta = max(0.0, seconds - self.credited[key])
        self.credited[key] += delta
        self.bar.update(delta)

    def _postfix(self) -> None:
        failed = sum(1 for e in self.entries.values() if e["status"] == "failed")
        hours = sum(self.credited.values()) / 3600
        self.bar.set_postfix_str(f"{len(self.entries)}/{self.total} videos, {hours:.2f} h, {failed} failed")

    def close(self) -> None:
        self.bar.close()


def cmd_ingest(args, settings: Settings) -> int:
    jobs = archive.plan(args.videos, args.memory)
    if not jobs:
        print("m3mem: no videos found", file=sys.stderr)
        return EXIT_INPUT
    progress = ArchiveProgress(jobs, args.quiet)
    start = time.perf_counter()
    try:
        archive.Runner(settings, on_event=progress).run(jobs)
    finally:  # also when interrupted: the report lists what finished
        progress.close()
        entries = [progress.entries[j.id] for j in jobs if j.id in progress.entries]
        if args.report:
            archive.write_report(args.report, entries, time.perf_counter() - start)
    wall = time.perf_counter() - start
    if args.json:
        emit_json({"summary": archive.summary(entries, wall), "videos": entries})
    else:
        for entry in entries:
            _summary(entry)
    if any(e.get("fatal") for e in entries):
        return EXIT_MODEL
    return EXIT_INPUT if any(e["status"] == "failed" for e in entries) else EXIT_OK


def _summary(e: dict) -> None:
    if e["status"] == "failed":
        say(f"{e['video']}: FAILED ({e['error_kind']}); {e['memory']} keeps the clips committed before")
        return
    speed = f"{e['video_seconds'] / e['seconds']:.1f}x real time" if e["committed"] else "nothing new"
    say(f"{e['video']} -> {e['memory']}: {e['clips']} clips ({e['already']} already done, {e['cached']} "
        f"from cache), {e['faces']} faces, {e['voices']} voices, {e['characters']} characters, "
        f"{e['episodic']} episodic + {e['semantic']} semantic memories; {speed}")
    if e["stages"] and e["committed"]:
        say("  stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(e["stages"].items(), key=lambda kv: -kv[1])))
