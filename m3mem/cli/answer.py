"""``m3mem ask`` and ``m3mem eval``: questions answered by the control agent."""

from __future__ import annotations

import json
from pathlib import Path

from m3mem import build
from m3mem.cli import EXIT_INPUT, EXIT_OK
from m3mem.cli.output import emit_json, say, span
from m3mem.config import Settings
from models.chat import ChatError


def cmd_ask(args, settings: Settings) -> int:
    with build.open_memory(args.memory, settings, embedder=True) as mem:
        agent = build.agent(mem, build.chat_model(settings), settings)
        questions = [args.question] if args.question else None
        while True:
            if questions is None:
                try:
                    q = input("question> ").strip()
                except EOFError:
                    return 0
                if not q:
                    continue
            elif not questions:
                return 0
            else:
                q = questions.pop()
            a = agent.ask(q, before_clip=args.before_clip)
            if args.json:
                emit_json(a.as_dict())
                continue
            say(a.answer)
            if a.support < 0.5:
                say("  (most of this answer is not in the evidence the model was shown: treat it with care)")
            for e in a.evidence[:3]:
                say(f"  evidence CLIP_{e.clip} {span(e.start, e.end)}")
            queries = [r.content for r in a.rounds if r.action == "search"]
            say(f"  {len(a.rounds)} rounds, searched {queries}; model {a.timings['model']:.1f}s, "
                f"retrieval {a.timings['retrieval'] * 1000:.0f}ms")


def cmd_eval(args, settings: Settings) -> int:
    from tqdm import tqdm

    from m3mem.evaluate import EvalOptions, Evaluator, chart, load_annotations, read_results, report, table

    questions = load_annotations(args.annotations)[: args.limit]
    embedder, chat = build.text_embedder(settings), build.chat_model(settings)
    judges = build.judges(args.judge, chat)
    ingestor = None

    def ingest(video: Path, memory: Path) -> None:
        nonlocal ingestor
        if ingestor is None:
            ingestor = build.ingestor(settings, embedder)
        memory.parent.mkdir(parents=True, exist_ok=True)
        ingestor.run(video, memory)

    evaluator = Evaluator(lambda path: build.agent(build.open_memory(path, settings, embedder), chat, settings),
                          judges, EvalOptions(Path(args.memories), Path(args.videos) if args.videos else None,
                                              Path(args.out), args.workers), ingest)
    bar = tqdm(total=len(questions), desc="questions", unit="q", disable=args.quiet)
    try:
        counts = evaluator.run(questions, progress=bar.update)
    except ChatError as e:
        raise ChatError(f"{e} (answered questions are kept in {args.out}; re-run to resume)") from e
    finally:
        bar.close()
    ids = {q.question_id for q in questions}
    rows = [r for r in read_results(args.out) if r["question_id"] in ids]
    rep = report(rows, judges[-1].name if judges else "match")
    rep["counts"] = {"questions": len(questions), **vars(counts)}
    if args.report:
        Path(args.report).write_text(json.dumps(rep, indent=2))
    if args.chart and rows:
        chart(rep, Path(args.chart))
    code = EXIT_INPUT if counts.failed else EXIT_OK  # bad videos or memories (each recorded as a failure)
    if args.json:
        emit_json(rep)
        return code
    c = rep["counts"]
    say(f"{c['questions']} questions: {c['answered']} answered now, {c['resumed']} from {args.out}, "
        f"{c['skipped']} skipped (no memory and no video), {c['ingested']} memories ingested, "
        f"{c['failed']} failed on a bad video, memory or path (see 'error' in {args.out})")
    say(table(rep))
    return code
