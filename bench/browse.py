"""Memory browser at scale: a synthetic memory shaped like real ones (bench.retrieval's: per 30 s
clip 15 episodic + 8 semantic memories about 8 recurring characters, face crops from
../shared/media/faces), its site generated, pages weighed, and pages drawn in headless Chromium.

    python -m bench.browse [--hours 1 10] [--json PATH]

Draw time = Chromium's wall time to screenshot the page minus its time to screenshot an empty
page, measured in the same run (the browser's own start-up taken out).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.media import MEDIA
from bench.retrieval import CHARACTERS, CLIPS_PER_HOUR, Synth


def synthetic_memory(path: Path, hours: float, seed: int = 0):
    from m3mem.memory import Memory

    crops = sorted((MEDIA / "faces").rglob("*.jpg"))[:CHARACTERS] if (MEDIA / "faces").is_dir() else []
    synth, rng = Synth(seed), np.random.default_rng(seed + 1)
    mem = Memory.open(path, None, create=True)
    with mem.clip(0, 0.0, 30.0) as w:
        faces = [w.add_entity("face", rng.standard_normal((3, 128)), [crops[c].read_bytes()] if crops else [])
                 for c in range(CHARACTERS)]
        voices = [w.add_entity("voice", rng.standard_normal((3, 256)), [f"line {c} of this voice"])
                  for c in range(CHARACTERS)]
    for clip in range(1, int(hours * CLIPS_PER_HOUR)):
        with mem.clip(clip, clip * 30.0, clip * 30.0 + 30.0) as w:
            for kind, text, emb, _ in synth.clip(clip, faces, voices):
                w.add_text(kind, text, emb)
    return mem


def draw_seconds(browser: str, url: str, shot: Path) -> float:
    t = time.perf_counter()
    subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900",
                    f"--screenshot={shot}", url], capture_output=True, timeout=120)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.browse", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, nargs="+", default=[1, 10])
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    from m3mem.browse import build_site

    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "empty.html").write_text("<!doctype html><title>x</title>")
        for hours in args.hours:
            mem = synthetic_memory(tmp / f"{hours}.m3mem", hours)
            t = time.perf_counter()
            info = build_site(mem.graph, tmp / f"site{hours}", f"{hours} h")
            gen = time.perf_counter() - t
            row = {"hours": hours, "texts": len(mem.graph.texts), "generate_s": gen, **info}
            mem.close()
            if browser:
                base = min(draw_seconds(browser, (tmp / "empty.html").as_uri(), tmp / "e.png") for _ in range(3))
                for page in ("index.html", "timeline-0.html", "search.html"):
                    s = min(draw_seconds(browser, (tmp / f"site{hours}" / page).as_uri(), tmp / "p.png") for _ in range(3))
                    row[f"draw_{page.split('.')[0].replace('-0', '')}_s"] = max(0.0, s - base)
                row["browser_start_s"] = base
            rows.append(row)
            print(f"  {hours} h: {gen:.1f} s", file=sys.stderr)
    print(f"{'hours':>5} {'memories':>8} {'generate s':>10} {'pages':>6} {'MB':>6} {'largest page MB':>15} "
          f"{'draw characters s':>17} {'draw timeline s':>15}")
    for r in rows:
        print(f"{r['hours']:5g} {r['texts']:8d} {r['generate_s']:10.1f} {r['pages']:6d} {r['bytes'] / 1e6:6.1f} "
              f"{r['largest_page_bytes'] / 1e6:15.2f} {r.get('draw_index_s', float('nan')):17.2f} "
              f"{r.get('draw_timeline_s', float('nan')):15.2f}")
    if not browser:
        print("no headless browser found: draw times not measured", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
