"""Train a segmentation model, laid out like torchvision's references/segmentation/train.py.

    python -m seg.train --data synth --out runs/demo --preset demo
    torchrun --nproc_per_node 2 -m seg.train --data /data/vistas_512x384 --out runs/vistas

`--batch-size` is per process; under torchrun the effective batch is batch-size x world size.
RUNDIR gets metrics.jsonl (one JSON object per line), last.pt (full state, for --resume),
model.pt (slim copy of the latest weights) and best.pt (slim, best validation mIoU); train.lock keeps a
second trainer out of RUNDIR while this one runs (seg.runlock).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from seg.train import distributed as D
from seg.train.calibrate import class_weights, fit_logit_bias, heldout_scores, logit_adjustment, recalibrate_bn
from seg.checkpoint import CheckpointError, load_checkpoint, make_checkpoint, save_checkpoint, slim
from seg.classes import VISTAS
from seg.classmap import list_mappings, remap_dataset
from seg.data.synthetic import SynthPool, SynthStream
from seg.data.transforms import get_transform
from seg.data.vistas import DataError, VistasDataset, check_split
from seg.evaluate.metrics import ConfusionMatrix
from seg.model import DEFAULT_ARCH, add_logit_bias, create_model, list_models, output_conv
from seg.paths import DEFAULT_DATA, REPO_ROOT
from seg.train.runlock import RunLock, RunLockError
from seg.cli import parse_size
from seg.device import device_arg, resolve_device

# `--preset demo`: the CPU recipe behind the bundled checkpoint (explicit flags still win). Each choice was
# measured as val mIoU after 10-minute runs on the 2-core machine (README, "The bundled model"):
# LR-ASPP+ over LR-ASPP 0.516 vs 0.501; a rendered pool instead of streaming, with the logit adjustment,
# 0.565; the loss at the head's 1/4 resolution (half the step time) 0.617. The held-out bias fit was measured
# on the finished run instead: 0.758 -> 0.767 (and 0.747 -> 0.755 applied to the previous bundled model).
# Those figures are from the 18-class world; for the 42-class world the pool shrank from 4,000 to 3,000 frames
# and training from 37 to 34 minutes, because its frames take ~0.11 s each to render instead of ~0.035 s and
# the whole command must stay within 40 minutes.
PRESETS = {
    "demo": {
        "data": "synth", "arch": "lraspp_plus_mobilenet_v3_large", "steps": 12000, "time_limit": 34,
        "batch_size": 8, "size": "512x384", "crop": "256x256", "lr": 2e-3, "log_every": 10, "eval_every": 400,
        "checkpoint_every": 200, "workers": 1, "eval_limit": 32, "scale_range": "0.75,1.5",
        "class_weights": "sqrt-inv", "synth_pool": 3000, "loss_at": "head", "logit_adjust": 0.5,
        "bn_recalibrate": 50, "bias_fit": 192,
    },
    # One CUDA GPU: the demo recipe with what a GPU changes. Batch 64 instead of 8 (at 8 the GPU idles between
    # small steps; at 64 of 256x256 crops one H200 ran ~1,300 img/s and reached val mIoU 0.756 in 962 steps);
    # lr 4e-3, the value measured at batch 64 (AdamW wants less than the linear 8x of the demo's 2e-3); full
    # 512x384 crops, the trained size the Predictor runs at, affordable on a GPU; loader workers from the CPU
    # count ("auto": all cores but two, shared between the processes of one machine under torchrun), since
    # the CPU-side augmentation must keep up with the GPU. The pool renders in parallel before training.
    "gpu": {
        "data": "synth", "arch": "lraspp_plus_mobilenet_v3_large", "steps": 3000, "batch_size": 64,
        "size": "512x384", "crop": None, "lr": 4e-3, "log_every": 20, "eval_every": 500, "checkpoint_every": 500,
        "workers": "auto", "eval_limit": 32, "scale_range": "0.75,1.5", "class_weights": "sqrt-inv",
        "synth_pool": 3000, "loss_at": "head", "logit_adjust": 0.5, "bn_recalibrate": 50, "bias_fit": 192,
    },
    # The 2-class lane-marking model, within 20 minutes on the same CPU: the demo recipe with the classes
    # folded by `--classes lanes`, a 1,200-frame pool (~70 s to render on 2 cores at ~0.11 s a frame) and
    # 14 minutes of training, leaving ~4 minutes for start-up, class weights, BN recalibration, the bias fit
    # (which maximises mIoU, i.e. in effect the marking IoU) and evaluations. The loss is scored at full
    # size: a marking 2-6 px wide at 512x384 falls between the 4-px-spaced points where `--loss-at head`
    # samples the label. It starts from the bundled 66-class model (`--init`: every layer but the class
    # logits), whose features already tell markings from the road, instead of from random weights.
    "lanes": {
        "data": "synth", "arch": "lraspp_plus_mobilenet_v3_large", "steps": 12000, "time_limit": 14,
        "batch_size": 8, "size": "512x384", "crop": "256x256", "lr": 2e-3, "log_every": 10, "eval_every": 400,
        "checkpoint_every": 200, "workers": 1, "eval_limit": 32, "scale_range": "0.75,1.5",
        "class_weights": "sqrt-inv", "synth_pool": 1200, "loss_at": "full", "logit_adjust": 0.5,
        "bn_recalibrate": 50, "bias_fit": 192, "classes": "lanes",
        "init": str(REPO_ROOT / "checkpoints" / "demo" / "model.pt"),
    },
}


# --bias-fit's held-out synthetic frames: the validation frames of dataset seed --seed + this, i.e. what
# `python -m seg.synth --seed 1234 --val N` writes with the default --seed 0. Disjoint from every training
# frame (training seeds are even, validation seeds odd) and from the bundled validation set (seed 7).
HELDOUT_SEED_OFFSET = 1234


# Image/label pairs opened per split by the start-up check without --check-all (pairing is checked for all).
CHECK_FILES = 200


def workers_arg(text: str) -> int | str:
    """argparse `type=` for --workers: a count, or 'auto'."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or 'auto', got {text!r}") from None


