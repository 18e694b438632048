"""Ingest: a video in, its memory written clip by clip (perception -> identity -> memorizer).

Each clip is one transaction (entities, memories, memorizer state), so a run killed anywhere
keeps every finished clip and a re-run resumes at the next one with no duplicates. Perception
results are cached on disk, so re-memorizing (another memorizer, a crash in the memorizer) never
redoes perception.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from m3mem.errors import IngestError
from m3mem.identity import IdentityOptions, match, match_voices, solo_partner
from m3mem.memory import ClipWriter, Memory
from models.base import TextEmbedder
from models.memorizer import ClipContext, EntityFact, Memorizer
from preprocessing.cache import PerceptionCache, content_hash
from preprocessing.perception import PerceptionModels, PerceptionOptions, perceive
from preprocessing.types import ClipPerception
from preprocessing.video import MediaError, clip_windows, iter_clips, prefetch, probe

log = logging.getLogger(__name__)
__all__ = ["IngestError", "IngestReport", "Ingestor"]


@dataclass
class IngestReport:
    video: str
    memory: str
    clips: int = 0  # clips in the video
    skipped: int = 0  # already committed before this run
    done: int = 0  # committed by this run
    cached: int = 0  # of those, perception read from the cache
    faces: int = 0  # face nodes in the memory
    voices: int = 0
    characters: int = 0
    episodic: int = 0
    semantic: int = 0
    video_seconds: float = 0.0
    wall_seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # seconds spent per stage in this run

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["seconds_per_clip"] = self.wall_seconds / self.done if self.done else None
        d["realtime_factor"] = self.wall_seconds / self.video_seconds if self.video_seconds else None
        return d


@dataclass
class Ingestor:
    models: PerceptionModels
    memorizer: Memorizer
    embedder: TextEmbedder
    perception: PerceptionOptions = field(default_factory=PerceptionOptions)
    identity: IdentityOptions = field(default_factory=IdentityOptions)
    cache_dir: Path | None = None

    def run(self, video: str | Path, memory: str | Path,
            progress: Callable[[int, int, dict], None] | None = None) -> IngestReport:
        """Ingest ``video`` into ``memory`` (created if missing); ``progress(done, total, stages)``
        is called after each clip. Raises MediaError naming the file (and clip) for bad media."""
        video = Path(video)
        info = probe(video)
        digest = content_hash(video)
        report = IngestReport(str(video), str(memory), video_seconds=info.duration)
        wall = time.perf_counter()
        with Memory.open(memory, self.embedder, create=True) as mem:
            self._check_owner(mem, video, digest)
            windows = clip_windows(info.duration, self.perception.decode.clip_seconds)
            report.clips = len(windows)
            done = mem.completed_clips()
            report.skipped = sum(1 for c in done if 0 <= c < len(windows))
            cache = (PerceptionCache(self.cache_dir, digest, self.perception.key() + "|" + self.models.names())
                     if self.cache_dir else None)
            cached = {i for i, _, _ in windows if cache and i not in done and cache.exists(i)}
            decoded = None  # the decoder starts only if some clip is neither done nor cached
            for i, start, end in windows:
                if i in done:
                    continue
                result = cache.get(i, str(video)) if i in cached else None
                if result is None:
                    t = time.perf_counter()
                    if i in cached:  # a damaged cache entry (rare): decode just that clip
                        clip = next(iter_clips(video, self.perception.decode,
                                               skip=set(range(len(windows))) - {i}), None)
                    else:
                        if decoded is None:
                            # decoded one clip ahead on a thread while this one is perceived
                            decoded = prefetch(iter_clips(video, self.perception.decode, skip=done | cached))
                        clip = next(decoded, None)
                    self._add(report.stages, "decode", time.perf_counter() - t)
                    if clip is None or clip.index != i:
                        raise MediaError(f"{video}: clip {i} ({start:.1f}-{end:.1f} s) could not be decoded")
                    result = perceive(clip, str(video), self.models, self.perception, info.has_audio)
                    for k, v in result.timings.items():
                        self._add(report.stages, k, v)
                    if cache:
                        cache.put(result)
                else:
                    report.cached += 1
                t = time.perf_counter()
                self._commit_clip(mem, result)
                self._add(report.stages, "memorize+store", time.perf_counter() - t)
                report.done += 1
                if progress:
                    progress(report.done + report.skipped, report.clips, report.stages)
            g = mem.graph
            report.faces, report.voices = len(g.entity_ids("face")), len(g.entity_ids("voice"))
            report.characters = len(g.characters())
            report.episodic = sum(1 for n in g.texts.values() if n.kind == "episodic")
            report.semantic = sum(1 for n in g.texts.values() if n.kind == "semantic")
        report.wall_seconds = time.perf_counter() - wall
        return report

    @staticmethod
    def _add(stages: dict[str, float], key: str, seconds: float) -> None:
        stages[key] = stages.get(key, 0.0) + seconds

    @staticmethod
    def _check_owner(mem: Memory, video: Path, digest: str) -> None:
        """The memory must be this video's: the same bytes, or the same bytes with more after them
        (a recording that grew since the last run, which then resumes with the new clips)."""
        owner, size = mem.store.get_meta("video_sha256"), mem.store.get_meta("video_size")
        now = video.stat().st_size
        if owner == digest and size is not None:
            return
        if owner is not None and owner != digest:
            grew = size is not None and now > int(size) and content_hash(video, limit=int(size)) == owner
            if not grew:
                raise IngestError(f"{mem.store.path} holds the memory of another video "
                                  f"({mem.store.get_meta('video_path')}); use another --memory path")
            log.warning("%s grew from %s to %d bytes since its memory was written; resuming with its new part",
                        video, size, now)
        with mem.store.transaction():
            mem.store.set_meta("video_sha256", digest)
            mem.store.set_meta("video_size", str(now))
            mem.store.set_meta("video_path", str(video))

    def _commit_clip(self, mem: Memory, p: ClipPerception) -> None:
        """Match identities, write entities, memorize, store — all in one clip transaction."""
        g, o = mem.graph, self.identity
        face_match = match(g, "face", [f.embeddings for f in p.faces], o.face_threshold, ambiguity=o.ambiguity)
        def partners(options: IdentityOptions) -> list[int | None]:  # face node alone while each voice speaks
            solo = [solo_partner([f.times for f in p.faces], v.spans, options) for v in p.voices]
            return [face_match[i] if i is not None else None for i in solo]

        voice_match = match_voices(g, [v.embeddings for v in p.voices], partners(o), o,
                                   partners(replace(o, av_share=o.split_share)))
        all_state = json.loads(mem.store.get_meta("memorizer_state") or "{}")
        state = all_state.setdefault(self.memorizer.name, {})
        with mem.clip(p.clip, p.start, p.end) as w:
            face_ids = [self._entity(w, node, "face", f.embeddings, f.crops[:1])
                        for node, f in zip(face_match, p.faces)]
            voice_ids = [self._entity(w, node, "voice", v.embeddings, self._lines(p, k))
                         for k, (node, v) in enumerate(zip(voice_match, p.voices))]
            known = {f"{g.entities[i].kind}_{i}" for i in g.entities}
            out = self.memorizer.memorize(ClipContext(p, face_ids, voice_ids, known, state))
            for text in out.episodic:
                w.add_text("episodic", text)
            for text in out.semantic:
                w.add_text("semantic", text)
            for fact in out.facts:
                self._fact(w, fact, p)
            w.set_meta("memorizer_state", json.dumps(all_state))

    @staticmethod
    def _fact(w: ClipWriter, fact: EntityFact, p: ClipPerception) -> None:
        entities = w.graph.resolve_query(fact.entity)
        if len(entities) != 1:
            log.warning("%s clip %d: a fact names no single face or voice of this memory (%r); dropped",
                        p.video, p.clip, fact.entity)
            return
        w.add_fact(entities[0], fact.key, fact.value, fact.text)

    @staticmethod
    def _entity(w: ClipWriter, node: int | None, kind: str, embeddings: np.ndarray, contents) -> int:
        if node is None:
            return w.add_entity(kind, embeddings, contents)
        w.update_entity(node, embeddings, contents)
        return node

    @staticmethod
    def _lines(p: ClipPerception, speaker: int) -> list[str]:
        text = " ".join(u.text.strip() for u in p.utterances if u.speaker == speaker).strip()
        return [text[:300]] if text else []
