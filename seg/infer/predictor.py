"""Predictor: checkpoint -> a tuned model that turns any image into a label map at the image's own size.

Backends and devices: on the CPU the network runs through onnxruntime when it is installed (the graph is
exported from the checkpoint on first use and cached, `seg.infer.onnxrt`; about twice torch's speed on a
small CPU), else through torch; on CUDA through torch with fp16/bf16 autocast and channels_last,
the label upsample running on the GPU. `device="auto"` picks CUDA when available (`seg.device`). The frame
runs at its trained scale (`seg.infer.deploy.model_size`), the network stops at its low-res logits and
`seg.infer.upsample` turns them into exact labels; the label map is then nearest-resized from the model
size to the input size (a few % change of scale; bounded memory for huge photos).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from seg.checkpoint import model_from_checkpoint
from seg.cli import one_line
from seg.classes import ClassTable
from seg.device import BACKENDS, PRECISIONS, autocast_dtype, describe, resolve_device, resolve_precision
from seg.imageio import load_image
from seg.paths import DEFAULT_CHECKPOINT
from seg.infer import onnxrt
from seg.infer.deploy import fold_conv_bn, model_size
from seg.infer.export import read_checkpoint
from seg.infer.upsample import confidence_map, upsample_argmax, upsample_argmax_t, upsample_confidence

log = logging.getLogger("seg")


@dataclass(frozen=True)
class Prediction:
    """What `Predictor.predict_full` returns for one image."""

    labels: np.ndarray  # (H, W) uint8 class ids at the input's size
    confidence: np.ndarray  # (H, W) float32 max softmax probability
    ms: float  # wall time of predict_full, decode excluded


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
    Raises CheckpointError (one line) for an unusable checkpoint, ValueError for a bad device/precision/backend
    or threads < 1.
    """

    def __init__(self, checkpoint=None, device="auto", threads: int | None = None, precision: str = "auto",
                 backend: str = "auto"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if threads is not None:
            if int(threads) < 1:
                raise ValueError(f"threads must be at least 1, got {threads}")
            torch.set_num_threads(int(threads))
        self.device = resolve_device(device)
        torch_precision = resolve_precision(precision, self.device)  # checked before any loading
        if backend == "onnxruntime" and (self.device.type != "cpu" or precision in ("bf16", "fp16")):
            raise ValueError("the onnxruntime backend runs fp32 on the CPU; use --device cpu and --precision "
                             "auto/fp32, or --backend torch")
        path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        ckpt, sha256 = read_checkpoint(path)  # one read: the graph cache is keyed by what was loaded
        self.classes = ClassTable.from_dict(ckpt["classes"])
        self.input_size = (int(ckpt["input_size"][0]), int(ckpt["input_size"][1]))
        model = model_from_checkpoint(ckpt)
        folded = fold_conv_bn(model)
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self._onnx = None  # seg.infer.onnxrt.OrtNet when the onnxruntime backend runs
        if backend == "auto":
            backend = "onnxruntime" if self.device.type == "cpu" and precision in ("auto", "fp32") else "torch"
        note = None
        if backend == "onnxruntime":
            try:
                self._onnx = onnxrt.load_or_build(sha256, ckpt, self.model, threads)
            except (ImportError, OSError, RuntimeError) as e:  # ExportError is a RuntimeError
                note = f"onnxruntime backend unavailable ({one_line(e)}); using torch"
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
        upsamples labels with `upsample_argmax` (the same labels at a fraction of the cost).
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
            # after each op and would take the cores from the onnxruntime run that follows.
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

    def labels_at(self, low: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
        """(1, C, h', w') logits -> (h, w) uint8 labels at the model size, computed where the logits are."""
        if low.device.type == "cpu":
            return upsample_argmax(low, hw)
        return upsample_argmax_t(low, hw).cpu().numpy()

    def confidence_at(self, low: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
        """(1, C, h', w') logits -> (h, w) float32 max-softmax confidence at the model size, computed where
        the logits are."""
        if low.device.type == "cpu":
            return confidence_map(low, hw)
        return upsample_confidence(low, hw)[0].cpu().numpy()

    def predict(self, img) -> np.ndarray:
        """Image (PIL, (H, W, 3) uint8 array, path or bytes) -> (H, W) uint8 class ids at its own size."""
        image = self._image(img)
        x = self.model_input(image)
        with torch.inference_mode():
            small = self.labels_at(self.forward(x), x.shape[-2:])  # (h, w) uint8
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
                x = self.batch_input([self.model_input(images[i]) for i in chunk])
                with torch.inference_mode():
                    low = self.forward(x)  # (B, C, h', w')
                    for j, i in enumerate(chunk):
                        small = self.labels_at(low[j:j + 1], x.shape[-2:])
                        out[i] = self._to_size(small, images[i].size, Image.NEAREST)
        return out

    def batch_input(self, xs: list[torch.Tensor]) -> torch.Tensor:
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
            small = self.labels_at(low, x.shape[-2:])
            conf = self.confidence_at(low, x.shape[-2:])  # (h, w) float32
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
