"""Retrieval, insert, open and size benchmark on synthetic memories shaped like real ones.

    python -m bench.retrieval [--hours 1 4 10 100] [--json PATH]

One memory is grown clip by clip (30 s clips; per clip ~15 episodic + ~8 semantic memories about
~8 recurring characters, 384-d embeddings with the cosine structure of sentence embeddings); at
each size the run measures, side by side on the same memory: our clip-wise search, the
reference-style search (bench/baseline.py), a vectorised brute-force matmul, per-clip insert time
early and late, time to open the file and search once (in the benchmark's process, which also holds
the writer's copy, and in fresh processes, as a user's question opens it), and bytes on disk per
video hour.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.baseline import ReferenceGraph
from m3mem.memory import Memory
from m3mem.retrieval import SearchOptions

DIM = 384
CLIPS_PER_HOUR = 120
CHARACTERS = 8


class Synth:
    """Embeddings: 0.35 * topic + 0.45 * character + noise, so same-character memories have
    cosine ~0.25, others ~0.1, and ~10% of semantic memories are paraphrases (cosine > 0.9)."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.topic = self._unit(DIM)
        self.chars = [self._unit(DIM) for _ in range(CHARACTERS)]
        self.semantic_seen: list[tuple[str, np.ndarray]] = []

    def _unit(self, d: int) -> np.ndarray:
        v = self.rng.standard_normal(d).astype(np.float32)
        return v / np.linalg.norm(v)

    def text_vec(self, char: int) -> np.ndarray:
        v = 0.35 * self.topic + 0.45 * self.chars[char] + self._unit(DIM)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def clip(self, clip: int, faces: list[int], voices: list[int]):
        """(kind, text, embedding, entity ids) for one clip's memories."""
        out = []
        for i in range(15):
            c = int(self.rng.integers(CHARACTERS))
            out.append(("episodic", f"<face_{faces[c]}> does thing {i} in clip {clip}, "
                        f"saying something to <voice_{voices[(c + 1) % CHARACTERS]}>.",
                        self.text_vec(c), [faces[c], voices[(c + 1) % CHARACTERS]]))
        for i in range(8):
            if self.semantic_seen and self.rng.random() < 0.1:
                text, v = self.semantic_seen[int(self.rng.integers(len(self.semantic_seen)))]
                v = v + 0.1 * self._unit(DIM)
                out.append(("semantic", text, (v / np.linalg.norm(v)).astype(np.float32), None))
                continue
            c = int(self.rng.integers(CHARACTERS))
            text = f"<face_{faces[c]}> tends to act in way {clip}-{i}."
            v = self.text_vec(c)
            self.semantic_seen.append((text, v))
            out.append(("semantic", text, v, [faces[c]]))
        return out

    def query(self) -> np.ndarray:
        return self.text_vec(int(self.rng.integers(CHARACTERS)))


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs), q))


