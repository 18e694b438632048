"""Writing benchmark videos: frames letterboxed into a fixed size, with 16 kHz mono audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class LetterboxWriter:
    """An H.264 (or MPEG-4) + AAC file that parts are appended to, one after another. Each frame
    is scaled to fit 2/3 of the frame (so face crops keep some background around the face, as a
    detector expects) and centred on black."""

    def __init__(self, out: Path, size: tuple[int, int], fps: int):
        import av

        self.size, self.fps = size, fps
        self.container = av.open(str(out), "w")
        self.vs = self.container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        self.vs.width, self.vs.height, self.vs.pix_fmt = size[0], size[1], "yuv420p"
        self.aus = self.container.add_stream("aac", rate=16000, layout="mono")
        self.frame_no = self.audio_pos = 0
        self.seconds = 0.0

    def append(self, frames: list[np.ndarray], wav: np.ndarray) -> tuple[float, float]:
        """Add RGB frames (at ``fps``) and their audio (padded or cut to the frames' length);
        returns the part's (start, end) seconds in the file."""
        import av
        import cv2

        w, h = self.size
        n = len(frames)
        wav = np.pad(wav, (0, max(0, round(n / self.fps * 16000) - len(wav))))[: round(n / self.fps * 16000)]
        for img in frames:
            s = min(w * 2 / 3 / img.shape[1], h * 2 / 3 / img.shape[0])
            small = cv2.resize(img, (round(img.shape[1] * s) // 2 * 2, round(img.shape[0] * s) // 2 * 2),
                               interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
            canvas = np.zeros((h, w, 3), np.uint8)
            y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
            canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
            vf = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            vf.pts = self.frame_no
            self.frame_no += 1
            for pkt in self.vs.encode(vf):
                self.container.mux(pkt)
        for i in range(0, len(wav), 1024):
            af = av.AudioFrame.from_ndarray(wav[i:i + 1024].astype(np.float32).reshape(1, -1), format="fltp",
                                            layout="mono")
            af.sample_rate, af.pts = 16000, self.audio_pos
            self.audio_pos += af.samples
            for pkt in self.aus.encode(af):
                self.container.mux(pkt)
        start = self.seconds
        self.seconds += n / self.fps
        return start, self.seconds

    def close(self) -> None:
        for stream in (self.vs, self.aus):
            for pkt in stream.encode():
                self.container.mux(pkt)
        self.container.close()

    def __enter__(self) -> "LetterboxWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
