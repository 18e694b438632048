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
from m3mem.cloze import meaningful, sentences, spoken
from m3mem.quoting import WITHHELD, quote, unquoted
from models.mentions import clip_references

ACTIONS = ("search", "answer", "person", "before", "after", "first", "last")

_LAST = re.compile(r"\b(?:last|final|closing)\s+(?:words?|things?|sentences?|lines?|remarks?)\b|"
                   r"\bat the (?:very )?end\b|\bends? (?:with|by)\b", re.IGNORECASE)
_FIRST = re.compile(r"\b(?:first|opening)\s+(?:words?|things?|sentences?|lines?|remarks?)\b|"
                    r"\bat the (?:very )?(?:beginning|start)\b|\bstarts? (?:with|by)\b", re.IGNORECASE)
_LATER = re.compile(r"\b(?:later|again|afterwards|second time|next time|another time)\b", re.IGNORECASE)
# what a question following someone onward first points back with ("who said ... earlier")
_BACK = re.compile(r"\b(?:earlier|first|before|previously|once)\b|\bwho\s+(?:said|says|mentioned|mentions|asked|asks|"
                   r"spoke|speaks|told|tells|talked|talks|described|describes)\b", re.IGNORECASE)
_ORDER = re.compile(r"\b(?:which|what)\b[^'\"]*?\b(first|earlier|sooner|last|later|second)\b", re.IGNORECASE)
_ADDRESSEE = re.compile(r"(?:^|[.?!:]\s+)(?:to\s+)?whom?\s+(?:is|was|gets|got|are|were)\s+(?:\w+\s+){0,2}?"
                        r"(?:told|asked|addressed|called|thanked|warned|answered)\b", re.IGNORECASE)
# a person addressed by name: "..., Mr. Cooper" / "I'm not afraid, Johnny." / "Judy, I need you"
_HONORIFIC = re.compile(r"\b((?:Mr|Mrs|Ms|Miss|Dr)\.?\s+[A-Z][a-z]+)")
_VOCATIVE = re.compile(r",\s+([A-Z][a-z]+)\s*[.?!,]|(?:^|[.?!]\s+)([A-Z][a-z]+),\s")
_NOT_NAMES = {"well", "yes", "no", "okay", "ok", "look", "listen", "hey", "oh", "so", "now", "please", "sir",
              "thanks", "right", "sure", "yeah", "honey", "man", "come", "wait", "then", "but", "and", "i"}
# "What was said right before 'X'?" / "... right after the man mentions X?": the sentence next to
# a quotation, or to a statement said to be said, is asked for
_SAID_NEXT = re.compile(r"\bwhat\b[^'\"]*?\b(?:said|say|says|words?|heard|line)\b[^'\"]*?"
                        r"\b(?:right|just|immediately|directly)\s+(before|after)\b\s*[:,]?\s*(.*)$", re.IGNORECASE)
_STATED = re.compile(r"^(?:\w+\s+){0,3}?(?:says?|said|saying|mentions?|mentioned|mentioning|(?:talks?|talked|talking|"
                     r"speaks?|spoke|speaking)\s+about|asks?|asked|asking|tells?|told|telling|adds?|added)\s+"
                     r"(?:that\s+|about\s+)?(.+)$", re.IGNORECASE)
