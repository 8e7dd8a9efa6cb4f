"""The flags of `python -m seg.train`, its presets and defaults, resolved into one typed `TrainConfig`.

    cfg = parse_config(["--data", "synth", "--out", "runs/demo", "--preset", "demo"])

Flags left unset take the preset's value, then DEFAULTS'; incompatible combinations are rejected here, before
anything is loaded, as argparse usage errors (one line, exit status 2).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from seg.classmap import list_mappings
from seg.checkpoint_schema import MAX_INPUT_SIDE
from seg.cli import MIN_FRAME_SIDE, check_frame_size, int_arg, parse_size
from seg.device import device_arg, resolve_device
from seg.model import DEFAULT_ARCH, list_models
from seg.paths import DEFAULT_DATA, REPO_ROOT

# `--preset NAME`: a measured recipe (the measurements are in the docs); flags given explicitly still win.
PRESETS = {
    # The CPU recipe behind the bundled checkpoint, sized so pool rendering, training and calibration fit in
    # 40 minutes on the project's 2-core machine.
    "demo": {
        "data": "synth", "arch": "lraspp_plus_mobilenet_v3_large", "steps": 12000, "time_limit": 34,
        "batch_size": 8, "size": "512x384", "crop": "256x256", "lr": 2e-3, "log_every": 10, "eval_every": 400,
        "checkpoint_every": 200, "workers": 1, "eval_limit": 32, "scale_range": "0.75,1.5",
        "class_weights": "sqrt-inv", "synth_pool": 3000, "loss_at": "head", "logit_adjust": 0.5,
        "bn_recalibrate": 50, "bias_fit": 192,
    },
    # One CUDA GPU: batch 64, since at 8 the GPU idles between small steps; lr 4e-3, measured at batch 64
    # (AdamW wants less than the linear 8x of the demo's 2e-3); full 512x384 frames, the size the Predictor
    # runs at; loader workers from the CPU count, so the CPU-side augmentation keeps up with the GPU.
    "gpu": {
        "data": "synth", "arch": "lraspp_plus_mobilenet_v3_large", "steps": 3000, "batch_size": 64,
        "size": "512x384", "crop": None, "lr": 4e-3, "log_every": 20, "eval_every": 500, "checkpoint_every": 500,
        "workers": "auto", "eval_limit": 32, "scale_range": "0.75,1.5", "class_weights": "sqrt-inv",
        "synth_pool": 3000, "loss_at": "head", "logit_adjust": 0.5, "bn_recalibrate": 50, "bias_fit": 192,
    },
    # The 2-class lane-marking model within 20 minutes on the same CPU. The loss is scored at full size: a
    # marking 2-6 px wide falls between the 4-px-spaced points where `--loss-at head` samples the label. It
    # starts from the bundled model (`--init`), whose features already tell markings from the road.
    "lanes": {
        "data": "synth", "arch": "lraspp_plus_mobilenet_v3_large", "steps": 12000, "time_limit": 14,
        "batch_size": 8, "size": "512x384", "crop": "256x256", "lr": 2e-3, "log_every": 10, "eval_every": 400,
        "checkpoint_every": 200, "workers": 1, "eval_limit": 32, "scale_range": "0.75,1.5",
        "class_weights": "sqrt-inv", "synth_pool": 1200, "loss_at": "full", "logit_adjust": 0.5,
        "bn_recalibrate": 50, "bias_fit": 192, "classes": "lanes",
        "init": str(REPO_ROOT / "checkpoints" / "demo" / "model.pt"),
    },
}

DEFAULTS = {"data": None, "arch": DEFAULT_ARCH, "steps": 20000, "batch_size": 8, "size": "512x384", "crop": None,
            "lr": 1e-3, "log_every": 20, "eval_every": 1000, "checkpoint_every": 500, "workers": 4, "eval_limit": None,
            "scale_range": "0.5,2.0", "time_limit": None,
            "class_weights": "none", "bn_recalibrate": 0, "logit_adjust": 0.0, "bias_fit": 0,
            "synth_pool": 0, "loss_at": "full", "classes": None, "init": None}


# --scale-range: below MIN_SCALE a frame shrinks to a few pixels of its crop, nothing left to learn from; the
# largest rescaled frame is held to MAX_SCALED_SIDE pixels (8192x8192 RGB: 200 MB in each loader worker).
MIN_SCALE = 0.05
MAX_SCALED_SIDE = 2 * MAX_INPUT_SIDE


@dataclass(frozen=True)
class TrainConfig:
    """One run's resolved flags, one field per flag (same names as argparse's dests). Saved with each
    checkpoint as its `args` (`as_dict`)."""

    # data
    data: str
    val_data: str | None
    size: str
    crop: str | None
    scale_range: tuple[float, float]
    no_augment: bool
    synth_pool: int
    classes: str | None
    check_all: bool
    workers: int
    # model and optimisation
    arch: str
    backbone_weights: str | None
    init: str | None
    steps: int
    batch_size: int
    lr: float
    scale_lr: bool
    opt: str
    weight_decay: float
    warmup: int
    class_weights: str
    weight_samples: int
    loss_at: str
    freeze_bn: bool
    sync_bn: bool
    nan_policy: str
    # end-of-run calibration
    bn_recalibrate: int
    logit_adjust: float
    bias_fit: int
    bias_fit_data: str | None
    # the run
    out: str
    preset: str | None
    resume: bool
    time_limit: float | None
    log_every: int
    eval_every: int
    eval_limit: int | None
    checkpoint_every: int
    seed: int
    # device
    device: str
    amp: bool
    channels_last: bool
    threads: int | None

    @property
    def size_hw(self) -> tuple[int, int]:
        """The model input size as (H, W)."""
        return parse_size(self.size)[::-1]

    @property
    def crop_hw(self) -> tuple[int, int]:
        """The training crop as (H, W): --crop, else the input size."""
        return parse_size(self.crop or self.size)[::-1]

    @property
    def val_root(self) -> str | Path:
        """The folder whose validation/ split the run scores: --val-data, else --data (the bundled set for synth)."""
        return self.val_data or (DEFAULT_DATA if self.data == "synth" else self.data)

    def as_dict(self) -> dict:
        """The flags as a plain dict, as checkpoints keep them."""
        return dataclasses.asdict(self)


def workers_arg(text: str) -> int | str:
    """argparse `type=` for --workers: a count, or 'auto'."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or 'auto', got {text!r}") from None


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """The parser of `python -m seg.train`; flags with a preset value are None until `resolve_args`."""
    p = argparse.ArgumentParser(description="Train a segmentation model on Vistas-layout data or the synthetic world",
                                add_help=add_help)
    _add_data_flags(p.add_argument_group("data"))
    _add_optimisation_flags(p.add_argument_group("model and optimisation"))
    _add_calibration_flags(p.add_argument_group("end-of-run calibration"))
    _add_run_flags(p.add_argument_group("run folder, cadence and recipe"))
    _add_device_flags(p.add_argument_group("device"))
    return p


