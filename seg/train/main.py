"""Train a segmentation model, laid out like torchvision's references/segmentation/train.py.

    python -m seg.train --data synth --out runs/demo --preset demo
    torchrun --nproc_per_node 2 -m seg.train --data /data/vistas_512x384 --out runs/vistas

`--batch-size` is per process; under torchrun the effective batch is batch-size x world size.
RUNDIR gets metrics.jsonl (one JSON object per line), last.pt (full state, for --resume),
model.pt (slim copy of the latest weights) and best.pt (slim, best validation mIoU); train.lock keeps a
second trainer out of RUNDIR while this one runs (seg.train.runlock).

`main(cfg)` wires one run from a TrainConfig (flags: seg.train.config, set-up: seg.train.setup, the loop:
seg.train.trainer); `cli(argv)` is the command around it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from seg.checkpoint import CheckpointError, load_checkpoint
from seg.data.vistas import DataError
from seg.paths import printable
from seg.train import distributed as D
from seg.train.calibrate import class_weights
from seg.train.config import TrainConfig, parse_config
from seg.train.engine import infinite
from seg.train.runlock import RunLock, RunLockError
from seg.train.runfiles import start_log
from seg.train.runlog import METRICS_FILE
from seg.train.setup import Start, build, datasets, make_loader, restore
from seg.train.trainer import TrainData, Trainer


def main(cfg: TrainConfig) -> int:
    """Train as `cfg` says; returns the process exit code (0 done or interrupted cleanly, 1 stopped on NaN)."""
    device, rank, world = D.init_distributed(cfg.device)
    out = Path(cfg.out)
    torch.manual_seed(cfg.seed)
    if device.type == "cpu" and cfg.threads:
        torch.set_num_threads(cfg.threads)
    resume = load_checkpoint(out / "last.pt") if cfg.resume and (out / "last.pt").exists() else None
    train_set, val_set, classes = datasets(cfg, resume_step=resume["step"] if resume is not None else 0)
    parts = build(cfg, classes, device, world, fresh=resume is None)
    start = restore(resume, out / "last.pt", cfg.arch, parts) if resume is not None else Start()
    if rank == 0:
        damaged = start_log(out, start.step if resume is not None else None)
        if damaged:  # no reader could use them; said here, so that nothing leaves the log unannounced
            shown = ", ".join(map(str, damaged[:10])) + (", ..." if len(damaged) > 10 else "")
            print(f"note: {printable(out / METRICS_FILE)}: {len(damaged)} damaged line(s) left out (not a JSON "
                  f"object with a numeric step, or not UTF-8): line {shown}", file=sys.stderr)
        print(run_line(cfg, device, world, start.step), file=sys.stderr)
    loader, sampler = make_loader(cfg, train_set, device, rank, world)
    weight = None
    if cfg.class_weights == "sqrt-inv":
        weight = class_weights(train_set, classes.num_classes, classes.ignore_index, cfg.weight_samples, device)
    data = TrainData(infinite(loader, sampler), val_set, classes, weight)
    return Trainer(cfg, parts, data, start).run()


def run_line(cfg: TrainConfig, device: torch.device, world: int, start_step: int) -> str:
    """The one line a run starts with: model, device, effective batch, learning rate, crop and steps."""
    scaled = " (scaled linearly by world size)" if cfg.scale_lr and world > 1 else ""
    crop_h, crop_w = cfg.crop_hw
    return (f"{cfg.arch} on {device}, {world} process(es) x batch {cfg.batch_size} = effective batch "
            f"{cfg.batch_size * world}; lr {cfg.lr:g}{scaled}; crop {crop_w}x{crop_h}, steps {start_step}->{cfg.steps}")


def error_line(e: BaseException) -> str:
    """The line to show for an error that ends a run. A DataLoader worker's error arrives wrapped ("Caught X
    in DataLoader worker ... Original Traceback"); its last line is the original message, which names the file."""
    lines = [l for l in str(e).splitlines() if l.strip()]
    if "Original Traceback" in str(e):
        return lines[-1]
    return lines[0] if lines else e.__class__.__name__


def cli(argv: list[str] | None = None) -> int:
    """`python -m seg.train`: flags (usage errors exit 2), the run lock, the run; an expected failure (bad
    data, checkpoint, lock) is one `error:` line and exit status 1."""
    cfg = parse_config(argv)
    # One process trains in a run folder at a time; rank 0 holds the lock for the whole run (torchrun
    # stops the other ranks when rank 0 exits on a refusal).
    lock = RunLock(cfg.out) if int(os.environ.get("RANK", 0)) == 0 else None
    try:
        if lock is not None:
            lock.acquire()
        return main(cfg)
    except (DataError, CheckpointError, ValueError, RunLockError, OSError) as e:  # OSError: the run folder's files
        print(f"error: {error_line(e)}", file=sys.stderr)
        return 1
    finally:
        if lock is not None:
            lock.release()
        D.cleanup()
