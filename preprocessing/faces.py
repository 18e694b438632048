"""Faces in a clip: detect and embed on sampled frames, filter by quality, cluster per clip."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preprocessing.cluster import agglomerate
from preprocessing.types import FaceCluster


@dataclass(frozen=True)
class FaceOptions:
    min_score: float = 0.7  # detector confidence
    min_size: int = 32  # shorter box side, pixels of the sampled frame
    min_sharpness: float = 20.0  # variance of the Laplacian of the grey crop
    cluster_threshold: float = 0.90  # cosine (dlib): detections above it (average linkage) are one person
    crops: int = 3  # best crops kept per cluster


@dataclass
class _Det:
    t: float
    box: np.ndarray
    emb: np.ndarray
    quality: float
    frame: int


def _sharpness(crop: np.ndarray) -> float:
    import cv2

    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def jpeg(crop: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""


def detect(frames: list[np.ndarray], times: list[float], model, options: FaceOptions
           ) -> list[_Det]:
    """Quality-filtered detections with embeddings, over sampled RGB frames."""
    out = []
    for i, (img, t) in enumerate(zip(frames, times)):
        for d in model.analyze(img):
            x0, y0, x1, y1 = d.box.astype(int)
            if d.score < options.min_score or min(x1 - x0, y1 - y0) < options.min_size:
                continue
            sharp = _sharpness(img[max(y0, 0):y1, max(x0, 0):x1])
            if sharp < options.min_sharpness:
                continue
            out.append(_Det(t, d.box, d.embedding, d.score * min(sharp / 200.0, 1.0), i))
    return out


def cluster(dets: list[_Det], frames: list[np.ndarray], scale: float, options: FaceOptions
            ) -> list[FaceCluster]:
    """Average-linkage clustering on cosine; two faces in one frame are never merged."""
    if not dets:
        return []
    emb = np.stack([d.emb for d in dets])
    labels = agglomerate(emb, [d.frame for d in dets], options.cluster_threshold)
    clusters = []
    for lab in sorted(set(labels)):
        members = [d for d, l in zip(dets, labels) if l == lab]
        best = sorted(members, key=lambda d: -d.quality)[: options.crops]
        crops = []
        for d in best:
            x0, y0, x1, y1 = d.box.astype(int)
            crops.append(jpeg(frames[d.frame][max(y0, 0):y1, max(x0, 0):x1]))
        clusters.append(FaceCluster(
            embeddings=np.stack([d.emb for d in members]).astype(np.float32),
            times=[d.t for d in members],
            boxes=np.stack([d.box for d in members]) / scale,
            crops=crops, quality=max(d.quality for d in members)))
    clusters.sort(key=lambda c: (-len(c.times), c.times[0]))
    return clusters