class NonFiniteLoss(RuntimeError):
    pass


def get_dataset(args, train: bool, crop_hw: tuple[int, int], size_hw: tuple[int, int]):
    """Training set (a VistasDataset or the endless SynthStream) or the validation set."""
    if train:
        tf = (get_transform(False, crop_hw) if args.no_augment
              else get_transform(True, crop_hw, base_size=min(size_hw), scale_range=args.scale_range))
        if args.data == "synth" and args.synth_pool:
            return SynthPool(args.synth_pool, size=(size_hw[1], size_hw[0]), seed=args.seed, transforms=tf)
        if args.data == "synth":
            return SynthStream(size=(size_hw[1], size_hw[0]), seed=args.seed + args._resume_step, transforms=tf)
        return VistasDataset(args.data, "training", transforms=tf)
    val_root = args.val_data or (DEFAULT_DATA if args.data == "synth" else args.data)
    return VistasDataset(val_root, "validation", transforms=get_transform(False, size_hw))


def heldout_frames(args, size_hw: tuple[int, int], num_classes: int):
    """The frames --bias-fit calibrates on: (count, lazy (image, label) pairs at the model size), so only
    the frame being scored is ever expanded to float."""
    tf = get_transform(False, size_hw)
    if args.bias_fit_data:
        ds = VistasDataset(args.bias_fit_data, "validation", transforms=tf)
        table = remap_dataset(ds, args.classes) if args.classes else ds.classes
        if table.num_classes != num_classes:
            raise DataError(f"{args.bias_fit_data}: {table.num_classes} classes, the model has {num_classes}")
    else:
        ds = SynthPool(args.bias_fit, size=(size_hw[1], size_hw[0]), seed=args.seed + HELDOUT_SEED_OFFSET,
                       transforms=tf, split="validation")
        if args.classes:
            remap_dataset(ds, args.classes, VISTAS)
    n = min(args.bias_fit, len(ds))
    return n, (ds[i] for i in range(n))


