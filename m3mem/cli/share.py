"""``m3mem browse``, ``m3mem export`` and ``m3mem import-m3agent``: a memory as a web site, as a
graph file, and M3-Agent's memory graphs as m3mem memories."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from m3mem import build
from m3mem.cli.output import emit_json, say
from m3mem.config import Settings


def cmd_browse(args, settings: Settings) -> int:
    from m3mem.browse import build_site
    from m3mem.evaluate import read_results

    out = Path(args.out or Path(args.memory).with_suffix(".site"))
    results = read_results(args.results) if args.results else None
    t = time.perf_counter()
    with build.open_memory(args.memory, settings) as mem:
        info = build_site(mem.graph, out, Path(args.memory).stem, results)
    info["seconds"] = time.perf_counter() - t
    if args.json:
        emit_json({"site": str(out), **info})
    else:
        say(f"{out / 'index.html'}: {info['pages']} pages, {info['bytes'] / 1e6:.1f} MB in all, largest "
            f"{info['largest_page']} {info['largest_page_bytes'] / 1e6:.2f} MB; {info['seconds']:.1f} s")
    if args.serve is not None:
        _serve(out, args.serve)
    return 0


def _serve(folder: Path, port: int) -> None:
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        say(f"serving {folder} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
        server.serve_forever()


def cmd_export(args, settings: Settings) -> int:
    from m3mem.exchange import export

    with build.open_memory(args.memory, settings) as mem:
        export(mem.graph, args.out or sys.stdout, args.format, embeddings=args.embeddings)
    if args.out:
        say(f"{args.out}: {args.format}")
    return 0


def cmd_import_m3agent(args, settings: Settings) -> int:
    from m3mem.exchange import import_m3agent

    t = time.perf_counter()
    counts = import_m3agent(args.graph, args.out, build.text_embedder(settings), settings.clip_seconds)
    counts["seconds"] = time.perf_counter() - t
    if args.json:
        emit_json({"memory": args.out, **counts})
    else:
        say(f"{args.graph} -> {args.out}: {counts['clips']} clips, {counts['faces']} faces, {counts['voices']} "
            f"voices, {counts['characters']} characters, {counts['episodic']} episodic + {counts['semantic']} "
            f"semantic memories; {counts['seconds']:.1f} s")
    return 0
