"""Voices in a clip: speech windows, per-clip speaker clustering, transcript attribution."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preprocessing.cluster import agglomerate
from preprocessing.interfaces import SpeakerEncoder
from preprocessing.types import SAMPLE_RATE as SR
from preprocessing.types import AsrSegment, Utterance, VoiceCluster


@dataclass(frozen=True)
class VoiceOptions:
    window_s: float = 2.0  # speech is cut into windows of this length for speaker embedding
    min_window_s: float = 1.0  # shorter speech gets no embedding (attributed by neighbours)
    cluster_threshold: float = 0.70  # cosine: windows above it (average linkage) are one speaker


def speech_windows(segments: list[tuple[float, float]], options: VoiceOptions) -> list[tuple[float, float]]:
    """Cut VAD segments (seconds) into windows of ~window_s; a short tail joins its neighbour."""
    out = []
    for s, e in segments:
        n = int((e - s) // options.window_s)
        if n == 0:
            if e - s >= options.min_window_s:
                out.append((s, e))
            continue
        step = (e - s) / n
        out.extend((s + i * step, s + (i + 1) * step) for i in range(n))
    return out


def diarize(audio: np.ndarray, segments: list[tuple[float, float]], encoder: SpeakerEncoder, options: VoiceOptions
            ) -> tuple[list[VoiceCluster], list[tuple[float, float, int]]]:
    """Speaker clusters of one clip's audio (times relative to the clip start).

    Returns the clusters (largest first) and the labelled windows (start, end, cluster index).
    """
    windows = speech_windows(segments, options)
    if not windows:
        return [], []
    emb = encoder.embed([audio[int(a * SR):int(b * SR)] for a, b in windows])
    labels = agglomerate(emb, list(range(len(windows))), options.cluster_threshold)
    order = sorted(set(labels), key=lambda l: -sum(b - a for (a, b), x in zip(windows, labels) if x == l))
    remap = {l: i for i, l in enumerate(order)}
    clusters = []
    for l in order:
        idx = [i for i, x in enumerate(labels) if x == l]
        clusters.append(VoiceCluster(emb[idx].astype(np.float32), [windows[i] for i in idx]))
    return clusters, [(a, b, remap[l]) for (a, b), l in zip(windows, labels)]


def attribute(asr_segments: list[AsrSegment], windows: list[tuple[float, float, int]], n_speakers: int,
              offset: float, end: float | None = None) -> list[Utterance]:
    """Split transcript words by speaker window; consecutive words of one speaker form an
    utterance. ``offset`` (clip start, seconds) turns clip times into video times. Words from
    ``end`` (clip time) on only finish the sentence under way at the clip's end (same speaker);
    the rest belongs to the next clip."""
    def speaker_at(t: float) -> int:
        if not windows:
            return 0 if n_speakers == 1 else -1
        best = min(windows, key=lambda w: 0.0 if w[0] <= t <= w[1] else min(abs(t - w[0]), abs(t - w[1])))
        dist = 0.0 if best[0] <= t <= best[1] else min(abs(t - best[0]), abs(t - best[1]))
        return best[2] if dist <= 1.0 or n_speakers == 1 else -1

    out: list[Utterance] = []
    for seg in asr_segments:
        words = seg.words or []
        if not words:
            if seg.text:
                out.append(Utterance(seg.start + offset, seg.end + offset, seg.text,
                                     speaker_at((seg.start + seg.end) / 2)))
            continue
        for w in words:
            if end is not None and w.start >= end:
                if out and not out[-1].text.endswith((".", "?", "!")):
                    last = out[-1]
                    out[-1] = Utterance(last.start, w.end + offset, f"{last.text} {w.text}", last.speaker)
                    continue
                break
            spk = speaker_at((w.start + w.end) / 2)
            if out and out[-1].speaker == spk and w.start + offset - out[-1].end < 1.0 \
                    and not out[-1].text.endswith((".", "?", "!")):
                last = out[-1]
                out[-1] = Utterance(last.start, w.end + offset, f"{last.text} {w.text}", spk)
            else:
                out.append(Utterance(w.start + offset, w.end + offset, w.text, spk))
    return [u for u in out if u.text.strip()]
