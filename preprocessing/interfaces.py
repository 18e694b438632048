"""Interfaces of the learned components perception takes (implemented in ``models/``).

Perception never builds a model: the composition root (``m3mem.build``) builds them from settings
and passes them in. Each backend carries a ``name`` that changes when its output would change (it
is part of the perception cache key). Images are RGB uint8 arrays (h, w, 3); audio is mono
float32 at ``preprocessing.types.SAMPLE_RATE``; times are seconds.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from preprocessing.types import AsrSegment


@runtime_checkable
class FaceDetector(Protocol):
    name: str

    def detect(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (n, 4) x0, y0, x1, y1 in pixels and scores (n,) of the faces in ``img``."""
        ...


@runtime_checkable
class FaceEmbedder(Protocol):
    name: str
    dim: int

    def embed(self, img: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(n, dim) L2-normalised identity embeddings of the faces in ``boxes`` of ``img``."""
        ...


@runtime_checkable
class FaceModel(FaceDetector, FaceEmbedder, Protocol):
    """A detector and embedder in one backend (they may share state, e.g. landmarks)."""


@runtime_checkable
class VoiceActivityDetector(Protocol):
    name: str

    def speech(self, audio: np.ndarray) -> list[tuple[float, float]]:
        """(start, end) seconds of speech in ``audio``."""
        ...


@runtime_checkable
class SpeakerEncoder(Protocol):
    name: str
    dim: int

    def embed(self, wavs: list[np.ndarray]) -> np.ndarray:
        """(n, dim) L2-normalised speaker embeddings, one per snippet (each >= ~1 s)."""
        ...


@runtime_checkable
class SpeechRecognizer(Protocol):
    name: str

    def transcribe(self, audio: np.ndarray) -> list[AsrSegment]:
        """Segments with word times, seconds from the start of ``audio``."""
        ...


@runtime_checkable
class SceneTextReader(Protocol):
    name: str

    def read(self, img: np.ndarray) -> list[str]:
        """Lines of text read in ``img``, top to bottom."""
        ...
