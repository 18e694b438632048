"""On-screen text: rapidocr (PP-OCR ONNX models shipped inside the wheel)."""

from __future__ import annotations

import logging

import numpy as np


class RapidOCRReader:
    name = "rapidocr"

    def __init__(self, min_score: float = 0.6):
        try:
            from rapidocr import RapidOCR
        except ImportError as e:
            raise ImportError("scene text needs rapidocr: pip install m3mem[perception]") from e
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        self.engine = RapidOCR()
        self.min_score = min_score

    def read(self, img: np.ndarray) -> list[str]:
        """Text lines read in an RGB image, top to bottom."""
        r = self.engine(np.ascontiguousarray(img[:, :, ::-1]))  # rapidocr wants BGR like OpenCV
        if r.txts is None:
            return []
        lines = [(box[:, 1].min(), t) for box, t, s in zip(r.boxes, r.txts, r.scores)
                 if s >= self.min_score and t.strip()]
        return [t.strip() for _, t in sorted(lines, key=lambda x: x[0])]