# "The woman who says she has twins speaks again later": the statement that points back to a person
_SAID_BY = re.compile(r"\bwho\s+(?:first\s+|earlier\s+)?(?:says?|said|mentions?|mentioned|(?:talks?|talked|speaks?|spoke)"
                      r"\s+about|asks?|asked|tells?|told|describes?|described)\s+(?:that\s+|about\s+)?(.+?)\s*"
                      r"(?:\b(?:earlier|before|first|once|previously)\b|[,:;.?!]|\b(?:speaks?|talks?|is\s+heard|appears?|"
                      r"comes?\s+back|returns?|says?|said)\b(?:\s+\w+)?\s+(?:again|later)\b)", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# "The person who says 'X' says it a second time later": the line's next occurrence
_REPEAT = re.compile(r"\b(?:says?|said|repeats?|repeated)\s+(?:it|this|that|those\s+words|the\s+same\s+(?:thing|words?|line))"
                     r"\s+(?:a\s+second\s+time|again|once\s+more)\b|\ba\s+second\s+time\b", re.IGNORECASE)
_AGAIN_REF = re.compile(r"^(?:that|the|this)\s+(?:second|next|other)\s+time\b|^(?:it|this|that)\s+is\s+said\s+again\b",
                        re.IGNORECASE)
# "What radio advice is heard right before ...?": the kind of words asked for
_WHAT_KIND = re.compile(r"(?:^|[.?!:]\s+)what\s+(.+?)\s+(?:is|was|are|were)\s+(?:said|heard|mentioned|given)\b", re.IGNORECASE)
# a question asking for the words said, by anyone (not who is on screen, not what one person says)
_ASKS_WORDS = re.compile(r"^\s*what\s+(?:is|are|was|were)\s+(?:the\s+)?(?:very\s+)?(?:first|last|final|opening|closing)\s+"
                         r"(?:words?|things?|lines?|sentences?|remarks?)\b|^\s*what\s+(?:is|was)\s+said\b", re.IGNORECASE)
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
                least: float = 0.5, after: int | None = None) -> int | None:
    """The memory that holds the words of ``span`` (a quotation in a question): the one with the
    largest share of its words that can carry meaning (``cloze.meaningful``: not "I'm", "me",
    "don't"), at least ``least`` and two of them, then of all its words ("I'll be down to take
    care of it" is not "I can take care of those two"), the earliest on a tie. Candidates come
    from ``lexical`` (BM25 over the memory) when given, else from every visible memory; with
    ``after``, only memories said after that one (the line said again)."""
    want = meaningful(span)
    if not want:
        return None
    found = lexical(span, 50, before_clip) if lexical is not None else None
    nodes = [n for n, _ in found] if found is not None else [
        n for n, t in graph.texts.items() if before_clip is None or t.clip < before_clip]
    if after is not None:
        nodes = [n for n in nodes if _when(graph, n) > _when(graph, after)]
    every = set(_WORD.findall(span.lower()))
    best, best_key = None, (0.0, 0.0)
    for n in sorted(nodes, key=lambda n: _when(graph, n)):  # earliest first: a later one must hold strictly more
        text = graph.texts[n].text
        held = len(want & meaningful(text))
        key = (held / len(want), len(every & set(_WORD.findall(text.lower()))) / len(every))
        if key[0] >= least and held >= min(2, len(want)) and key > best_key:
            best, best_key = n, key
    return best


def _when(graph: MemoryGraph, node: int) -> tuple[int, int]:
    """Where a memory lies on the video's time line: its clip, then its place among the clip's
    (a clip's memories are numbered in the order they are written)."""
    return graph.texts[node].clip, node


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


def asks_said_next(question: str) -> tuple[str, str | None] | None:
    """("before" / "after", the statement) when the question asks what was said right before /
    after some words: the statement is None when they are quoted ("What was said right before
    'Johnny asked me if I were afraid'?": the quotation is read), else what someone is said to say
    there ("... right after the man mentions the black market?" -> "the black market")."""
    m = _SAID_NEXT.search(question)
    if m is None:
        return None
    rest = m.group(2).strip()
    if rest[:1] in "'\"\u2018\u201c" or _AGAIN_REF.match(rest):  # quoted, or "... before that second time?"
        return m.group(1).lower(), None
    stated = _STATED.match(rest.rstrip("?.! "))
    if stated is None or len(meaningful(stated.group(1))) < 2:
        return None  # no statement, or too little of one to find ("right after she asked for help")
    return m.group(1).lower(), stated.group(1)


def asks_said_by(question: str) -> str | None:
    """The statement an unquoted question points back to a person with when it follows that
    person onward ("The woman who says she misses all of that speaks again later: what does she
    say then?" -> "she misses all of that"); None when it quotes the words, or points back
    otherwise."""
    if not asks_later(question) or unquoted(question) != question:
        return None
    m = _SAID_BY.search(question)
    return m.group(1) if m is not None and meaningful(m.group(1)) else None


def asks_repeat(question: str) -> bool:
    """Whether the question points to the time a line it quotes is said again ("The person who
    says 'X' says it a second time later. What ... just before that second time?")."""
    return _REPEAT.search(unquoted(question)) is not None


