"""Identity on the long benchmark video: are people found, kept apart, and linked face to voice?

    python -m bench.identity [--memory MEMORY] [--workdir bench_out/long] [--json PATH]

Without ``--memory`` it builds the long video (bench.long_video) and ingests it with ``m3mem
ingest`` on the offline defaults (perception cached in the work folder). It then reads the memory
and reports, for faces and for voices separately:

- coverage: share of the people on screen (faces) or speaking (voices) for >= 2 s who have a node
  (a node belongs to the person who fills most of its time);
- purity: share of each node's time that belongs to its main person (time outside any person,
  e.g. a face "seen" in a black stretch, counts against it);
- nodes per person: nodes whose main person is a scored person, per covered person;
- cross-clip pairwise precision / recall of "same person": each source clip a person appears in is
  one appearance, held by the node with most time in it; pairs of appearances of the same person
  held by one node are right, of different people wrong;
- equivalence precision / recall: face-voice pairs merged into one character that belong to the
  same person, and people with both a face and a voice node whose nodes are linked.

Node times come from the memories the offline memorizer writes ("<face_N> is on screen at
00:10-00:18", "<voice_N> says at 00:10-00:19: ..."); a memory without times counts the whole clip.
Parts with two people at once (a statement with a bystander, an interview, a debate) and the
off-screen recordings (several unnamed speakers each) are in the video but not scored, nor is the
second on either side of a cut (faces are sampled once a second).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

NOBODY = "(nobody)"
GUARD = 1.0  # seconds next to a cut are not scored: faces are sampled once a second
TARGETS = {"face": {"coverage": 0.95, "purity": 0.98, "nodes_per_person": 1.1, "pair_precision": 0.97,
                    "pair_recall": 0.90},
           "voice": {"coverage": 0.90, "purity": 0.95, "nodes_per_person": 1.3},
           "equivalence": {"precision": 0.95, "recall": 0.80}}
_TAGGED = re.compile(r"<(face|voice)_(\d+)> (?:is on screen at|says at) ((?:\d+:)?\d\d:\d\d(?:-(?:\d+:)?\d\d:\d\d)?"
                     r"(?:, (?:\d+:)?\d\d:\d\d(?:-(?:\d+:)?\d\d:\d\d)?)*)")
_ANY = re.compile(r"<(face|voice)_(\d+)>")


def _seconds(code: str) -> int:
    parts = [int(x) for x in code.split(":")]
    return parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) == 3 else 0)


def node_seconds(graph) -> dict[int, set[int]]:
    """Entity node id -> the whole seconds it is seen (faces) or heard (voices)."""
    out: dict[int, set[int]] = defaultdict(set)
    timed: set[tuple[int, int]] = set()
    for t in graph.texts.values():
        for kind, nid, spans in _TAGGED.findall(t.text):
            timed.add((int(nid), t.clip))
            for span in spans.split(", "):
                a, _, b = span.partition("-")
                out[int(nid)].update(range(_seconds(a), _seconds(b or a) + 1))
    for t in graph.texts.values():  # memories without times: the whole clip
        for kind, nid in _ANY.findall(t.text):
            if (int(nid), t.clip) not in timed and int(nid) in graph.entities:
                out[int(nid)].update(range(int(t.start), int(t.end)))
    return out


def truth(manifest: list[dict], kind: str) -> dict[int, tuple[str, int]]:
    """Second -> (person or NOBODY, part index), over scored parts only."""
    key = "faces" if kind == "face" else "voices"
    out = {}
    for i, part in enumerate(manifest):
        if not part["scored"]:
            continue
        who = part[key][0] if part[key] else NOBODY
        for s in range(math.ceil(part["start"] + GUARD), math.floor(part["end"] - GUARD)):
            out[s] = (who, i)
    return out


def score_kind(graph, manifest: list[dict], kind: str, seconds: dict[int, set[int]]) -> dict:
    gt = truth(manifest, kind)
    nodes = {n: seconds.get(n, set()) for n in graph.entity_ids(kind)}
    counts = {n: Counter(gt[s][0] for s in secs if s in gt) for n, secs in nodes.items()}
    main = {n: next((p for p, _ in c.most_common() if p != NOBODY), NOBODY) for n, c in counts.items() if c}
    people_time = Counter(p for p, _ in gt.values() if p != NOBODY)
    people = {p for p, t in people_time.items() if t >= 2}
    covered = {p for p in main.values() if p in people}
    total = sum(sum(c.values()) for c in counts.values())
    purity = sum(c[main[n]] for n, c in counts.items() if c) / total if total else None
    # appearances: each scored part of one person, held by the node with most time in it
    per_part: dict[int, Counter] = defaultdict(Counter)
    for n, secs in nodes.items():
        for s in secs:
            if s in gt and gt[s][0] != NOBODY:
                per_part[gt[s][1]][n] += 1
    key = "faces" if kind == "face" else "voices"
    apps = [(manifest[i][key][0], per_part[i].most_common(1)[0][0] if per_part[i] else None)
            for i, part in enumerate(manifest) if part["scored"] and part[key]]
    tp = fp = fn = 0
    for (pa, na), (pb, nb) in itertools.combinations(apps, 2):
        same_node = na is not None and na == nb
        tp += same_node and pa == pb
        fp += same_node and pa != pb
        fn += pa == pb and not same_node
    owned = [n for n, p in main.items() if p in people]
    return {"people": len(people), "nodes": len(nodes), "coverage": len(covered) / len(people) if people else None,
            "purity": purity, "nodes_per_person": len(owned) / len(covered) if covered else None,
            "pair_precision": tp / (tp + fp) if tp + fp else None, "pair_recall": tp / (tp + fn) if tp + fn else None,
            "missed": sorted(people - covered), "main": {str(n): p for n, p in main.items()}}


def score_equivalence(graph, face: dict, voice: dict) -> dict:
    fmain = {int(n): p for n, p in face["main"].items()}
    vmain = {int(n): p for n, p in voice["main"].items()}
    pairs = right = 0
    linked: set[str] = set()
    for members in graph.characters().values():
        fs = [m for m in members if m in fmain]
        vs = [m for m in members if m in vmain]
        for f, v in itertools.product(fs, vs):
            pairs += 1
            if fmain[f] == vmain[v] and fmain[f] != NOBODY:
                right += 1
                linked.add(fmain[f])
    both = (set(fmain.values()) & set(vmain.values())) - {NOBODY}
    return {"pairs": pairs, "precision": right / pairs if pairs else None,
            "recall": len(linked & both) / len(both) if both else None, "people_with_both": len(both)}


def score(memory: Path, manifest: list[dict]) -> dict:
    from m3mem.memory import Memory

    with Memory.open(memory, readonly=True) as mem:
        g = mem.graph
        seconds = node_seconds(g)
        face = score_kind(g, manifest, "face", seconds)
        voice = score_kind(g, manifest, "voice", seconds)
        return {"face": face, "voice": voice, "equivalence": score_equivalence(g, face, voice),
                "characters": len(g.characters())}


def table(rep: dict) -> str:
    def f(x):
        return "-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)

    lines = [f"{'':<12} {'people':>6} {'nodes':>5} {'coverage':>8} {'purity':>7} {'nodes/p':>7} "
             f"{'pair P':>7} {'pair R':>7}"]
    for kind in ("face", "voice"):
        r = rep[kind]
        lines.append(f"{kind:<12} {r['people']:>6} {r['nodes']:>5} {f(r['coverage']):>8} {f(r['purity']):>7} "
                     f"{f(r['nodes_per_person']):>7} {f(r['pair_precision']):>7} {f(r['pair_recall']):>7}")
        if r["missed"]:
            lines.append(f"  missed: {', '.join(r['missed'])}")
    e = rep["equivalence"]
    lines.append(f"equivalences: {e['pairs']} face-voice pairs, precision {f(e['precision'])}, recall "
                 f"{f(e['recall'])} (of {e['people_with_both']} people with both); {rep['characters']} characters")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.identity", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memory", help="score this memory of the long video (default: ingest it)")
    ap.add_argument("--workdir", default="bench_out/long", help="where the video, cache and memory go")
    ap.add_argument("--json", metavar="PATH", help="write the report as JSON")
    args = ap.parse_args(argv)
    from bench.long_video import MEDIA, ensure_memory

    if not (MEDIA / "video").is_dir():
        print(f"shared media not found at {MEDIA} (set M3MEM_MEDIA)", file=sys.stderr)
        return 3
    work = Path(args.workdir)
    memory = ensure_memory(work, Path(args.memory) if args.memory else None)
    manifest = json.loads((work / "long.json").read_text())
    rep = score(memory, manifest)
    rep["targets"] = TARGETS
    print(table(rep))
    if args.json:
        Path(args.json).write_text(json.dumps(rep, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
