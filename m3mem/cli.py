"""The ``m3mem`` command line. Only this module parses arguments, prints and sets up logging."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from m3mem.config import Settings, load_settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INPUT, EXIT_MODEL = 0, 1, 2, 3, 4
EPILOG = """exit codes: 0 success, 1 failure, 2 bad usage, 3 bad or missing input file (video or memory),
4 model or model-server failure.
settings come from flags, then M3MEM_* environment variables, then --config FILE (TOML), then defaults."""

log = logging.getLogger("m3mem")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="m3mem", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Long-term memory of long videos: ingest videos into memories, then search "
                    "them and ask questions.")
    p.add_argument("--config", metavar="FILE", help="TOML settings file (see README)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "ingest", help="watch videos and write their memories (resumable)",
        description="Cut each video into clips, perceive faces, voices, speech (and optionally "
                    "on-screen text), match people across clips, and write episodic and semantic "
                    "memories, one transaction per clip. Re-running skips committed clips, so a "
                    "killed run resumes where it stopped; perception is cached on disk.")
    s.add_argument("videos", nargs="+", metavar="VIDEO", help="video files, or folders of videos")
    s.add_argument("--memory", required=True, metavar="PATH",
                   help="memory file for one video (e.g. talk.m3mem); a folder when several videos "
                        "or a folder are given (one <video name>.m3mem per video)")
    s.add_argument("--memorizer", help="perception (offline default) or openai (a served VLM; "
                                       "set --memorizer-model / --memorizer-base-url)")
    s.add_argument("--memorizer-model", help="model name on the server")
    s.add_argument("--memorizer-base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    s.add_argument("--fps", type=float, help="frames per second sampled for faces (default 1)")
    s.add_argument("--clip-seconds", type=float, help="clip length (default 30)")
    s.add_argument("--scene-text", action="store_const", const=True, help="read on-screen text (rapidocr)")
    s.add_argument("--asr", help="tiny.en (default), base, a CTranslate2 folder or an openai-whisper .pt")
    s.add_argument("--faces", help="dlib (default) or an insightface model folder (e.g. buffalo_l)")
    s.add_argument("--cache-dir", help="perception cache folder (default ~/.cache/m3mem)")
    s.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    s.add_argument("--json", action="store_true", help="print one JSON report per video (a list)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser(
        "ask", help="answer a question from a memory (interactive without a question)",
        description="Answer a question by letting a chat model alternate [Search] (retrieve from the "
                    "memory) and [Answer], for at most --rounds turns. Without a question, opens a "
                    "prompt that keeps the memory and the model loaded between questions.")
    s.add_argument("memory", help="memory file (.m3mem)")
    s.add_argument("question", nargs="?", help="the question (omit for an interactive prompt)")
    s.add_argument("--before-clip", type=int, metavar="N", help="answer as if only clips < N were seen")
    s.add_argument("--llm", help="qwen2.5-0.5b (offline default), openai, or a local model folder / .gguf")
    s.add_argument("--llm-model", help="model name on the server (--llm openai)")
    s.add_argument("--llm-base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    s.add_argument("--rounds", type=int, help="most model turns per question (default 5)")
    s.add_argument("--top-k", type=int, dest="ask_top_k", help="clips shown per search (default 2)")
    s.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    s.add_argument("--json", action="store_true",
                   help="print one JSON object: answer, evidence [{clip, start, end, memories}], rounds, timings")

    s = sub.add_parser(
        "eval", help="run M3-Bench-style annotation files and report accuracy per question type",
        description="Answer every question of an M3-Bench-format annotation file with the control "
                    "agent (honouring before_clip), judge the answers, and report accuracy overall "
                    "and per question type. Results are appended to --out as JSON lines, so a "
                    "re-run resumes; missing memories are ingested when --videos holds the video; "
                    "questions with neither are skipped and counted.")
    s.add_argument("annotations", help="annotation JSON (video id -> {video_path, mem_path, qa_list})")
    s.add_argument("--memories", required=True, metavar="DIR", help="folder of <video>.m3mem memories")
    s.add_argument("--videos", metavar="DIR", help="folder of videos, ingested when their memory is missing")
    s.add_argument("--out", default="results.jsonl", help="results file, JSON lines (default results.jsonl)")
    s.add_argument("--judge", choices=["llm", "match", "both"], default="both",
                   help="llm: the chat model judges (M3-Bench criterion); match: deterministic "
                        "normalised match; both (default): report both and their agreement")
    s.add_argument("--workers", type=int, default=1, help="questions answered in parallel (served models)")
    s.add_argument("--limit", type=int, help="only the first N questions")
    s.add_argument("--report", metavar="PATH", help="write the report as JSON")
    s.add_argument("--chart", metavar="PATH", help="write a PNG bar chart of accuracy per type")
    s.add_argument("--llm", help="chat model for the agent and the LLM judge (default qwen2.5-0.5b)")
    s.add_argument("--llm-model", help="model name on the server (--llm openai)")
    s.add_argument("--llm-base-url", help="OpenAI-compatible endpoint")
    s.add_argument("--rounds", type=int, help="most model turns per question (default 5)")
    s.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("show", help="list a memory's characters and each clip's memories",
                       description="List a memory's characters (ids, member faces/voices, clips "
                                   "they appear in) and every clip's memories.")
    s.add_argument("memory", help="memory file (.m3mem)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--raw", action="store_true", help="show face/voice ids instead of characters")

    s = sub.add_parser("search", help="retrieve the clips (or memories) that match a query",
                       description="Retrieve from a memory the way the agent does: clip-wise by "
                                   "default; memory-wise for character-id/name queries; "
                                   "restricted to a character when the query names one; CLIP_n "
                                   "references return those clips.")
    s.add_argument("memory", help="memory file (.m3mem)")
    s.add_argument("query", help='e.g. "What does <character_0> say about the deal?"')
    s.add_argument("--top-k", type=int, help="clips (or memories) to return (default 5)")
    s.add_argument("--mode", choices=["max", "mean", "sum"], help="clip scoring (default max)")
    s.add_argument("--threshold", type=float, help="drop results scoring below this (default 0)")
    s.add_argument("--before-clip", type=int, metavar="N", help="only see clips before clip N")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s")
    from m3mem.store import MemoryFileError

    try:
        settings = load_settings(args.config, vars(args))
        return COMMANDS[args.command](args, settings)
    except MemoryFileError as e:
        print(f"m3mem: {e}", file=sys.stderr)
        return EXIT_INPUT
    except (FileNotFoundError, IsADirectoryError) as e:
        print(f"m3mem: {e}", file=sys.stderr)
        return EXIT_INPUT
    except (ValueError, KeyError) as e:
        print(f"m3mem: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as e:
        print(f"m3mem: {e}", file=sys.stderr)
        return EXIT_MODEL
    except KeyboardInterrupt:
        print("m3mem: interrupted; committed clips are kept", file=sys.stderr)
        return 130


def _open(path: str, settings: Settings, embed: bool):
    from m3mem.memory import Memory

    embedder = None
    if embed:
        from models.registry import text_embedder

        embedder = text_embedder(settings)
    return Memory.open(path, embedder)


def cmd_show(args, settings: Settings) -> int:
    with _open(args.memory, settings, embed=False) as mem:
        g = mem.graph
        raw = lambda n: g.texts[n].text  # noqa: E731
        # equivalences name the face and voice they join: translated, both would read <character_N>
        text = raw if args.raw else (lambda n: raw(n) if g.is_equivalence_node(n) else g.translated_text(n))
        seen: dict[int, set[int]] = {}
        for t in g.texts.values():
            for e in t.entities:
                seen.setdefault(g.character_of(e), set()).add(t.clip)
        from m3mem.characters import known_names

        names = known_names(g)
        chars = [{"character": c, "name": names.get(c), "faces": [e for e in m if g.entities[e].kind == "face"],
                  "voices": [e for e in m if g.entities[e].kind == "voice"],
                  "clips": sorted(seen.get(c, ()))} for c, m in sorted(g.characters().items())]
        clips = [{"clip": c, "start": s, "end": e,
                  "memories": [{"kind": g.texts[n].kind, "text": text(n)} for n in g.clip_texts[c]]}
                 for c, (s, e) in sorted(g.clips.items())]
    if args.json:
        print(json.dumps({"memory": args.memory, "characters": chars, "clips": clips}, indent=2))
        return EXIT_OK
    print(f"{args.memory}: {len(clips)} clips, {len(chars)} characters")
    for c in chars:
        who = ", ".join([f"<face_{i}>" for i in c["faces"]] + [f"<voice_{i}>" for i in c["voices"]])
        name = f" ({c['name']})" if c["name"] else ""
        print(f"  <character_{c['character']}>{name}  {who}  clips {c['clips']}")
    for clip in clips:
        print(f"\nCLIP_{clip['clip']}  {_mmss(clip['start'])}-{_mmss(clip['end'])}")
        for m in clip["memories"]:
            print(f"  [{m['kind'][0]}] {m['text']}")
    return EXIT_OK


def cmd_search(args, settings: Settings) -> int:
    from m3mem.retrieval import SearchOptions

    opts = SearchOptions(top_k=settings.top_k, mode=settings.mode, threshold=settings.threshold,
                         before_clip=args.before_clip)
    with _open(args.memory, settings, embed=True) as mem:
        result = mem.retriever().search(args.query, opts)
    if args.json:
        out = {"query": args.query, "route": result.route,
               "clips": [{"clip": h.clip, "start": h.start, "end": h.end,
                          "score": None if h.score != h.score else h.score, "memories": h.memories}
                         for h in result.clips],
               "memories": [vars(m) for m in result.memories]}
        print(json.dumps(out, indent=2))
        return EXIT_OK
    for h in result.clips:
        print(f"CLIP_{h.clip}  {_mmss(h.start)}-{_mmss(h.end)}  score {h.score:.3f}")
        for m in h.memories:
            print(f"  {m}")
    for m in result.memories:
        print(f"CLIP_{m.clip}  {_mmss(m.start)}-{_mmss(m.end)}  {m.score:.3f}  {m.text}")
    if not (result.clips or result.memories):
        print("no matching memories")
    return EXIT_OK


def cmd_ask(args, settings: Settings) -> int:
    from m3mem.agent import Agent, AgentOptions
    from models.chat import ChatError
    from models.registry import chat_model

    with _open(args.memory, settings, embed=True) as mem:
        try:
            chat = chat_model(settings)
        except (OSError, RuntimeError) as e:
            print(f"m3mem: cannot load the chat model: {e}", file=sys.stderr)
            return EXIT_MODEL
        agent = Agent(mem, chat, AgentOptions(rounds=settings.rounds, top_k=settings.ask_top_k,
                                              mode=settings.mode, threshold=settings.threshold))
        questions = [args.question] if args.question else None
        while True:
            if questions is None:
                try:
                    q = input("question> ").strip()
                except EOFError:
                    return EXIT_OK
                if not q:
                    continue
            elif not questions:
                return EXIT_OK
            else:
                q = questions.pop()
            try:
                a = agent.ask(q, before_clip=args.before_clip)
            except ChatError as e:
                print(f"m3mem: {e}", file=sys.stderr)
                return EXIT_MODEL
            if args.json:
                print(json.dumps(a.as_dict(), indent=2, ensure_ascii=False), flush=True)
                continue
            print(a.answer)
            for e in a.evidence[:3]:
                print(f"  evidence CLIP_{e.clip} {_mmss(e.start)}-{_mmss(e.end)}")
            queries = [r.content for r in a.rounds if r.action == "search"]
            print(f"  {len(a.rounds)} rounds, searched {queries}; model {a.timings['model']:.1f}s, "
                  f"retrieval {a.timings['retrieval'] * 1000:.0f}ms", flush=True)


def cmd_eval(args, settings: Settings) -> int:
    from tqdm import tqdm

    from m3mem.agent import Agent, AgentOptions
    from m3mem.evaluate import (EvalOptions, Evaluator, LLMJudge, MatchJudge, chart, load_annotations, report,
                                table)
    from m3mem.memory import Memory
    from models.chat import ChatError
    from models.registry import chat_model, text_embedder

    questions = load_annotations(args.annotations)[: args.limit]
    embedder, chat = text_embedder(settings), chat_model(settings)
    judges = ([MatchJudge()] if args.judge in ("match", "both") else []) + \
             ([LLMJudge(chat)] if args.judge in ("llm", "both") else [])
    opts = AgentOptions(rounds=settings.rounds, top_k=settings.ask_top_k, mode=settings.mode,
                        threshold=settings.threshold)
    ingestor = None

    def ingest(video: Path, memory: Path) -> None:
        nonlocal ingestor
        if ingestor is None:
            ingestor = _ingestor(settings, embedder)
        memory.parent.mkdir(parents=True, exist_ok=True)
        ingestor.run(video, memory)

    evaluator = Evaluator(lambda path: Agent(Memory.open(path, embedder), chat, opts), judges,
                          EvalOptions(Path(args.memories), Path(args.videos) if args.videos else None,
                                      Path(args.out), args.workers), ingest)
    bar = tqdm(total=len(questions), desc="questions", unit="q", disable=args.quiet)
    try:
        counts = evaluator.run(questions, progress=bar.update)
    except ChatError as e:
        print(f"m3mem: {e} (answered questions are kept in {args.out}; re-run to resume)", file=sys.stderr)
        return EXIT_MODEL
    finally:
        bar.close()
    ids = {q.question_id for q in questions}
    rows = [r for r in map(json.loads, filter(None, Path(args.out).read_text().splitlines()))
            if r.get("question_id") in ids] if Path(args.out).is_file() else []
    rep = report(rows, judges[-1].name if judges else "match")
    rep["counts"] = {"questions": len(questions), **vars(counts)}
    if args.report:
        Path(args.report).write_text(json.dumps(rep, indent=2))
    if args.chart and rows:
        chart(rep, Path(args.chart))
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        c = rep["counts"]
        print(f"{c['questions']} questions: {c['answered']} answered now, {c['resumed']} from {args.out}, "
              f"{c['skipped']} skipped (no memory and no video), {c['ingested']} memories ingested")
        print(table(rep))
    return EXIT_OK


VIDEO_EXTS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv", ".ts"}


def _videos(inputs: list[str]) -> tuple[list[Path], bool]:
    """Video files named or found in folders, and whether there are (or may be) several."""
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


def _ingestor(settings: Settings, embedder):
    """The ingest pipeline the settings describe (models load here)."""
    from m3mem.config import cache_root
    from m3mem.ingest import Ingestor
    from models.registry import memorizer, perception_models
    from preprocessing.perception import PerceptionOptions
    from preprocessing.video import DecodeOptions

    return Ingestor(perception_models(settings), memorizer(settings), embedder,
                    PerceptionOptions(decode=DecodeOptions(clip_seconds=settings.clip_seconds, fps=settings.fps),
                                      scene_text=settings.scene_text),
                    cache_dir=cache_root(settings) / "perception")


def cmd_ingest(args, settings: Settings) -> int:
    from tqdm import tqdm

    from m3mem.ingest import IngestError
    from models.chat import ChatError
    from models.memorizer import MemorizerError
    from models.registry import text_embedder
    from preprocessing.video import MediaError

    videos, several = _videos(args.videos)
    if not videos:
        print("m3mem: no videos found", file=sys.stderr)
        return EXIT_INPUT
    target = Path(args.memory)
    if several or target.is_dir():
        target.mkdir(parents=True, exist_ok=True)
    ingestor = _ingestor(settings, text_embedder(settings))
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
        except (MediaError, IngestError) as e:
            bar.close()
            print(f"m3mem: {e} (committed clips are kept; re-run to resume)", file=sys.stderr)
            failed.append(str(video))
            continue
        except (MemorizerError, ChatError) as e:
            bar.close()
            print(f"m3mem: {e} (committed clips are kept; re-run to resume)", file=sys.stderr)
            return EXIT_MODEL
        bar.close()
        reports.append(report.as_dict())
        if not args.json:
            r = report
            per = f"{r.wall_seconds / r.done:.1f} s per clip, {r.video_seconds / r.wall_seconds:.1f}x real time" \
                if r.done else "nothing new"
            print(f"{video} -> {memory}: {r.clips} clips ({r.skipped} already done, {r.cached} from cache), "
                  f"{r.faces} faces, {r.voices} voices, {r.characters} characters, "
                  f"{r.episodic} episodic + {r.semantic} semantic memories; {per}")
            if r.stages:
                print("  stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in
                                               sorted(r.stages.items(), key=lambda kv: -kv[1])))
    if args.json:
        print(json.dumps({"reports": reports, "failed": failed}, indent=2))
    return EXIT_INPUT if failed else EXIT_OK


def _mmss(seconds: float) -> str:
    return f"{int(seconds) // 60:02d}:{int(seconds) % 60:02d}"


COMMANDS = {"ingest": cmd_ingest, "ask": cmd_ask, "eval": cmd_eval, "show": cmd_show, "search": cmd_search}

if __name__ == "__main__":
    sys.exit(main())
