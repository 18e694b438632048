"""One clip in, a ClipPerception out: faces, voices, transcript (and optionally on-screen text).

Models are passed in (built from settings by ``m3mem.build``); this module never builds them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from preprocessing import faces as face_ops
from preprocessing import voices as voice_ops
from preprocessing.faces import FaceOptions
from preprocessing.interfaces import FaceModel, SceneTextReader, SpeakerEncoder, SpeechRecognizer, VoiceActivityDetector
from preprocessing.types import SAMPLE_RATE, AsrSegment, ClipPerception, Word
from preprocessing.video import Clip, DecodeOptions
from preprocessing.voices import VoiceOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PerceptionOptions:
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    faces: FaceOptions = field(default_factory=FaceOptions)
    voices: VoiceOptions = field(default_factory=VoiceOptions)
    scene_text: bool = False  # run OCR on a few frames per clip
    keyframes: int = 3  # JPEG frames kept per clip for VLM memorizers

    def key(self) -> str:
        """Stable text of every option that changes the result (part of the cache key)."""
        return repr((self.decode, self.faces, self.voices, self.scene_text, self.keyframes))


@dataclass
class PerceptionModels:
    faces: FaceModel
    speakers: SpeakerEncoder
    asr: SpeechRecognizer
    vad: VoiceActivityDetector
    ocr: SceneTextReader | None = None

    def names(self) -> str:
        """Which backends these are (part of the perception cache key)."""
        return "|".join(type(m).__name__ + ":" + str(getattr(m, "name", ""))
                        for m in (self.faces, self.speakers, self.asr, self.vad, self.ocr))


def perceive(clip: Clip, video: str, models: PerceptionModels, options: PerceptionOptions,
             has_audio: bool = True) -> ClipPerception:
    """Run every perception stage on one decoded clip; times are video seconds."""
    out = ClipPerception(video, clip.index, clip.start, clip.end, has_audio=has_audio)
    t = time.perf_counter()
    dets = face_ops.detect(clip.frames, clip.frame_times, models.faces, options.faces)
    out.timings["faces"] = time.perf_counter() - t
    out.faces = face_ops.cluster(dets, clip.frames, clip.scale, options.faces)
    out.keyframes = [face_ops.jpeg(clip.frames[i])
                     for i in _spread(len(clip.frames), options.keyframes)]
    if has_audio and len(clip.audio) and np.any(clip.audio):
        t = time.perf_counter()
        segments = models.vad.speech(clip.audio)
        out.timings["vad"] = time.perf_counter() - t
        if segments:
            t = time.perf_counter()
            out.voices, windows = voice_ops.diarize(clip.audio, segments, models.speakers, options.voices)
            out.timings["speaker_embedding"] = time.perf_counter() - t
            for v in out.voices:
                v.spans = [(a + clip.start, b + clip.start) for a, b in v.spans]
            t = time.perf_counter()
            asr = transcribe(models.asr, clip.audio, clip.lookahead)
            out.timings["asr"] = time.perf_counter() - t
            out.utterances = voice_ops.attribute(asr, windows, len(out.voices), clip.start,
                                                 end=len(clip.audio) / SAMPLE_RATE)
    if options.scene_text and models.ocr is not None:
        t = time.perf_counter()
        seen: dict[str, None] = {}
        for i in _spread(len(clip.frames), 2):
            for line in models.ocr.read(clip.frames[i]):
                seen.setdefault(line, None)
        out.scene_text = list(seen)
        out.timings["ocr"] = time.perf_counter() - t
    return out


def transcribe(asr: SpeechRecognizer, audio: np.ndarray, lookahead: np.ndarray,
               near_end: float = 1.0) -> list[AsrSegment]:
    """Transcribe a clip; when its last segment is still going at the clip's end (its last word
    ends within ``near_end`` seconds of it), transcribe that segment again with the ``lookahead``
    audio after the clip, so a sentence crossing the boundary is whole. Segments of the re-run that
    start after the clip's end are left to the next clip."""
    segments = asr.transcribe(audio)
    duration = len(audio) / SAMPLE_RATE
    if not segments or not len(lookahead) or duration - segments[-1].end > near_end:
        return segments
    start = segments[-1].start
    tail = asr.transcribe(np.concatenate([audio[int(start * SAMPLE_RATE):], lookahead]))
    whole = [_shift(s, start) for s in tail if s.start + start < duration]
    return segments[:-1] + whole if whole else segments


def _shift(s: AsrSegment, by: float) -> AsrSegment:
    return AsrSegment(s.start + by, s.end + by, s.text, [Word(w.start + by, w.end + by, w.text) for w in s.words])


def _spread(n: int, k: int) -> list[int]:
    if n == 0 or k <= 0:
        return []
    return sorted(set(np.linspace(0, n - 1, min(n, k)).round().astype(int).tolist()))
