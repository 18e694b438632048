"""Moving through a memory by person and by time, beside similarity search.

The agent's actions beyond M3-Agent's ``[Search]``: follow a person (the clips where they are seen
or heard, in time order), step to the clip before or after one already shown, and go to the first
or last clips. Every function honours ``before_clip`` (only clips with a smaller index exist) and
skips clips already shown. Questions with a plain time cue ("the last words", "right before ...")
are navigated without waiting for the model to ask (``time_cue``), and words the question quotes
are found in the memory with the lines said just before or after them (``quoted_line``,
``adjacent_line``) or, when the question asks what happens later, with what the same person says
in later clips (``same_speaker_later``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from m3mem.graph import MemoryGraph
from m3mem.quoting import content_words
from models.mentions import clip_references

ACTIONS = ("search", "answer", "person", "before", "after", "first", "last")

_LAST = re.compile(r"\b(?:last|final|closing)\s+(?:words?|things?|sentences?|lines?|remarks?)\b|"
                   r"\bat the (?:very )?end\b|\bends? (?:with|by)\b", re.IGNORECASE)
_FIRST = re.compile(r"\b(?:first|opening)\s+(?:words?|things?|sentences?|lines?|remarks?)\b|"
                    r"\bat the (?:very )?(?:beginning|start)\b|\bstarts? (?:with|by)\b", re.IGNORECASE)
_LATER = re.compile(r"\b(?:later|again|afterwards|second time|next time|another time)\b", re.IGNORECASE)
_ORDER = re.compile(r"\b(?:which|what)\b[^'\"]*?\b(first|earlier|sooner|last|later|second)\b", re.IGNORECASE)
_ADDRESSEE = re.compile(r"(?:^|[.?!:]\s+)(?:to\s+)?whom?\s+(?:is|was|gets|got|are|were)\s+(?:\w+\s+){0,2}?"
                        r"(?:told|asked|addressed|called|thanked|warned|answered)\b", re.IGNORECASE)
# a person addressed by name: "..., Mr. Cooper" / "I'm not afraid, Johnny." / "Judy, I need you"
_HONORIFIC = re.compile(r"\b((?:Mr|Mrs|Ms|Miss|Dr)\.?\s+[A-Z][a-z]+)")
_VOCATIVE = re.compile(r",\s+([A-Z][a-z]+)\s*[.?!,]|(?:^|[.?!]\s+)([A-Z][a-z]+),\s")
_NOT_NAMES = {"well", "yes", "no", "okay", "ok", "look", "listen", "hey", "oh", "so", "now", "please", "sir",
              "thanks", "right", "sure", "yeah", "honey", "man", "come", "wait", "then", "but", "and", "i"}
_BEFORE = re.compile(r"\b(?:right|just|immediately|directly)\s+before\b", re.IGNORECASE)
_AFTER = re.compile(r"\b(?:right|just|immediately|directly)\s+after\b", re.IGNORECASE)


def visible_clips(graph: MemoryGraph, before_clip: int | None) -> list[int]:
    return sorted(c for c in graph.clips if before_clip is None or c < before_clip)


def person_clips(graph: MemoryGraph, who: str, before_clip: int | None) -> list[int] | None:
    """Clips where the person named in ``who`` (``<character_N>``, ``<face_N>``, ``<voice_N>`` or
    a name a memorizer stored) is seen or heard, in time order; None when nobody is named."""
    entities = graph.resolve_query(who)
    if not entities:
        wanted = who.strip().strip(".\"'").lower()
        chars = [c for c, name in graph.names().items() if name.lower() == wanted or name.lower() in wanted.split(" and ")]
        entities = [e for c in chars for e in graph.character_entities(c)]
    if not entities:
        return None
    clips = {t.clip for t in graph.text_nodes(graph.texts_of_entities(entities))}
    return sorted(c for c in clips if before_clip is None or c < before_clip)


def step(graph: MemoryGraph, direction: str, reference: str, shown: list[int], before_clip: int | None) -> list[int]:
    """The clip just before / after the one named in ``reference`` (``CLIP_n``), or, when none is
    named, before the earliest / after the latest clip shown so far."""
    clips = visible_clips(graph, before_clip)
    refs = [c for c in clip_references(reference) if c in graph.clips]
    if refs:
        anchor = refs[0]
    elif shown:
        anchor = min(shown) if direction == "before" else max(shown)
    else:
        return []
    if direction == "before":
        return [c for c in clips if c < anchor][-1:]
    return [c for c in clips if c > anchor][:1]


def ends(graph: MemoryGraph, which: str, k: int, before_clip: int | None) -> list[int]:
    """The first or last ``k`` visible clips."""
    clips = visible_clips(graph, before_clip)
    return clips[:k] if which == "first" else clips[-k:]


def time_cue(question: str) -> str | None:
    """"first", "last", "before" or "after" when the question asks about a position in time."""
    for name, pattern in (("last", _LAST), ("first", _FIRST), ("before", _BEFORE), ("after", _AFTER)):
        if pattern.search(question):
            return name
    return None


def quoted_line(graph: MemoryGraph, span: str, before_clip: int | None,
                lexical: Callable[[str, int, int | None], list[tuple[int, float]] | None] | None = None,
                least: float = 0.5) -> int | None:
    """The memory that holds the words of ``span`` (a quotation in a question): the one with the
    largest share of its content words, at least ``least``, the earliest on a tie. Candidates come
    from ``lexical`` (BM25 over the memory) when given, else from every visible memory."""
    want = set(content_words(span))
    if not want:
        return None
    found = lexical(span, 50, before_clip) if lexical is not None else None
    nodes = [n for n, _ in found] if found is not None else [
        n for n, t in graph.texts.items() if before_clip is None or t.clip < before_clip]
    best, best_share = None, 0.0
    for n in sorted(nodes):  # earliest first: a later memory must hold strictly more of the words
        share = len(want & set(content_words(graph.texts[n].text))) / len(want)
        if share >= least and share > best_share:
            best, best_share = n, share
    return best


def adjacent_line(graph: MemoryGraph, node: int, direction: str, before_clip: int | None) -> int | None:
    """The memory said just before / after ``node`` in time: the nearest one in that direction
    (same clip in the order written, then the neighbouring clips) that quotes speech, else None."""
    clips = visible_clips(graph, before_clip)
    here = graph.texts[node].clip
    if here not in clips:
        return None
    lines = graph.clip_texts[here]
    i = lines.index(node)
    if direction == "before":
        walk = [lines[:i][::-1]] + [graph.clip_texts.get(c, [])[::-1] for c in reversed(clips) if c < here]
    else:
        walk = [lines[i + 1:]] + [graph.clip_texts.get(c, []) for c in clips if c > here]
    return next((n for group in walk for n in group if '"' in graph.texts[n].text), None)


def asks_order(question: str) -> str | None:
    """"first" or "last" when the question asks which of the lines it quotes is said first / last
    ("Which is said first: 'A' or 'B'?")."""
    m = _ORDER.search(question)
    if m is None:
        return None
    return "first" if m.group(1).lower() in ("first", "earlier", "sooner") else "last"


def time_order(graph: MemoryGraph, nodes: list[int]) -> list[int]:
    """``nodes`` in the order they happen in the video: by clip, then as the clip's memories are
    written (speech in time order)."""
    return sorted(nodes, key=lambda n: (graph.texts[n].clip, graph.clip_texts[graph.texts[n].clip].index(n)))


def asks_addressee(question: str) -> bool:
    """Whether the question asks who is spoken to ("Who is told '...'?", "Who is thanked ...")."""
    return _ADDRESSEE.search(question) is not None


def addressee(graph: MemoryGraph, node: int, before_clip: int | None) -> str | None:
    """The name a spoken line addresses its listener by: a title and a name ("Mr. Cooper"), else a
    name set off by a comma ("I'm not afraid, Johnny."), in the line ``node`` or the line said
    right after it; None when neither names anyone."""
    after = adjacent_line(graph, node, "after", before_clip)
    for n in [node] + ([after] if after is not None else []):
        said = re.findall(r'"([^"]*)"', graph.texts[n].text)
        text = " ".join(said)
        m = _HONORIFIC.search(text)
        if m:
            return m.group(1)
        for m in _VOCATIVE.finditer(text):
            name = m.group(1) or m.group(2)
            if name.lower() not in _NOT_NAMES:
                return name
    return None


def asks_later(question: str) -> bool:
    """Whether the question asks what happens later / again (to follow a person onward)."""
    return _LATER.search(question) is not None


def same_speaker_later(graph: MemoryGraph, node: int, before_clip: int | None, n: int = 2) -> list[int]:
    """The first ``n`` memories quoting speech of the person who speaks in ``node`` (any voice of
    that voice's character), from the clips after ``node``'s, in time order; [] when ``node``
    names no voice."""
    voices = [e for e in graph.texts[node].entities if e in graph.entities and graph.entities[e].kind == "voice"]
    if not voices:
        return []
    person = {e for v in voices for e in graph.character_entities(graph.character_of(v))
              if graph.entities[e].kind == "voice"}
    here = graph.texts[node].clip
    later = [t for t in graph.text_nodes(graph.texts_of_entities(sorted(person)))
             if here < t.clip and (before_clip is None or t.clip < before_clip) and '"' in t.text
             and person & set(t.entities)]
    return [t.id for t in sorted(later, key=lambda t: (t.clip, t.id))[:n]]
