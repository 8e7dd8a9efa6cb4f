"""Predictor: checkpoint -> a tuned model that turns any image into a label map at the image's own size.

Backends and devices: on the CPU the network runs through onnxruntime when it is installed (the graph is
exported from the checkpoint on first use and cached, `seg.onnxrt`; about 2x torch's speed on the project's
2-core CPU), else through torch; on CUDA through torch with fp16/bf16 autocast and channels_last, the label
upsample running on the GPU (`seg.upsample`). `device="auto"` picks CUDA when available (`seg.device`).

Deployment choices (measured on the 2-core AVX-512 dev box at 384x512, deeplabv3_mobilenet_v3_large,
`python -m seg.bench`): fp32 contiguous 84 ms -> channels_last 69 ms -> + conv-bn folding 55 ms ->
+ bf16 autocast 25 ms (the CPU has avx512_bf16; `precision="fp32"` turns it off). Measured with a
randomly initialised checkpoint on a shared machine: re-measure on the bundled one.

Geometry: the model sees the frame at its trained scale. The height is matched to the checkpoint's input
height and the width follows the frame's own aspect ratio, truncated as torchvision's `Resize` does, so a
1242x375 KITTI frame runs at 1271x384 (as the plain torchvision pipeline runs it) instead of being squashed to
512x384 (objects would be 2.4x thinner than in training). Frames larger than 4x the trained pixel count are
scaled down to that budget (and to multiples of 16, the output stride).
Labels: the model's own last step (bilinear upsample of all 66 logit channels, then argmax) cost as much
as the backbone, so the Predictor stops at the low-res logits and `upsample_argmax` computes the same
labels exactly, interpolating only at class boundaries; the label map is then nearest-resized from the
model size to the input size (a few % change of scale; bounded memory for huge photos).
"""
from __future__ import annotations

import argparse
import functools
import logging
import math
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .classes import ClassTable
from .device import BACKENDS, PRECISIONS, add_runtime_args, autocast_dtype, describe, resolve_device, resolve_precision
from .imageio import IMAGE_EXTENSIONS, ImageError, image_files, load_image
from .paths import DEFAULT_CHECKPOINT
from .upsample import upsample_argmax_t, upsample_confidence
from . import video
from .viz import overlay_image, to_label_png

_REVERSED_IDS = (254 - np.arange(255)).astype(np.uint8)[:, None]  # first_argmax's row weights
NO_CLASS = -1e30  # "no other class" in upsample_argmax's bound; far from float32 overflow, so 0 * it stays 0
SIZE_MULTIPLE = 16  # output stride of the MobileNet models (ResNet's 8 divides it): the smallest side
MAX_AREA_FACTOR = 4  # model-input pixel budget, in units of the trained input area
log = logging.getLogger("seg")


@dataclass(frozen=True)
class Prediction:
    labels: np.ndarray  # (H, W) uint8 class ids at the input's size
    confidence: np.ndarray  # (H, W) float32 max softmax probability
    ms: float  # wall time of predict_full, decode excluded


def fold_conv_bn(model: nn.Module) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d inside an nn.Sequential into the conv (in place).

    This covers torchvision's Conv2dNormActivation blocks (MobileNet, ASPP, LR-ASPP heads). Eval mode only:
    uses the running statistics. Returns the number of pairs folded.
    """
    if model.training:
        raise ValueError("fold_conv_bn needs a model in eval mode")
    folded = 0
    for seq in list(model.modules()):
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
                folded += 1
    return folded


def model_size(h: int, w: int, input_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) the model runs at for an h x w frame: trained height, aspect-kept width (see module doc)."""
    th, tw = input_size
    if abs(w / h - tw / th) < 0.01:
        return th, tw
    mh, mw = float(th), w * th / h
    budget = MAX_AREA_FACTOR * th * tw
    if mh * mw > budget:  # scaled down to the budget, rounded down to the output stride
        f = math.sqrt(budget / (mh * mw))
        snap = lambda v: max(SIZE_MULTIPLE, int(math.floor(v * f / SIZE_MULTIPLE)) * SIZE_MULTIPLE)  # noqa: E731
        return snap(mh), snap(mw)
    # The width as torchvision's Resize(th) computes it (truncated), so the frame is sampled exactly as the
    # plain pipeline samples it; the networks take any width (their head resizes to the input).
    return th, max(SIZE_MULTIPLE, int(mw))


