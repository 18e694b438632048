"""A memory in and out of other tools: a networkx graph (and JSON / GraphML files of it), and
M3-Agent's pickled ``VideoGraph`` memories read without ever running a pickle.

M3-Agent (ByteDance-Seed/m3-agent, ``mmagent/videograph.py``) pickles a ``VideoGraph`` per video:
``nodes`` {id: ``VideoGraph.Node`` with ``id``, ``type`` img/voice/episodic/semantic,
``embeddings`` (lists or numpy arrays), ``metadata`` {``contents``, ``timestamp`` = clip index}},
``edges`` {(id, id): weight}, ``text_nodes_by_clip``, ``character_mappings``. ``read_m3agent``
reads such a file with an unpickler that maps exactly those classes (and numpy's array
reconstructors) to plain data and refuses every other global, so a file naming ``os.system`` or
any other callable fails with :class:`UnsafeFileError` and nothing runs.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import os
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np

from m3mem.errors import InputError
from m3mem.graph import MemoryGraph
from m3mem.memory import Memory
from models.base import TextEmbedder
from models.mentions import parse_mentions, substitute

log = logging.getLogger(__name__)

M3AGENT_MODULES = {"videograph", "mmagent.videograph"}
NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}
ENTITY_TYPES = {"img": "face", "voice": "voice"}
TEXT_TYPES = {"episodic", "semantic"}


class UnsafeFileError(InputError):
    """A pickled graph names something other than M3-Agent's graph classes and numpy arrays."""


# ------------------------------------------------------------------ export
def to_networkx(graph: MemoryGraph, embeddings: bool = False):
    """The memory as an undirected ``networkx.Graph``: text nodes ``t<id>`` (kind episodic /
    semantic, clip, start, end, text, text with characters) and entity nodes ``e<id>`` (kind face /
    voice, character, name when known, contents count), joined by weighted mention edges. With
    ``embeddings`` each node also carries its embeddings as base64 float32 (``embedding``, ``dim``).
    Every attribute is a string or a number, so GraphML can hold it."""
    import networkx as nx

    g = nx.Graph(kind="m3mem memory", clips=len(graph.clips))
    names = graph.names()
    for i, e in sorted(graph.entities.items()):
        character = graph.character_of(i)
        attrs = {"kind": e.kind, "character": character, "contents": len(e.contents)}
        if character in names:
            attrs["name"] = names[character]
        if embeddings:
            attrs.update(embedding=_b64(e.embeddings), dim=int(e.embeddings.shape[-1]))
        g.add_node(f"e{i}", **attrs)
    for i, t in sorted(graph.texts.items()):
        attrs = {"kind": t.kind, "clip": t.clip, "start": t.start, "end": t.end, "text": t.text,
                 "characters_text": graph.translated_text(i)}
        if embeddings:
            attrs.update(embedding=_b64(t.embedding), dim=int(t.embedding.shape[-1]))
        g.add_node(f"t{i}", **attrs)
        for e, w in graph.adj.get(i, {}).items():
            if e in graph.entities:
                g.add_edge(f"t{i}", f"e{e}", weight=float(w))
    return g


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, np.float32).tobytes()).decode()


def export(graph: MemoryGraph, out: str | Path | io.TextIOBase, fmt: str = "json", embeddings: bool = False) -> None:
    """Write the memory's graph as ``json`` (networkx node-link data) or ``graphml``."""
    import networkx as nx

    g = to_networkx(graph, embeddings)
    if fmt == "graphml":
        text = "\n".join(nx.generate_graphml(g)) + "\n"
    elif fmt == "json":
        text = json.dumps(nx.node_link_data(g, edges="edges"), ensure_ascii=False, indent=1) + "\n"
    else:
        raise ValueError(f"format must be json or graphml, not {fmt!r}")
    if isinstance(out, (str, Path)):
        Path(out).write_text(text, encoding="utf-8")
    else:
        out.write(text)


# ------------------------------------------------------------------ M3-Agent import
class _Graph:
    """Stand-in for ``VideoGraph``: its pickled attributes, nothing else."""


class _Node:
    """Stand-in for ``VideoGraph.Node``."""


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module in M3AGENT_MODULES and name == "VideoGraph":
            return _Graph
        if module in M3AGENT_MODULES and name in ("VideoGraph.Node", "Node"):
            return _Node
        if (module, name) in NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise UnsafeFileError(f"refuses {module}.{name}: an M3-Agent memory graph holds only VideoGraph, "
                              f"VideoGraph.Node and numpy arrays")

    def persistent_load(self, pid):
        raise UnsafeFileError("refuses persistent ids: an M3-Agent memory graph has none")


