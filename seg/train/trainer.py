"""The step loop: one training step, the cadence around it (log, validate, save, the time budget), the
end-of-run calibration, and what a signal or a failure does to the run."""
from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from seg.checkpoint import CheckpointError, make_checkpoint, save_checkpoint, slim
from seg.classes import ClassTable
from seg.model import add_logit_bias, output_conv
from seg.train import distributed as D
from seg.train.calibrate import fit_logit_bias, heldout_scores, logit_adjustment, recalibrate_bn
from seg.train.config import TrainConfig
from seg.train.engine import criterion, evaluate, poly_decay, set_train_mode
from seg.train.runfiles import MetricsLog
from seg.train.runlog import METRICS_FILE
from seg.train.setup import Parts, Start, heldout_frames


class NonFiniteLoss(RuntimeError):
    """A NaN/inf loss under --nan-policy stop."""


@dataclass
class TrainData:
    """What a run trains and validates on: `batches` yields (image (B, 3, H, W), target (B, H, W)) without
    end; `val_set[i]` is one (image, target) pair; `weight` the loss's class weights (C,) or None."""

    batches: Iterator
    val_set: object
    classes: ClassTable
    weight: torch.Tensor | None = None


class Trainer:
    """One training run: a step (`train_step`), the cadence around it (`log_speed`, `validate`, `save`, the
    time budget), the end-of-run calibration (`calibrate`), and `run`, the loop that ties them together, as
    torchvision's reference scripts split `train_one_epoch` / `evaluate` / `main`."""

    def __init__(self, cfg: TrainConfig, parts: Parts, data: TrainData, start: Start | None = None):
        start = start or Start()
        self.cfg, self.parts, self.data = cfg, parts, data
        self.model, self.net, self.device = parts.model, parts.net, parts.device
        self.start_step = self.step = start.step
        self.best_miou = start.best_miou
        self.main = D.is_main_process()
        self.out = Path(cfg.out)
        self.ignore = data.classes.ignore_index if data.classes.ignore_index is not None else -100
        self.last_eval = (None, None)  # (step, mIoU) of the latest evaluation
        self.raw_bias = None  # output bias before the end-of-run calibration, so --resume goes on from raw weights
        self.updating = False  # True between the first weight update of a step and `step += 1`
        self.speed = None  # the latest throughput row, echoed on the validation lines
        self.signal = None  # name of the signal that asked the run to stop
        self.log = None
        self.bar = None
        self.elapsed0, self.t_start = start.elapsed, time.perf_counter()
        self._reset_window()

    def _reset_window(self) -> None:
        self.loss_sum, self.n_loss, self.skipped, self.t_log = 0.0, 0, 0, time.perf_counter()

    def elapsed(self) -> float:
        """Wall time across resumes."""
        return self.elapsed0 + time.perf_counter() - self.t_start

    def evaluate(self) -> dict:
        """The validation metrics (ConfusionMatrix.compute()) of the current weights."""
        classes = self.data.classes
        return evaluate(self.net, self.data.val_set, self.device, classes.num_classes, classes.ignore_index,
                        self.cfg.eval_limit)

    def save(self, best: bool = False) -> None:
        """last.pt (full state), model.pt (slim) and, with `best`, best.pt, all at the current step."""
        if not self.main:
            return
        parts = self.parts
        ckpt = make_checkpoint(
            self.net, self.cfg.arch, self.data.classes, self.cfg.size_hw, self.step,
            optimizer=parts.optimizer.state_dict(), scheduler=parts.scheduler.state_dict(),
            scaler=parts.scaler.state_dict() if parts.scaler is not None else None,
            args=self.cfg.as_dict(), best_miou=self.best_miou, elapsed=self.elapsed(),
            val_miou=self.last_eval[1] if self.last_eval[0] == self.step else None,  # of exactly these weights
            unadjusted_bias=self.raw_bias, classmap=self.cfg.classes,
        )
        save_checkpoint(self.out / "last.pt", ckpt)
        save_checkpoint(self.out / "model.pt", slim(ckpt))
        if best:
            save_checkpoint(self.out / "best.pt", slim(ckpt))

    def train_step(self) -> None:
        """One step on the next batch: forward, backward and an optimizer step, or a skipped step for a
        non-finite loss under --nan-policy skip (raises NonFiniteLoss under stop). The schedule follows the
        optimizer's real steps (see `_update`)."""
        cfg, device = self.cfg, self.device
        image, target = next(self.data.batches)
        image = image.to(device, non_blocking=True)
        target = target.to(device, non_blocking=True)
        if cfg.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, enabled=cfg.amp):
            logits = self.model(image, full_size=cfg.loss_at == "full")
            loss = criterion(logits, target, self.ignore, self.data.weight)
        bad = D.all_reduce_sum(torch.tensor([0.0 if torch.isfinite(loss) else 1.0], device=device))
        stepped = True
        self.parts.optimizer.zero_grad(set_to_none=True)
        if bad.item() > 0:
            if cfg.nan_policy == "stop":
                raise NonFiniteLoss(f"loss is {loss.item()} at step {self.step + 1}")
            self.skipped += 1
        else:
            self.updating = True  # from here until `step += 1` the weights are neither step nor step + 1
            stepped = self._update(loss)
            self.loss_sum += loss.item()
            self.n_loss += 1
        if stepped:
            self.parts.scheduler.step()
        self.step += 1
        self.updating = False

    def _update(self, loss: torch.Tensor) -> bool:
        """Backward and optimizer step; returns whether the optimizer really stepped. GradScaler skips the
        step when the scaled gradients overflowed (the first steps, while its scale calibrates) and then lowers
        the scale; the caller then holds the schedule back too."""
        scaler, optimizer = self.parts.scaler, self.parts.optimizer
        if scaler is None:
            loss.backward()
            optimizer.step()
            return True
        scaler.scale(loss).backward()
        scale = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        return scaler.get_scale() >= scale

    def follow_time_budget(self) -> bool:
        """--time-limit: the poly decay follows whichever is further along, steps or time, so a budget-limited
        run still anneals to zero. Ranks agree on the clock. Returns whether the budget is spent."""
        frac = D.all_reduce_sum(torch.tensor([self.elapsed() / (self.cfg.time_limit * 60)], device=self.device))
        frac = float(frac) / D.world_size()
        progress = max(self.step / self.cfg.steps, frac)
        for g in self.parts.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * poly_decay(progress)
        return frac >= 1.0

    def log_speed(self) -> None:
        """Mean loss, lr and images/s (and peak GPU memory) since the last row, to the log and progress bar."""
        mean = D.all_reduce_sum(torch.tensor([self.loss_sum, self.n_loss], device=self.device, dtype=torch.float64))
        dt = time.perf_counter() - self.t_log
        row = {
            "step": self.step, "loss": float(mean[0] / max(mean[1], 1)),
            "lr": self.parts.optimizer.param_groups[0]["lr"],
            "img_per_s": round(self.cfg.batch_size * D.world_size() * (self.n_loss + self.skipped) / dt, 3),
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
        cfg, net, weight = self.cfg, self.net, self.data.weight
        if cfg.bn_recalibrate:
            recalibrate_bn(net, (next(self.data.batches) for _ in range(cfg.bn_recalibrate)), self.device,
                           cfg.channels_last)
        adjust = cfg.logit_adjust and weight is not None
        if adjust or cfg.bias_fit:
            self.raw_bias = output_conv(net).bias.tolist()
        if adjust:
            before = self.evaluate()
            if self.main:
                self.log.write({"step": self.step, "logit_adjust": cfg.logit_adjust, "val_miou_before": before["miou"]})
            add_logit_bias(net, logit_adjustment(weight, cfg.logit_adjust))
        if cfg.bias_fit:
            self.fit_bias()

    def fit_bias(self) -> None:
        """--bias-fit: the per-class logit offsets that maximise mIoU on held-out frames, folded into the bias."""
        before = self.evaluate()
        classes = self.data.classes
        n_frames, frames = heldout_frames(self.cfg, classes.num_classes)
        scores, labels = heldout_scores(self.net, frames, self.device, every=32, seed=self.cfg.seed)
        delta, held_before, held_after = fit_logit_bias(scores, labels, classes.ignore_index)
        # Every rank fits the same frames; rank 0's offsets are the ones all ranks apply.
        delta = D.all_reduce_sum(delta.to(self.device) if self.main else torch.zeros_like(delta, device=self.device))
        add_logit_bias(self.net, delta.cpu())
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
        set_train_mode(self.model, self.cfg.freeze_bn)
        self.t_log = time.perf_counter()  # evaluation time is not training throughput

    def signalled(self) -> bool:
        """Whether any rank got SIGTERM / SIGINT."""
        return D.all_reduce_sum(torch.tensor([1.0 if self.signal else 0.0], device=self.device)).item() > 0

    def _on_signal(self, signum, frame) -> None:
        self.signal = signal.Signals(signum).name

    def run(self) -> int:
        """The step loop. Returns the process exit code (0 done or interrupted cleanly, 1 stopped on NaN)."""
        self.log = MetricsLog(self.out / METRICS_FILE) if self.main else None  # refused before any handler is set
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        self.bar = tqdm(total=self.cfg.steps, initial=self.start_step,
                        disable=not (self.main and sys.stderr.isatty()), unit="step")
        code, end = 0, "error"  # the log's end record stays "error" if an unexpected exception escapes the loop
        try:
            end = self.loop()
        except NonFiniteLoss as e:
            if self.main:
                print(f"error: {e}; stopped without saving, {self.out / 'last.pt'} keeps the last good state "
                      f"(--nan-policy skip skips such steps instead)", file=sys.stderr)
            code, end = 1, "nan"
        except Exception as e:
            self.save_before_failing(e)
            raise
        finally:
            self.bar.close()
            if self.log:
                self.log.write({"step": self.step, "end": end})  # readers tell a finished run from one that died
                self.log.close()
            for s, h in old.items():
                signal.signal(s, h)
        return code

    def loop(self) -> str:
        """Steps until the last one (--steps or the time budget) or a signal, with the logging, validation,
        calibration and saving due after each. Returns the log's end record: "done" or "interrupted"."""
        cfg = self.cfg
        set_train_mode(self.model, cfg.freeze_bn)
        last = False
        while self.step < cfg.steps:
            self.train_step()
            self.bar.update(1)
            last = self.step == cfg.steps
            if cfg.time_limit:
                last = self.follow_time_budget() or last
            if self.step % cfg.log_every == 0 or last:
                self.log_speed()
            if last:
                self.calibrate()
            if self.step % cfg.eval_every == 0 or last:
                self.validate()
            if self.step % cfg.checkpoint_every == 0 or last:
                self.save()
            if last:
                break
            if self.signalled():
                self.save()
                if self.main:
                    print(f"{self.signal or 'signal'}: checkpoint saved at step {self.step} in "
                          f"{self.out / 'last.pt'}; rerun the same command with --resume to continue", file=sys.stderr)
                break
        return "interrupted" if self.signal and not last else "done"

    def save_before_failing(self, error: Exception) -> None:
        """Whatever broke (a file the pre-check could not see, an evaluation, the end-of-run calibration), the
        steps trained so far are kept: saved here, before the error reaches the user."""
        if not self.main or self.step == self.start_step or self.updating or isinstance(error, CheckpointError):
            return
        try:
            self.save()
            print(f"checkpoint saved at step {self.step} in {self.out / 'last.pt'} before stopping; "
                  "fix the problem below and rerun with --resume", file=sys.stderr)
        except CheckpointError as save_error:
            print(f"error: {save_error}", file=sys.stderr)
