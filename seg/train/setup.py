"""A run's set-up before step 1: the data sets (checked first), the model, optimizer and schedule, the
weights it starts from (--init or --resume) and the training loader."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from seg.checkpoint import CheckpointError, load_checkpoint
from seg.classes import VISTAS
from seg.classmap import remap_dataset
from seg.cli import one_line
from seg.data.synthetic import SynthPool, SynthStream
from seg.data.transforms import get_transform
from seg.data.vistas import DataError, VistasDataset, check_split
from seg.model import create_model, output_conv
from seg.train import distributed as D
from seg.train.config import TrainConfig
from seg.train.engine import poly_lambda
from seg.train.resume import check_like, check_optimizer_state, check_scheduler_state, check_weights

# --bias-fit's held-out synthetic frames: the validation frames of dataset seed --seed + this, i.e. what
# `python -m seg.synth --seed 1234 --val N` writes with the default --seed 0. Disjoint from every training
# frame (training seeds are even, validation seeds odd) and from the bundled validation set (seed 7).
HELDOUT_SEED_OFFSET = 1234

# Image/label pairs opened per split by the start-up check without --check-all (pairing is checked for all).
CHECK_FILES = 200


@dataclass
class Parts:
    """What `build` makes: the model (DDP-wrapped under torchrun), the same model unwrapped (`net`, what is
    saved and evaluated), its optimizer, LR schedule, GradScaler (None without --amp) and device."""

    model: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    device: torch.device


@dataclass
class Start:
    """Where a run starts: the step, the wall time already trained (seconds) and the best validation mIoU
    so far; zeros and None for a fresh run, a last.pt's values on --resume."""

    step: int = 0
    elapsed: float = 0.0
    best_miou: float | None = None


def get_dataset(cfg: TrainConfig, train: bool, resume_step: int = 0):
    """The training set (a VistasDataset, a SynthPool, or the endless SynthStream, augmented and cropped to
    --crop) or the validation set (at --size). `resume_step` moves a stream's seed on, so a resumed run
    does not see the frames again that it trained on before."""
    size_hw = cfg.size_hw
    if not train:
        return VistasDataset(cfg.val_root, "validation", transforms=get_transform(False, size_hw))
    tf = (get_transform(False, cfg.crop_hw) if cfg.no_augment
          else get_transform(True, cfg.crop_hw, base_size=min(size_hw), scale_range=cfg.scale_range))
    if cfg.data == "synth" and cfg.synth_pool:
        return SynthPool(cfg.synth_pool, size=(size_hw[1], size_hw[0]), seed=cfg.seed, transforms=tf)
    if cfg.data == "synth":
        return SynthStream(size=(size_hw[1], size_hw[0]), seed=cfg.seed + resume_step, transforms=tf)
    return VistasDataset(cfg.data, "training", transforms=tf)


def heldout_frames(cfg: TrainConfig, num_classes: int):
    """The frames --bias-fit calibrates on: (count, lazy (image, label) pairs at the model size), so only
    the frame being scored is ever expanded to float."""
    size_hw = cfg.size_hw
    tf = get_transform(False, size_hw)
    if cfg.bias_fit_data:
        ds = VistasDataset(cfg.bias_fit_data, "validation", transforms=tf)
        table = remap_dataset(ds, cfg.classes) if cfg.classes else ds.classes
        if table.num_classes != num_classes:
            raise DataError(f"{cfg.bias_fit_data}: {table.num_classes} classes, the model has {num_classes}")
    else:
        ds = SynthPool(cfg.bias_fit, size=(size_hw[1], size_hw[0]), seed=cfg.seed + HELDOUT_SEED_OFFSET,
                       transforms=tf, split="validation")
        if cfg.classes:
            remap_dataset(ds, cfg.classes, VISTAS)
    n = min(cfg.bias_fit, len(ds))
    return n, (ds[i] for i in range(n))


def check_splits(cfg: TrainConfig) -> None:
    """Check every split the run will read before step 1; raises DataError naming the first bad files.

    Training, validation (the frames evaluation will score) and --bias-fit-data are checked alike, so a
    bad file ends the run now, not at the first evaluation hours later.
    """
    n = None if cfg.check_all else CHECK_FILES
    val_n = min(cfg.eval_limit, n or cfg.eval_limit) if cfg.eval_limit else n  # evaluation reads no more
    checks = [(cfg.val_root, "validation", val_n, "")]
    if cfg.data != "synth":
        checks.insert(0, (cfg.data, "training", n, ""))
    if cfg.bias_fit and cfg.bias_fit_data:  # held-out frames read only after the last step
        checks.append((cfg.bias_fit_data, "validation", cfg.bias_fit, "--bias-fit-data: "))
    for root, split, limit, flag in checks:
        problems = check_split(root, split, max_files=limit)
        if problems:
            raise DataError(f"{flag}{len(problems)} problem(s) in {root}/{split}, first: " + " | ".join(problems[:3]))


