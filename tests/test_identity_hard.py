"""Identity on hard input, real media and the offline models: a gallery of 30 faces in one frame,
music with no speech, a voice that is never on screen, one person for many clips. Nothing may
crash, no two people may share a node, and the number of nodes may not grow with the footage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from m3mem.graph import MemoryGraph
from m3mem.identity import IdentityOptions, match, match_voices
from m3mem.memory import Memory
from tests.test_perception import make_video, run

GRID = (6, 5)  # columns, rows
SIZE = (1280, 720)


@pytest.fixture(scope="module")
def models():
    from m3mem import build
    from m3mem.config import Settings

    return build.perception_models(Settings())


@pytest.fixture(scope="module")
def ingestor(tmp_path_factory):
    from m3mem import build
    from m3mem.config import Settings

    return build.ingestor(Settings(cache_dir=str(tmp_path_factory.mktemp("cache")), clip_seconds=10.0))


def _gallery_faces(media: Path) -> list[tuple[str, np.ndarray]]:
    """30 (person, RGB face picture) pairs: 23 people, 7 of them twice (another photo)."""
    import cv2

    from models.faces import CenterFaceDlib

    faces = media / "faces"
    by_person: dict[str, list[Path]] = {}
    for line in (faces / "deepface_13ids/identities.tsv").read_text().splitlines()[1:]:
        name, person = line.split("\t")
        by_person.setdefault(person, []).append(faces / "deepface_13ids" / name)
    photos = [(p, files[0]) for p, files in sorted(by_person.items())]
    photos += [(d.name, sorted(d.iterdir())[0]) for d in sorted((faces / "face_recognition_knn/train").iterdir())]
    photos += [(n, faces / f"openface/{n}.jpg") for n in ("adams", "carell", "clapton-1", "lennon-1")]
    photos += [("hanks", faces / "insightface/Tom_Hanks_54745.png")]
    photos += [(p, files[1]) for p, files in sorted(by_person.items()) if len(files) > 1][:30 - len(photos)]
    detector, out = CenterFaceDlib(), []
    for person, path in photos:
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        boxes, _ = detector.detect(img)  # a head-and-shoulders crop around the largest face
        x0, y0, x1, y1 = boxes[np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))]
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, 1.4 * max(x1 - x0, y1 - y0)
        out.append((person.split("-")[0], img[int(max(cy - 0.55 * side, 0)):int(cy + 0.55 * side),
                                              int(max(cx - 0.75 * side, 0)):int(cx + 0.75 * side)]))
    return out


def _grid(faces: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, list[str]]:
    """A video-call gallery: each picture fitted into its tile; returns the frame and tile owners."""
    import cv2

    (cols, rows), (w, h) = GRID, SIZE
    tw, th = w // cols, h // rows
    frame = np.zeros((h, w, 3), np.uint8)
    for k, (_, img) in enumerate(faces):
        s = min(tw / img.shape[1], th / img.shape[0])
        img = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
        x, y = k % cols * tw, k // cols * th
        frame[y:y + img.shape[0], x:x + img.shape[1]] = img
    return frame, [p for p, _ in faces]


def _tiles(boxes: np.ndarray) -> set[int]:
    (cols, rows), (w, h) = GRID, SIZE
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return set((cy // (h // rows) * cols + cx // (w // cols)).astype(int).tolist())


def test_a_gallery_of_30_faces_keeps_everyone_apart_across_a_reshuffle(tmp_path, media, models):
    """Clip 1 shows a 6x5 gallery (faces ~70-110 px of a 1280x720 frame); clip 2 the same people
    in other tiles. Each face is its own person in clip 1; in clip 2 each face goes back to a node
    of the same person (found by face, not place), and no node is added for someone known."""
    faces = _gallery_faces(media)
    first, owners1 = _grid(faces)
    order = np.random.default_rng(0).permutation(len(faces))
    second, owners2 = _grid([faces[i] for i in order])
    make_video(tmp_path / "gallery.mp4", [first] * 60 + [second] * 60, np.zeros(12 * 16000, np.float32))
    a, b = run(tmp_path / "gallery.mp4", models, clip_seconds=6.0)

    for clip, owners in ((a, owners1), (b, owners2)):
        tiles = [_tiles(f.boxes) for f in clip.faces]
        assert all(len(t) == 1 for t in tiles), "one face cluster spans two tiles"
        assert len(set.union(*tiles)) >= 25  # 29 of 30 found when measured (glasses hide one)

    g = MemoryGraph()
    opts = IdentityOptions()
    person = {g.add_entity("face", f.embeddings): owners1[_tiles(f.boxes).pop()] for f in a.faces}
    nodes = match(g, "face", [f.embeddings for f in b.faces], opts.face_threshold, ambiguity=opts.ambiguity)
    pairs = [(person[n], owners2[_tiles(f.boxes).pop()]) for n, f in zip(nodes, b.faces) if n is not None]
    assert all(p == q for p, q in pairs), [pq for pq in pairs if pq[0] != pq[1]]
    assert len(pairs) >= 0.8 * len(b.faces)  # re-found, not new nodes


def test_music_without_speech_makes_no_voice_and_no_words(tmp_path, models):
    """20 s of synthesised instruments (a melody of harmonic notes, a bass line, a kick drum)."""
    sr, rng = 16000, np.random.default_rng(0)

    def note(f: float, d: float) -> np.ndarray:
        t = np.arange(int(d * sr)) / sr
        return np.exp(-3 * t) * np.minimum(t / 0.01, 1) * sum(np.sin(2 * np.pi * f * k * t) / k ** 1.5
                                                               for k in range(1, 7))

    scale = [261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3]
    audio = np.concatenate([note(scale[i], 0.25) for i in rng.integers(0, 8, 80)])
    audio += 0.8 * np.concatenate([note(scale[i] / 4, 1.0) for i in rng.integers(0, 8, 20)])
    t = np.arange(2000) / sr
    for s in range(0, len(audio) - 2000, sr // 2):
        audio[s:s + 2000] += 2 * np.sin(2 * np.pi * (100 - 400 * t) * t) * np.exp(-30 * t)
    audio = (0.3 * audio / np.abs(audio).max()).astype(np.float32)
    make_video(tmp_path / "music.mp4", [np.full((360, 640, 3), 40, np.uint8)] * 200, audio)
    (clip,) = run(tmp_path / "music.mp4", models)
    assert clip.voices == [] and clip.utterances == []


def _black_with(audio: np.ndarray) -> list[np.ndarray]:
    return [np.zeros((360, 640, 3), np.uint8)] * int(len(audio) / 16000 * 10)


def test_voices_never_on_screen_get_no_face_and_no_equivalence(tmp_path, media, ingestor):
    """A film's dialogue over black frames: voices and their words are remembered, no face node,
    no face-voice link, and few voice nodes for its few speakers."""
    from preprocessing.video import DecodeOptions, iter_clips

    audio = np.concatenate([c.audio for name in ("10s_back_down_the_road", "10s_im_taking_the_girl_with_me")
                            for c in iter_clips(media / f"audio/notld_1968/{name}.wav",
                                                DecodeOptions(clip_seconds=3600))])
    make_video(tmp_path / "offscreen.mp4", _black_with(audio), audio)
    report = ingestor.run(tmp_path / "offscreen.mp4", tmp_path / "offscreen.m3mem")
    assert report.faces == 0 and 1 <= report.voices <= 4
    with Memory.open(tmp_path / "offscreen.m3mem") as mem:
        g = mem.graph
        assert g.entity_ids("face") == [] and not any(g.is_equivalence_node(n) for n in g.texts)
        said = " ".join(n.text for n in g.texts.values()).lower()
        assert "road" in said and "girl" in said


@pytest.mark.parametrize("person", ["ID1", "ID6"])
def test_one_person_for_many_clips_grows_no_nodes(tmp_path, media, ingestor, person):
    """One vasp_ids person's six recordings (different days and rooms), played four times in 10 s
    clips: the face and voice nodes of the first passes are found again, not added to in the last
    two. Measured: ID1 2 face / 8 voice nodes, ID6 3 / 4 (before a node of one person stopped
    counting as a rival of another node of that same person, ID6's face nodes grew 1, 2, 6 with
    1, 2, 4 passes). Different recordings of one voice still split into several nodes (README)."""
    from bench.encode import LetterboxWriter
    from bench.long_video import SIZE, Part, part_media

    files = sorted((media / f"video/vasp_ids/{person}").glob("*.mp4"))
    with LetterboxWriter(tmp_path / "one.mp4", SIZE, 10) as writer:
        for f in files * 4:
            writer.append(*part_media(media, Part(str(f.relative_to(media))), 10))
    report = ingestor.run(tmp_path / "one.mp4", tmp_path / "one.m3mem")
    with Memory.open(tmp_path / "one.m3mem") as mem:
        g = mem.graph
        half = report.done // 2
        for kind, most in (("face", 3), ("voice", 8)):
            born = [min(g.texts[t].clip for t in g.texts_of_entities([n])) for n in g.entity_ids(kind)]
            assert 1 <= len(born) <= most, (kind, born)
            assert sum(b >= half for b in born) <= 1, (kind, born)  # the last two passes add at most one


def _near(u: np.ndarray, cos: float, n: int, seed: int) -> np.ndarray:
    """``n`` unit vectors at cosine ``cos`` to the unit vector ``u``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        r = rng.normal(size=u.shape)
        r -= (r @ u) * u
        out.append(cos * u + np.sqrt(1 - cos ** 2) * r / np.linalg.norm(r))
    return np.stack(out).astype(np.float32)


