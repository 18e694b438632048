"""Video probing and streaming decode into fixed-length clips (PyAV; no ffmpeg binary needed).

A clip is cut by decoding, not by keyframe copying, so its start/end seconds are exact. One pass
over the file demuxes video and audio together and yields clips as soon as both streams have
passed a clip's end, so an hour-long video is never held in memory at once.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from preprocessing.errors import MediaError, UsageError
from preprocessing.types import SAMPLE_RATE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    duration: float  # seconds
    fps: float  # average frame rate (0 when there is no video stream)
    width: int  # displayed width (after rotation)
    height: int
    rotation: int  # degrees clockwise the stored frames must be turned for display
    has_video: bool
    has_audio: bool


@dataclass(frozen=True)
class DecodeOptions:
    clip_seconds: float = 30.0  # window length
    fps: float = 1.0  # frames sampled per second of video
    max_side: int = 640  # sampled frames are downscaled so that max(width, height) <= this
    sample_rate: int = SAMPLE_RATE  # audio rate, mono float32
    lookahead: float = 8.0  # seconds of the next clip's audio handed to each clip (Clip.lookahead), so a
    #                         sentence crossing the boundary can be transcribed whole
    max_lag: float = 60.0  # seconds one stream may run ahead of the other before a clip is emitted
    #                        without the lagging one (an audio track that ends early): bounds memory

    def __post_init__(self) -> None:
        if self.clip_seconds <= 0 or self.fps <= 0 or self.max_side < 32:
            raise UsageError(f"bad decode options {self}")


@dataclass
class Clip:
    index: int
    start: float  # seconds from the start of the video
    end: float  # seconds
    frames: list[np.ndarray] = field(default_factory=list)  # RGB uint8 (h, w, 3), display orientation
    frame_times: list[float] = field(default_factory=list)  # seconds, video time
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (n,) 16 kHz mono
    lookahead: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # audio after ``end``
    scale: float = 1.0  # sampled frame size / displayed size


def _open(path: Path):
    import av

    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if not path.is_file():
        raise MediaError(f"{path}: is not a file")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as e:
        raise MediaError(f"{path}: cannot open as a video ({e})") from e


def _rotation(container, stream) -> int:
    """Clockwise display rotation from the ``rotate`` tag or the first frame's display matrix."""
    value = stream.metadata.get("rotate")
    if value:
        return int(float(value)) % 360
    for frame in container.decode(stream):
        # PyAV reports the display matrix angle counter-clockwise
        return (-int(round(getattr(frame, "rotation", 0) or 0))) % 360
    return 0


def probe(path: str | Path) -> VideoInfo:
    """Duration, frame rate, size, rotation and which streams exist."""
    path = Path(path)
    with _open(path) as container:
        v = container.streams.video[0] if container.streams.video else None
        a = container.streams.audio[0] if container.streams.audio else None
        if v is None and a is None:
            raise MediaError(f"{path}: has neither video nor audio")
        claimed = container.duration / 1_000_000 if container.duration else 0.0
        streams = [float(s.duration * s.time_base) for s in (v, a)
                   if s is not None and s.duration and s.time_base and s.duration > 0]
        duration = max([claimed, *streams])
        if streams and claimed > 2 * max(streams) + 60:  # a header that lies about the length
            log.warning("%s: the container claims %.0f s but its streams last %.0f s; using the streams",
                        path, claimed, max(streams))
            duration = max(streams)
        rot = _rotation(container, v) if v is not None else 0
        w, h = (v.codec_context.width, v.codec_context.height) if v is not None else (0, 0)
        if rot in (90, 270):
            w, h = h, w
        fps = float(v.average_rate) if v is not None and v.average_rate else 0.0
        if duration <= 0:
            raise MediaError(f"{path}: unknown or zero duration")
        return VideoInfo(path, duration, fps, w, h, rot, v is not None, a is not None)


