"""Matching a clip's face/voice clusters to the memory's face/voice nodes across clips.

A cluster is scored against a node by the mean cosine between the cluster's centroid and the
node's identity embeddings; each node takes at most one cluster per clip (greedy, best first), and
a cluster almost as close to a second node of another person is not matched (it is ambiguous, so
it starts a node).

Voices also use what the faces show: a voice heard while one face is alone on screen, when that
face's node already belongs to a character with a voice, joins that voice at a lower score than
voices need on their own, even when another cluster of the same clip, heard while the same face
was alone, took that voice already (the clip's clustering split one speaker). Speaker embeddings
of one person recorded in different places differ more than faces do; the face is the stronger
evidence. Thresholds were calibrated on real media (see
``scripts/calibrate_identity.py``, ``scripts/calibrate_voices.py``, ``bench/identity.py`` and README).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from m3mem.graph import MemoryGraph


@dataclass(frozen=True)
class IdentityOptions:
    face_threshold: float = 0.928  # dlib 128-d cosine (flip-averaged); see README "Identity" for the calibration
    voice_threshold: float = 0.75  # resemblyzer 256-d: same speaker ~0.8-0.95, different ~0.55-0.7
    ambiguity: float = 0.005  # a best score within this of a rival node's is not a match
    av_voice_threshold: float = 0.55  # a voice joins the voice of the face alone on screen at this score
    av_seconds: float = 1.0  # ...when it speaks at least this long while that face is alone on screen
    av_share: float = 0.5  # ...and that is at least this share of its speech in the clip
    av_margin: float = 0.5  # seconds a sampled face detection counts as visible around it
    split_share: float = 0.9  # a clip's second cluster joins the voice its first took only when this
    #   share of its speech is heard while the same face is alone (not a window straddling a cut)


def centroid(embeddings: np.ndarray) -> np.ndarray:
    c = np.asarray(embeddings, np.float32).mean(0)
    return c / max(float(np.linalg.norm(c)), 1e-12)


def scores(graph: MemoryGraph, kind: str, clusters: list[np.ndarray], method: str = "mean"
           ) -> tuple[list[int], np.ndarray]:
    """Node ids of ``kind`` and the (clusters, nodes) score matrix."""
    nodes = graph.entity_ids(kind)
    if not clusters or not nodes:
        return nodes, np.zeros((len(clusters), len(nodes)), np.float32)
    cents = np.stack([centroid(c) for c in clusters])
    if method == "centroid":
        return nodes, cents @ np.stack([centroid(graph.entities[n].embeddings) for n in nodes]).T
    return nodes, np.stack([(graph.entities[n].embeddings @ cents.T).mean(0) for n in nodes], 1)


def match(graph: MemoryGraph, kind: str, clusters: list[np.ndarray], threshold: float,
          method: str = "mean", ambiguity: float = 0.0) -> list[int | None]:
    """Node id for each cluster's embeddings (k, d), or None when no node is close enough.

    ``method``: ``mean`` scores a node by the mean cosine of its embeddings with the cluster's
    centroid; ``centroid`` by the cosine of the two centroids. A best score less than
    ``ambiguity`` above a rival node's is not a match. A rival is a node that is not itself a match
    for the best one: two nodes of one person (split earlier) are no reason for doubt, and starting
    a third node for them would make every later cluster of that person more ambiguous still."""
    nodes, s = scores(graph, kind, clusters, method)
    out: list[int | None] = [None] * len(clusters)
    if not nodes:
        return out
    embeddings = [graph.entities[n].embeddings for n in nodes]
    same: dict[tuple[int, int], bool] = {}

    def alike(a: int, b: int) -> bool:
        if (a, b) not in same:
            same[a, b] = same[b, a] = min(float((embeddings[a] @ centroid(embeddings[b])).mean()),
                                          float((embeddings[b] @ centroid(embeddings[a])).mean())) >= threshold
        return same[a, b]

    def clear(ci: int, ni: int) -> bool:
        if ambiguity <= 0:
            return True
        close = np.flatnonzero(s[ci] > s[ci, ni] - ambiguity)
        return all(nj == ni or alike(ni, int(nj)) for nj in close)

    taken: set[int] = set()
    for flat in np.argsort(-s, axis=None):
        ci, ni = divmod(int(flat), len(nodes))
        if s[ci, ni] < threshold:
            break
        if out[ci] is None and ni not in taken and clear(ci, ni):
            out[ci] = nodes[ni]
            taken.add(ni)
    return out


def solo_partner(face_times: list[list[float]], speech: list[tuple[float, float]], options: IdentityOptions,
                 grid: float = 0.25) -> int | None:
    """Index of the face alone on screen for most of a voice's speech (seconds, video time), or
    None when no face is alone on screen long enough while it speaks."""
    if not face_times or not speech:
        return None
    lo = min([a for a, _ in speech] + [min(t) for t in face_times if t]) - options.av_margin
    hi = max([b for _, b in speech] + [max(t) for t in face_times if t]) + options.av_margin
    n = int((hi - lo) / grid) + 2
    vis = np.zeros((len(face_times), n), bool)
    for i, times in enumerate(face_times):
        for t in times:
            vis[i, int((t - options.av_margin - lo) / grid):int((t + options.av_margin - lo) / grid) + 1] = True
    speak = np.zeros(n, bool)
    for a, b in speech:
        speak[int((a - lo) / grid):int((b - lo) / grid)] = True
    alone = speak & (vis.sum(0) == 1)
    seconds = (alone[None, :] & vis).sum(1) * grid
    best = int(np.argmax(seconds))
    if seconds[best] < options.av_seconds or seconds[best] < options.av_share * speak.sum() * grid:
        return None
    return best


def match_voices(graph: MemoryGraph, voices: list[np.ndarray], partners: list[int | None],
                 options: IdentityOptions, split_partners: list[int | None] | None = None) -> list[int | None]:
    """Voice node for each voice cluster: by voice alone at ``voice_threshold``; else, when the face
    alone on screen while it speaks (``partners``: a face node id or None) belongs to a character
    with a voice, that voice if the score reaches ``av_voice_threshold``; a voice another cluster of
    this clip took only when that cluster's partner is the same face and so is this one's
    ``split_partners`` entry (the face alone for ``split_share`` of its speech; default: ``partners``)."""
    split_partners = partners if split_partners is None else split_partners
    out = match(graph, "voice", voices, options.voice_threshold)
    # which face was alone on screen while the cluster that took each node spoke: a node takes one
    # cluster per clip, except that two clusters heard while the same face is alone on screen are
    # one speaker split by the clip's clustering (a person recorded twice, a change of tone)
    taken = {n: partners[k] for k, n in enumerate(out) if n is not None}
    for k, (node, face) in enumerate(zip(out, partners)):
        if node is not None or face is None:
            continue
        candidates = [e for e in graph.character_entities(graph.character_of(face))
                      if graph.entities[e].kind == "voice" and (e not in taken or taken[e] == face == split_partners[k])]
        if not candidates:
            continue
        c = centroid(voices[k])
        best = max(candidates, key=lambda e: float((graph.entities[e].embeddings @ c).mean()))
        if float((graph.entities[best].embeddings @ c).mean()) >= options.av_voice_threshold:
            out[k] = best
            taken[best] = face
    return out