def _add_data_flags(p) -> None:
    """What is trained and validated on, and how it is loaded."""
    p.add_argument("--data", help="Vistas-layout folder (training/ and validation/), or 'synth' to stream the synthetic world")
    p.add_argument("--val-data", default=None, help="validation folder (default: --data, or the bundled set for synth)")
    p.add_argument("--size", default=None,
                   help=f"model input size WxH, {MIN_FRAME_SIDE} to {MAX_INPUT_SIDE} pixels a side (default 512x384)")
    p.add_argument("--crop", default=None,
                   help=f"training crop WxH, {MIN_FRAME_SIDE} to {MAX_INPUT_SIDE} pixels a side (default: --size)")
    p.add_argument("--scale-range", default=None,
                   help=f"random rescale range LO,HI of the frame's short side, LO >= {MIN_SCALE:g} (default 0.5,2.0)")
    p.add_argument("--no-augment", action="store_true", help="no random scale/crop/flip/jitter (debugging, exact comparisons)")
    p.add_argument("--synth-pool", type=int, default=None, metavar="N",
                   help="with --data synth: render N frames once and reuse them with fresh augmentation, instead "
                        "of rendering every training frame (faster on a small CPU); 0 = stream")
    p.add_argument("--classes", choices=list_mappings(), default=None,
                   help="fold the dataset's classes by name into a named mapping: lanes = lane markings vs. the "
                        "rest (Unlabeled stays ignored); the checkpoint keeps the mapped class table")
    p.add_argument("--check-all", action="store_true", help="check every training file before starting (default: first 200)")
    p.add_argument("--workers", type=workers_arg, default=None,
                   help="data-loading worker processes, or 'auto' (all cores but two, split between local processes)")


