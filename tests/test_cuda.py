"""CUDA end to end: predict on the GPU equals the CPU, the batch path, a few AMP training steps (no scheduler
warning, GPU memory logged) with resume, and DDP over one NCCL process. Skipped where there is no CUDA."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from seg.paths import DEFAULT_CHECKPOINT, DEFAULT_DATA

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none visible here)")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def frames():
    from seg.data.samples import sample_frames as load

    return load(DEFAULT_DATA / "validation" / "images", (512, 384), 4, 0) + load(REPO / "assets" / "kitti_samples",
                                                                                (1242, 375), 2, 500)


def test_predict_on_cuda_equals_cpu(frames):
    from seg.infer.predictor import Predictor

    gpu = Predictor(DEFAULT_CHECKPOINT, device="cuda")
    cpu = Predictor(DEFAULT_CHECKPOINT, device="cpu", backend="torch", precision="fp32")
    assert gpu.device.type == "cuda" and gpu.precision in ("bf16", "fp16") and gpu.backend == "torch"
    assert gpu.meta["device"].startswith("cuda:")
    same = total = 0
    for im in frames:
        a, b = gpu.predict(im), cpu.predict(im)
        assert a.shape == b.shape == (im.height, im.width)
        same, total = same + int((a == b).sum()), total + a.size
    assert same / total >= 0.99
    batch = gpu.predict_batch(frames, batch_size=3)
    assert np.mean([(x == gpu.predict(im)).mean() for x, im in zip(batch, frames)]) >= 0.99
    full = gpu.predict_full(frames[-1])
    np.testing.assert_array_equal(full.labels, gpu.predict(frames[-1]))
    assert full.confidence.shape == full.labels.shape and 0 < full.confidence.min() <= full.confidence.max() <= 1.0001


def _train(*argv) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "seg.train", *map(str, argv)], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=300)


def test_amp_training_steps_and_resume(tiny_vistas, tmp_path):
    common = ["--data", tiny_vistas, "--out", tmp_path / "run", "--arch", "lraspp_mobilenet_v3_large",
              "--size", "64x48", "--batch-size", "4", "--workers", "0", "--log-every", "1", "--eval-every", "100",
              "--checkpoint-every", "2", "--device", "cuda"]
    r = _train(*common, "--steps", "4")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "lr_scheduler.step()" not in r.stderr  # GradScaler's skipped first steps no longer step the schedule
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_rows = [row for row in rows if "loss" in row]
    assert [row["step"] for row in train_rows] == [1, 2, 3, 4]
    assert all(row["gpu_mem_gb"] > 0 and row["img_per_s"] > 0 for row in train_rows)
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["scaler"] is not None and ckpt["step"] == 4
    r = _train(*common, "--steps", "6", "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] == 6


def _ddp_one_nccl_process(rank: int, init: str, out: str):
    from seg.evaluate.metrics import ConfusionMatrix
    from seg.model import create_model

    dist.init_process_group("nccl", init_method=init, rank=rank, world_size=1)
    torch.cuda.set_device(0)
    model = torch.nn.parallel.DistributedDataParallel(create_model("lraspp_mobilenet_v3_large", 5).cuda(), device_ids=[0])
    loss = model(torch.randn(2, 3, 64, 64, device="cuda")).float().square().mean()
    loss.backward()  # gradients all-reduced through NCCL
    cm = ConfusionMatrix(5, ignore_index=4)
    cm.update(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1]))
    cm.reduce_from_all_processes()
    torch.save({"mat": cm.mat.cpu(), "grad": next(model.parameters()).grad is not None}, out)
    dist.destroy_process_group()


def test_ddp_with_one_nccl_process(tmp_path):
    out = tmp_path / "res.pt"
    mp.spawn(_ddp_one_nccl_process, args=(f"file://{tmp_path / 'rdzv'}", str(out)), nprocs=1, join=True)
    res = torch.load(out, weights_only=True)
    assert res["grad"] and res["mat"].sum() == 3 and res["mat"][2, 1] == 1
