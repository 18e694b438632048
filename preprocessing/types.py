"""What perception hands to the memorizer for one clip, and the units every layer shares."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16_000  # Hz: all audio inside m3mem is mono float32 at this rate


def timecode(seconds: float) -> str:
    """``MM:SS`` below an hour, ``H:MM:SS`` from an hour on (how memories and the CLI write times)."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


@dataclass
class Word:
    start: float  # seconds from the start of the audio given
    end: float
    text: str


@dataclass
class AsrSegment:
    """One transcribed segment, as a speech recognizer returns it."""

    start: float  # seconds from the start of the audio given
    end: float
    text: str
    words: list[Word]


@dataclass
class FaceCluster:
    """One person seen in a clip (many frames, one cluster)."""

    embeddings: np.ndarray  # (k, d) float32, L2-normalised, one per kept detection
    times: list[float]  # seconds (video time) of each kept detection
    boxes: np.ndarray  # (k, 4) x0, y0, x1, y1 in displayed-video pixels
    crops: list[bytes]  # best few face crops, JPEG bytes
    quality: float  # best detection quality (score x sharpness), for ordering

    @property
    def spans(self) -> list[tuple[float, float]]:
        """Visible time spans, merging detections less than 2.5 s apart."""
        out: list[list[float]] = []
        for t in sorted(self.times):
            if out and t - out[-1][1] <= 2.5:
                out[-1][1] = t
            else:
                out.append([t, t])
        return [(a, b) for a, b in out]


@dataclass
class Utterance:
    start: float  # seconds, video time
    end: float
    text: str
    speaker: int  # index into ClipPerception.voices, or -1 when unattributed


@dataclass
class VoiceCluster:
    """One speaker heard in a clip."""

    embeddings: np.ndarray  # (k, 256) float32 speaker embeddings of >= 1 s windows
    spans: list[tuple[float, float]]  # speech windows, seconds, video time

    @property
    def seconds(self) -> float:
        return float(sum(b - a for a, b in self.spans))


@dataclass
class ClipPerception:
    video: str
    clip: int
    start: float  # seconds
    end: float
    faces: list[FaceCluster] = field(default_factory=list)
    voices: list[VoiceCluster] = field(default_factory=list)
    utterances: list[Utterance] = field(default_factory=list)
    scene_text: list[str] = field(default_factory=list)
    has_audio: bool = True
    keyframes: list[bytes] = field(default_factory=list)  # a few JPEG frames for VLM memorizers
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds spent
