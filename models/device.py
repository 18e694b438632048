"""Run-time device choice: CUDA when torch sees one, else CPU."""

from __future__ import annotations


def pick_device(requested: str | None = None) -> str:
    """``requested`` if given ("cpu", "cuda", "cuda:1"), else "cuda" when available, else "cpu"."""
    if requested:
        return requested
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"