@functools.lru_cache(maxsize=32)
def _interp_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) weights of 1-D linear interpolation with align_corners=False (F.interpolate's rule)."""
    eye = torch.eye(n_in).unsqueeze(0)  # (1, n_in channels, n_in samples)
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0].T.contiguous()


def upsample_hwc(low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsample (1, C, h, w) -> (H, W, C), equal to F.interpolate(bilinear, align_corners=False).

    Bilinear is separable: out = A_h @ L @ A_w^T per channel. Width first on the h low-res rows (small),
    then height as one large GEMM over all W * C columns.
    """
    _, c, h, w = low.shape
    H, W = int(size[0]), int(size[1])
    a_h, a_w = _interp_matrix(h, H).to(low), _interp_matrix(w, W).to(low)
    rows = torch.matmul(a_w, low[0].permute(1, 2, 0))  # (W, w) @ (h, w, C) -> (h, W, C)
    return (a_h @ rows.reshape(h, W * c)).view(H, W, c)  # (H, W, C)


@functools.lru_cache(maxsize=64)
def _source_index(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F.interpolate's bilinear (align_corners=False) sampling along one axis: (i0, i1, weight of i1), (n_out,)."""
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)


def _spans(i0: np.ndarray, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """(first output index, count) of the output samples whose lower source index is each input index."""
    first = np.searchsorted(i0, np.arange(n_in))
    return first, np.searchsorted(i0, np.arange(n_in), side="right") - first


def first_argmax(values: np.ndarray) -> np.ndarray:
    """(C, n) -> (n,) uint8 index of each column's first maximum, as numpy's / torch's argmax (C <= 255).

    numpy's argmax over axis 0 walks the columns one by one (3.4 ms for (66, 12288)); here every step runs
    along the rows (0.5 ms): the maxima as a 0/1 mask, weighted 254 - row, whose column max is 254 - the
    first maximum's row. No BLAS product: OpenBLAS's threads spin after a call and slowed the next
    onnxruntime run by 35 ms.
    """
    mask = (values == values.max(0)).view(np.uint8)
    np.multiply(mask, _REVERSED_IDS[:values.shape[0]], out=mask)
    lab = 254 - mask.max(0)
    odd = lab >= values.shape[0]  # no maximum found: a column with a NaN (argmax returns the first NaN)
    if odd.any():
        lab[odd] = values[:, odd].argmax(0)
    return lab


def upsample_argmax(low: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """argmax over classes of the bilinear upsample of low (1, C, h, w) to size (H, W) -> (H, W) uint8,
    without computing the (C, H, W) upsampled logits.

    An upsampled logit vector is a convex combination of its 4 low-res neighbours (the corners of its cell);
    where all 4 have the same argmax c, c is also the argmax of the combination (l_c >= l_k in each, so in
    the mix). In the other cells (class boundaries) only the corners' own classes are mixed, and a bound on
    every other class decides whether one of them wins; only where it might (a few % of boundary pixels) are
    all C channels mixed. Mixing is F.interpolate's: along x, then along y, once per (cell, output column)
    and then per pixel. numpy, not torch: torch's advanced indexing of these small tables took 7 ms where
    np.take takes 0.1 ms; arrays are (rows, n) so that numpy's inner loops run along n.
    """
    _, c, h, w = low.shape
    H, W = int(size[0]), int(size[1])
    y0, _, wy = _source_index(h, H)
    x0, _, wx = _source_index(w, W)
    flat = low[0].contiguous().numpy().reshape(c, h * w)  # (C, h*w) float32
    lab = first_argmax(flat).reshape(h, w)
    # Output pixel (Y, X) mixes the 4 corners of low-res cell (y0[Y], x0[X]): rows i, r1[i], columns j, c1[j]
    # (clamped at the last row/column, as _source_index pairs i0 with i1).
    r1, c1 = np.minimum(np.arange(h) + 1, h - 1), np.minimum(np.arange(w) + 1, w - 1)
    lab10 = lab.take(r1, 0)
    mixed = (lab != lab.take(c1, 1)) | (lab != lab10) | (lab != lab10.take(c1, 1))  # (h, w) corners disagree
    out = lab.take(y0, 0).take(x0, 1)  # (H, W): exact wherever the cell's 4 corners agree
    ky, kx = mixed.nonzero()  # the K mixed cells
    if not ky.size:
        return out
    kk = np.arange(ky.size)
    pix = np.stack([ky * w + kx, ky * w + c1[kx], r1[ky] * w + kx, r1[ky] * w + c1[kx]])  # (4 corners, K)
    cand = lab.reshape(-1)[pix]  # (4, K): the corners' own classes are the candidates
    corners = flat.take(pix.reshape(-1), axis=1).reshape(c, 4, ky.size)  # (C, 4 corners, K)
    at = (cand[:, None, :], np.arange(4)[None, :, None], kk)  # [candidate s, corner q, cell]
    cell = np.empty((4, 5, ky.size), np.float32)  # [corner q, s]: candidate s's value (s < 4), the bound (s = 4)
    cell[:, :4] = corners[at].transpose(1, 0, 2)
    # Bound for every other class: each corner's best value outside the candidates, mixed like them. Each
    # float step (a product with a weight >= 0, a sum) is monotone, so a candidate at or above the mixed
    # bound is the argmax over all C classes.
    corners[at] = NO_CLASS
    cell[:, 4] = corners.max(0)
    # Along x, once per (cell, output column) pair: the cell's top and bottom rows at that column.
    (ry, ny), (rx, nx) = _spans(y0, h), _spans(x0, w)
    ncol = nx[kx]
    kc = np.repeat(kk, ncol)  # (P,) cell of each pair
    xs = rx[kx][kc] + (np.arange(kc.size) - np.repeat(np.cumsum(ncol) - ncol, ncol))
    b = wx[xs]
    v = cell.reshape(20, -1).take(kc, 1)  # (20, P): rows 5q + s
    pair = np.empty((10, kc.size), np.float32)  # top row: 4 candidates and the bound; bottom row likewise
    pair[0:5] = (1 - b) * v[0:5] + b * v[5:10]  # corners 0, 1 (top left, top right)
    pair[5:10] = (1 - b) * v[10:15] + b * v[15:20]  # corners 2, 3 (bottom left, bottom right)
    # Along y, per pixel: each pair covers its cell's rows.
    nrow = ny[ky][kc]
    q = np.repeat(np.arange(kc.size), nrow)  # (N,) pair of each pixel
    ys = ry[ky][kc][q] + (np.arange(q.size) - np.repeat(np.cumsum(nrow) - nrow, nrow))
    a = wy[ys]
    pq = pair.take(q, 1)  # (10, N)
    m = (1 - a) * pq[0:5] + a * pq[5:10]  # (5, N): the 4 candidates' values, the bound
    best, j = m[0].copy(), np.zeros(q.size, np.intp)
    for s in (1, 2, 3):  # first maximum of the 4, as argmax
        better = m[s] > best
        np.copyto(best, m[s], where=better)
        j[better] = s
    pos, kq = ys * W + xs[q], kc[q]
    flat_out = out.reshape(-1)
    flat_out[pos] = cand[j, kq]
    rest = best < m[4]
    if rest.any():  # another class may win: mix every other channel at these pixels (rare)
        ar, br = a[rest], b[q[rest]]
        cv = corners.take(kq[rest], 2)  # (C, 4, R), the candidates at NO_CLASS
        other = (1 - ar) * ((1 - br) * cv[:, 0] + br * cv[:, 1]) + ar * ((1 - br) * cv[:, 2] + br * cv[:, 3])
        k2 = first_argmax(other)
        win = other[k2, np.arange(k2.size)] > best[rest]
        flat_out[pos[rest][win]] = k2[win]
    return out


def confidence_map(low: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Max softmax probability of low (1, C, h, w) logits, bilinearly upsampled to size -> (H, W) float32.

    `seg.upsample.upsample_confidence` in numpy, for logits on the CPU: torch's elementwise ops run on its
    OpenMP threads, whose spinning after each op slowed the next frame's onnxruntime run.
    """
    _, c, h, w = low.shape
    flat = low[0].contiguous().numpy().reshape(c, h * w)
    top = flat.max(0)
    conf = (1.0 / np.exp(flat - top).sum(0, dtype=np.float32)).astype(np.float32).reshape(h, w)
    H, W = int(size[0]), int(size[1])
    if (h, w) == (H, W):
        return conf
    y0, y1, wy = _source_index(h, H)
    x0, x1, wx = _source_index(w, W)
    rows = conf.take(y0, 0) * (1 - wy)[:, None] + conf.take(y1, 0) * wy[:, None]  # (H, w)
    return rows.take(x0, 1) * (1 - wx) + rows.take(x1, 1) * wx


class Predictor:
    """Loads a checkpoint once and predicts label maps; safe to share between threads (app sessions).

    Args:
        checkpoint: path (default `seg.paths.DEFAULT_CHECKPOINT`).
        device: "auto" (CUDA when available, else the CPU), "cpu", "cuda" or "cuda:N" (`seg.device`).
        threads: CPU intra-op threads for torch (process-wide) and onnxruntime; None: torch's default.
        precision: "auto" (CUDA: bf16, or fp16 on cards without bf16; CPU: bf16 with native bf16 math,
            else fp32), "fp32", "bf16" or "fp16" (CUDA only). The onnxruntime backend runs fp32.
        backend: "auto" (onnxruntime on the CPU when installed and no bf16 is asked for, torch otherwise),
            "torch" or "onnxruntime" (CPU only). A graph that cannot be built or loaded falls back to
            torch with one warning line (logger "seg").
    Raises CheckpointError (one line) for an unusable checkpoint, ValueError for a bad device/precision/backend.
    """

    def __init__(self, checkpoint=None, device="auto", threads: int | None = None, precision: str = "auto",
                 backend: str = "auto"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if threads is not None:
            torch.set_num_threads(int(threads))
        self.device = resolve_device(device)
        torch_precision = resolve_precision(precision, self.device)  # checked before any loading
        if backend == "onnxruntime" and (self.device.type != "cpu" or precision in ("bf16", "fp16")):
            raise ValueError("the onnxruntime backend runs fp32 on the CPU; use --device cpu and --precision "
                             "auto/fp32, or --backend torch")
        path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        ckpt = load_checkpoint(path)
        self.classes = ClassTable.from_dict(ckpt["classes"])
        self.input_size = (int(ckpt["input_size"][0]), int(ckpt["input_size"][1]))
        model = model_from_checkpoint(ckpt)
        folded = fold_conv_bn(model)
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self._onnx = None  # seg.onnxrt.OrtNet when the onnxruntime backend runs
        if backend == "auto":
            backend = "onnxruntime" if self.device.type == "cpu" and precision in ("auto", "fp32") else "torch"
        note = None
        if backend == "onnxruntime":
            try:
                from . import onnxrt

                self._onnx = onnxrt.load_or_build(path, ckpt, self.model, threads)
            except (ImportError, OSError, RuntimeError) as e:  # ExportError is a RuntimeError
                lines = str(e).strip().splitlines()
                note = f"onnxruntime backend unavailable ({lines[0][:200] if lines else e.__class__.__name__}); using torch"
                log.warning("warning: %s", note)
                backend = "torch"
        self.backend = backend
        self.precision = "fp32" if backend == "onnxruntime" else torch_precision
        self._autocast = autocast_dtype(self.precision) if backend == "torch" else None
        mean = torch.tensor(ckpt["normalize"]["mean"], dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(ckpt["normalize"]["std"], dtype=torch.float32).view(1, 3, 1, 1)
        # uint8 x -> (x / 255 - mean) / std as one multiply-add.
        self._scale = (1.0 / (255.0 * std)).to(self.device)
        self._shift = (-mean / std).to(self.device)
        self._scale_np, self._shift_np = self._scale.cpu().numpy().ravel(), self._shift.cpu().numpy().ravel()
        self._lock = threading.Lock()
        self.meta = {
            "arch": ckpt["model_args"]["arch"],
            "steps": int(ckpt.get("step") or 0),
            "input_size": self.input_size,
            "best_miou": ckpt.get("best_miou"),
            "val_miou": ckpt.get("val_miou"),  # these weights' own validation mIoU, when evaluated
            "path": str(path),
            "precision": self.precision,
            "folded_bn": folded,
            "train_args": dict(ckpt.get("args") or {}),  # what it was trained and validated on (seg.provenance)
            "device": describe(self.device),
            "backend": backend,
            "backend_note": note,  # why the asked-for backend is not the one running, or None
            "classmap": ckpt.get("classmap"),  # e.g. "lanes": the dataset classes this model's were folded from
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The deployed network: normalized (N, 3, h, w) -> low-res (N, C, h/s, w/s) fp32 logits on self.device.

        The model's own forward ends with a bilinear upsample of all C logit channels to (h, w); that and the
        argmax over its result cost as much as the backbone, so the Predictor stops before it and
        upsamples labels with `upsample_argmax` (same labels, ~4 ms at 512x384 on the 2-core CPU).
        """
        with self._lock, torch.inference_mode():
            if self._onnx is not None:
                return self._onnx(x)
            with torch.autocast(self.device.type, self._autocast or torch.bfloat16, enabled=self._autocast is not None):
                low = self.model(x, full_size=False)
            return low.float()

    def model_input(self, image: Image.Image) -> torch.Tensor:
        """RGB image -> normalized (1, 3, h, w) float on self.device at its model size (`model_size`);
        channels_last for torch, contiguous NCHW for onnxruntime."""
        size = model_size(image.height, image.width, self.input_size)
        if (image.height, image.width) != size:
            image = image.resize((size[1], size[0]), Image.BILINEAR)
        if self._onnx is not None:
            # numpy, one channel at a time: torch's elementwise ops run on its OpenMP threads, which spin
            # after each op and took the cores from the onnxruntime run that follows (2-core CPU, 512x384:
            # that run took 35-42 ms after torch's normalisation, 32-33 ms after this one).
            rgb = np.asarray(image)
            x = np.empty((1, 3, size[0], size[1]), np.float32)
            for c in range(3):
                np.multiply(rgb[..., c], self._scale_np[c], out=x[0, c])
                x[0, c] += self._shift_np[c]
            return torch.from_numpy(x)
        # (h, w, 3) uint8, a writable copy (~0.1 ms); normalised on the device, so uint8 crosses the bus.
        x = torch.from_numpy(np.array(image)).to(self.device)
        x = x.permute(2, 0, 1).unsqueeze(0)  # (1, 3, h, w), already channels_last in memory
        return torch.addcmul(self._shift, x.float(), self._scale)

    def _labels(self, low: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
        """(1, C, h', w') logits -> (h, w) uint8 labels at the model size, computed where the logits are."""
        if low.device.type == "cpu":
            return upsample_argmax(low, hw)
        return upsample_argmax_t(low, hw).cpu().numpy()

    def _confidence(self, low: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
        """(1, C, h', w') logits -> (h, w) float32 max-softmax confidence at the model size, computed where
        the logits are."""
        if low.device.type == "cpu":
            return confidence_map(low, hw)
        return upsample_confidence(low, hw)[0].cpu().numpy()

    def scores(self, image: Image.Image) -> torch.Tensor:
        """(h, w, C) float32 logits at the image's model size: what the model's own forward returns."""
        x = self.model_input(image)
        return upsample_hwc(self.forward(x), x.shape[-2:])

    def predict(self, img) -> np.ndarray:
        """Image (PIL, (H, W, 3) uint8 array, path or bytes) -> (H, W) uint8 class ids at its own size."""
        image = self._image(img)
        x = self.model_input(image)
        with torch.inference_mode():
            small = self._labels(self.forward(x), x.shape[-2:])  # (h, w) uint8
        return self._to_size(small, image.size, Image.NEAREST)

    def predict_batch(self, imgs, batch_size: int = 8) -> list[np.ndarray]:
        """Several images -> their label maps (as `predict`), running frames of the same model size together.

        Batches help where one frame leaves the device idle (a GPU); on a 2-core CPU they gain little.
        """
        images = [self._image(i) for i in imgs]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(model_size(im.height, im.width, self.input_size), []).append(i)
        out: list[np.ndarray | None] = [None] * len(images)
        for idx in groups.values():
            for k in range(0, len(idx), max(1, int(batch_size))):
                chunk = idx[k:k + max(1, int(batch_size))]
                x = self._batch([self.model_input(images[i]) for i in chunk])
                with torch.inference_mode():
                    low = self.forward(x)  # (B, C, h', w')
                    for j, i in enumerate(chunk):
                        out[i] = self._to_size(self._labels(low[j:j + 1], x.shape[-2:]), images[i].size, Image.NEAREST)
        return out

    def _batch(self, xs: list[torch.Tensor]) -> torch.Tensor:
        """Model inputs of one size -> one batch: NCHW numpy-backed for onnxruntime (no torch op, whose
        spinning threads slow the next run), channels_last for torch."""
        if self._onnx is not None:
            return torch.from_numpy(np.concatenate([x.numpy() for x in xs]))
        return torch.cat(xs).contiguous(memory_format=torch.channels_last)

    def predict_full(self, img) -> Prediction:
        """Like `predict`, plus per-pixel confidence (max softmax probability) and the elapsed ms.

        Neither map goes through full-size logits: labels come from `upsample_argmax` (the same as `predict`),
        the confidence is the low-res max-probability map upsampled bilinearly (`upsample_confidence`).
        """
        image = self._image(img)
        t0 = time.perf_counter()
        x = self.model_input(image)
        with torch.inference_mode():
            low = self.forward(x)  # (1, C, h', w')
            small = self._labels(low, x.shape[-2:])
            conf = self._confidence(low, x.shape[-2:])  # (h, w) float32
        labels = self._to_size(small, image.size, Image.NEAREST)
        confidence = self._to_size(conf, image.size, Image.BILINEAR)
        return Prediction(labels, confidence, (time.perf_counter() - t0) * 1e3)

    @staticmethod
    def _image(img) -> Image.Image:
        if isinstance(img, Image.Image):
            return img if img.mode == "RGB" else img.convert("RGB")
        if isinstance(img, np.ndarray):
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {img.dtype} {img.shape}")
            return Image.fromarray(img)
        return load_image(img)

    @staticmethod
    def _to_size(a: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
        if a.shape == (size[1], size[0]):
            return a
        return np.asarray(Image.fromarray(a).resize(size, resample))


def expand_inputs(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Files as given, folders expanded to their images (sorted, not recursive). Returns (files, errors)."""
    files, errors = [], []
    for p in map(Path, paths):
        if p.is_dir():
            found = image_files(p)
            if not found:
                errors.append(f"{p}: folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
            files += found
        else:
            files.append(p)  # missing files are reported by load_image, in order
    return files, errors


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Segment images: writes OUT/<stem>.png (paletted class ids); "
                                            "video clips: OUT/<stem>_overlay.mp4 (see seg/video.py).")
    p.add_argument("images", nargs="+", help="image files, folders of images, or video clips")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--checkpoint", default=None, help=f"checkpoint (default {DEFAULT_CHECKPOINT})")
    p.add_argument("--overlay", action="store_true", help="also write OUT/<stem>_overlay.jpg")
    add_runtime_args(p)
    video.add_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        predictor = Predictor(args.checkpoint, device=args.device, threads=args.threads,
                              precision=args.precision, backend=args.backend)
    except (CheckpointError, ValueError) as e:  # ValueError: a device or precision this machine lacks
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: {out}: cannot create output folder ({e.strerror})", file=sys.stderr)
        return 1
    clips, images = video.split_inputs(args.images, args.fps)
    files, errors = expand_inputs(images)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    failed, written = len(errors) + video.run_clips(predictor, clips, out, args), {}
    for f in files:
        try:
            if f.stem in written:
                raise ImageError(f.name, f"same output name {f.stem}.png as {written[f.stem]}; skipped")
            image = load_image(f)
            labels = predictor.predict(image)
            to_label_png(labels, predictor.classes).save(out / f"{f.stem}.png")
            if args.overlay:
                overlay_image(image, labels, predictor.classes).save(out / f"{f.stem}_overlay.jpg", quality=90)
            written[f.stem] = str(f)
            print(out / f"{f.stem}.png")
        except ImageError as e:
            failed += 1
            print(f"error: {e}", file=sys.stderr)
        except OSError as e:  # writing the outputs
            failed += 1
            print(f"error: {f.name}: cannot write output ({e.strerror or e})", file=sys.stderr)
        except (RuntimeError, ValueError) as e:  # e.g. out of memory on a huge frame: report, go on
            failed += 1
            first = (str(e).strip().splitlines() or [""])[0][:200]
            print(f"error: {f.name}: {e.__class__.__name__}: {first}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