def asked_kind(question: str) -> set[str]:
    """The words that say what kind of line is asked for ("What radio advice is heard right
    before ...?" -> radio, advice), as ``cloze.meaningful`` stems; empty for "What was said ..."."""
    m = _WHAT_KIND.search(unquoted(question))
    return meaningful(m.group(1)) if m else set()


def asks_end_words(question: str) -> tuple[str, int] | None:
    """("first" / "last", step) when the question asks for the first / last words said in the video
    (step 0: "What are the last words said in the video?") or the sentence right before / after
    them (step -1 / 1: "What was said right before the last words of the video?")."""
    m = _SAID_NEXT.search(question)
    if m is not None:
        cue = time_cue(m.group(2))
        return (cue, -1 if m.group(1).lower() == "before" else 1) if cue in ("first", "last") else None
    cue = time_cue(question)
    return (cue, 0) if cue in ("first", "last") and _ASKS_WORDS.search(question) else None


def end_sentence(graph: MemoryGraph, which: str, step: int, before_clip: int | None) -> str | None:
    """The sentence said first / last (``which``) among the visible clips, or ``step`` sentences
    after / before it; None when nothing is said."""
    clips = visible_clips(graph, before_clip)
    said: list[str] = []
    for c in (clips if which == "first" else reversed(clips)):
        here = _clip_sentences(graph, c)
        said = _joined(said, here) if which == "first" else _joined(here, said)
        if len(said) > abs(step) + 1:  # enough read (and a sentence cut by a boundary made whole)
            break
    k = step if which == "first" else len(said) - 1 + step
    return said[k] if 0 <= k < len(said) else None


def _clip_sentences(graph: MemoryGraph, clip: int) -> list[str]:
    """The sentences said in ``clip``, in time order; speech with instruction-like words
    (``quoting.quote``) is read up to them, and they stand as one sentence saying they are withheld."""
    out, run = [], []
    for n in graph.clip_texts.get(clip, []):
        text = graph.texts[n].text
        shown = quote(text)
        if shown == text:
            run.append(text)
        elif spoken(text) is not None:
            kept = shown[: -len(WITHHELD)].rstrip()
            out += sentences(run + ([kept + '"'] if '"' in kept else [])) + [WITHHELD]
            run = []
    return out + sentences(run)


def _joined(first: list[str], then: list[str]) -> list[str]:
    """The sentences of two clips in a row, the one cut by the boundary made whole: a clip whose
    speech starts mid-sentence ("ideas like the black market ...") either repeats the end of the
    one before, which holds it whole (transcribed past the boundary: the repeat is dropped), or
    continues a sentence left unfinished there (joined)."""
    if not first or not then or not then[0][:1].islower():
        return first + then
    head, tail = meaningful(then[0]), meaningful(first[-1])
    if head and len(head & tail) >= 0.6 * len(head):
        return first + then[1:]
    if not first[-1].endswith((".", "?", "!")):
        return first[:-1] + [first[-1] + " " + then[0]] + then[1:]
    return first + then


def said_next_to(graph: MemoryGraph, node: int, span: str, direction: str, before_clip: int | None,
                 about: set[str] = frozenset()) -> str | None:
    """The spoken sentence said right before / after the words ``span`` quotes, which the memory
    ``node`` holds: the sentences of its clip and of the clips either side, in time order, cut
    where a sentence ends; the quotation covers the sentence holding most of its words and the
    ones next to it made mostly of them; the one past them in ``direction`` (with ``about``, the
    words of the kind of line asked for: the nearest one that holds one of them, if any does).
    None when there is none (the video starts or ends there, or nothing is said)."""
    clips = visible_clips(graph, before_clip)
    here = graph.texts[node].clip
    if here not in clips:
        return None
    at = clips.index(here)
    said: list[str] = []
    for c in clips[max(0, at - 1):at + 2]:
        said = _joined(said, _clip_sentences(graph, c))
    want = meaningful(span)
    words = [meaningful(x) for x in said]
    hits = [len(want & w) for w in words]
    if not hits or max(hits) == 0:
        return None

    def inside(k: int) -> bool:  # made mostly of the quotation's words
        return bool(words[k]) and len(want & words[k]) >= 0.5 * len(words[k])

    i = j = hits.index(max(hits))
    while i > 0 and inside(i - 1):
        i -= 1
    while j + 1 < len(said) and inside(j + 1):
        j += 1
    k = i - 1 if direction == "before" else j + 1
    walk = range(k, -1, -1) if direction == "before" else range(k, len(said))
    k = next((x for x in walk if about & words[x]), k)  # "What radio advice is heard right before ...?"
    return said[k] if 0 <= k < len(said) else None


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
    return sorted(nodes, key=lambda n: _when(graph, n))


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