def _add_optimisation_flags(p) -> None:
    """The model, where its weights start, and how they are trained."""
    p.add_argument("--arch", default=None, help=f"model name, one of: {', '.join(list_models())}")
    p.add_argument("--backbone-weights", default=None, help="local ImageNet weights file for the backbone")
    p.add_argument("--init", default=None, metavar="CKPT",
                   help="start from this checkpoint's weights (same arch; with another class count all but the "
                        "class-logit layers; ignored on --resume; 'none' turns a preset's off)")
    p.add_argument("--steps", type=int, default=None, help="total optimizer steps")
    p.add_argument("--batch-size", type=int, default=None, help="images per step per process")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (poly decay)")
    p.add_argument("--scale-lr", action="store_true", help="multiply --lr by the world size (linear scaling rule)")
    p.add_argument("--opt", choices=("adamw", "sgd"), default="adamw", help="optimizer")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay")
    p.add_argument("--warmup", type=int, default=0, help="linear warm-up steps")
    p.add_argument("--class-weights", choices=("none", "sqrt-inv"), default=None,
                   help="loss weights per class: none, or 1/sqrt(pixel frequency) measured on training samples")
    p.add_argument("--weight-samples", type=int, default=64, help="training items sampled for --class-weights")
    p.add_argument("--loss-at", choices=("full", "head"), default=None,
                   help="score the loss on logits upsampled to the crop (full) or at the head's own 1/4-1/16 "
                        "resolution against the label sampled there (head: about half the CPU step time)")
    p.add_argument("--freeze-bn", action="store_true", help="keep batch-norm statistics fixed (fine-tuning, tiny per-GPU batches)")
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across processes (CUDA)")
    p.add_argument("--nan-policy", choices=("stop", "skip"), default="stop", help="on a NaN/inf loss: stop, or skip the step")


def _add_calibration_flags(p) -> None:
    """What runs after the last step, before the final validation and save."""
    p.add_argument("--bn-recalibrate", type=int, default=None,
                   help="at the end, re-estimate batch-norm statistics over N training batches (0: off)")
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


def _add_run_flags(p) -> None:
    """The run folder, resuming, the recipe, and how often to log, validate and save."""
    p.add_argument("--out", required=True, help="run folder for metrics.jsonl and checkpoints")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help="defaults for a known recipe")
    p.add_argument("--resume", action="store_true", help="continue from RUNDIR/last.pt")
    p.add_argument("--time-limit", type=float, default=None,
                   help="stop after this many minutes of training (wall time across resumes); LR decays to zero by then")
    p.add_argument("--log-every", type=int, default=None, help="steps between metrics.jsonl lines")
    p.add_argument("--eval-every", type=int, default=None, help="steps between validations")
    p.add_argument("--eval-limit", type=int, default=None, help="validate on the first N frames only")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.add_argument("--seed", type=int, default=0, help="random seed")


def _add_device_flags(p) -> None:
    """Where and in which number formats the run computes."""
    p.add_argument("--device", type=device_arg, default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None, help="mixed precision (default: on CUDA)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True, help="channels_last memory format")
    p.add_argument("--threads", type=int_arg(1), default=None, help="torch CPU threads")


def resolve_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TrainConfig:
    """Fill unset flags from the preset, then DEFAULTS; reject incompatible combinations through
    `parser.error` (one line, SystemExit 2). Returns the run's TrainConfig."""
    preset = PRESETS.get(args.preset, {})
    for k, v in DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, preset.get(k, v))
    if args.init and args.init.lower() == "none":
        args.init = None
    try:
        _check_data(args)
        _resolve_runtime(args)
        _check_numbers(args)
        _check_files(args)
        args.scale_range = _scale_range(args.scale_range, args.size)
    except ValueError as e:
        parser.error(str(e))
    if args.scale_lr:
        args.lr *= int(os.environ.get("WORLD_SIZE", 1))
    return TrainConfig(**vars(args))


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """`python -m seg.train`'s command line (default: sys.argv) as a resolved TrainConfig."""
    parser = get_args_parser()
    return resolve_args(parser.parse_args(argv), parser)


