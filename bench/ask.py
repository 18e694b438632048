"""Question latency with the offline default chat model, split into retrieval and model time.

    python -m bench.ask [--memory PATH] [--questions QA.json] [--json PATH]

Default: the episode memory and questions of ``python -m bench.episode_eval`` (run that first).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ask", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memory", default="bench_out/episode/episode.m3mem")
    ap.add_argument("--questions", default=str(HERE / "episode_qa.json"))
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    if not Path(args.memory).is_file():
        print(f"{args.memory}: no memory (run python -m bench.episode_eval first)", file=sys.stderr)
        return 3
    from m3mem import build
    from m3mem.config import Settings
    from m3mem.evaluate import load_annotations

    s = Settings()
    t = time.perf_counter()
    chat = build.chat_model(s)
    load = time.perf_counter() - t
    rows = []
    with build.open_memory(args.memory, s, embedder=True) as mem:
        agent = build.agent(mem, chat, s)
        for q in load_annotations(args.questions):
            a = agent.ask(q.question)
            rows.append({"question": q.question, **a.timings, "rounds": len(a.rounds)})
    ret = [r["retrieval"] for r in rows]
    mod = [r["model"] for r in rows]
    tot = [r["total"] for r in rows]
    share = sum(ret) / sum(tot)
    print(f"chat model {chat.name} loaded in {load:.1f} s; {len(rows)} questions")
    print(f"{'':<10} {'p50':>9} {'mean':>9} {'max':>9}")
    for name, xs, unit in (("retrieval", ret, 1000), ("model", mod, 1), ("total", tot, 1)):
        u = "ms" if unit == 1000 else "s"
        print(f"{name:<10} {statistics.median(xs) * unit:8.2f}{u} {statistics.mean(xs) * unit:8.2f}{u} "
              f"{max(xs) * unit:8.2f}{u}")
    print(f"retrieval share of question latency: {100 * share:.2f}%")
    if args.json:
        Path(args.json).write_text(json.dumps({"load_seconds": load, "retrieval_share": share, "questions": rows},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