def read_m3agent(path: str | Path) -> _Graph:
    """The pickled VideoGraph at ``path`` as plain data (see the module docstring)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            graph = _Unpickler(f).load()
    except UnsafeFileError as e:
        raise UnsafeFileError(f"{path}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a readable M3-Agent memory graph ({type(e).__name__}: {e})") from None
    if not isinstance(graph, _Graph) or not isinstance(getattr(graph, "nodes", None), dict):
        raise InputError(f"{path}: not an M3-Agent memory graph (no VideoGraph with nodes inside)")
    for node_id, node in graph.nodes.items():
        if not isinstance(node, _Node) or getattr(node, "type", None) not in (*ENTITY_TYPES, *TEXT_TYPES):
            raise InputError(f"{path}: node {node_id!r} is not a VideoGraph node of a known type")
    return graph


def import_m3agent(path: str | Path, memory: str | Path, embedder: TextEmbedder,
                   clip_seconds: float = 30.0) -> dict:
    """Write the M3-Agent graph at ``path`` as a new m3mem memory: faces and voices keep their
    embeddings (their own dimension) and contents (face crops from base64 JPEG, voice lines); each
    entity is written in the first clip whose memories mention it; memories are re-embedded with
    ``embedder`` and their mentions renumbered to the new ids; characters are rebuilt by m3mem from
    the Equivalence memories. Returns counts."""
    src = read_m3agent(path)
    memory = Path(memory)
    if memory.exists():
        raise InputError(f"{memory} already exists; import into a new memory path")
    entities = {i: n for i, n in src.nodes.items() if n.type in ENTITY_TYPES}
    by_clip: dict[int, list] = defaultdict(list)
    for i, n in sorted(src.nodes.items()):
        if n.type in TEXT_TYPES:
            meta = getattr(n, "metadata", None) or {}
            contents, clip = meta.get("contents") or [], meta.get("timestamp")
            if not contents or not isinstance(contents[0], str) or not isinstance(clip, int):
                log.warning("%s: text node %s has no text or clip; skipped", path, i)
                continue
            by_clip[clip].append((n.type, contents[0]))
    first_clip = min(by_clip, default=0)
    first_seen: dict[int, int] = {}
    for clip in sorted(by_clip):
        for _, text in by_clip[clip]:
            for m in parse_mentions(text):
                if m.id in entities and m.kind == ENTITY_TYPES[entities[m.id].type]:
                    first_seen.setdefault(m.id, clip)
    # written under a temporary name and renamed when whole: a file that fails half way leaves nothing
    partial = memory.with_name(f".{memory.name}.importing")
    try:
        counts = _write_imported(path, partial, embedder, clip_seconds, entities, by_clip, first_clip, first_seen)
        os.replace(partial, memory)
    finally:
        for leftover in partial.parent.glob(partial.name + "*"):
            leftover.unlink(missing_ok=True)
    return counts


def _write_imported(path: Path, memory: Path, embedder: TextEmbedder, clip_seconds: float, entities: dict,
                    by_clip: dict, first_clip: int, first_seen: dict) -> dict:
    new_id: dict[int, int] = {}
    counts = {"faces": 0, "voices": 0, "episodic": 0, "semantic": 0, "clips": 0}
    with Memory.open(memory, embedder, create=True) as mem:
        for clip in sorted(set(by_clip) | {first_clip}):
            with mem.clip(clip, clip * clip_seconds, (clip + 1) * clip_seconds) as w:
                for old, node in sorted(entities.items()):
                    if first_seen.get(old, first_clip) == clip:
                        kind = ENTITY_TYPES[node.type]
                        new_id[old] = w.add_entity(kind, _embeddings(node, path), _contents(node, kind))
                        counts[f"{kind}s"] += 1

                def renumber(m):
                    if m.kind in ("face", "voice") and m.id in new_id and m.kind == ENTITY_TYPES[entities[m.id].type]:
                        return f"<{m.kind}_{new_id[m.id]}>"
                    return None

                for kind, text in by_clip.get(clip, []):
                    w.add_text(kind, substitute(text, renumber))
                    counts[kind] += 1
            counts["clips"] += 1
        with mem.store.transaction():
            mem.store.set_meta("imported_from", f"m3-agent:{Path(path).name}")
        counts["characters"] = len(mem.graph.characters())
    return counts


def _embeddings(node: _Node, path: Path) -> np.ndarray:
    try:
        arr = np.asarray([np.asarray(e, np.float32).ravel() for e in node.embeddings], np.float32)
    except (TypeError, ValueError) as e:
        raise InputError(f"{path}: node {node.id}: embeddings are not numbers of one length ({e})") from None
    if arr.ndim != 2 or not len(arr) or not np.isfinite(arr).all():
        raise InputError(f"{path}: node {node.id}: no usable embeddings")
    return arr


def _contents(node: _Node, kind: str) -> list:
    out = []
    for c in (getattr(node, "metadata", None) or {}).get("contents") or []:
        if kind == "face" and isinstance(c, str):
            try:
                out.append(base64.b64decode(c, validate=True))
            except (binascii.Error, ValueError):
                continue
        elif kind == "voice":
            text = c.get("asr") or c.get("text") if isinstance(c, dict) else c
            if isinstance(text, str) and text.strip():
                out.append(text.strip())
    return out