class ClipWindows(Sequence):
    """(index, start, end) windows covering ``duration``, computed on demand (no list of them is
    held, whatever length a file claims); a tail under 1 s joins the last clip."""

    def __init__(self, duration: float, clip_seconds: float):
        n = max(1, math.ceil(duration / clip_seconds - 1e-9))
        if n > 1 and duration - (n - 1) * clip_seconds < 1.0:
            n -= 1
        self.n, self.duration, self.clip_seconds = n, duration, clip_seconds

    def __len__(self) -> int:
        return self.n

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(other) == self.n and list(self) == list(other)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.n))]
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i, i * self.clip_seconds, self.duration if i == self.n - 1 else (i + 1) * self.clip_seconds


def clip_windows(duration: float, clip_seconds: float) -> ClipWindows:
    """(index, start, end) windows covering ``duration``; a tail under 1 s joins the last clip."""
    return ClipWindows(duration, clip_seconds)


def iter_clips(path: str | Path, options: DecodeOptions = DecodeOptions(),
               skip: set[int] | frozenset[int] = frozenset()) -> Iterator[Clip]:
    """Decode ``path`` once and yield its clips in order (clips in ``skip`` are not yielded)."""
    import av

    path = Path(path)
    info = probe(path)
    windows = clip_windows(info.duration, options.clip_seconds)
    with _open(path) as container:
        streams = []
        vs = container.streams.video[0] if info.has_video else None
        aus = container.streams.audio[0] if info.has_audio else None
        if vs is not None:
            vs.thread_type = "AUTO"
            streams.append(vs)
        if aus is not None:
            streams.append(aus)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=options.sample_rate) if aus else None
        scale = min(1.0, options.max_side / max(info.width, info.height, 1))
        size = (max(2, int(info.width * scale) // 2 * 2), max(2, int(info.height * scale) // 2 * 2))
        clips: dict[int, Clip] = {}  # made when a clip's first frame arrives: memory follows the clips in flight
        audio: dict[int, list[np.ndarray]] = {}
        done_v = vs is None
        done_a = aus is None
        next_t = 0.0
        audio_pos = None  # sample index (at 16 kHz, video time) of the next resampled sample
        emitted = 0

        def ready(upto_v: float, upto_a: float, whole_until: float = -math.inf) -> Iterator[Clip]:
            """Clips whose frames and audio (and lookahead) have all arrived; with ``whole_until``
            also those that end by then, with whatever lookahead there is (a stream that ended)."""
            nonlocal emitted
            lead = max(upto_v, upto_a)
            while emitted < len(windows):
                i, s, e = windows[emitted]
                both = ((done_v or upto_v >= e) and (done_a or upto_a >= e + options.lookahead)) or e <= whole_until
                if not both and lead - e < options.max_lag:
                    return  # a stream that lags more than max_lag has ended early (or is broken)
                clip = clips.pop(i, None) or Clip(i, s, e, scale=scale)
                if audio.get(i):
                    clip.audio = np.concatenate(audio.pop(i))[: int(round((e - s) * options.sample_rate))]
                if audio.get(i + 1) and options.lookahead > 0:
                    nxt = np.concatenate(audio[i + 1])
                    audio[i + 1] = [nxt]  # joined once; the next clip continues from it
                    clip.lookahead = nxt[: int(round(options.lookahead * options.sample_rate))]
                emitted += 1
                if i not in skip:
                    yield clip

        def both_reached(upto_v: float, upto_a: float) -> float:
            """Video time every stream of the file has reached."""
            return min(upto_v if vs is not None else math.inf, upto_a if aus is not None else math.inf)

        t_v, t_a = 0.0, 0.0
        try:
            for packet in container.demux(streams):
                for frame in packet.decode():
                    if frame.time is None:
                        continue
                    if packet.stream is vs:
                        t_v = float(frame.time)
                        k = _window_of(windows, t_v)
                        if t_v + 1e-6 >= next_t and k not in skip and k >= emitted:
                            img = frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray()
                            # rows may be padded (a 590 px wide frame): models want contiguous pixels
                            img = np.ascontiguousarray(_rotate(img, info.rotation))
                            clip = clips.get(k) or clips.setdefault(k, Clip(k, *windows[k][1:], scale=scale))
                            clip.frames.append(img)
                            clip.frame_times.append(t_v)
                            next_t = t_v + 1.0 / options.fps
                        elif t_v + 1e-6 >= next_t:
                            next_t = t_v + 1.0 / options.fps
                    else:
                        for out in resampler.resample(frame):
                            audio_pos = _route_audio(out, frame, audio_pos, windows, audio, options, skip, emitted)
                        t_a = (audio_pos or 0) / options.sample_rate
                    yield from ready(t_v, t_a)
            if resampler is not None:
                for out in resampler.resample(None):
                    audio_pos = _route_audio(out, None, audio_pos, windows, audio, options, skip, emitted)
        except av.error.FFmpegError as e:
            k = _window_of(windows, max(t_v, t_a))
            yield from ready(t_v, t_a, whole_until=both_reached(t_v, t_a))
            raise MediaError(f"{path}: decoding failed in clip {k} ({e})") from e
        reached = max(t_v, t_a)
        if reached < info.duration - max(2.0, 0.1 * info.duration):
            k = _window_of(windows, reached)
            # the clips that ended before the stream did are whole: they are handed over first
            yield from ready(t_v, t_a, whole_until=both_reached(t_v, t_a))
            raise MediaError(f"{path}: truncated or damaged: decoding stopped at {reached:.1f} s of "
                             f"{info.duration:.1f} s, in clip {k}")
        done_v = done_a = True
        yield from ready(math.inf, math.inf)


def prefetch(items: Iterator, depth: int = 1) -> Iterator:
    """Yield from ``items`` while a background thread produces up to ``depth`` items ahead: the next
    clip decodes (PyAV and the resampler release the GIL) while this one is perceived. An error is
    raised where its item would have come; closing the iterator stops the thread at its next item."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop, end = threading.Event(), object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as e:  # noqa: BLE001  handed to the consumer, raised there
            put((end, e))

    threading.Thread(target=work, name="m3mem-decode-ahead", daemon=True).start()
    try:
        while True:
            item, error = q.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()


def _window_of(windows: list[tuple[int, float, float]], t: float) -> int:
    """Index of the window holding time ``t`` (windows are regular; the last one may be longer)."""
    if len(windows) == 1 or t <= 0:
        return 0
    return min(int(t // windows[0][2]), len(windows) - 1)


def _route_audio(out, src, pos: int | None, windows, audio, options: DecodeOptions, skip, emitted: int) -> int:
    """Add resampled audio to the windows it covers (not to those already emitted)."""
    samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    sr = options.sample_rate
    if pos is None:
        pos = int(round(float(src.time if src is not None and src.time else 0.0) * sr))
    end = pos + len(samples)
    first, last = _window_of(windows, pos / sr), _window_of(windows, end / sr)
    for i, s, e in windows[first: last + 1]:
        a, b = int(round(s * sr)), int(round(e * sr))
        lo, hi = max(a, pos), min(b, end)
        if lo < hi and i not in skip and i >= emitted:
            audio.setdefault(i, [])
            if not audio[i] and lo > a:  # stream starts late: pad with silence
                audio[i].append(np.zeros(lo - a, np.float32))
            audio[i].append(samples[lo - pos: hi - pos])
    return end


def _rotate(img: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 90:
        return np.ascontiguousarray(np.rot90(img, k=-1))
    if rotation == 180:
        return np.ascontiguousarray(img[::-1, ::-1])
    if rotation == 270:
        return np.ascontiguousarray(np.rot90(img, k=1))
    return img
