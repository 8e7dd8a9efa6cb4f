"""What this machine is and how fast the loaded model runs on it, for the app's Home page.

Speed figures in the README come from one machine; these are measured where the app runs, on the path
the Inference page takes (`Predictor.predict_full`: labels plus per-pixel confidence).
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np
import torch

from seg.device import cpu_bf16_supported, cpu_name


def device_summary(predictor) -> dict:
    """{device, name, cores, threads, backend, backend_note, precision, bf16_native} of a seg.infer.predictor.Predictor
    in this process."""
    dev = predictor.device
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name()
    return {
        "device": dev.type,
        "name": name,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "backend": predictor.meta.get("backend", "torch"),
        "backend_note": predictor.meta.get("backend_note"),  # why the asked-for backend is not the one running
        "precision": predictor.meta.get("precision"),
        "bf16_native": cpu_bf16_supported(),
    }


def measure_ms(predictor, size_hw: tuple[int, int], repeats: int = 3, seed: int = 0) -> float:
    """Median wall ms of `predictor.predict_full` on a random (H, W) = `size_hw` frame, after one warm-up."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (int(size_hw[0]), int(size_hw[1]), 3), dtype=np.uint8)
    predictor.predict_full(image)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        predictor.predict_full(image)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)
