"""Faces in a clip: detect and embed on sampled frames, filter by quality, cluster per clip."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preprocessing.cluster import agglomerate
from preprocessing.interfaces import FaceModel
from preprocessing.types import FaceCluster


@dataclass(frozen=True)
class FaceOptions:
    min_score: float = 0.7  # detector confidence
    min_size: int = 32  # shorter box side, pixels of the sampled frame
    min_sharpness: float = 20.0  # variance of the Laplacian of the grey crop resized to sharpness_side:
    #   measured at one size, an upscaled face (a 224 px interview letterboxed to 640x360) is not "blurry";
    #   faces here: native and upscaled >= 43 (1st percentile), heavily blurred ~17 (median)
    sharpness_side: int = 64  # pixels: the crop is resized to this square before measuring sharpness
    cluster_threshold: float = 0.92  # cosine (dlib): detections above it (average linkage) are one person;
    #   as strict as matching across clips (m3mem.identity): a cut inside a clip is the same decision
    small_face: int = 80  # pixels (shorter box side): below it dlib upsamples the face and its embedding
    small_face_threshold: float = 0.88  # is noisier, so one person's small faces cluster at this cosine
    crops: int = 3  # best crops kept per cluster
    track_iou: float = 0.3  # a box overlapping the previous frame's box this much continues its track...
    track_colour: float = 0.8  # ...if the crops' colour histograms also correlate this much (not a cut)
    reuse_similarity: float = 0.90  # a detection whose grey 24x24 crop correlates this much with the crop
    #   its track last embedded reuses that embedding; else it is embedded. Long video: across a cut <= 0.76,
    #   same shot median 0.81 (so many detections skip the 84 ms embedding, and no identity is passed
    #   across a cut, which tracks alone did when two letterboxed shots look alike)


@dataclass
class _Det:
    t: float
    box: np.ndarray
    emb: np.ndarray | None  # identity embedding (its own, or reused from its track)
    quality: float
    frame: int
    track: int
    hist: np.ndarray  # hue-saturation histogram of the crop (tells a cut from a continuing shot)
    thumb: np.ndarray  # zero-mean, unit-norm grey 24x24 crop (tells whether the face changed)
    reused: "_Det | None" = None  # the earlier detection of its track whose embedding it reuses


def _sharpness(crop: np.ndarray, side: int) -> float:
    """Variance of the Laplacian of the grey crop at ``side`` x ``side`` pixels (scale-free)."""
    import cv2

    grey = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (side, side), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _thumb(crop: np.ndarray) -> np.ndarray:
    import cv2

    g = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (24, 24), interpolation=cv2.INTER_AREA)
    g = g.astype(np.float32).ravel()
    g -= g.mean()
    return g / max(float(np.linalg.norm(g)), 1e-6)


def _hist(crop: np.ndarray) -> np.ndarray:
    import cv2

    hsv = cv2.cvtColor(cv2.resize(crop, (32, 32)), cv2.COLOR_RGB2HSV)
    h = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
    return cv2.normalize(h, h).flatten()



def jpeg(crop: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4)."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def detect(frames: list[np.ndarray], times: list[float], model: FaceModel, options: FaceOptions
           ) -> list[_Det]:
    """Quality-filtered detections over sampled RGB frames, linked into tracks (a box that overlaps
    one of the previous frame's boxes, with a similar colour histogram, continues its track).
    Identity embedding is the expensive step, so a detection whose face looks as it did when its
    track was last embedded reuses that embedding (``reuse_similarity``)."""
    import cv2

    out: list[_Det] = []
    prev: list[_Det] = []
    last: dict[int, _Det] = {}  # track -> its last detection that was embedded
    tracks = 0
    for i, (img, t) in enumerate(zip(frames, times)):
        boxes, scores = model.detect(img)
        cur: list[_Det] = []
        for box, score in zip(boxes, scores):
            x0, y0, x1, y1 = box.astype(int)
            if score < options.min_score or min(x1 - x0, y1 - y0) < options.min_size:
                continue
            crop = img[max(y0, 0):y1, max(x0, 0):x1]
            sharp = _sharpness(crop, options.sharpness_side)
            if sharp < options.min_sharpness:
                continue
            cur.append(_Det(t, box, None, float(score) * min(sharp / 200.0, 1.0), i, -1, _hist(crop), _thumb(crop)))
        if cur and prev:  # greedy one-to-one linking by IoU, never across a cut
            iou = _iou(np.stack([d.box for d in cur]), np.stack([d.box for d in prev]))
            for a, b in zip(*np.nonzero(iou > options.track_iou)):
                if cv2.compareHist(cur[a].hist, prev[b].hist, cv2.HISTCMP_CORREL) < options.track_colour:
                    iou[a, b] = 0.0
            while iou.size and iou.max() > options.track_iou:
                a, b = np.unravel_index(np.argmax(iou), iou.shape)
                cur[a].track = prev[b].track
                iou[a, :] = iou[:, b] = -1
        todo = []
        for d in cur:
            if d.track < 0:
                d.track, tracks = tracks, tracks + 1
            ref = last.get(d.track)
            if ref is not None and float(d.thumb @ ref.thumb) >= options.reuse_similarity:
                d.emb, d.reused = ref.emb, ref
            else:
                todo.append(d)
                last[d.track] = d
        if todo:
            for d, e in zip(todo, model.embed(img, np.stack([d.box for d in todo]))):
                d.emb = e
        out.extend(cur)
        prev = cur
    return out


def cluster(dets: list[_Det], frames: list[np.ndarray], scale: float, options: FaceOptions
            ) -> list[FaceCluster]:
    """Average-linkage clustering of the embedded detections on cosine (two faces in one frame are
    never merged); a detection that reused its track's embedding joins that detection's cluster."""
    embedded = [d for d in dets if d.emb is not None and d.reused is None]
    if not embedded:
        return []
    sides = np.array([min(d.box[2] - d.box[0], d.box[3] - d.box[1]) for d in embedded])
    thresholds = np.where(sides < options.small_face, options.small_face_threshold, options.cluster_threshold)
    labels = agglomerate(np.stack([d.emb for d in embedded]), [d.frame for d in embedded], thresholds)
    label_of = {id(d): lab for d, lab in zip(embedded, labels)}
    for d in dets:
        if d.reused is not None:
            label_of[id(d)] = label_of[id(d.reused)]
    clusters = []
    for lab in sorted(set(labels)):
        emb = [d.emb for d, l in zip(embedded, labels) if l == lab]
        members = [d for d in dets if label_of.get(id(d)) == lab]
        best = sorted(members, key=lambda d: -d.quality)[: options.crops]
        crops = []
        for d in best:
            x0, y0, x1, y1 = d.box.astype(int)
            crops.append(jpeg(frames[d.frame][max(y0, 0):y1, max(x0, 0):x1]))
        clusters.append(FaceCluster(
            embeddings=np.stack(emb).astype(np.float32),
            times=[d.t for d in members],
            boxes=np.stack([d.box for d in members]) / scale,
            crops=crops, quality=max(d.quality for d in members)))
    clusters.sort(key=lambda c: (-len(c.times), c.times[0]))
    return clusters
