"""Import speed of M3-Agent memory graphs: a pickle shaped like theirs (``mmagent.videograph``'s
``VideoGraph`` with ``VideoGraph.Node`` objects; per 30 s clip 15 episodic + 8 semantic memories
about 8 people, 512-d face and 192-d voice embeddings, 3072-d text embeddings as lists) imported
with the packaged text embedder.

    python -m bench.import_m3agent [--hours 1] [--json PATH]

The pickle is written by stand-in classes registered under M3-Agent's module and class names, so its
bytes name exactly what theirs do (tests/data/m3agent/small_graph.pkl is made by their own code).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np


def fake_graph(hours: float, seed: int = 0):
    module = types.ModuleType("mmagent.videograph")

    class VideoGraph:
        class Node:
            def __init__(self, node_id, node_type):
                self.id, self.type, self.embeddings, self.metadata = node_id, node_type, [], {}

    VideoGraph.__module__ = VideoGraph.Node.__module__ = module.__name__
    VideoGraph.__qualname__, VideoGraph.Node.__qualname__ = "VideoGraph", "VideoGraph.Node"
    module.VideoGraph = VideoGraph
    parent = sys.modules.setdefault("mmagent", types.ModuleType("mmagent"))
    parent.videograph = sys.modules[module.__name__] = module
    rng = np.random.default_rng(seed)
    g = VideoGraph()
    g.nodes, g.edges, g.text_nodes_by_clip, g.character_mappings = {}, {}, {}, {}
    people = []
    for p in range(8):
        for kind, dim in (("img", 512), ("voice", 192)):
            n = VideoGraph.Node(len(g.nodes), kind)
            n.embeddings = [rng.standard_normal(dim).astype(np.float32) for _ in range(3)]
            n.metadata["contents"] = [f"line {p}"] if kind == "voice" else []
            g.nodes[n.id] = n
        people.append((n.id - 1, n.id))
    for clip in range(int(hours * 120)):
        for k in range(23):
            face, voice = people[int(rng.integers(8))]
            n = VideoGraph.Node(len(g.nodes), "episodic" if k < 15 else "semantic")
            n.metadata = {"timestamp": clip, "contents": [
                f"<face_{face}> does thing {k} in clip {clip} and says something to <voice_{voice}>." if k < 15
                else f"<face_{face}> tends to act in way {clip}-{k}."]}
            n.embeddings = [rng.standard_normal(3072).tolist()]
            g.nodes[n.id] = n
            g.text_nodes_by_clip.setdefault(clip, []).append(n.id)
    return g


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.import_m3agent", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    from m3mem import build
    from m3mem.config import Settings
    from m3mem.exchange import import_m3agent, read_m3agent

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.pkl"
        path.write_bytes(pickle.dumps(fake_graph(args.hours)))
        embedder = build.text_embedder(Settings())
        t = time.perf_counter()
        read_m3agent(path)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        counts = import_m3agent(path, Path(tmp) / "m.m3mem", embedder)
        total = time.perf_counter() - t
        row = {"hours": args.hours, "pickle_mb": path.stat().st_size / 1e6, "read_s": read_s,
               "import_s": total, **counts}
    print(f"{args.hours:g} h graph ({row['pickle_mb']:.0f} MB pickle, {counts['episodic'] + counts['semantic']} "
          f"memories): safe read {read_s:.1f} s, import {total:.1f} s (text embedder loaded before)")
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
