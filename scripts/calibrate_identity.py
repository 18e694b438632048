"""Calibrate the cross-clip face identity threshold on labelled real clips.

    python scripts/calibrate_identity.py [../shared/media/video/vasp_ids] [--no-flip] [--json PATH]

Each folder is one person. Every clip is perceived with the offline face models; the largest
face cluster of each clip is matched, clip by clip, into one growing memory, and pairwise
precision/recall of "same node" against "same folder" is reported per threshold, for all people,
the first half of the folders (tuning) and the second half (test). ``--no-flip`` embeds the
aligned face alone, not averaged with its mirror image (the embedder before the flip).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from bench.media import MEDIA
from m3mem import build
from m3mem.config import Settings
from m3mem.graph import MemoryGraph
from m3mem.identity import match
from preprocessing import faces as face_ops
from preprocessing.faces import FaceOptions
from preprocessing.video import DecodeOptions, iter_clips


def clip_clusters(root: Path, fps: float, flip: bool = True) -> list[tuple[str, np.ndarray]]:
    model = build.face_model(Settings(faces="dlib" if flip else "dlib-single"))
    out = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        for video in sorted(person.glob("*.mp4")):
            frames, times = [], []
            for clip in iter_clips(video, DecodeOptions(fps=fps, clip_seconds=3600)):
                frames += clip.frames
                times += clip.frame_times
            clusters = face_ops.cluster(face_ops.detect(frames, times, model, FaceOptions()), frames, 1.0,
                                        FaceOptions())
            if clusters:
                out.append((person.name, clusters[0].embeddings))
    return out


def interleave(items: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """Order clips person by person in turn (A1 B1 C1 A2 B2 ...), as a video would mix people."""
    rank: dict[str, int] = {}
    keyed = []
    for label, emb in items:
        rank[label] = rank.get(label, -1) + 1
        keyed.append(((rank[label], label), (label, emb)))
    return [item for _, item in sorted(keyed, key=lambda kv: kv[0])]


def pairwise(labels: list[str], nodes: list[int | None]) -> tuple[float, float]:
    tp = fp = fn = 0
    for (la, na), (lb, nb) in itertools.combinations(zip(labels, nodes), 2):
        same_pred = na is not None and na == nb
        if same_pred and la == lb:
            tp += 1
        elif same_pred:
            fp += 1
        elif la == lb:
            fn += 1
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def evaluate(items: list[tuple[str, np.ndarray]], threshold: float, kind: str = "face",
             method: str = "mean") -> dict:
    """Ingest-order matching: each clip joins the node it matches or becomes a new node."""
    graph = MemoryGraph()
    nodes = []
    for _, emb in items:
        (node,) = match(graph, kind, [emb], threshold, method)
        if node is None:
            node = graph.add_entity(kind, emb)
        else:
            graph.update_entity(node, emb)
        nodes.append(node)
    p, r = pairwise([lab for lab, _ in items], nodes)
    return {"threshold": float(threshold), "method": method, "precision": p, "recall": r,
            "nodes": len(set(nodes)), "people": len({lab for lab, _ in items}), "clips": len(items),
            "nodes_per_person": len(set(nodes)) / len({lab for lab, _ in items})}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", default=str(MEDIA / "video/vasp_ids"))
    ap.add_argument("--fps", type=float, default=1.0)
    ap.add_argument("--no-flip", action="store_true", help="embed faces without their mirror image")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    items = interleave(clip_clusters(Path(args.root), args.fps, flip=not args.no_flip))
    people = sorted({label for label, _ in items}, key=lambda p: (len(p), p))  # ID2 before ID10
    tuning = set(people[: len(people) // 2])
    parts = {"all": items, "tuning": [i for i in items if i[0] in tuning],
             "test": [i for i in items if i[0] not in tuning]}
    rows = [{**evaluate(part, t), "part": name} for t in np.arange(0.86, 0.9751, 0.005).round(3)
            for name, part in parts.items()]
    print(f"tuning: {', '.join(sorted(tuning, key=lambda p: (len(p), p)))}; test: the other "
          f"{len(people) - len(tuning)} people")
    print(f"{'threshold':>9} " + " ".join(f"{n + ' P / R / nodes':>22}" for n in parts))
    for t in sorted({r['threshold'] for r in rows}):
        cells = [r for r in rows if r["threshold"] == t]
        print(f"{t:9.3f} " + " ".join(f"{r['precision']:>10.3f} / {r['recall']:.3f} / {r['nodes']:2d}" for r in cells))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
