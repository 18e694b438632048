"""Run-time device choice (CUDA when torch sees one, else CPU) and thread limits per process."""

from __future__ import annotations

import os

from preprocessing.errors import UsageError


class DeviceError(UsageError):
    """The device asked for is not there (CUDA asked for on a machine without one)."""


def pick_device(requested: str | None = None) -> str:
    """``requested`` ("cpu", "cuda", "cuda:1"), or for None / "auto" "cuda" when torch sees one, else
    "cpu". A CUDA device that is not there is an error, never a silent move to the CPU."""
    if requested and requested != "auto":
        if requested.startswith("cuda") and not cuda_available():
            raise DeviceError(f"device {requested!r} was asked for, but torch sees no CUDA device "
                              f"(use --device cpu, or auto to take CUDA when present)")
        return requested
    return "cuda" if cuda_available() else "cpu"


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


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


def thread_budget() -> int:
    """The cores this process may use: what ``limit_threads`` (or the user) set in
    ``OMP_NUM_THREADS``, else the CPUs it may run on."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
