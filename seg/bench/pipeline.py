"""The inference side of the benchmark: the naive pipeline the Predictor is compared with, interleaved timing
rounds, FLOP counting and one frame's forward / predict / predict_full figures with their agreement."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode
from torchvision.transforms import v2

from seg.checkpoint import model_from_checkpoint
from seg.device import autocast_dtype
from seg.infer import onnxrt
from seg.infer.predictor import Predictor, model_size
from seg.viz import overlay_image, to_label_png


class NaivePipeline:
    """The straightforward version: v2 transforms, fp32 model in default memory format, no_grad, argmax,
    nearest resize back, palette via putpalette, overlay via Image.blend. Nothing slowed down on purpose."""

    def __init__(self, ckpt: dict):
        self.model = model_from_checkpoint(ckpt)
        self.flat_palette = [v for c in ckpt["classes"]["colors"] for v in c]
        norm = ckpt["normalize"]
        self.transform = v2.Compose([
            v2.Resize(int(ckpt["input_size"][0])),  # shorter side, like torchvision's segmentation presets
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(norm["mean"], norm["std"]),
        ])

    def labels(self, image: Image.Image) -> np.ndarray:
        with torch.no_grad():
            out = self.model(self.transform(image).unsqueeze(0))
        small = Image.fromarray(out.argmax(1)[0].to(torch.uint8).numpy())
        return np.asarray(small.resize(image.size, Image.NEAREST))

    def __call__(self, image: Image.Image) -> tuple[Image.Image, Image.Image]:
        lab = Image.fromarray(self.labels(image))
        lab.putpalette(self.flat_palette)
        return lab, Image.blend(image, lab.convert("RGB"), 0.5)


def timed_rounds(fns: dict[str, Callable[[], object]], runs: int, warmup: int = 2,
                 pause_s: float = 0.02) -> dict[str, float]:
    """Median wall time (ms) of each of `fns`, timed in `runs` rounds that call each once, in turn, after
    `warmup` untimed rounds. Interleaving keeps ratios between them honest on a machine whose speed drifts.
    A `pause_s` sleep before each call lets the previous call's worker threads (torch's OpenMP threads spin
    after each op) go idle, so one call's threads do not slow the next one's."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            time.sleep(pause_s)
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


GEMM_N = 1024


def gemm_call(n: int = GEMM_N) -> Callable[[], object]:
    """One fp32 n x n matrix multiply (2 n^3 FLOPs) at the current thread count, as a call to time."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return lambda: torch.mm(a, b)


def model_flops(model: torch.nn.Module, hw: tuple[int, int]) -> int:
    """FLOPs of one forward pass of `model` on a (1, 3, H, W) input, `hw` = (H, W)."""
    x = torch.randn(1, 3, *hw)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return int(counter.get_total_flops())


def pipeline_figures(pred: Predictor, naive: NaivePipeline, imgs: list[Image.Image], runs: int,
                     reference: bool = True, gemm: bool = False) -> dict:
    """forward/predict/predict_full ms on imgs[0], agreement with the naive pipeline over all of imgs; with
    `reference`, also model_forward_ms and naive_ms (they do not depend on the Predictor's backend); with
    `gemm`, gemm_gflop_s. All timed in the same interleaved rounds (`timed_rounds`)."""
    img = imgs[0]
    h, w = model_size(img.height, img.width, pred.input_size)
    x = pred.batch_input([torch.randn(1, 3, h, w, device=pred.device)])  # in the backend's own layout, as predict feeds it
    sync = torch.cuda.synchronize if pred.device.type == "cuda" else (lambda: None)

    def forward():
        pred.forward(x)
        sync()

    x_cl = x.contiguous(memory_format=torch.channels_last)  # the torch model's layout

    def model_forward():  # the model's own forward, incl. its upsample of all logit channels
        dtype = autocast_dtype(pred.precision)
        with torch.inference_mode(), torch.autocast(pred.device.type, dtype or torch.bfloat16, enabled=dtype is not None):
            pred.model(x_cl)
        sync()

    def predict():
        labels = pred.predict(img)
        return to_label_png(labels, pred.classes), overlay_image(img, labels, pred.classes)

    agree = agreement(pred, naive, imgs)
    # predict's parts besides the network, on the real frame: input conversion, label upsample, picture out
    real_x = pred.model_input(img)
    with torch.inference_mode():
        real_low = pred.forward(real_x)
    labels = pred.predict(img)
    fns = {"forward_ms": forward, "predict_ms": predict, "predict_full_ms": lambda: pred.predict_full(img),
           "input_ms": lambda: pred.model_input(img),
           "labels_ms": lambda: pred.labels_at(real_low, real_x.shape[-2:]),
           "picture_ms": lambda: (to_label_png(labels, pred.classes), overlay_image(img, labels, pred.classes))}
    if reference:
        fns.update(model_forward_ms=model_forward, naive_ms=lambda: naive(img))
    if gemm:
        fns["gemm_ms"] = gemm_call()
    out = timed_rounds(fns, runs)
    if gemm:
        out["gemm_gflop_s"] = 2 * GEMM_N**3 / (out.pop("gemm_ms") / 1e3) / 1e9
    out.update(agreement=agree, model_hw=[h, w])
    return out


def agreement(pred: Predictor, naive: NaivePipeline, imgs: list[Image.Image]) -> float:
    """Fraction of pixels, over all of `imgs`, where the Predictor and the naive pipeline give the same class."""
    same = total = 0
    for im in imgs:
        a, b = pred.predict(im), naive.labels(im)
        same += int((a == b).sum())
        total += a.size
    return same / total


def cpu_backends(checkpoint: Path, backend: str) -> tuple[Predictor, dict[str, Predictor]]:
    """(the default CPU Predictor for `backend`, {backend name: Predictor} of every CPU backend installed)."""
    default = Predictor(checkpoint, device="cpu", backend=backend)
    preds = {default.backend: default}
    for name in ("torch", "onnxruntime"):
        if name not in preds and (name == "torch" or onnxrt.available()):
            other = Predictor(checkpoint, device="cpu", backend=name)
            if other.backend == name:  # not a fallback to a backend measured already
                preds[name] = other
    return default, preds
