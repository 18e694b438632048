"""The memory graph: face/voice entity nodes, episodic/semantic text nodes, weighted mention edges.

Pure data structure: no I/O, no models. Mutations are recorded as a change set (``drain_changes``)
that the store writes in one transaction per clip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from m3mem.characters import build_characters
from m3mem.errors import UsageError
from m3mem.vectors import Rows, keep_spread, normalise
from models.mentions import Mention, is_equivalence, parse_mentions, substitute

log = logging.getLogger(__name__)

EntityKind = Literal["face", "voice"]
TextKind = Literal["episodic", "semantic"]
ENTITY_KINDS: tuple[str, ...] = ("face", "voice")
TEXT_KINDS: tuple[str, ...] = ("episodic", "semantic")


@dataclass(frozen=True)
class GraphConfig:
    max_face_embeddings: int = 10  # identity embeddings kept per face node
    max_voice_embeddings: int = 20  # identity embeddings kept per voice node
    max_face_contents: int = 5  # face crops (JPEG bytes) kept per face node
    max_voice_contents: int = 20  # transcript lines kept per voice node
    reinforce_threshold: float = 0.85  # semantic cosine above this reinforces the old memory
    contradict_threshold: float = 0.0  # semantic cosine below this weakens the old memory

    def __post_init__(self) -> None:
        limits = (self.max_face_embeddings, self.max_voice_embeddings,
                  self.max_face_contents, self.max_voice_contents)
        if min(limits) < 1:
            raise UsageError(f"per-entity limits must be >= 1, got {limits}")
        if not -1.0 <= self.contradict_threshold < self.reinforce_threshold <= 1.0:
            raise UsageError("need -1 <= contradict_threshold < reinforce_threshold <= 1")


@dataclass
class EntityNode:
    id: int
    kind: str  # "face" | "voice"
    birth: int  # character id this entity was born with (see m3mem.characters)
    embeddings: np.ndarray  # (k, d) float32 identity embeddings, k <= the configured maximum
    contents: list[bytes | str] = field(default_factory=list)  # crops (JPEG) or transcript lines


@dataclass
class TextNode:
    id: int
    kind: str  # "episodic" | "semantic"
    text: str
    clip: int
    start: float  # clip start, seconds from the start of the video
    end: float  # clip end, seconds
    embedding: np.ndarray  # (d,) float32, L2-normalised
    entities: tuple[int, ...]  # entity ids the text mentioned when it was written


@dataclass(frozen=True)
class Fact:
    """A fact a memorizer asserted about one entity (e.g. key "name"), with the text node that
    states it in words."""

    entity: int  # face/voice node id
    key: str
    value: str
    clip: int
    text: int  # the text node saying it


@dataclass(frozen=True)
class TextResult:
    """What happened to a text added to the graph."""

    node_id: int  # the new node, or the existing one that was reinforced
    inserted: bool
    reinforced: tuple[int, ...] = ()
    weakened: tuple[int, ...] = ()


@dataclass
class Changes:
    """Nodes and edges touched since the last drain (what the store must write)."""

    nodes: set[int] = field(default_factory=set)
    edges: set[tuple[int, int]] = field(default_factory=set)  # (text node, entity); absent = deleted
    clips: set[int] = field(default_factory=set)
    facts: list[Fact] = field(default_factory=list)  # new facts (facts are never rewritten)

    def __bool__(self) -> bool:
        return bool(self.nodes or self.edges or self.clips or self.facts)


class MemoryGraph:
    """Entity-centric memory of one video. Node ids are shared by all kinds and never reused."""

    def __init__(self, config: GraphConfig | None = None, dims: dict[str, int] | None = None):
        self.config = config or GraphConfig()
        self.dims: dict[str, int] = dict(dims or {})  # "face" / "voice" / "text" -> dimension
        self.entities: dict[int, EntityNode] = {}
        self.texts: dict[int, TextNode] = {}
        self.adj: dict[int, dict[int, float]] = {}  # node -> {neighbour: weight}, both directions
        self.clips: dict[int, tuple[float, float]] = {}  # clip index -> (start, end) seconds
        self.clip_texts: dict[int, list[int]] = {}  # clip index -> its text node ids
        self.facts: list[Fact] = []  # in the order they were asserted
        self.next_id = 0
        self.next_birth = 0
        self._groups: dict[frozenset[int], Rows] = {}  # semantic nodes by mentioned entity set
        self._ungrouped: list[int] = []  # semantic nodes not yet in _groups (built when a write needs them)
        self._equivalences: set[int] = set()
        self._characters: tuple[dict[int, int], dict[int, list[int]]] | None = None
        self._translated: dict[int, str] = {}  # text node id -> translated text, per character map
        self._changes = Changes()

    # ----------------------------------------------------------------- entities
    def add_entity(self, kind: str, embeddings: np.ndarray,
                   contents: list[bytes | str] = ()) -> int:
        """New face/voice node from (k, d) identity embeddings; returns its id."""
        if kind not in ENTITY_KINDS:
            raise ValueError(f"entity kind must be one of {ENTITY_KINDS}, got {kind!r}")
        node = EntityNode(self.next_id, kind, self.next_birth,
                          np.empty((0, self._dim(kind, embeddings)), np.float32), [])
        self.next_id += 1
        self.next_birth += 1
        self.entities[node.id] = node
        self.adj[node.id] = {}
        self._characters = None
        self.update_entity(node.id, embeddings, contents)
        return node.id

    def update_entity(self, node_id: int, embeddings: np.ndarray,
                      contents: list[bytes | str] = ()) -> None:
        """Add identity embeddings (k, d) and contents; keeps a bounded, evenly spread subset."""
        node = self.entity(node_id)
        new = np.asarray(embeddings, np.float32)
        new = new.reshape(1, -1) if new.ndim == 1 else new
        rows = [normalise(v, self._dim(node.kind, new), f"{node.kind}_{node_id}") for v in new]
        if rows:
            allv = np.concatenate([node.embeddings, np.stack(rows)])
            node.embeddings = allv[keep_spread(len(allv), self._limit(node.kind, "embeddings"))]
        if contents:
            allc = node.contents + list(contents)
            node.contents = [allc[i] for i in keep_spread(len(allc), self._limit(node.kind, "contents"))]
        self._changes.nodes.add(node_id)

    def entity(self, node_id: int) -> EntityNode:
        try:
            return self.entities[node_id]
        except KeyError:
            raise KeyError(f"no face or voice node with id {node_id}") from None

    def entity_ids(self, kind: str) -> list[int]:
        return [i for i, e in self.entities.items() if e.kind == kind]

    # -------------------------------------------------------------------- texts
    def add_clip(self, clip: int, start: float, end: float) -> None:
        if clip < 0 or not end >= start >= 0:
            raise ValueError(f"clip {clip}: bad span {start}..{end} s")
        self.clips[clip] = (float(start), float(end))
        self.clip_texts.setdefault(clip, [])
        self._changes.clips.add(clip)

    def add_text(self, kind: str, text: str, clip: int, embedding: np.ndarray) -> TextResult:
        """Add an episodic or semantic memory of ``clip`` (registered with ``add_clip``).

        Mentions of entities that do not exist are kept as text and logged. A semantic memory
        about the same set of entities as an existing one reinforces it when their cosine is
        above ``reinforce_threshold`` (and is not inserted), and weakens it when below
        ``contradict_threshold``.
        """
        if kind not in TEXT_KINDS:
            raise ValueError(f"text kind must be one of {TEXT_KINDS}, got {kind!r}")
        if clip not in self.clips:
            raise KeyError(f"clip {clip} was not added to the graph")
        emb = normalise(embedding, self._dim("text", embedding), f"memory {text[:40]!r}")
        entities = self._resolve(text, clip)
        reinforced: list[int] = []
        weakened: list[int] = []
        if kind == "semantic" and entities:
            group = self._group(frozenset(entities))
            if group is not None and group.ids:
                sims = group.view() @ emb
                reinforced = [group.ids[i] for i in np.flatnonzero(sims > self.config.reinforce_threshold)]
                weakened = [group.ids[i] for i in np.flatnonzero(sims < self.config.contradict_threshold)]
            for nid in reinforced:
                self._shift_edges(nid, +1.0)
            for nid in weakened:
                self._shift_edges(nid, -1.0)
            if reinforced:
                best = max(reinforced, key=lambda i: float(self.texts[i].embedding @ emb))
                return TextResult(best, False, tuple(reinforced), tuple(weakened))
        node = TextNode(self.next_id, kind, text, clip, *self.clips[clip], emb, tuple(entities))
        self.next_id += 1
        self._insert_text(node)
        for e in entities:
            self._set_edge(node.id, e, 1.0)
        self._changes.nodes.add(node.id)
        return TextResult(node.id, True, tuple(reinforced), tuple(weakened))

    def _resolve(self, text: str, clip: int) -> list[int]:
        found = []
        for m in parse_mentions(text):
            if m.kind == "character":
                ids = self.character_entities(m.id)
            elif m.id in self.entities and self.entities[m.id].kind == m.kind:
                ids = [m.id]
            else:
                ids = []
            if not ids:
                log.warning("clip %d: %s names no entity in this memory; kept as text", clip, m.tag())
            found.extend(i for i in ids if i not in found)
        return found

    def _insert_text(self, node: TextNode) -> None:
        self.texts[node.id] = node
        self.adj.setdefault(node.id, {})
        self.clip_texts.setdefault(node.clip, []).append(node.id)
        if node.kind == "semantic" and node.entities:
            self._ungrouped.append(node.id)  # grouped lazily: a memory opened to be read never needs it
            if is_equivalence(node.text):
                self._equivalences.add(node.id)
                self._characters = None

    def _group(self, key: frozenset[int]) -> Rows | None:
        """The semantic nodes that mention exactly the entities ``key`` (with their embeddings)."""
        for nid in self._ungrouped:
            node = self.texts[nid]
            group = self._groups.get(frozenset(node.entities))
            if group is None:
                group = self._groups[frozenset(node.entities)] = Rows(len(node.embedding))
            group.append(nid, node.embedding)
        self._ungrouped.clear()
        return self._groups.get(key)

    def _set_edge(self, text_id: int, entity_id: int, weight: float) -> None:
        if weight <= 0:
            self.adj[text_id].pop(entity_id, None)
            self.adj[entity_id].pop(text_id, None)
        else:
            self.adj[text_id][entity_id] = weight
            self.adj[entity_id][text_id] = weight
        self._changes.edges.add((text_id, entity_id))
        if text_id in self._equivalences:
            self._characters = None

    def _shift_edges(self, text_id: int, delta: float) -> None:
        for entity_id, w in list(self.adj[text_id].items()):
            self._set_edge(text_id, entity_id, w + delta)

    # -------------------------------------------------------------------- facts
    def add_fact(self, entity: int, key: str, value: str, clip: int, text: int) -> Fact:
        """Record that ``entity``'s ``key`` is ``value`` (said by text node ``text`` in ``clip``)."""
        self.entity(entity)
        if text not in self.texts:
            raise KeyError(f"no text node with id {text}")
        fact = Fact(entity, key, value, clip, text)
        self.facts.append(fact)
        self._changes.facts.append(fact)
        return fact

    def names(self) -> dict[int, str]:
        """Character id -> name, from "name" facts about any of its faces and voices: the name
        asserted most often wins, ties go to the earliest."""
        votes: dict[int, dict[str, int]] = {}
        for f in self.facts:
            if f.key == "name" and f.entity in self.entities:
                names = votes.setdefault(self.character_of(f.entity), {})
                names[f.value] = names.get(f.value, 0) + 1
        return {c: max(names, key=lambda n: (names[n], -list(names).index(n))) for c, names in votes.items()}

    def text_nodes(self, ids: list[int]) -> list[TextNode]:
        """The text nodes of ``ids``, in that order (a reader's view reads the ones it has not
        read yet in one query)."""
        many = getattr(self.texts, "many", None)
        return many(ids) if many is not None else [self.texts[i] for i in ids]

    # --------------------------------------------------------------- neighbours
    def neighbours(self, node_id: int) -> dict[int, float]:
        """Adjacent nodes with edge weights; O(degree)."""
        return self.adj.get(node_id, {})

    def texts_of_entities(self, entity_ids: list[int]) -> list[int]:
        """Sorted ids of text nodes linked to any of the entities."""
        out: set[int] = set()
        for e in entity_ids:
            out.update(self.adj.get(e, ()))
        return sorted(out)

    # --------------------------------------------------------------- characters
    def _equivalence_pairs(self) -> list[tuple[int, int]]:
        """Pairs to merge; each voice keeps only the face of its strongest equivalence."""
        pairs: list[tuple[int, int]] = []
        best: dict[int, tuple[float, int]] = {}  # voice -> (weight, -node id)
        for nid in sorted(self._equivalences):
            linked = sorted(self.adj[nid])
            faces = [e for e in linked if self.entities[e].kind == "face"]
            voices = [e for e in linked if self.entities[e].kind == "voice"]
            if faces and voices:
                for v in voices:
                    cand = (self.adj[nid][v], -nid)
                    if v not in best or cand > best[v]:
                        best[v] = cand
            else:
                pairs.extend((linked[0], other) for other in linked[1:])
        for v, (_, neg) in best.items():
            pairs.extend((v, f) for f in sorted(self.adj[-neg]) if self.entities[f].kind == "face")
        return pairs

    def _character_maps(self) -> tuple[dict[int, int], dict[int, list[int]]]:
        if self._characters is None:
            self._translated.clear()
            births = {i: e.birth for i, e in self.entities.items()}
            self._characters = build_characters(births, self._equivalence_pairs())
        return self._characters

    def character_of(self, entity_id: int) -> int:
        """Stable character id of a face/voice entity."""
        return self._character_maps()[0][entity_id]

    def characters(self) -> dict[int, list[int]]:
        """Character id -> member entity ids."""
        return dict(self._character_maps()[1])

    def character_entities(self, character: int) -> list[int]:
        """All face/voice ids of ``<character_N>``; a merged-away id resolves to its survivor."""
        of_entity, members = self._character_maps()
        if character in members:
            return list(members[character])
        born = [i for i, e in self.entities.items() if e.birth == character]
        return list(members[of_entity[born[0]]]) if born else []

    def translate(self, text: str) -> str:
        """Entity mentions -> ``<character_N>`` (unknown mentions are left as they are)."""
        of_entity = self._character_maps()[0]

        def _one(m: Mention) -> str | None:
            if m.kind in ENTITY_KINDS and m.id in of_entity and self.entities[m.id].kind == m.kind:
                return f"<character_{of_entity[m.id]}>"
            return None

        return substitute(text, _one)

    def is_equivalence_node(self, node_id: int) -> bool:
        return node_id in self._equivalences

    def translated_text(self, node_id: int) -> str:
        """A text node's memory as the agent reads it (cached until characters change)."""
        self._character_maps()
        out = self._translated.get(node_id)
        if out is None:
            out = self._translated[node_id] = self.translate(self.texts[node_id].text)
        return out

    def resolve_query(self, text: str) -> list[int]:
        """Entity ids that a query's mentions refer to (characters expanded)."""
        out: list[int] = []
        for m in parse_mentions(text):
            if m.kind == "character":
                ids = self.character_entities(m.id)
            else:
                ids = [m.id] if m.id in self.entities and self.entities[m.id].kind == m.kind else []
            out.extend(i for i in ids if i not in out)
        return out

    # --------------------------------------------------------------- internals
    def _dim(self, key: str, embeddings: np.ndarray) -> int:
        arr = np.asarray(embeddings)
        dim = int(arr.shape[-1]) if arr.ndim else 0
        if key not in self.dims:
            if dim == 0:
                raise ValueError(f"{key}: empty embedding")
            self.dims[key] = dim
        return self.dims[key]

    def _limit(self, kind: str, what: str) -> int:
        return getattr(self.config, f"max_{kind}_{what}")

    def drain_changes(self) -> Changes:
        """Return and reset the set of nodes, edges and clips touched since the last call."""
        changes, self._changes = self._changes, Changes()
        return changes

    # ----------------------------------------------------- restore (from store)
    def restore_entity(self, node: EntityNode) -> None:
        self.entities[node.id] = node
        self.adj.setdefault(node.id, {})
        self.next_id = max(self.next_id, node.id + 1)
        self.next_birth = max(self.next_birth, node.birth + 1)
        self._characters = None

    def restore_text(self, node: TextNode) -> None:
        self._insert_text(node)
        self.next_id = max(self.next_id, node.id + 1)

    def restore_fact(self, fact: Fact) -> None:
        self.facts.append(fact)

    def restore_edge(self, text_id: int, entity_id: int, weight: float) -> None:
        self.adj[text_id][entity_id] = weight
        self.adj[entity_id][text_id] = weight