def _check_data(args: argparse.Namespace) -> None:
    """--data is given and exists; raises ValueError otherwise."""
    if args.data is None:
        raise ValueError("--data is required (a Vistas-layout folder, or 'synth')")
    if args.data != "synth" and not Path(args.data).is_dir():
        raise ValueError(f"--data {args.data}: no such folder")


def _resolve_runtime(args: argparse.Namespace) -> None:
    """--device checked, --workers auto and --amp's default filled in from it; raises ValueError."""
    device = resolve_device(args.device)
    if args.preset == "gpu" and device.type != "cuda":
        raise ValueError("--preset gpu needs a CUDA device (none here, or --device cpu); use --preset demo on the CPU")
    if args.workers == "auto":  # the processes of one machine under torchrun share its cores
        local = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        args.workers = max(1, ((os.cpu_count() or 2) - 2) // local)
    if args.amp is None:
        args.amp = device.type == "cuda"
    if args.amp and device.type != "cuda":
        raise ValueError("--amp needs CUDA")


def _check_numbers(args: argparse.Namespace) -> None:
    """Counts and amounts in range, a known --arch; raises ValueError naming the first bad flag."""
    if args.arch not in list_models():
        raise ValueError(f"--arch {args.arch}: unknown model; valid names: {', '.join(list_models())}")
    for k in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every"):
        if getattr(args, k) < 1:
            raise ValueError(f"--{k.replace('_', '-')} must be at least 1")
    for k in ("workers", "synth_pool", "logit_adjust", "bias_fit"):
        if getattr(args, k) < 0:
            raise ValueError(f"--{k.replace('_', '-')} must be >= 0")


def _check_files(args: argparse.Namespace) -> None:
    """The files and folders the flags name exist, and sizes parse; raises ValueError."""
    if args.bias_fit and args.data != "synth" and not args.bias_fit_data:
        raise ValueError("--bias-fit needs --bias-fit-data DIR (held-out frames) unless --data synth")
    if args.init and not Path(args.init).is_file():
        raise ValueError(f"--init {args.init}: no such file")
    if args.bias_fit_data and not Path(args.bias_fit_data).is_dir():
        raise ValueError(f"--bias-fit-data {args.bias_fit_data}: no such folder")
    for k in ("size", "crop"):
        if getattr(args, k) is not None:
            try:
                size = parse_size(getattr(args, k))
            except ValueError as e:
                raise ValueError(f"--{k}: {e}") from None
            try:  # what a checkpoint may record, and what the networks can see at all
                check_frame_size(size, hi=MAX_INPUT_SIDE)
            except ValueError as e:
                raise ValueError(f"--{k} {e}") from None


def _scale_range(text: str, size: str) -> tuple[float, float]:
    """--scale-range 'LO,HI' as (LO, HI) with MIN_SCALE <= LO <= HI, such that the rescaled --size frame keeps
    a pixel and stays within MAX_SCALED_SIDE; raises ValueError."""
    try:
        lo, hi = (float(v) for v in str(text).split(","))
    except ValueError:
        lo = hi = 0.0
    if not 0 < lo <= hi:
        raise ValueError(f"--scale-range must be LO,HI with 0 < LO <= HI, got {text!r}")
    if lo < MIN_SCALE:
        raise ValueError(f"--scale-range: LO must be at least {MIN_SCALE:g}, got {lo:g}")
    short, long = min(parse_size(size)), max(parse_size(size))
    if int(short * lo) < 1:  # the augmentation resizes the short side to int(short * LO) pixels
        raise ValueError(f"--scale-range: LO {lo:g} shrinks the {short}-pixel short side of --size below a pixel")
    if long * hi > MAX_SCALED_SIDE:
        raise ValueError(f"--scale-range: HI {hi:g} makes the {long}-pixel long side of --size {long * hi:.0f} "
                         f"pixels, more than {MAX_SCALED_SIDE}")
    return lo, hi
