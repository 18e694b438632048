"""The composition root: settings in, the system's parts out.

The CLI, benchmarks, scripts, tests and batch workers build everything here; no other module names
a backend or reads settings. Backends are imported lazily, so building one part never loads the
others' dependencies; a missing optional dependency raises an ImportError naming the extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from m3mem.config import Settings, cache_root
from m3mem.errors import ConfigError

if TYPE_CHECKING:
    from m3mem.agent import Agent, AgentOptions
    from m3mem.ingest import Ingestor
    from m3mem.memory import Memory
    from m3mem.retrieval import SearchOptions
    from models.base import TextEmbedder
    from models.chat import ChatModel
    from models.memorizer import Memorizer
    from preprocessing.interfaces import FaceModel
    from preprocessing.perception import PerceptionModels, PerceptionOptions

OFFLINE_LLM = "qwen2.5-coder-0.5b"
LLM_ALIASES = {OFFLINE_LLM, "qwen2.5-0.5b"}  # the second is the name earlier releases used


# ----------------------------------------------------------------- models
def text_embedder(settings: Settings) -> "TextEmbedder":
    """``minilm``: packaged all-MiniLM-L6-v2; anything else: a local sentence-transformers folder."""
    from models.text_embedding import SentenceTransformerEmbedder

    path = None if settings.text_embedder == "minilm" else settings.text_embedder
    return SentenceTransformerEmbedder(path, device=settings.device)


def face_model(settings: Settings) -> "FaceModel":
    """``dlib``: packaged CenterFace + dlib ResNet (run in torch, on the settings' device), each
    face averaged with its mirror image; ``dlib-single``: the same without the mirror image
    (faster, weaker: README "Identity"); anything else: an insightface model folder."""
    if settings.faces in ("dlib", "dlib-single"):
        from models.faces import CenterFaceDlib

        return CenterFaceDlib(flip=settings.faces == "dlib", device=settings.device)
    from models.faces import InsightFace

    return InsightFace(settings.faces, device=settings.device)


def perception_models(settings: Settings) -> "PerceptionModels":
    """Face, VAD, speaker, ASR (and with ``scene_text`` OCR) backends named by the settings."""
    from models.audio import FasterWhisperASR, OpenAIWhisperASR, ResemblyzerEncoder, SileroVAD
    from preprocessing.perception import PerceptionModels

    from models.device import pick_device

    device = pick_device(settings.device)  # a CUDA device asked for and absent fails here, before loading
    faces = face_model(settings)
    language = None if settings.asr_language == "auto" else settings.asr_language
    asr = (OpenAIWhisperASR(settings.asr, device=device, language=language) if settings.asr.endswith(".pt")
           else FasterWhisperASR(settings.asr, device=device, beam_size=settings.asr_beam, language=language,
                                 cache=cache_root(settings)))
    ocr = None
    if settings.scene_text:
        from models.scene import RapidOCRReader

        ocr = RapidOCRReader()
    models = PerceptionModels(faces, ResemblyzerEncoder(device=device), asr, SileroVAD(), ocr)
    _log_placement(models, device)
    return models


def _log_placement(models: "PerceptionModels", device: str) -> None:
    """Say where each perception model runs; those that cannot use the device asked for are said
    loudly (a warning), never moved silently."""
    import logging

    log = logging.getLogger("m3mem.build")
    cpu_only = {"CenterFaceDlib": "face detection (packaged CenterFace through OpenCV DNN; the face ResNet "
                                  "runs on the device; --faces <insightface folder> runs detection on CUDA)",
                "SileroVAD": "voice activity (Silero via ONNX on CPU: a few ms per clip)",
                "RapidOCRReader": "scene text (RapidOCR ONNX on CPU)"}
    for part in (models.faces, models.speakers, models.asr, models.vad, models.ocr):
        if part is None:
            continue
        name = type(part).__name__
        where = "cpu" if name in cpu_only else getattr(part, "device", device)
        if device.startswith("cuda") and name in cpu_only:
            log.warning("%s runs on the CPU although %s was asked for", cpu_only[name], device)
        elif device.startswith("cuda") and getattr(part, "cpu_reason", ""):
            log.warning("%s runs on the CPU although %s was asked for: %s", name, device, part.cpu_reason)
        else:
            log.info("%s on %s", name, where)


def memorizer(settings: Settings) -> "Memorizer":
    """``perception`` (offline), ``openai`` (a VLM behind an OpenAI-compatible server), or a local
    Qwen2.5-VL style checkpoint folder."""
    if settings.memorizer == "perception":
        from models.memorizer import PerceptionMemorizer

        return PerceptionMemorizer()
    if settings.memorizer == "openai":
        from models.chat import OpenAIChat
        from models.vlm import OpenAIMemorizer

        if not settings.memorizer_model:
            raise ConfigError("memorizer = openai needs memorizer_model (and usually memorizer_base_url)")
        return OpenAIMemorizer(OpenAIChat(settings.memorizer_model, settings.memorizer_base_url,
                                          settings.memorizer_api_key, settings.timeout, settings.retries))
    from models.vlm import TransformersMemorizer

    return TransformersMemorizer(settings.memorizer, device=settings.device)


def chat_model(settings: Settings) -> "ChatModel":
    """``qwen2.5-coder-0.5b`` (offline GGUF), ``openai`` (a served model), or a local checkpoint
    folder or ``.gguf`` file."""
    from models import chat

    if settings.llm in LLM_ALIASES:
        return chat.offline_default(cache_root(settings), settings.device)
    if settings.llm == "openai":
        if not settings.llm_model:
            raise ConfigError("llm = openai needs llm_model (and usually llm_base_url)")
        return chat.OpenAIChat(settings.llm_model, settings.llm_base_url, settings.llm_api_key,
                               settings.timeout, settings.retries)
    path = Path(settings.llm)
    if not path.exists():
        raise FileNotFoundError(f"{path}: llm must be {OFFLINE_LLM}, openai, or a local model folder / .gguf file")
    return chat.TransformersChat(path, device=settings.device, cache=cache_root(settings))


# ---------------------------------------------------------------- options
def perception_options(settings: Settings) -> "PerceptionOptions":
    from preprocessing.perception import PerceptionOptions
    from preprocessing.video import DecodeOptions

    return PerceptionOptions(decode=DecodeOptions(clip_seconds=settings.clip_seconds, fps=settings.fps),
                             scene_text=settings.scene_text)


def search_options(settings: Settings, top_k: int | None = None, before_clip: int | None = None) -> "SearchOptions":
    """Retrieval options; ``top_k`` defaults to the search command's (``settings.top_k``)."""
    from m3mem.retrieval import SearchOptions

    return SearchOptions(top_k=settings.top_k if top_k is None else top_k, mode=settings.mode,
                         threshold=settings.threshold, before_clip=before_clip, ranker=settings.ranker)


def agent_options(settings: Settings) -> "AgentOptions":
    from m3mem.agent import AgentOptions

    return AgentOptions(rounds=settings.rounds, search=search_options(settings, top_k=settings.ask_top_k))


# ---------------------------------------------------------------- the system
def ingestor(settings: Settings, embedder: "TextEmbedder | None" = None) -> "Ingestor":
    """The ingest pipeline the settings describe (its models load here)."""
    from m3mem.ingest import Ingestor

    return Ingestor(perception_models(settings), memorizer(settings), embedder or text_embedder(settings),
                    perception_options(settings), cache_dir=cache_root(settings) / "perception")


def open_memory(path: str | Path, settings: Settings, embedder: "TextEmbedder | bool" = False) -> "Memory":
    """Open a memory; ``embedder`` True builds the configured text embedder (needed to search)."""
    from m3mem.memory import Memory

    if embedder is True:
        embedder = text_embedder(settings)
    return Memory.open(path, embedder or None, readonly=True)


def agent(memory: "Memory", chat: "ChatModel", settings: Settings) -> "Agent":
    from m3mem.agent import Agent

    return Agent(memory, chat, agent_options(settings))


def judges(kind: str, chat: "ChatModel | None") -> list:
    """``match``, ``llm`` or ``both`` (match first; the last one is the headline judge)."""
    from m3mem.evaluate import LLMJudge, MatchJudge

    if kind not in ("match", "llm", "both"):
        raise ConfigError(f"judge must be match, llm or both, not {kind!r}")
    if kind != "match" and chat is None:
        raise ConfigError("an LLM judge needs a chat model")
    return ([MatchJudge()] if kind in ("match", "both") else []) + ([LLMJudge(chat)] if kind in ("llm", "both") else [])
