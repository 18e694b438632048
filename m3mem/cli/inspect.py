"""``m3mem show`` and ``m3mem search``: read a memory without a chat model."""

from __future__ import annotations

from m3mem import build
from m3mem.cli.output import emit_json, safe, say, span
from m3mem.config import Settings


def cmd_show(args, settings: Settings) -> int:
    with build.open_memory(args.memory, settings) as mem:
        g = mem.graph

        def text(n: int) -> str:
            # equivalences name the face and voice they join: translated, both would read <character_N>
            return g.texts[n].text if args.raw or g.is_equivalence_node(n) else g.translated_text(n)

        seen: dict[int, set[int]] = {}
        for t in g.texts.values():
            for e in t.entities:
                seen.setdefault(g.character_of(e), set()).add(t.clip)
        names = g.names()
        chars = [{"character": c, "name": names.get(c), "faces": [e for e in m if g.entities[e].kind == "face"],
                  "voices": [e for e in m if g.entities[e].kind == "voice"],
                  "clips": sorted(seen.get(c, ()))} for c, m in sorted(g.characters().items())]
        clips = [{"clip": c, "start": s, "end": e,
                  "memories": [{"kind": g.texts[n].kind, "text": text(n)} for n in g.clip_texts[c]]}
                 for c, (s, e) in sorted(g.clips.items())]
    if args.json:
        emit_json({"memory": args.memory, "characters": chars, "clips": clips})
        return 0
    say(f"{args.memory}: {len(clips)} clips, {len(chars)} characters")
    for c in chars:
        who = ", ".join([f"<face_{i}>" for i in c["faces"]] + [f"<voice_{i}>" for i in c["voices"]])
        name = f" ({c['name']})" if c["name"] else ""
        say(f"  <character_{c['character']}>{name}  {who}  clips {c['clips']}")
    for clip in clips:
        say(f"\nCLIP_{clip['clip']}  {span(clip['start'], clip['end'])}")
        for m in clip["memories"]:
            say(f"  [{m['kind'][0]}] {m['text']}")
    return 0


def cmd_search(args, settings: Settings) -> int:
    with build.open_memory(args.memory, settings, embedder=True) as mem:
        result = mem.retriever(build.search_options(settings, before_clip=args.before_clip)).search(args.query)
    if args.json:
        emit_json({"query": args.query, "route": result.route,
                   "clips": [{"clip": h.clip, "start": h.start, "end": h.end,
                              "score": None if h.score != h.score else h.score, "memories": h.memories}
                             for h in result.clips],
                   "memories": [vars(m) for m in result.memories]})
        return 0
    for h in result.clips:
        say(f"CLIP_{h.clip}  {span(h.start, h.end)}  score {h.score:.3f}")
        for m in h.memories:
            say(f"  {m}")
    for m in result.memories:
        say(f"CLIP_{m.clip}  {span(m.start, m.end)}  {m.score:.3f}  {safe(m.text)}")
    if not (result.clips or result.memories):
        say("no matching memories")
    return 0