# the relations a question may ask a person's name by, each with the ones the other person has
# back ("Helen's husband" is the man whose wife Helen is)
_PARENT, _CHILD, _SIBLING = ("mother", "father", "mom", "mum", "dad"), ("son", "daughter"), ("brother", "sister")
_RELATIONS = {"husband": ("wife",), "wife": ("husband",), "boyfriend": ("girlfriend",), "girlfriend": ("boyfriend",),
              "fiance": ("fiancee",), "fiancee": ("fiance",), "partner": ("partner",), "friend": ("friend",),
              **{r: _PARENT for r in _CHILD}, **{r: _CHILD for r in _PARENT}, **{r: _SIBLING for r in _SIBLING}}
_ASKS_RELATION = re.compile(r"(?i:\b(?:name\s+of|who\s+is|who's|what\s+is|what's))\s+"
                            r"((?:(?:Mr|Mrs|Ms|Miss|Dr)\.?\s+)?[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)'s\s+(" +
                            "|".join(_RELATIONS) + r")(?:'s\s+name|\s+called|\s+named)?\s*[?.]?\s*$")
_TITLES = {"mr", "mrs", "ms", "miss", "dr"}
_INTRO = r"(?:I'm|I\s+am|[Tt]his\s+is|[Mm]y\s+name\s+is|[Mm]eet)\s+"
_NOT_PERSON = {"i", "the", "he", "she", "they", "we", "you", "it", "and", "but", "this", "that", "my", "his", "her"}


def asks_relation(question: str) -> tuple[str, str] | None:
    """(name, relation) when the question asks who a named person's relative is ("What is the
    name of Helen Cooper's husband?" -> ("Helen Cooper", "husband"); "... husband called?"), else
    None (not "What is Judy's brother carrying?")."""
    m = _ASKS_RELATION.search(question)
    return (m.group(1), m.group(2)) if m else None


def relative(graph: MemoryGraph, name: str, relation: str, before_clip: int | None) -> tuple[str, int] | None:
    """(the relative's name, the clip it is said in) when something said names ``name``'s
    ``relation``, in time order: "I'm Helen Cooper, Harry's wife." / "Harry's wife, Helen" (the
    relation back), "Helen's husband, Harry" / "Harry, Helen's husband" (the relation itself);
    ``name`` may be said whole or by one of its names (a first name, a title and a surname). None
    when nothing said does."""
    parts = [name] + [w for w in re.split(r"[\s.]+", name) if len(w) > 2 and w.lower() not in _TITLES]
    who = r"(?:[A-Z][a-z]+\s+)?(?:" + "|".join(re.escape(w) for w in sorted(set(parts), key=len, reverse=True)) + \
        r")(?:\s+[A-Z][a-z]+)?"  # one of the names, with the other said beside it or not
    back, rel, other = "(?:" + "|".join(_RELATIONS[relation]) + ")", relation, r"([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)"
    patterns = [rf"{_INTRO}{who}[,.]?\s+{other}'s\s+{back}\b",  # "I'm Helen Cooper. Harry's wife."
                rf"\b{who},\s+{other}'s\s+{back}\b",  # "Helen, Harry's wife"
                rf"\b{other}'s\s+{back},\s+{who}\b",  # "Harry's wife, Helen"
                rf"\b{who}'s\s+{rel},?\s+{other}\b",  # "Helen's husband, Harry"
                rf"\b{other},\s+{who}'s\s+{rel}\b",  # "Harry, Helen's husband"
                rf"{_INTRO}{other}[,.]?\s+{who}'s\s+{rel}\b"]  # "I'm Helen Cooper, Harry's wife." (Harry's wife)
    clips = visible_clips(graph, before_clip)
    for k, c in enumerate(clips):
        said = _clip_sentences(graph, c)
        text = " ".join(_joined(said, _clip_sentences(graph, clips[k + 1])[:1] if k + 1 < len(clips) else []))
        for pattern in patterns:
            for m in re.finditer(pattern, text):
                first = m.group(1).split()[0].lower()
                if first not in _NOT_NAMES and first not in _NOT_PERSON and m.group(1) not in parts:
                    return m.group(1), c
    return None


