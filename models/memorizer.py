"""Memorizers: one clip's perception (plus the memory's ids for its faces and voices) in,
episodic and semantic memories that mention ``<face_N>`` / ``<voice_N>`` out.

- ``PerceptionMemorizer`` (offline default): writes only what perception observed.
- ``models.vlm.OpenAIMemorizer``: a vision-language model behind an OpenAI-compatible API.
- ``models.vlm.TransformersMemorizer``: a local Qwen2.5-VL / Omni-thinker style checkpoint.

Memorizers may carry state across clips (``ClipContext.state``, JSON-able); ingest stores it in
the memory in the same transaction as the clip, so a resumed run continues with the same state.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from models.mentions import parse_mentions
from preprocessing.errors import ModelError
from preprocessing.types import ClipPerception, timecode

log = logging.getLogger(__name__)


@dataclass
class ClipContext:
    perception: ClipPerception
    face_ids: list[int]  # memory node id of each face cluster (same order as perception.faces)
    voice_ids: list[int]  # memory node id of each voice cluster
    known: set[str] = field(default_factory=set)  # every "face_N" / "voice_N" in the memory
    state: dict = field(default_factory=dict)  # JSON-able, carried from clip to clip


@dataclass(frozen=True)
class EntityFact:
    """Something a memorizer asserts about one face or voice, as data: ``("<voice_4>", "name",
    "Lily")``. ``text`` is the sentence that says it; ingest stores it as a semantic memory and
    links the fact to it. ``name`` is the key the system reads (character names); others are kept."""

    entity: str  # "<face_N>" or "<voice_N>"
    key: str  # "name", "role", ...
    value: str
    text: str


@dataclass
class Memories:
    episodic: list[str] = field(default_factory=list)
    semantic: list[str] = field(default_factory=list)
    facts: list[EntityFact] = field(default_factory=list)


class Memorizer(Protocol):
    name: str

    def memorize(self, ctx: ClipContext) -> Memories: ...


class MemorizerError(ModelError):
    """The memorizer model failed (server down, bad reply after retries)."""


# ---------------------------------------------------------------- reply parsing (VLM backends)
_FENCE = re.compile(r"```(?:json|python)?\s*(.*?)```", re.S)


def parse_reply(reply: str) -> Memories:
    """Memories from a model's reply: a JSON object {"episodic": [...], "semantic": [...],
    "names": {"<face_N>": "Name"}} (or a bare list, taken as episodic), possibly in a code fence,
    with text around it, or written as a Python literal. Raises ValueError when nothing usable is
    found."""
    candidates = [m.group(1) for m in _FENCE.finditer(reply)] + [reply]
    for text in candidates:
        for opener, closer in (("{", "}"), ("[", "]")):
            a, b = text.find(opener), text.rfind(closer)
            if a < 0 or b <= a:
                continue
            chunk = text[a:b + 1]
            for loads in (json.loads, ast.literal_eval):
                try:
                    value = loads(chunk)
                except (ValueError, SyntaxError, RecursionError):
                    continue
                out = _memories(value)
                if out is not None:
                    return out
    raise ValueError(f"no memories found in the reply: {reply[:200]!r}")


def _memories(value) -> Memories | None:
    def strings(v) -> list[str]:
        return [s.strip() for s in v if isinstance(s, str) and s.strip()] if isinstance(v, list) else []

    if isinstance(value, list):
        return Memories(strings(value))
    if isinstance(value, dict):
        keys = {k.lower().replace(" ", "_"): v for k, v in value.items() if isinstance(k, str)}
        epi = strings(keys.get("episodic", keys.get("episodic_memory", [])))
        sem = strings(keys.get("semantic", keys.get("semantic_memory", [])))
        if "episodic" in keys or "semantic" in keys or epi or sem:
            return Memories(epi, sem, _name_facts(keys.get("names")))
    return None


def _name_facts(names) -> list[EntityFact]:
    """``{"<face_1>": "Lily"}`` -> name facts (entries that are not one tag and a short name are dropped)."""
    out = []
    for tag, name in (names.items() if isinstance(names, dict) else ()):
        found = parse_mentions(tag) if isinstance(tag, str) else []
        if len(found) == 1 and found[0].kind in ("face", "voice") and isinstance(name, str) \
                and 0 < len(name.strip()) <= 60:
            t = found[0].tag()
            out.append(EntityFact(t, "name", name.strip(), f"{t}'s name is {name.strip()}."))
    return out


def drop_unknown(memories: Memories, known: set[str]) -> Memories:
    """Drop memories that mention a face/voice id the memory does not have (with a warning)."""
    def ok(text: str) -> bool:
        bad = [f"{m.kind}_{m.id}" for m in parse_mentions(text)
               if m.kind in ("face", "voice") and f"{m.kind}_{m.id}" not in known]
        if bad:
            log.warning("dropping a memory that mentions unknown %s: %r", ", ".join(bad), text)
        return not bad

    return Memories([t for t in memories.episodic if ok(t)], [t for t in memories.semantic if ok(t)],
                    [f for f in memories.facts if ok(f.entity) and ok(f.text)])


# ---------------------------------------------------------------- offline default
_NAME = r"([A-Z][a-z]+(?: [A-Z][a-z]+)?)"
_SELF = re.compile(r"\b(?:I'm|I am|my name is|My name is|call me|Call me)\s+" + _NAME + r"\b")
_ADDRESS = re.compile(r"\b(?:[Tt]hank you|[Tt]hanks|[Hh]i|[Hh]ello|[Hh]ey|[Gg]ood (?:morning|evening|night)|"
                      r"[Nn]ice to meet you),?\s+" + _NAME + r"\b")
_NOT_NAMES = set("""A An The I It This That There Here So Not Just Very Really Sure Glad Happy Sorry Going
Trying Looking Here Now Also All Everyone Everybody Guys Folks Ladies Gentlemen Mr Mrs Ms Dr Sir Madam
You We They He She Yes No Okay Well Oh Today Tomorrow Thank Thanks God America American President
Senator Good Great Fine Back Done Ready Still Always Never Actually Excited Proud Honored Honoured
""".split())


_COUNT = ["No", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten"]


@dataclass(frozen=True)
class PerceptionMemorizerOptions:
    grid: float = 0.1  # seconds: time resolution of the co-occurrence count
    face_margin: float = 0.5  # seconds a sampled face detection counts as visible around it
    equivalence_seconds: float = 3.0  # speech heard while one face alone is on screen, accumulated
    equivalence_share: float = 0.6  # of that voice's speech heard while exactly one face is on screen
    recurring: tuple[int, ...] = (3, 10, 30, 100)  # say "recurs" when a person reaches these clip counts
    quote_chars: int = 400  # longest quoted speech in one memory


class PerceptionMemorizer:
    """Memories from perception alone: who speaks and what they say (quoted, with times), who is on
    screen and when, who appears together, on-screen text, and semantic memories it can justify:
    face-voice equivalence from repeated audio-visual co-occurrence, names from self-introductions
    and direct address, people who recur. It does not describe scenes, actions or objects: no
    vision-language model runs offline."""

    name = "perception"

    def __init__(self, options: PerceptionMemorizerOptions = PerceptionMemorizerOptions()):
        self.o = options

    def memorize(self, ctx: ClipContext) -> Memories:
        p, out = ctx.perception, Memories()
        faces = [f"<face_{i}>" for i in ctx.face_ids]
        voices = [f"<voice_{i}>" for i in ctx.voice_ids]
        for tag, f in zip(faces, p.faces):
            spans = ", ".join(f"{timecode(a)}" if b - a < 1 else f"{timecode(a)}-{timecode(b)}" for a, b in f.spans)
            out.episodic.append(f"{tag} is on screen at {spans}.")
        vis = self._visible(p)
        turns = self._turns(p)
        for group in self._together(vis):
            names = [faces[i] for i in group]
            count = _COUNT[len(names)] if len(names) < len(_COUNT) else str(len(names))
            out.episodic.append(f"{count} people are on screen together: {', '.join(names[:-1])} and {names[-1]}.")
        for speaker, start, end, text in turns:
            who = voices[speaker] if speaker >= 0 else "An unidentified voice"
            out.episodic.append(f'{who} says at {timecode(start)}-{timecode(end)}: "{text}"')
        if p.scene_text:
            out.episodic.append("On-screen text reads: " + "; ".join(f'"{t}"' for t in p.scene_text) + ".")
        if not p.faces and not p.utterances:
            heard = "no speech was heard" if p.has_audio else "the video has no audio"
            out.episodic.append(f"No face was seen and {heard} between {timecode(p.start)} and {timecode(p.end)}.")
        out.semantic += self._equivalences(ctx, vis)
        out.facts += self._names(ctx, turns)
        out.semantic += self._addressed(ctx, turns)
        out.semantic += self._recurring(ctx)
        return out

    # -- episodic helpers
    def _turns(self, p: ClipPerception) -> list[tuple[int, float, float, str]]:
        """Consecutive utterances of one speaker joined into turns (quotes at most quote_chars)."""
        turns: list[list] = []
        for u in p.utterances:
            text = u.text.strip()
            if not text:
                continue
            if turns and turns[-1][0] == u.speaker and len(turns[-1][3]) + len(text) < self.o.quote_chars:
                turns[-1][2], turns[-1][3] = u.end, turns[-1][3] + " " + text
            else:
                turns.append([u.speaker, u.start, u.end, text])
        return [tuple(t) for t in turns]

    def _visible(self, p: ClipPerception) -> np.ndarray:
        """(faces, grid) bool: face i visible at each grid time of the clip."""
        n = max(int(np.ceil((p.end - p.start) / self.o.grid)), 1)
        vis = np.zeros((len(p.faces), n), bool)
        for i, f in enumerate(p.faces):
            for a, b in f.spans:
                lo = int(max((a - self.o.face_margin - p.start) / self.o.grid, 0))
                hi = int(min((b + self.o.face_margin - p.start) / self.o.grid, n))
                vis[i, lo:hi] = True
        return vis

    def _together(self, vis: np.ndarray) -> list[tuple[int, ...]]:
        if len(vis) < 2:
            return []
        groups: dict[tuple[int, ...], int] = {}
        for col in vis.T:
            g = tuple(np.flatnonzero(col).tolist())
            if len(g) >= 2:
                groups[g] = groups.get(g, 0) + 1
        need = 1.0 / self.o.grid  # at least a second together
        return [g for g, n in groups.items() if n >= need and not any(set(g) < set(h) for h in groups)]

    # -- semantic helpers
    def _equivalences(self, ctx: ClipContext, vis: np.ndarray) -> list[str]:
        """Accumulate, per (face, voice), the seconds the voice speaks while that face is the only
        one on screen; a pair becomes an equivalence when it has enough seconds, holds most of the
        voice's such speech, and each is the other's best partner. Each face/voice gets one."""
        p, st = ctx.perception, ctx.state.setdefault("cooccur", {"pair": {}, "voice": {}, "done": []})
        if p.faces and p.voices:
            solo = vis.sum(0) == 1
            for vi, v in enumerate(p.voices):
                speak = np.zeros(vis.shape[1], bool)
                for a, b in v.spans:
                    speak[int(max((a - p.start) / self.o.grid, 0)):int((b - p.start) / self.o.grid)] = True
                alone = speak & solo
                vid = str(ctx.voice_ids[vi])
                st["voice"][vid] = st["voice"].get(vid, 0.0) + float(alone.sum() * self.o.grid)
                for fi in range(len(p.faces)):
                    sec = float((alone & vis[fi]).sum() * self.o.grid)
                    if sec:
                        key = f"{ctx.face_ids[fi]},{vid}"
                        st["pair"][key] = round(st["pair"].get(key, 0.0) + sec, 3)
        taken_f = {k.split(",")[0] for k in st["done"]}
        taken_v = {k.split(",")[1] for k in st["done"]}
        out = []
        for key, sec in sorted(st["pair"].items(), key=lambda kv: -kv[1]):
            f, v = key.split(",")
            if f in taken_f or v in taken_v or sec < self.o.equivalence_seconds:
                continue
            if sec < self.o.equivalence_share * st["voice"].get(v, 0.0):
                continue
            best_v = max((s, k.split(",")[1]) for k, s in st["pair"].items() if k.split(",")[0] == f)[1]
            best_f = max((s, k.split(",")[0]) for k, s in st["pair"].items() if k.split(",")[1] == v)[1]
            if best_v != v or best_f != f:
                continue
            st["done"].append(key)
            taken_f.add(f)
            taken_v.add(v)
            out.append(f"Equivalence: <face_{f}>, <voice_{v}>")
        return out

    def _names(self, ctx: ClipContext, turns: list[tuple[int, float, float, str]]) -> list[EntityFact]:
        """Name facts from self-introductions ("I'm Lily") and from direct address answered by
        the next speaker ("Thanks, Lily." -> the voice that answers is probably Lily)."""
        named = ctx.state.setdefault("names", {})
        out = []
        for k, (speaker, _, _, text) in enumerate(turns):
            if speaker < 0:
                continue
            me = f"<voice_{ctx.voice_ids[speaker]}>"
            for m in _SELF.finditer(text):
                name = m.group(1)
                if name.split()[0] in _NOT_NAMES or named.get(me) == name:
                    continue
                named[me] = name
                out.append(EntityFact(me, "name", name, f'{me} introduces themself as {name}: "{m.group(0)}". '
                                                        f"{me}'s name is {name}."))
            nxt = self._next_speaker(turns, k)
            if nxt is None:
                continue
            other = f"<voice_{ctx.voice_ids[nxt]}>"
            for m in _ADDRESS.finditer(text):
                name = m.group(1)
                if name.split()[0] in _NOT_NAMES or named.get(other) == name:
                    continue
                named[other] = name
                out.append(EntityFact(other, "name", name, f'{me} addresses {other} as {name} ("{m.group(0)}"), '
                                                           f"and {other} answers. {other}'s name is probably {name}."))
        return out

    def _addressed(self, ctx: ClipContext, turns: list[tuple[int, float, float, str]]) -> list[str]:
        """Direct address that nobody answers in the clip: kept as a sentence, not a name."""
        out = []
        for k, (speaker, _, _, text) in enumerate(turns):
            if speaker < 0 or self._next_speaker(turns, k) is not None:
                continue
            me = f"<voice_{ctx.voice_ids[speaker]}>"
            out += [f'{me} addresses someone as {m.group(1)}: "{m.group(0)}".'
                    for m in _ADDRESS.finditer(text) if m.group(1).split()[0] not in _NOT_NAMES]
        return out

    @staticmethod
    def _next_speaker(turns: list[tuple[int, float, float, str]], k: int) -> int | None:
        speaker = turns[k][0]
        return next((t[0] for t in turns[k + 1:] if t[0] >= 0 and t[0] != speaker), None)

    def _recurring(self, ctx: ClipContext) -> list[str]:
        seen = ctx.state.setdefault("clips_seen", {})
        out = []
        for tag in [f"face_{i}" for i in ctx.face_ids] + [f"voice_{i}" for i in ctx.voice_ids]:
            seen[tag] = n = seen.get(tag, 0) + 1
            if n in self.o.recurring:
                what = "seen" if tag.startswith("face") else "heard"
                out.append(f"<{tag}> recurs in the video: {what} in {n} clips so far.")
        return out