def datasets(cfg: TrainConfig, resume_step: int = 0):
    """(training set, validation set, class table), checked first; the class table folded by --classes."""
    check_splits(cfg)
    val_set = get_dataset(cfg, False)
    if cfg.classes:  # before the training set, so a table the mapping cannot use stops the run at once
        remap_dataset(val_set, cfg.classes)
    train_set = get_dataset(cfg, True, resume_step)
    classes = val_set.classes if cfg.data == "synth" else train_set.classes
    if cfg.classes:  # the synthetic world renders Vistas ids
        classes = remap_dataset(train_set, cfg.classes, getattr(train_set, "classes", VISTAS))
    return train_set, val_set, classes


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


def build(cfg: TrainConfig, classes, device: torch.device, world: int, fresh: bool) -> Parts:
    """The model, optimizer, schedule and scaler on `device`; a `fresh` run starts from --init's weights."""
    model = create_model(cfg.arch, classes.num_classes, cfg.backbone_weights)
    if cfg.init and fresh:
        note = init_from(model, cfg.init, cfg.arch, classes.num_classes)
        if note and D.is_main_process():
            print(note, file=sys.stderr)
    if cfg.sync_bn and world > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.opt == "sgd":
        optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_lambda(cfg.steps, cfg.warmup))
    scaler = torch.amp.GradScaler("cuda") if cfg.amp else None
    wrapped = model
    if world > 1:
        wrapped = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return Parts(wrapped, model, optimizer, scheduler, scaler, device)


def restore(resume: dict, path: Path, arch: str, parts: Parts) -> Start:
    """Load a last.pt (`resume`, read from `path`) into the run's parts; returns where the run goes on.

    Everything is checked before anything is loaded (seg.train.resume), so a file that cannot go on (a slim
    model.pt, weights of another shape, a damaged optimizer or schedule state) is a CheckpointError naming
    `path`, raised before the run folder is touched."""
    if resume["model_args"]["arch"] != arch:
        raise CheckpointError(f"{path}: was trained as {resume['model_args']['arch']}, not {arch}")
    if resume.get("optimizer") is None or resume.get("scheduler") is None:
        raise CheckpointError(f"{path}: holds no optimizer state (a slim model.pt or best.pt?), so it cannot be "
                              "resumed; start a new --out from its weights with --init instead")
    try:
        check_weights(resume["model"], parts.net)
        check_optimizer_state(resume["optimizer"], parts.optimizer)
        check_scheduler_state(resume["scheduler"], parts.scheduler)
        if parts.scaler is not None and resume.get("scaler"):
            check_like(resume["scaler"], parts.scaler.state_dict(), "scaler")
        parts.net.load_state_dict(resume["model"])
        if resume.get("unadjusted_bias") is not None:  # a finished, logit-adjusted run: undo it exactly
            with torch.no_grad():
                output_conv(parts.net).bias.copy_(torch.tensor(resume["unadjusted_bias"]))
        parts.optimizer.load_state_dict(resume["optimizer"])
        parts.scheduler.load_state_dict(dict(resume["scheduler"]))  # a copy: it pops lr_lambdas
        if parts.scaler is not None and resume.get("scaler"):
            parts.scaler.load_state_dict(resume["scaler"])
    except (ValueError, KeyError, TypeError, RuntimeError) as e:  # the checks', or torch's should one slip by
        raise CheckpointError(f"{path}: cannot be resumed: {one_line(e)}") from None
    return Start(resume["step"], resume.get("elapsed", 0.0), resume.get("best_miou"))


def make_loader(cfg: TrainConfig, train_set, device: torch.device, rank: int, world: int):
    """(DataLoader, its DistributedSampler or None): each process a disjoint shard of a finite set."""
    sampler = None
    if isinstance(train_set, (VistasDataset, SynthPool)):
        sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed,
                                     drop_last=True)
        if len(sampler) < cfg.batch_size:  # drop_last would leave no batch at all, and the loop would spin
            where = "--synth-pool" if isinstance(train_set, SynthPool) else f"{cfg.data}/training"
            raise DataError(f"{where}: {len(train_set)} frames give {len(sampler)} per process, fewer than "
                            f"--batch-size {cfg.batch_size}")
    loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers,
                        pin_memory=device.type == "cuda", drop_last=True, persistent_workers=cfg.workers > 0)
    return loader, sampler