def criterion(logits: torch.Tensor, target: torch.Tensor, ignore_index: int,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-wise cross-entropy; logits (B, C, h, w), target (B, H, W) int64, weight (C,) or None.

    Logits smaller than the target (`--loss-at head`) are scored against the target sampled at each logit
    cell's centre (nearest-exact), the pixel the bilinear upsample would place that logit on.
    """
    if logits.shape[-2:] != target.shape[-2:]:
        target = nn.functional.interpolate(target[:, None].float(), size=logits.shape[-2:],
                                           mode="nearest-exact")[:, 0].long()
    return nn.functional.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)


@torch.inference_mode()
def evaluate(model, dataset, device, num_classes: int, ignore_index: int, limit: int | None = None) -> dict:
    """Confusion matrix over the validation set, sharded across ranks without padding and summed.

    Leaves the model in eval mode; the caller restores training mode.
    """
    model.eval()
    cm = ConfusionMatrix(num_classes, ignore_index)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(D.rank(), n, D.world_size()):
        image, target = dataset[i]
        x = image.unsqueeze(0).to(device)
        logits = model(x)
        cm.update(target, logits.argmax(1).cpu())
    cm.reduce_from_all_processes()
    return cm.compute()


def set_train_mode(model: nn.Module, freeze_bn: bool) -> None:
    """Training mode; with `freeze_bn`, batch-norm layers keep using (and stop updating) running stats.

    Frozen BN makes every sample's gradient independent of the batch it sits in, which is what small
    per-GPU batches want when fine-tuning, and what makes K processes x B equal 1 process x K*B exactly.
    """
    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def poly_lambda(total_steps: int, warmup: int = 0, power: float = 0.9):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, 1 - step / max(1, total_steps)) ** power
    return f


def infinite(loader, sampler):
    """Endless batches; reshuffles a finite dataset each pass (DistributedSampler.set_epoch)."""
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines past `step` (written after the checkpoint we resume from) and any half-written line."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("step", 0) <= step and "end" not in row:  # a resumed run is not over
            keep.append(line)
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(l + "\n" for l in keep))
    os.replace(tmp, path)


class MetricsLog:
    """Appends one JSON object per line, flushed and fsynced, so a kill loses at most the line in flight."""

    def __init__(self, path: Path):
        self.f = open(path, "a")

    def write(self, row: dict) -> None:
        self.f.write(json.dumps(row) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


class Trainer:
    """One training run: a step (`train_step`), the cadence around it (`log_speed`, `validate`, `save`, the
    time budget), the end-of-run calibration (`calibrate`), and `run`, the loop that ties them together, as
    torchvision's reference scripts split `train_one_epoch` / `evaluate` / `main`."""

    def __init__(self, args, model, model_without_ddp, optimizer, scheduler, scaler, loader_iter, val_set, device,
                 classes, size_hw, start_step: int, elapsed0: float, best_miou, weight=None):
        self.args, self.model, self.net = args, model, model_without_ddp
        self.optimizer, self.scheduler, self.scaler = optimizer, scheduler, scaler
        self.batches, self.val_set, self.device = loader_iter, val_set, device
        self.classes, self.size_hw, self.weight = classes, size_hw, weight
        self.start_step = self.step = start_step
        self.best_miou = best_miou
        self.main = D.is_main_process()
        self.out = Path(args.out)
        self.ignore = classes.ignore_index if classes.ignore_index is not None else -100
        self.last_eval = (None, None)  # (step, mIoU) of the latest evaluation
        self.raw_bias = None  # output bias before the end-of-run calibration, so --resume goes on from raw weights
        self.updating = False  # True between the first weight update of a step and `step += 1`
        self.speed = None  # the latest throughput row, echoed on the validation lines
        self.signal = None  # name of the signal that asked the run to stop
        self.log = None
        self.bar = None
        self.elapsed0, self.t_start = elapsed0, time.perf_counter()
        self._reset_window()

    def _reset_window(self) -> None:
        self.loss_sum, self.n_loss, self.skipped, self.t_log = 0.0, 0, 0, time.perf_counter()

    def elapsed(self) -> float:
        """Wall time across resumes."""
        return self.elapsed0 + time.perf_counter() - self.t_start

    def evaluate(self) -> dict:
        return evaluate(self.net, self.val_set, self.device, self.classes.num_classes, self.classes.ignore_index,
                        self.args.eval_limit)

    def save(self, best: bool = False) -> None:
        """last.pt (full state), model.pt (slim) and, with `best`, best.pt, all at the current step."""
        if not self.main:
            return
        args = self.args
        ckpt = make_checkpoint(
            self.net, args.arch, self.classes, self.size_hw, self.step,
            optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict() if self.scaler is not None else None,
            args={k: v for k, v in vars(args).items() if not k.startswith("_")},
            best_miou=self.best_miou, elapsed=self.elapsed(),
            val_miou=self.last_eval[1] if self.last_eval[0] == self.step else None,  # of exactly these weights
            unadjusted_bias=self.raw_bias, classmap=args.classes,
        )
        save_checkpoint(self.out / "last.pt", ckpt)
        save_checkpoint(self.out / "model.pt", slim(ckpt))
        if best:
            save_checkpoint(self.out / "best.pt", slim(ckpt))

    def train_step(self) -> None:
        """One step on the next batch: forward, backward and an optimizer step, or a skipped step for a
        non-finite loss under --nan-policy skip (raises NonFiniteLoss under stop). The schedule follows the
        optimizer's real steps: GradScaler skips the optimizer step when the scaled gradients overflowed (the
        first steps, while its scale calibrates) and then lowers the scale, and so does the scheduler."""
        args, device = self.args, self.device
        image, target = next(self.batches)
        image = image.to(device, non_blocking=True)
        target = target.to(device, non_blocking=True)
        if args.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, enabled=args.amp):
            loss = criterion(self.model(image, full_size=args.loss_at == "full"), target, self.ignore, self.weight)
        bad = D.all_reduce_sum(torch.tensor([0.0 if torch.isfinite(loss) else 1.0], device=device))
        stepped = True
        self.optimizer.zero_grad(set_to_none=True)
        if bad.item() > 0:
            if args.nan_policy == "stop":
                raise NonFiniteLoss(f"loss is {loss.item()} at step {self.step + 1}")
            self.skipped += 1
        else:
            self.updating = True  # from here until `step += 1` the weights are neither step nor step + 1
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                scale = self.scaler.get_scale()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                stepped = self.scaler.get_scale() >= scale
            else:
                loss.backward()
                self.optimizer.step()
            self.loss_sum += loss.item()
            self.n_loss += 1
        if stepped:
            self.scheduler.step()
        self.step += 1
        self.updating = False

    def follow_time_budget(self) -> bool:
        """--time-limit: the poly decay follows whichever is further along, steps or time, so a budget-limited
        run still anneals to zero. Ranks agree on the clock. Returns whether the budget is spent."""
        frac = D.all_reduce_sum(torch.tensor([self.elapsed() / (self.args.time_limit * 60)], device=self.device))
        frac = float(frac) / D.world_size()
        progress = max(self.step / self.args.steps, frac)
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * max(0.0, 1 - progress) ** 0.9
        return frac >= 1.0

    def log_speed(self) -> None:
        """Mean loss, lr and images/s (and peak GPU memory) since the last row, to the log and progress bar."""
        args = self.args
        mean = D.all_reduce_sum(torch.tensor([self.loss_sum, self.n_loss], device=self.device, dtype=torch.float64))
        dt = time.perf_counter() - self.t_log
        row = {
            "step": self.step, "loss": float(mean[0] / max(mean[1], 1)), "lr": self.optimizer.param_groups[0]["lr"],
            "img_per_s": round(args.batch_size * D.world_size() * (self.n_loss + self.skipped) / dt, 3),
            "time": round(self.elapsed(), 3),
        }
        if self.skipped:
            row["skipped"] = self.skipped
        if self.device.type == "cuda":  # peak since the start, what sizing a batch to the card needs
            row["gpu_mem_gb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**30, 3)
        if self.main:
            self.log.write(row)
            self.bar.set_postfix(loss=f"{row['loss']:.4f}", img_s=f"{row['img_per_s']:.0f}",
                                 **({"gpu_gb": f"{row['gpu_mem_gb']:.1f}"} if "gpu_mem_gb" in row else {}))
            self.speed = row
        self._reset_window()

    def calibrate(self) -> None:
        """End of run: BN statistics re-estimated (--bn-recalibrate), logit adjustment (--logit-adjust) and the
        held-out bias fit (--bias-fit), each logged with the validation mIoU before it."""
        args, net = self.args, self.net
        if args.bn_recalibrate:
            recalibrate_bn(net, (next(self.batches) for _ in range(args.bn_recalibrate)), self.device,
                           args.channels_last)
        adjust = args.logit_adjust and self.weight is not None
        if adjust or args.bias_fit:
            self.raw_bias = output_conv(net).bias.tolist()
        if adjust:
            before = self.evaluate()
            if self.main:
                self.log.write({"step": self.step, "logit_adjust": args.logit_adjust, "val_miou_before": before["miou"]})
            add_logit_bias(net, logit_adjustment(self.weight, args.logit_adjust))
        if args.bias_fit:
            before = self.evaluate()
            n_frames, frames = heldout_frames(args, self.size_hw, self.classes.num_classes)
            scores, labels = heldout_scores(net, frames, self.device, every=32, seed=args.seed)
            delta, held_before, held_after = fit_logit_bias(scores, labels, self.classes.ignore_index)
            # Every rank fits the same frames; rank 0's offsets are the ones all ranks apply.
            delta = D.all_reduce_sum(delta.to(self.device) if self.main else torch.zeros_like(delta, device=self.device))
            add_logit_bias(net, delta.cpu())
            if self.main:
                self.log.write({"step": self.step, "bias_fit": n_frames, "heldout_miou_before": held_before,
                                "heldout_miou_after": held_after, "val_miou_before": before["miou"]})

    def validate(self) -> None:
        """Validation mIoU to the log and the console; a new best is saved as best.pt."""
        m = self.evaluate()
        self.last_eval = (self.step, m["miou"])
        if self.main:
            self.log.write({"step": self.step, "val_miou": m["miou"], "val_pixel_acc": m["pixel_acc"]})
            speed = self.speed
            mem = f", GPU memory {speed['gpu_mem_gb']:.1f} GB" if speed and "gpu_mem_gb" in speed else ""
            self.bar.write(f"step {self.step}: val mIoU {m['miou']:.4f}, pixel acc {m['pixel_acc']:.4f}"
                           + (f"; {speed['img_per_s']:.0f} img/s{mem}" if speed else ""))
        if self.best_miou is None or m["miou"] > self.best_miou:
            self.best_miou = m["miou"]
            self.save(best=True)
        set_train_mode(self.model, self.args.freeze_bn)
        self.t_log = time.perf_counter()  # evaluation time is not training throughput

    def signalled(self) -> bool:
        """Whether any rank got SIGTERM / SIGINT."""
        return D.all_reduce_sum(torch.tensor([1.0 if self.signal else 0.0], device=self.device)).item() > 0

    def run(self) -> int:
        """The step loop. Returns the process exit code (0 done or interrupted cleanly, 1 stopped on NaN)."""
        args, main = self.args, self.main

        def on_signal(signum, frame):
            self.signal = signal.Signals(signum).name

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        self.log = MetricsLog(self.out / "metrics.jsonl") if main else None
        self.bar = tqdm(total=args.steps, initial=self.start_step, disable=not (main and sys.stderr.isatty()),
                        unit="step")
        code, last = 0, False
        end = "error"  # the log's end record; stays "error" if an unexpected exception escapes the loop
        set_train_mode(self.model, args.freeze_bn)
        try:
            while self.step < args.steps:
                self.train_step()
                self.bar.update(1)
                last = self.step == args.steps
                if args.time_limit:
                    last = self.follow_time_budget() or last
                if self.step % args.log_every == 0 or last:
                    self.log_speed()
                if last:
                    self.calibrate()
                if self.step % args.eval_every == 0 or last:
                    self.validate()
                if self.step % args.checkpoint_every == 0 or last:
                    self.save()
                if last:
                    break
                if self.signalled():
                    self.save()
                    if main:
                        print(f"{self.signal or 'signal'}: checkpoint saved at step {self.step} in "
                              f"{self.out / 'last.pt'}; rerun the same command with --resume to continue",
                              file=sys.stderr)
                    break
            end = "interrupted" if self.signal and not last else "done"
        except NonFiniteLoss as e:
            if main:
                print(f"error: {e}; stopped without saving, {self.out / 'last.pt'} keeps the last good state "
                      f"(--nan-policy skip skips such steps instead)", file=sys.stderr)
            code, end = 1, "nan"
        except Exception as e:
            # Whatever broke (a file the pre-check could not see, an evaluation, the end-of-run calibration),
            # the steps trained so far are kept: save them first, then let the error reach the user.
            if main and self.step > self.start_step and not self.updating and not isinstance(e, CheckpointError):
                try:
                    self.save()
                    print(f"checkpoint saved at step {self.step} in {self.out / 'last.pt'} before stopping; "
                          "fix the problem below and rerun with --resume", file=sys.stderr)
                except CheckpointError as save_error:
                    print(f"error: {save_error}", file=sys.stderr)
            raise
        finally:
            self.bar.close()
            if self.log:
                self.log.write({"step": self.step, "end": end})  # readers tell a finished run from one that died
                self.log.close()
            for s, h in old.items():
                signal.signal(s, h)
        return code


def init_from(model: nn.Module, path: str, arch: str, num_classes: int) -> str | None:
    """Load the weights of checkpoint `path` into a fresh `model` (--init: fine-tune, e.g. the bundled model
    on real Vistas). The checkpoint's end-of-run calibration (logit adjustment, bias fit) is undone so
    training starts from its raw weights; the optimizer, schedule and step count start afresh.

    With another class count (the 66-class model as the start of the 2-class lanes model) every tensor whose
    shape fits is loaded and the class-logit layers keep their fresh initialisation; returns a line saying
    which, else None. Another architecture is an error."""
    ckpt = load_checkpoint(path)
    theirs = ckpt["model_args"]
    if theirs["arch"] != arch:
        raise CheckpointError(f"{path}: --init needs a {arch}, this is a {theirs['arch']} "
                              f"with {theirs['num_classes']} classes")
    weights = {k: v.float() for k, v in ckpt["model"].items()}
    if theirs["num_classes"] == num_classes:
        model.load_state_dict(weights)
        if ckpt.get("unadjusted_bias") is not None:
            with torch.no_grad():
                output_conv(model).bias.copy_(torch.tensor(ckpt["unadjusted_bias"]))
        return None
    own = model.state_dict()
    fresh = sorted(k for k in own if k not in weights or weights[k].shape != own[k].shape)
    unknown = sorted(k for k in weights if k not in own)
    if unknown or len(fresh) > 6:  # only the class-logit convs (weight + bias, two of them in LR-ASPP) differ
        raise CheckpointError(f"{path}: --init cannot use its weights for this model "
                              f"({len(fresh)} tensors differ in shape, {len(unknown)} unknown)")
    model.load_state_dict({k: v for k, v in weights.items() if k not in fresh}, strict=False)
    return (f"--init {path}: {theirs['num_classes']} classes -> {num_classes}; "
            f"{len(fresh)} class-logit tensors start fresh ({', '.join(fresh)})")


def check_splits(args) -> None:
    """Check every split the run will read before step 1; raises DataError naming the first bad files.

    Training, validation (the frames evaluation will score) and --bias-fit-data are checked alike, so a
    bad file ends the run now, not at the first evaluation hours later.
    """
    n = None if args.check_all else CHECK_FILES
    val_n = min(args.eval_limit, n or args.eval_limit) if args.eval_limit else n  # evaluation reads no more
    val_root = args.val_data or (DEFAULT_DATA if args.data == "synth" else args.data)
    checks = [(val_root, "validation", val_n, "")]
    if args.data != "synth":
        checks.insert(0, (args.data, "training", n, ""))
    if args.bias_fit and args.bias_fit_data:  # held-out frames read only after the last step
        checks.append((args.bias_fit_data, "validation", args.bias_fit, "--bias-fit-data: "))
    for root, split, limit, flag in checks:
        problems = check_split(root, split, max_files=limit)
        if problems:
            raise DataError(f"{flag}{len(problems)} problem(s) in {root}/{split}, first: " + " | ".join(problems[:3]))


def datasets(args, crop_hw: tuple[int, int], size_hw: tuple[int, int]):
    """(training set, validation set, class table), the class table folded by --classes when given."""
    check_splits(args)
    val_set = get_dataset(args, False, crop_hw, size_hw)
    if args.classes:  # before the training set, so a table the mapping cannot use stops the run at once
        remap_dataset(val_set, args.classes)
    train_set = get_dataset(args, True, crop_hw, size_hw)
    classes = val_set.classes if args.data == "synth" else train_set.classes
    if args.classes:  # the synthetic world renders Vistas ids
        classes = remap_dataset(train_set, args.classes, getattr(train_set, "classes", VISTAS))
    return train_set, val_set, classes


def build(args, classes, device, world: int, fresh: bool):
    """(model, model_without_ddp, optimizer, scheduler, scaler); a `fresh` run starts from --init's weights."""
    model = create_model(args.arch, classes.num_classes, args.backbone_weights)
    if args.init and fresh:
        note = init_from(model, args.init, args.arch, classes.num_classes)
        if note and D.is_main_process():
            print(note, file=sys.stderr)
    if args.sync_bn and world > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    if args.opt == "sgd":
        optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    else:
        optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_lambda(args.steps, args.warmup))
    scaler = torch.amp.GradScaler("cuda") if args.amp else None
    model_without_ddp = model
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model, model_without_ddp, optimizer, scheduler, scaler


