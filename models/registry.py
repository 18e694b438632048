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
