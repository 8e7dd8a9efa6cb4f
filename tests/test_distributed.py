"""torchrun + DistributedDataParallel on CPU (gloo, 2 processes): logs, checkpoints, exactness, metrics."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from seg.checkpoint import load_checkpoint
from seg.evaluate.metrics import ConfusionMatrix
from seg.train.main import cli

REPO = Path(__file__).resolve().parent.parent
COMMON = ["--arch", "lraspp_mobilenet_v3_large", "--size", "64x48", "--workers", "0", "--threads", "1",
          "--log-every", "1", "--eval-every", "1000", "--checkpoint-every", "2", "--device", "cpu"]
# With identical data and frozen batch norm, 2 x 2 images and 1 x 4 images compute the same averaged gradient;
# what remains is float summation order, far below this.
LOSS_RTOL = 1e-4


def torchrun(*argv) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "seg.train", *map(str, argv)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)


def train_losses(run: Path) -> list[tuple[int, float]]:
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in lines if "loss" in r]


@pytest.mark.slow
def test_two_processes_write_one_log_and_match_one_process(tiny_vistas, tmp_path):
    exact = ["--no-augment", "--freeze-bn", "--seed", "3", "--steps", "4"]
    two = torchrun("--data", tiny_vistas, "--out", tmp_path / "two", "--batch-size", 2, *COMMON, *exact)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "2 process(es) x batch 2 = effective batch 4" in two.stderr
    assert cli(["--data", str(tiny_vistas), "--out", str(tmp_path / "one"), "--batch-size", "4", *COMMON, *exact]) == 0
    l2, l1 = train_losses(tmp_path / "two"), train_losses(tmp_path / "one")
    assert [s for s, _ in l2] == [1, 2, 3, 4]  # only rank 0 writes: each step once
    for (_, a), (_, b) in zip(l1, l2):
        assert a == pytest.approx(b, rel=LOSS_RTOL)
    assert l2[-1][1] < l2[0][1]  # it learns
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["best.pt", "last.pt", "metrics.jsonl", "model.pt",
                                                                   "train.lock"]  # one lock: rank 0's
    # resume under DDP continues the same log
    more = torchrun("--data", tiny_vistas, "--out", tmp_path / "two", "--batch-size", 2, *COMMON,
                    "--no-augment", "--freeze-bn", "--seed", "3", "--steps", "6", "--resume")
    assert more.returncode == 0, more.stderr[-2000:]
    assert [s for s, _ in train_losses(tmp_path / "two")] == [1, 2, 3, 4, 5, 6]
    assert load_checkpoint(tmp_path / "two" / "last.pt")["step"] == 6


def _shard_confusion(rank: int, world: int, init: str, target, pred, out):
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    cm = ConfusionMatrix(5, ignore_index=4)
    for i in range(rank, len(target), world):  # the same unpadded sharding as seg.train.engine.evaluate
        cm.update(target[i], pred[i])
    cm.reduce_from_all_processes()
    if rank == 0:
        torch.save(cm.mat, out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_distributed_confusion_matrix_equals_single_process(tmp_path):
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 5, (7, 6, 5), generator=g)  # 7 frames: uneven split over 2 ranks
    pred = torch.randint(0, 5, (7, 6, 5), generator=g)
    single = ConfusionMatrix(5, ignore_index=4)
    single.update(target, pred)
    out = tmp_path / "mat.pt"
    mp.spawn(_shard_confusion, args=(2, f"file://{tmp_path / 'rdzv'}", target, pred, out), nprocs=2, join=True)
    assert torch.equal(torch.load(out, weights_only=True), single.mat)