def restore(resume: dict, path: Path, arch: str, model, optimizer, scheduler, scaler):
    """Load a last.pt into the run's objects; returns (start step, elapsed seconds, best mIoU)."""
    if resume["model_args"]["arch"] != arch:
        raise CheckpointError(f"{path}: was trained as {resume['model_args']['arch']}, not {arch}")
    model.load_state_dict(resume["model"])
    if resume.get("unadjusted_bias") is not None:  # a finished, logit-adjusted run: undo it exactly
        with torch.no_grad():
            output_conv(model).bias.copy_(torch.tensor(resume["unadjusted_bias"]))
    optimizer.load_state_dict(resume["optimizer"])
    scheduler.load_state_dict(resume["scheduler"])
    if scaler is not None and resume.get("scaler"):
        scaler.load_state_dict(resume["scaler"])
    return resume["step"], resume.get("elapsed", 0.0), resume.get("best_miou")


def make_loader(args, train_set, device, rank: int, world: int):
    """(DataLoader, its DistributedSampler or None): each process a disjoint shard of a finite set."""
    sampler = None
    if isinstance(train_set, (VistasDataset, SynthPool)):
        sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=args.seed, drop_last=True)
        if len(sampler) < args.batch_size:  # drop_last would leave no batch at all, and the loop would spin
            where = "--synth-pool" if isinstance(train_set, SynthPool) else f"{args.data}/training"
            raise DataError(f"{where}: {len(train_set)} frames give {len(sampler)} per process, fewer than "
                            f"--batch-size {args.batch_size}")
    loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler, num_workers=args.workers,
                        pin_memory=device.type == "cuda", drop_last=True, persistent_workers=args.workers > 0)
    return loader, sampler


