"""On-disk cache of per-clip perception, keyed by (video content hash, clip index, parameters).

One ``.npz`` file per clip (arrays + JPEG bytes as uint8 arrays + a JSON header; no pickle),
written atomically, so re-running memorization never redoes perception and a damaged entry is
only a cache miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from preprocessing.types import ClipPerception, FaceCluster, Utterance, VoiceCluster

log = logging.getLogger(__name__)

FORMAT = 1


def content_hash(path: str | Path, chunk: int = 1 << 23, limit: int | None = None) -> str:
    """sha256 of the file's bytes, or of its first ``limit`` bytes (renaming or moving a video
    keeps its cache)."""
    h = hashlib.sha256()
    left = limit
    with open(path, "rb") as f:
        while left is None or left > 0:
            block = f.read(chunk if left is None else min(chunk, left))
            if not block:
                break
            h.update(block)
            left = None if left is None else left - len(block)
    return h.hexdigest()


class PerceptionCache:
    def __init__(self, root: str | Path, video_hash: str, params: str):
        key = hashlib.sha256(f"{FORMAT}|{params}".encode()).hexdigest()[:16]
        self.dir = Path(root) / video_hash[:32] / key
        self.params = params

    def _file(self, clip: int) -> Path:
        return self.dir / f"clip_{clip:06d}.npz"

    def exists(self, clip: int) -> bool:
        return self._file(clip).is_file()

    def get(self, clip: int, video: str) -> ClipPerception | None:
        f = self._file(clip)
        if not f.is_file():
            return None
        try:
            with np.load(f, allow_pickle=False) as z:
                return _decode(dict(z), video)
        except Exception as e:  # a damaged entry is a miss, never a failure
            log.warning("perception cache entry %s unreadable (%s); recomputing clip %d", f, e, clip)
            return None

    def put(self, result: ClipPerception) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        f = self._file(result.clip)
        tmp = f.with_name(f.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **_encode(result, self.params))
        os.replace(tmp, f)


def _bytes(b: bytes) -> np.ndarray:
    return np.frombuffer(b, np.uint8)


def _encode(r: ClipPerception, params: str) -> dict[str, np.ndarray]:
    header = {"clip": r.clip, "start": r.start, "end": r.end, "has_audio": r.has_audio,
              "params": params, "scene_text": r.scene_text, "timings": r.timings,
              "faces": [{"times": f.times, "quality": f.quality, "crops": len(f.crops)} for f in r.faces],
              "voices": [{"spans": v.spans} for v in r.voices],
              "utterances": [[u.start, u.end, u.text, u.speaker] for u in r.utterances],
              "keyframes": len(r.keyframes)}
    arrays = {"header": np.array(json.dumps(header))}
    for i, f in enumerate(r.faces):
        arrays[f"face{i}_emb"] = f.embeddings
        arrays[f"face{i}_boxes"] = f.boxes
        for j, c in enumerate(f.crops):
            arrays[f"face{i}_crop{j}"] = _bytes(c)
    for i, v in enumerate(r.voices):
        arrays[f"voice{i}_emb"] = v.embeddings
    for j, k in enumerate(r.keyframes):
        arrays[f"key{j}"] = _bytes(k)
    return arrays


def _decode(z: dict[str, np.ndarray], video: str) -> ClipPerception:
    h = json.loads(str(z["header"]))
    out = ClipPerception(video, h["clip"], h["start"], h["end"], has_audio=h["has_audio"],
                         scene_text=h["scene_text"], timings=h["timings"])
    out.faces = [FaceCluster(z[f"face{i}_emb"], f["times"], z[f"face{i}_boxes"],
                             [z[f"face{i}_crop{j}"].tobytes() for j in range(f["crops"])], f["quality"])
                 for i, f in enumerate(h["faces"])]
    out.voices = [VoiceCluster(z[f"voice{i}_emb"], [tuple(s) for s in v["spans"]])
                  for i, v in enumerate(h["voices"])]
    out.utterances = [Utterance(*u) for u in h["utterances"]]
    out.keyframes = [z[f"key{j}"].tobytes() for j in range(h["keyframes"])]
    return out