def test_a_speaker_split_in_one_clip_joins_one_voice_only_while_the_same_face_is_alone():
    """A clip's clustering can split one person's speech in two (two recordings of her, a change of
    tone); both halves heard while her face is alone on screen join her one voice node. A second
    voice heard while another face, or no face, is on screen does not: one node per clip, as before."""
    g = MemoryGraph()
    u = _near(np.eye(256, dtype=np.float32)[0], 1.0, 1, 0)[0]
    face = g.add_entity("face", _near(np.eye(128, dtype=np.float32)[0], 0.95, 3, 1))
    other_face = g.add_entity("face", _near(np.eye(128, dtype=np.float32)[1], 0.95, 3, 2))
    voice = g.add_entity("voice", _near(u, 0.9, 4, 3))
    g.add_clip(0, 0.0, 30.0)
    g.add_text("semantic", f"Equivalence: <face_{face}>, <voice_{voice}>", 0, np.ones(384, np.float32) / np.sqrt(384))
    assert g.character_of(voice) == g.character_of(face)
    opts = IdentityOptions()
    same, split = _near(u, 0.9, 3, 4), _near(u, 0.62, 3, 5)  # the split half: below the voice threshold
    assert match_voices(g, [same, split], [face, face], opts) == [voice, voice]
    assert match_voices(g, [same, split], [face, other_face], opts) == [voice, None]
    assert match_voices(g, [same, split], [face, None], opts) == [voice, None]
    assert match_voices(g, [same, split], [None, face], opts) == [voice, None]  # the taker had no face
    assert match_voices(g, [split], [face], opts) == [voice]  # alone in its clip: the face's voice, as before
    # a window straddling a cut (the face alone for most, not nearly all, of its speech) stays apart
    assert match_voices(g, [same, split], [face, face], opts, [face, None]) == [voice, None]
