"""Questions about the long benchmark video: retrieval recall and answer accuracy per type.

    python -m bench.long_qa [--questions FILE] [--memory MEMORY] [--workdir bench_out/long] [--answers] [--json PATH]

``bench/long_qa.json`` holds 47 questions in M3-Bench format about the long video
(bench.long_video), answered by what is said in it (human transcripts of the LRS2, Night of the
Living Dead and Obama recordings): needles early / middle / late, order and time ("right before",
"last"), multi-hop, ``before_clip``, off-screen voices, and questions whose answer is not in the
video. Each question also lists the clips that hold its answer ("clips"), from the video's
manifest. ``bench/long_qa_test.json`` (``--questions``) holds 22 more, written after the agent's
answer checks were tuned on the first set and never used to tune them: the test part; it was read
while later checks were built, so ``bench/long_qa_test2.json`` holds 14 fresh ones about lines no
other question asks about: the second test part.

Always reported, side by side: clip recall@1/2/5 of the dense, lexical (BM25) and fused rankers
on the question text (the agent's first search), per question kind. With ``--answers`` the
questions are then answered by the control agent through ``m3mem eval`` (offline defaults), and
accuracy per type is reported by the deterministic match judge (and the LLM judge).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
QA = HERE / "long_qa.json"
RANKERS = ("dense", "lexical", "hybrid")
KS = (1, 2, 5)


def questions(path: Path = QA) -> list[dict]:
    return next(iter(json.loads(path.read_text()).values()))["qa_list"]


def kind(q: dict) -> str:
    return next((t for t in q["type"] if t[:1].islower()), "other")  # our tags are lower case


def recall(memory: Path, qs: list[dict], lexical_weight: float | None = None) -> dict:
    """{ranker: {kind or "all": {k: recall}}} over questions whose answer is in the video."""
    from m3mem import build
    from m3mem.config import Settings
    from m3mem.retrieval import SearchOptions

    settings = Settings()
    out: dict = {}
    with build.open_memory(memory, settings, embedder=True) as mem:
        for ranker in RANKERS:
            hits: dict[str, dict[int, list[bool]]] = {}
            for q in qs:
                if not q["clips"]:
                    continue
                before = None if q.get("before_clip") is None else q["before_clip"] + 1
                opts = SearchOptions(top_k=max(KS), before_clip=before, ranker=ranker)
                if lexical_weight is not None:
                    opts = SearchOptions(top_k=max(KS), before_clip=before, ranker=ranker, lexical_weight=lexical_weight)
                ranked = mem.retriever().search(q["question"], opts).ranked
                for group in ("all", kind(q)):
                    for k in KS:
                        hits.setdefault(group, {}).setdefault(k, []).append(bool(set(ranked[:k]) & set(q["clips"])))
            out[ranker] = {g: {k: sum(v) / len(v) for k, v in ks.items()} for g, ks in hits.items()}
            out[ranker]["n"] = {g: len(ks[KS[0]]) for g, ks in hits.items()}
    return out


def table(rec: dict) -> str:
    groups = sorted(rec["dense"]["n"], key=lambda g: (g != "all", g))
    lines = [f"{'kind':<14} {'n':>3}  " + "  ".join(f"{r + ' R@' + str(k):>12}" for r in RANKERS for k in KS)]
    for g in groups:
        lines.append(f"{g:<14} {rec['dense']['n'][g]:>3}  " +
                     "  ".join(f"{rec[r][g][k]:12.2f}" for r in RANKERS for k in KS))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.long_qa", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", default=str(QA), help="question file (default: bench/long_qa.json; the test "
                    "parts: bench/long_qa_test.json, bench/long_qa_test2.json)")
    ap.add_argument("--memory", help="memory of the long video (default: WORKDIR/long.m3mem, ingested if missing)")
    ap.add_argument("--workdir", default="bench_out/long")
    ap.add_argument("--answers", action="store_true", help="also answer with the agent (m3mem eval; slow)")
    ap.add_argument("--lexical-weight", type=float, help="weight of BM25 in the fused ranking (default: the library's)")
    ap.add_argument("--json", metavar="PATH", help="write recall (and the eval report) as JSON")
    args = ap.parse_args(argv)
    from bench.long_video import MEDIA, ensure_memory

    if not (MEDIA / "video").is_dir():
        print(f"shared media not found at {MEDIA} (set M3MEM_MEDIA)", file=sys.stderr)
        return 3
    work = Path(args.workdir)
    memory = ensure_memory(work, Path(args.memory) if args.memory else None)
    qa = Path(args.questions)
    qs = questions(qa)
    rec = recall(memory, qs, args.lexical_weight)
    print(f"clip recall@k on {rec['dense']['n']['all']} questions with an answer in the video")
    print(table(rec))
    report = None
    if args.answers:
        out = work / "long_qa_results.jsonl"
        rep = work / "long_qa_report.json"
        cmd = [sys.executable, "-m", "m3mem.cli", "eval", str(qa), "--memories", str(memory.parent),
               "--out", str(out), "--report", str(rep), "--quiet"]
        if memory.name != "long.m3mem":
            print("--answers needs the memory at WORKDIR/long.m3mem (the annotation names it)", file=sys.stderr)
            return 2
        code = subprocess.run(cmd).returncode
        report = json.loads(rep.read_text()) if rep.is_file() else None
        if code != 0 or report is None:
            return code or 1
    if args.json:
        Path(args.json).write_text(json.dumps({"recall": rec, "eval": report}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
