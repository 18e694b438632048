"""Run-time device choice (CUDA when torch sees one, else CPU) and thread limits per process."""

from __future__ import annotations

import os


def pick_device(requested: str | None = None) -> str:
    """``requested`` if given ("cpu", "cuda", "cuda:1"), else "cuda" when available, else "cpu"."""
    if requested:
        return requested
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def limit_threads(n: int) -> None:
    """Let this process's numeric libraries (torch, OpenMP/BLAS, CTranslate2, OpenCV) use ``n``
    threads, so that several worker processes on one machine do not oversubscribe its cores. Call it
    before the models load."""
    n = max(1, int(n))
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        import cv2

        cv2.setNumThreads(n)
    except ImportError:
        pass