def main(args) -> int:
    device, rank, world = D.init_distributed(args.device)
    crop_hw, size_hw = parse_size(args.crop or args.size)[::-1], parse_size(args.size)[::-1]
    out = Path(args.out)
    torch.manual_seed(args.seed)
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)

    resume = None
    args._resume_step = 0
    if args.resume and (out / "last.pt").exists():
        resume = load_checkpoint(out / "last.pt")
        args._resume_step = resume["step"]
    train_set, val_set, classes = datasets(args, crop_hw, size_hw)
    model, model_without_ddp, optimizer, scheduler, scaler = build(args, classes, device, world, resume is None)
    start_step, elapsed0, best_miou = 0, 0.0, None
    if resume is not None:
        start_step, elapsed0, best_miou = restore(resume, out / "last.pt", args.arch, model_without_ddp,
                                                  optimizer, scheduler, scaler)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if resume is not None:
            truncate_log(out / "metrics.jsonl", start_step)
        elif (out / "metrics.jsonl").exists():
            (out / "metrics.jsonl").unlink()  # a fresh run starts a fresh log
        print(f"{args.arch} on {device}, {world} process(es) x batch {args.batch_size} = effective batch "
              f"{args.batch_size * world}; lr {args.lr:g}{' (scaled linearly by world size)' if args.scale_lr and world > 1 else ''}; "
              f"crop {crop_hw[1]}x{crop_hw[0]}, steps {start_step}->{args.steps}", file=sys.stderr)
    loader, sampler = make_loader(args, train_set, device, rank, world)
    weight = None
    if args.class_weights == "sqrt-inv":
        weight = class_weights(train_set, classes.num_classes, classes.ignore_index, args.weight_samples, device)
    return Trainer(args, model, model_without_ddp, optimizer, scheduler, scaler, infinite(loader, sampler), val_set,
                   device, classes, size_hw, start_step, elapsed0, best_miou, weight).run()


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train a segmentation model on Vistas-layout data or the synthetic world",
                                add_help=add_help)
    p.add_argument("--data", help="Vistas-layout folder (training/ and validation/), or 'synth' to stream the synthetic world")
    p.add_argument("--val-data", default=None, help="validation folder (default: --data, or the bundled set for synth)")
    p.add_argument("--out", required=True, help="run folder for metrics.jsonl and checkpoints")
    p.add_argument("--arch", default=None, help=f"model name, one of: {', '.join(list_models())}")
    p.add_argument("--backbone-weights", default=None, help="local ImageNet weights file for the backbone")
    p.add_argument("--steps", type=int, default=None, help="total optimizer steps")
    p.add_argument("--batch-size", type=int, default=None, help="images per step per process")
    p.add_argument("--size", default=None, help="model input size WxH (default 512x384)")
    p.add_argument("--crop", default=None, help="training crop WxH (default: --size)")
    p.add_argument("--scale-range", default=None, help="random rescale range LO,HI of the frame's short side (default 0.5,2.0)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (poly decay)")
    p.add_argument("--scale-lr", action="store_true", help="multiply --lr by the world size (linear scaling rule)")
    p.add_argument("--opt", choices=("adamw", "sgd"), default="adamw", help="optimizer")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay")
    p.add_argument("--class-weights", choices=("none", "sqrt-inv"), default=None,
                   help="loss weights per class: none, or 1/sqrt(pixel frequency) measured on training samples")
    p.add_argument("--loss-at", choices=("full", "head"), default=None,
                   help="score the loss on logits upsampled to the crop (full) or at the head's own 1/4-1/16 "
                        "resolution against the label sampled there (head: about half the CPU step time)")
    p.add_argument("--synth-pool", type=int, default=None, metavar="N",
                   help="with --data synth: render N frames once and reuse them with fresh augmentation, instead "
                        "of rendering every training frame (faster on a small CPU); 0 = stream")
    p.add_argument("--logit-adjust", type=float, default=None, metavar="ALPHA",
                   help="after the last step, add -ALPHA*log(class weight) to the logits (folded into the output "
                        "bias) to undo the over-prediction of rare classes that --class-weights causes; "
                        "0 = off, no effect without --class-weights")
    p.add_argument("--bias-fit", type=int, default=None, metavar="N",
                   help="after the last step, fit a per-class logit offset (folded into the output bias) that "
                        "maximises mIoU on N held-out frames: synthetic frames outside training and the bundled "
                        "validation set with --data synth, else the first N of --bias-fit-data; 0 = off")
    p.add_argument("--bias-fit-data", default=None, metavar="DIR",
                   help="Vistas-layout folder whose validation/ split holds the held-out frames for --bias-fit "
                        "(frames kept out of both training and the validation you report)")
    p.add_argument("--weight-samples", type=int, default=64, help="training items sampled for --class-weights")
    p.add_argument("--warmup", type=int, default=0, help="linear warm-up steps")
    p.add_argument("--time-limit", type=float, default=None,
                   help="stop after this many minutes of training (wall time across resumes); LR decays to zero by then")
    p.add_argument("--log-every", type=int, default=None, help="steps between metrics.jsonl lines")
    p.add_argument("--eval-every", type=int, default=None, help="steps between validations")
    p.add_argument("--eval-limit", type=int, default=None, help="validate on the first N frames only")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from RUNDIR/last.pt")
    p.add_argument("--init", default=None, metavar="CKPT",
                   help="start from this checkpoint's weights (same arch; with another class count all but the "
                        "class-logit layers; ignored on --resume; 'none' turns a preset's off)")
    p.add_argument("--classes", choices=list_mappings(), default=None,
                   help="fold the dataset's classes by name into a named mapping: lanes = lane markings vs. the "
                        "rest (Unlabeled stays ignored); the checkpoint keeps the mapped class table")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help="defaults for a known recipe")
    p.add_argument("--workers", type=workers_arg, default=None,
                   help="data-loading worker processes, or 'auto' (all cores but two, split between local processes)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", type=device_arg, default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None, help="mixed precision (default: on CUDA)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True, help="channels_last memory format")
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across processes (CUDA)")
    p.add_argument("--bn-recalibrate", type=int, default=None,
                   help="at the end, re-estimate batch-norm statistics over N training batches (0: off)")
    p.add_argument("--freeze-bn", action="store_true", help="keep batch-norm statistics fixed (fine-tuning, tiny per-GPU batches)")
    p.add_argument("--no-augment", action="store_true", help="no random scale/crop/flip/jitter (debugging, exact comparisons)")
    p.add_argument("--nan-policy", choices=("stop", "skip"), default="stop", help="on a NaN/inf loss: stop, or skip the step")
    p.add_argument("--check-all", action="store_true", help="check every training file before starting (default: first 200)")
    return p


DEFAULTS = {"data": None, "arch": DEFAULT_ARCH, "steps": 20000, "batch_size": 8, "size": "512x384", "crop": None,
            "lr": 1e-3, "log_every": 20, "eval_every": 1000, "checkpoint_every": 500, "workers": 4, "eval_limit": None,
            "scale_range": "0.5,2.0", "time_limit": None,
            "class_weights": "none", "bn_recalibrate": 0, "logit_adjust": 0.0, "bias_fit": 0,
            "synth_pool": 0, "loss_at": "full", "classes": None, "init": None}


def resolve_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Fill unset flags from the preset, then the defaults; reject incompatible combinations."""
    preset = PRESETS.get(args.preset, {})
    for k, v in DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, preset.get(k, v))
    if args.data is None:
        parser.error("--data is required (a Vistas-layout folder, or 'synth')")
    if args.data != "synth" and not Path(args.data).is_dir():
        parser.error(f"--data {args.data}: no such folder")
    try:
        device = resolve_device(args.device)
    except ValueError as e:
        parser.error(str(e))
    if args.preset == "gpu" and device.type != "cuda":
        parser.error("--preset gpu needs a CUDA device (none here, or --device cpu); use --preset demo on the CPU")
    if args.workers == "auto":
        local = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        args.workers = max(1, ((os.cpu_count() or 2) - 2) // local)
    if args.amp is None:
        args.amp = device.type == "cuda"
    if args.amp and not torch.cuda.is_available():
        parser.error("--amp needs CUDA")
    for k in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every"):
        if getattr(args, k) < 1:
            parser.error(f"--{k.replace('_', '-')} must be at least 1")
    if args.workers < 0:
        parser.error("--workers must be >= 0")
    if args.synth_pool < 0:
        parser.error("--synth-pool must be >= 0")
    if args.logit_adjust < 0:
        parser.error("--logit-adjust must be >= 0")
    if args.bias_fit < 0:
        parser.error("--bias-fit must be >= 0")
    if args.bias_fit and args.data != "synth" and not args.bias_fit_data:
        parser.error("--bias-fit needs --bias-fit-data DIR (held-out frames) unless --data synth")
    if args.init and args.init.lower() == "none":
        args.init = None
    if args.init and not Path(args.init).is_file():
        parser.error(f"--init {args.init}: no such file")
    if args.bias_fit_data and not Path(args.bias_fit_data).is_dir():
        parser.error(f"--bias-fit-data {args.bias_fit_data}: no such folder")
    for k in ("size", "crop"):
        if getattr(args, k) is not None:
            try:
                parse_size(getattr(args, k))
            except ValueError as e:
                parser.error(f"--{k}: {e}")
    try:
        lo, hi = (float(v) for v in str(args.scale_range).split(","))
        if not 0 < lo <= hi:
            raise ValueError
        args.scale_range = (lo, hi)
    except ValueError:
        parser.error(f"--scale-range must be LO,HI with 0 < LO <= HI, got {args.scale_range!r}")
    if args.scale_lr:
        args.lr *= int(os.environ.get("WORLD_SIZE", 1))
    return args


def cli(argv=None) -> int:
    parser = get_args_parser()
    args = resolve_args(parser.parse_args(argv), parser)
    # One process trains in a run folder at a time; rank 0 holds the lock for the whole run (torchrun
    # stops the other ranks when rank 0 exits on a refusal).
    lock = RunLock(args.out) if int(os.environ.get("RANK", 0)) == 0 else None
    try:
        if lock is not None:
            lock.acquire()
        return main(args)
    except (DataError, CheckpointError, ValueError, RunLockError) as e:
        lines = [l for l in str(e).splitlines() if l.strip()]
        # A DataLoader worker's error arrives wrapped ("Caught X in DataLoader worker ... Original Traceback");
        # its last line is the original message, which names the file.
        msg = lines[-1] if "Original Traceback" in str(e) else (lines[0] if lines else e.__class__.__name__)
        print(f"error: {msg}", file=sys.stderr)
        return 1
    finally:
        if lock is not None:
            lock.release()
        D.cleanup()
