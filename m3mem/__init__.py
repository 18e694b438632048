"""m3mem: long-term multimodal memory for long videos (M3-Agent style), offline by default."""

__version__ = "0.1.0"

from m3mem.graph import GraphConfig, MemoryGraph  # noqa: E402  (pure, cheap to import)
from m3mem.memory import Memory  # noqa: E402
from m3mem.retrieval import Retriever, SearchOptions  # noqa: E402
from m3mem.store import MemoryFileError  # noqa: E402

__all__ = ["GraphConfig", "Memory", "MemoryFileError", "MemoryGraph", "Retriever", "SearchOptions"]
