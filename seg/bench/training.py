"""The training side of the benchmark: img/s of `seg.train` itself (a subprocess, read from its
metrics.jsonl), of its data pipeline alone, and of the synthetic renderer."""
from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from seg.paths import REPO_ROOT
from seg.synth import render
from seg.train.config import PRESETS, parse_config
from seg.train.setup import get_dataset

# The preset's frame pool is cut to this many frames: the pool's size sets how long it takes to render up
# front, not the cost of a step.
BENCH_POOL = 64


def train_figures(steps: int, preset: str = "demo", device: str = "cpu", pool: int = BENCH_POOL) -> dict:
    """train_img_s of `seg.train --preset PRESET` for `steps` steps (a subprocess; the median of its logged
    windows but the first), train_cmd, and train_error when it failed. The end-of-run calibration is off:
    it does not change img/s."""
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "seg.train", "--preset", preset, "--steps", str(steps), "--out", tmp,
               "--device", device, "--log-every", "5", "--eval-every", str(10 * steps),
               "--checkpoint-every", str(10 * steps), "--bn-recalibrate", "0", "--logit-adjust", "0", "--bias-fit", "0"]
        if PRESETS[preset].get("synth_pool"):
            cmd += ["--synth-pool", str(pool)]
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300)
        log = Path(tmp) / "metrics.jsonl"
        rows = [json.loads(l) for l in log.read_text().splitlines() if l.strip()] if log.is_file() else []
        speeds = [row["img_per_s"] for row in rows if "img_per_s" in row][1:]  # first window has warm-up
        if r.returncode != 0 or not speeds:
            tail = (r.stderr.strip().splitlines() or ["no metrics"])[-1]
            out["train_error"] = f"seg.train exited {r.returncode}: {tail[:200]}"
        out["train_img_s"] = statistics.median(speeds) if speeds else None
        out["train_cmd"] = " ".join(["python"] + cmd[1:]).replace(tmp, "TMP")
    return out


def loader_figures(steps: int) -> dict:
    """loader_img_s: batches/s x batch size of `--preset demo`'s training data pipeline alone (its workers,
    its pool cut to BENCH_POOL frames), and loader_workers."""
    cfg = parse_config(["--preset", "demo", "--out", "unused"])
    cfg = dataclasses.replace(cfg, synth_pool=min(cfg.synth_pool, BENCH_POOL))
    ds = get_dataset(cfg, train=True)
    endless = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=1 << 30) if hasattr(ds, "__len__") else None
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, sampler=endless, num_workers=cfg.workers)
    it = iter(loader)
    next(it)  # worker start-up
    n_batches = max(3, steps // 4)
    t0 = time.perf_counter()
    for _ in range(n_batches):
        next(it)
    out = {"loader_img_s": n_batches * cfg.batch_size / (time.perf_counter() - t0), "loader_workers": cfg.workers}
    del it
    return out


def synth_img_s(n: int) -> float:
    """Frames per second of the synthetic renderer at its default size, over `n` frames after one warm-up."""
    render(0)
    t0 = time.perf_counter()
    for i in range(n):
        render(1000 + i)
    return n / (time.perf_counter() - t0)
