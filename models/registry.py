"""Backends by name, imported lazily: a missing optional dependency names the extra to install."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from m3mem.config import Settings
    from models.base import TextEmbedder


def text_embedder(settings: "Settings") -> "TextEmbedder":
    """``minilm``: packaged all-MiniLM-L6-v2; anything else: a local sentence-transformers folder."""
    from models.text_embedding import SentenceTransformerEmbedder

    path = None if settings.text_embedder == "minilm" else settings.text_embedder
    return SentenceTransformerEmbedder(path, device=settings.device)


def perception_models(settings: "Settings"):
    """Face, speaker, ASR (and with ``scene_text`` OCR) backends named by the settings."""
    from models.audio import FasterWhisperASR, OpenAIWhisperASR, ResemblyzerEncoder
    from preprocessing.perception import PerceptionModels

    if settings.faces == "dlib":
        from models.faces import CenterFaceDlib

        faces = CenterFaceDlib()
    else:
        from models.faces import InsightFace

        faces = InsightFace(settings.faces, device=settings.device)
    asr = (OpenAIWhisperASR(settings.asr, device=settings.device) if settings.asr.endswith(".pt")
           else FasterWhisperASR(settings.asr, device=settings.device))
    ocr = None
    if settings.scene_text:
        from models.scene import RapidOCRReader

        ocr = RapidOCRReader()
    return PerceptionModels(faces, ResemblyzerEncoder(device=settings.device), asr, ocr)


def memorizer(settings: "Settings"):
    """``perception`` (offline), ``openai`` (a VLM behind an OpenAI-compatible server), or a local
    Qwen2.5-VL style checkpoint folder."""
    if settings.memorizer == "perception":
        from models.memorizer import PerceptionMemorizer

        return PerceptionMemorizer()
    if settings.memorizer == "openai":
        from models.chat import OpenAIChat
        from models.vlm import OpenAIMemorizer

        if not settings.memorizer_model:
            raise ValueError("memorizer = openai needs memorizer_model (and usually memorizer_base_url)")
        return OpenAIMemorizer(OpenAIChat(settings.memorizer_model, settings.memorizer_base_url,
                                          settings.memorizer_api_key, settings.timeout, settings.retries))
    from models.vlm import TransformersMemorizer

    return TransformersMemorizer(settings.memorizer, device=settings.device)


def chat_model(settings: "Settings"):
    """``qwen2.5-0.5b`` (offline GGUF), ``openai`` (a served model), or a local checkpoint folder
    or ``.gguf`` file."""
    from pathlib import Path

    from models import chat

    if settings.llm == "qwen2.5-0.5b":
        return chat.offline_default(settings.device)
    if settings.llm == "openai":
        if not settings.llm_model:
            raise ValueError("llm = openai needs llm_model (and usually llm_base_url)")
        return chat.OpenAIChat(settings.llm_model, settings.llm_base_url, settings.llm_api_key,
                               settings.timeout, settings.retries)
    path = Path(settings.llm)
    if not path.exists():
        raise FileNotFoundError(f"{path}: llm must be qwen2.5-0.5b, openai, or a local model folder / .gguf file")
    return chat.TransformersChat(path, device=settings.device)
