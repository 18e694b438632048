"""Memories are data, not instructions: how they are quoted to a chat model.

A memory holds whatever a video said, including speech written to steer an AI ("ignore previous
instructions", a forged ``Action: [Answer]`` line, chat-template tokens, "you are now ..."). Before
a memory reaches the model, everything from the first such marker to the end of the memory is
withheld and replaced by a note saying so; the memory itself is unchanged (``m3mem show`` and the
evidence still print it). The control prompt also says that knowledge is quoted observation.
"""

from __future__ import annotations

import re

WITHHELD = "[the speaker goes on with words addressed to an AI system; withheld]"

MARKERS = re.compile("|".join([
    r"\bignore\s+(?:all\s+|any\s+|the\s+|your\s+)?(?:previous|prior|above|earlier|preceding|other)\s+"
    r"(?:instructions?|prompts?|messages?|rules?|directions?)",
    r"\bdisregard\s+(?:all\s+|any\s+|the\s+|your\s+)?(?:previous|prior|above|earlier|instructions?)",
    r"\bforget\s+(?:all\s+|your\s+|the\s+)?(?:previous\s+|prior\s+)?(?:instructions?|rules?|prompts?)",
    r"\baction\s*[:=]\s*\[?\s*(?:search|answer)\b",
    r"\[\s*(?:search|answer)\s*\]",
    r"\bcontent\s*:\s*\S",
    r"<\|[a-z_]+\|>",
    r"(?:^|[\s\"'(])(?:system|assistant|user)\s*:",
    r"\byou\s+are\s+(?:now|no\s+longer)\b",
    r"\b(?:new|updated|override)\s+(?:instructions?|system\s+prompt)\b",
    r"\b(?:developer|jailbreak|DAN)\s+mode\b",
]), re.IGNORECASE)


def instruction_like(text: str) -> bool:
    return MARKERS.search(text) is not None


def quote(memory: str) -> str:
    """``memory`` as the chat model may read it: instruction-like text withheld."""
    m = MARKERS.search(memory)
    if m is None:
        return memory
    kept = memory[: m.start()].rstrip()
    return f"{kept} {WITHHELD}" if kept else WITHHELD


# an answer saying it is not known ("The video does not say.", "unknown", "I cannot find it")
SAYS_UNKNOWN = re.compile(r"\b(?:not|n't|never)\s+(?:be\s+)?(?:known|found|mentioned|said|stated|say|says|"
                          r"tell|find|see|in the (?:memory|video))|\bunknown\b|\bno (?:information|mention|answer)"
                          r"|\bunclear\b|\bcannot (?:tell|find|know)", re.IGNORECASE)

_WORD = re.compile(r"[a-z0-9]+")
_STOP = set("a an the of to in on at for and or is are was were be it its this that with by as not no "
            "he she they i you we his her their them what who when where which how".split())


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


# numbers as words, 0-20 and the tens: the same number whether written in digits or in words
NUMBER_WORDS = dict(enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                              "fifteen sixteen seventeen eighteen nineteen twenty".split()))
NUMBER_WORDS.update({10 * n: w for n, w in zip(range(3, 10), "thirty forty fifty sixty seventy eighty ninety".split())})
_SAME_NUMBER = {**{str(n): w for n, w in NUMBER_WORDS.items()}, **{w: str(n) for n, w in NUMBER_WORDS.items()}}


def support(answer: str, evidence: list[str]) -> float:
    """Share of the answer's content words that occur in the evidence it was given (0..1); a
    number written in digits or in words counts as either ("3 o'clock" is in "three o'clock")."""
    words = content_words(answer)
    if not words:
        return 1.0
    seen = set(_WORD.findall(" ".join(evidence).lower()))
    return sum(w in seen or _SAME_NUMBER.get(w) in seen for w in words) / len(words)


# a span in quotes: "...", “...”, or '...' whose closing mark ends a word (so "don't" stays inside)
_QUOTED = re.compile(r'"([^"]{3,}?)"|\u201c([^\u201d]{3,}?)\u201d|\u2018([^\u2019]{3,}?)\u2019|'
                     r"(?:^|(?<=[\s(:]))'(.{3,}?)'(?=[\s?.!,;:)]|$)")


def quoted_spans(text: str) -> list[str]:
    """The spans of ``text`` in quotation marks that hold at least two content words."""
    spans = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]
    return [s for s in spans if len(content_words(s)) >= 2]


def unquoted(text: str) -> str:
    """``text`` without the spans it puts in quotation marks."""
    return _QUOTED.sub(" ", text)


_TOKENS = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[.,;:!?]", re.IGNORECASE)


def continuation(question: str, memories: list[str], least: int = 2, most: int = 10) -> str | None:
    """What a memory's quoted words say right after the longest run of the question's own words
    (at least ``least`` of its content words in a row, stop words between them allowed): the
    words a cloze-like question asks for ("What is the speaker an advocate of?" over "...an earnest
    advocate of closer ties between our two countries." -> "closer ties between our two
    countries"), up to the end of the clause and at most ``most`` words. None when no memory
    holds such a run followed by a content word."""
    want = set(content_words(question))
    best, best_hits = None, least - 1
    for memory in memories:
        for span in quoted_spans(memory):
            tokens = _TOKENS.findall(span)
            words = [t.lower() for t in tokens]
            i = 0
            while i < len(tokens):
                j, hits = i, 0
                while j < len(tokens) and words[j][0].isalnum() and (words[j] in want or words[j] in _STOP):
                    hits += words[j] in want
                    j += 1
                if hits > best_hits:
                    end = j
                    while end < len(tokens) and words[end][0].isalnum() and end - j < most:
                        end += 1
                    tail = " ".join(tokens[j:end])
                    if content_words(tail):
                        best, best_hits = tail, hits
                i = max(j, i + 1)
    return best