def _time_ms(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def _file_bytes(path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


_FRESH = """
import json, sys, time
import numpy as np
from m3mem.memory import Memory
from m3mem.retrieval import SearchOptions
t = time.perf_counter()
mem = Memory.open(sys.argv[1], readonly=True)
opened = time.perf_counter() - t
mem.retriever().clip_search("q", SearchOptions(top_k=5), embedding=np.array(json.loads(sys.argv[2]), np.float32))
print(json.dumps([opened, time.perf_counter() - t]))
"""


def fresh_open(path: Path, query: np.ndarray, runs: int = 3) -> tuple[float, float]:
    """Median (open s, open + first search s) in fresh processes (imports not counted), as a
    user's ``m3mem ask`` opens a memory."""
    got = [json.loads(subprocess.run([sys.executable, "-c", _FRESH, str(path), json.dumps(query.tolist())],
                                     capture_output=True, text=True, check=True).stdout) for _ in range(runs)]
    return statistics.median(g[0] for g in got), statistics.median(g[1] for g in got)


def measure(mem: Memory, ref: ReferenceGraph, synth: Synth, path: Path, hours: float,
            inserts: list[float], queries: int) -> dict:
    ret = mem.retriever()
    opts = SearchOptions(top_k=5)
    qs = [synth.query() for _ in range(queries)]
    for q in qs[:5]:  # warm-up
        ret.clip_search("q", opts, embedding=q)
    it = iter(qs * 2)
    ours = _time_ms(lambda: ret.clip_search("q", opts, embedding=next(it)), queries)
    n_ref = max(5, min(queries, int(2000 / max(hours, 1))))
    it = iter(qs * 2)
    base = _time_ms(lambda: ref.clip_search(next(it), []), n_ref)
    mat = mem.index.vectors[: mem.index.size]
    it = iter(qs * 2)
    flat = _time_ms(lambda: np.argsort(-(mat @ next(it)))[:64], queries)
    face = next(iter(mem.graph.entities))
    it = iter(qs * 2)
    ent_ours = _time_ms(lambda: ret.clip_search(f"<face_{face}>", opts, embedding=next(it)), queries)
    it = iter(qs * 2)
    ent_base = _time_ms(lambda: ref.clip_search(next(it), [face]), max(3, n_ref // 4))
    size = _file_bytes(path)
    t = time.perf_counter()
    again = Memory.open(path, readonly=True)  # as a user asking a question opens it
    open_s = time.perf_counter() - t
    again.retriever().clip_search("q", opts, embedding=qs[0])  # builds the HNSW graph if due
    first_search_s = time.perf_counter() - t
    again.close()
    fresh_s, fresh_search_s = fresh_open(path, qs[0])
    return {
        "hours": hours, "clips": len(mem.graph.clips), "text_nodes": len(mem.graph.texts),
        "index": mem.index.kind,
        "search_p50_ms": _pct(ours, 50), "search_p95_ms": _pct(ours, 95),
        "baseline_p50_ms": _pct(base, 50), "baseline_p95_ms": _pct(base, 95),
        "speedup_p50": _pct(base, 50) / _pct(ours, 50),
        "numpy_flat_p50_ms": _pct(flat, 50),
        "entity_search_p50_ms": _pct(ent_ours, 50), "entity_baseline_p50_ms": _pct(ent_base, 50),
        "insert_ms_first": statistics.mean(inserts[:20]),  # the first clips of the video
        "insert_ms_last": statistics.mean(inserts[-20:]),  # the clips just before this size
        "open_s": open_s, "open_and_first_search_s": first_search_s,
        "fresh_open_s": fresh_s, "fresh_open_and_first_search_s": fresh_search_s, "bytes_per_hour": size / hours,
    }


def run(hours_list: list[float], queries: int, workdir: Path, seed: int = 0) -> list[dict]:
    synth = Synth(seed)
    path = workdir / "bench.m3mem"
    mem = Memory.open(path, None, create=True)
    ref = ReferenceGraph()
    rng = np.random.default_rng(seed + 1)
    with mem.clip(0, 0.0, 30.0) as w:
        faces = [w.add_entity("face", rng.standard_normal((3, 128))) for _ in range(CHARACTERS)]
        voices = [w.add_entity("voice", rng.standard_normal((3, 256))) for _ in range(CHARACTERS)]
    for e in faces + voices:
        ref.add_entity(e, mem.graph.entities[e].kind, list(mem.graph.entities[e].embeddings))
    inserts: list[float] = []
    results = []
    targets = sorted(hours_list)
    clip = 1
    for hours in targets:
        while clip < hours * CLIPS_PER_HOUR:
            items = synth.clip(clip, faces, voices)
            t = time.perf_counter()
            with mem.clip(clip, clip * 30.0, clip * 30.0 + 30.0) as w:
                for c in range(CHARACTERS // 4):  # a few faces/voices seen again each clip
                    w.update_entity(faces[(clip + c) % CHARACTERS], rng.standard_normal((1, 128)))
                for kind, text, emb, _ in items:
                    w.add_text(kind, text, emb)
            inserts.append((time.perf_counter() - t) * 1e3)
            for r in w.results:
                if r.inserted:
                    node = mem.graph.texts[r.node_id]
                    ref.add_text(node.id, node.kind, node.text, clip, node.embedding, list(node.entities))
            clip += 1
        row = measure(mem, ref, synth, path, hours, inserts, queries)
        results.append(row)
        print(_row(row), file=sys.stderr, flush=True)
    mem.close()
    return results


COLUMNS = [("hours", "{:g}"), ("text_nodes", "{:d}"), ("index", "{}"), ("search_p50_ms", "{:.2f}"),
           ("search_p95_ms", "{:.2f}"), ("baseline_p50_ms", "{:.1f}"), ("speedup_p50", "{:.0f}x"),
           ("numpy_flat_p50_ms", "{:.2f}"), ("entity_search_p50_ms", "{:.2f}"),
           ("entity_baseline_p50_ms", "{:.1f}"), ("insert_ms_first", "{:.2f}"),
           ("insert_ms_last", "{:.2f}"), ("open_s", "{:.2f}"), ("open_and_first_search_s", "{:.2f}"), ("fresh_open_s", "{:.2f}"),
           ("fresh_open_and_first_search_s", "{:.2f}"), ("bytes_per_hour", "{:.3g}")]


def _row(r: dict) -> str:
    return "  ".join(f.format(r[k]).rjust(max(len(k), 8)) for k, f in COLUMNS)


def table(results: list[dict]) -> str:
    head = "  ".join(k.rjust(max(len(k), 8)) for k, _ in COLUMNS)
    return "\n".join([head] + [_row(r) for r in results])


def _environment() -> dict:
    import faiss

    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        sha = ""
    return {"git": sha, "python": platform.python_version(), "faiss": faiss.__version__,
            "cpus": os.cpu_count(), "machine": platform.machine()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.retrieval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hours", type=float, nargs="+", default=[1, 4, 10, 100],
                   help="memory sizes in video hours, measured as one memory grows (default: 1 4 10 100)")
    p.add_argument("--queries", type=int, default=200, help="timed queries per size (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--workdir", metavar="DIR", help="where to build the memory (default: a temp dir)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        results = run(args.hours, args.queries, Path(tmp), args.seed)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": _environment(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