# "Who says 'X'?", "What is the name of the woman who said 'X'?": who speaks the quoted line
_ASKS_SPEAKER = re.compile(r"^\s*(?:who|what\s+is\s+the\s+name\s+of\s+the\s+(?:\w+\s+){1,2}?who)\s+(?:first\s+)?"
                           r"(?:says?|said|asks?|asked|shouts?|shouted|yells?|yelled|mentions?|mentioned)\s*[,:]?\s*"
                           "['\"\u201c\u2018]", re.IGNORECASE)


def asks_speaker(question: str) -> bool:
    """Whether the question asks who says the line it quotes ("Who says 'Johnny has the keys'?")."""
    return _ASKS_SPEAKER.search(question) is not None


def speaker_name(graph: MemoryGraph, node: int) -> str | None:
    """The name known for the person whose voice speaks in ``node`` (a name fact about any face
    or voice of their character), else None."""
    names = graph.names()
    for e in graph.texts[node].entities:
        if e in graph.entities and graph.entities[e].kind == "voice" and graph.character_of(e) in names:
            return names[graph.character_of(e)]
    return None


def asks_later(question: str) -> bool:
    """Whether the question asks what happens later / again to someone it first points back to
    (to follow a person onward): "The woman who said 'X' earlier speaks again later: what does
    she say then?". Words inside its quotations do not count ("Who is told 'I won't open this
    door again'?"), nor a "later" that only dates what is asked ("What will the speaker reinforce
    later?")."""
    plain = unquoted(question)
    return _LATER.search(plain) is not None and (plain != question or _BACK.search(plain) is not None)


def same_speaker_later(graph: MemoryGraph, node: int, before_clip: int | None, n: int = 2) -> list[int]:
    """The first ``n`` memories quoting speech of the person who speaks in ``node`` (any voice of
    that voice's character), from the clips after ``node``'s, in time order; [] when ``node``
    names no voice. Speech that only carries ``node``'s sentence on past its clip's end is not
    speaking again."""
    voices = [e for e in graph.texts[node].entities if e in graph.entities and graph.entities[e].kind == "voice"]
    if not voices:
        return []
    person = {e for v in voices for e in graph.character_entities(graph.character_of(v))
              if graph.entities[e].kind == "voice"}
    here = graph.texts[node].clip
    later = [t for t in graph.text_nodes(graph.texts_of_entities(sorted(person)))
             if here < t.clip and (before_clip is None or t.clip < before_clip) and '"' in t.text
             and person & set(t.entities)]
    out, last = [], node
    for t in sorted(later, key=lambda t: (t.clip, t.id)):
        if not out and _continues(graph, last, t.id):
            last = t.id  # the same sentence carried on past the clip's end: not speaking again
        elif len(out) < n:
            out.append(t.id)
    return out


def _continues(graph: MemoryGraph, node: int, then: int) -> bool:
    """Whether the speech of memory ``then`` carries on that of ``node`` across a clip boundary:
    ``node`` is its clip's last speech, ``then`` the next clip's first, and it starts mid-sentence."""
    here, there = graph.texts[node].clip, graph.texts[then].clip
    clips = sorted(graph.clips)
    if clips.index(there) != clips.index(here) + 1:
        return False

    def speech(c: int) -> list[int]:
        return [n for n in graph.clip_texts[c] if spoken(graph.texts[n].text) is not None]
    words = (spoken(graph.texts[then].text) or "").lstrip(" .\u2026-")
    return speech(here)[-1:] == [node] and speech(there)[:1] == [then] and words[:1].islower()
