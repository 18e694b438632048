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
        text = (lambda n: g.texts[n].text) if args.raw else g.translated_text
        seen: dict[int, set[int]] = {}
        for t in g.texts.values():
            for e in t.entities:
                seen.setdefault(g.character_of(e), set()).add(t.clip)
        chars = [{"character": c, "faces": [e for e in m if g.entities[e].kind == "face"],
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
        print(f"  <character_{c['character']}>  {who}  clips {c['clips']}")
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


def _mmss(seconds: float) -> str:
    return f"{int(seconds) // 60:02d}:{int(seconds) % 60:02d}"


COMMANDS = {"show": cmd_show, "search": cmd_search}

if __name__ == "__main__":
    sys.exit(main())
