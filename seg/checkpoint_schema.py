"""Type and range of every checkpoint field, checked when a checkpoint is loaded.

A checkpoint is a file a user may have been handed, so its values are as untrusted as its pickle: an
`input_size` of 40000x40000 would make the Predictor allocate tens of GB, `[0, 0]` divides by zero, a
class color of [300, -5, 0] overflows the palette. `check_fields` refuses all of these up front with
"field: reason", which `load_checkpoint` turns into one line naming the file.
"""
from __future__ import annotations

import math
from numbers import Real

import torch

from seg.classes import MAX_CLASSES, ClassTable, short_repr
from seg.model import list_models

MAX_INPUT_SIDE = 4096  # pixels per side of the trained input size; Vistas-scale training is ~2048
NORMALIZE_RANGE = (-1e3, 1e3)  # mean, applied to pixels scaled to 0..1
STD_RANGE = (1e-6, 1e3)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def check_fields(ckpt: dict) -> None:
    """Raise ValueError("<field>: <reason>") for the first field of wrong type or out of range.

    Checked: model (tensors by name), model_args (a known arch, 1..MAX_CLASSES classes matching the class
    table), classes (see `seg.classes.make_table`), input_size ([H, W] ints in 1..MAX_INPUT_SIDE),
    normalize (3 finite means and 3 positive stds), and when present step, elapsed, best_miou, val_miou,
    unadjusted_bias, optimizer, scheduler, scaler, args.
    """
    model = ckpt["model"]
    if not isinstance(model, dict) or not model:
        raise ValueError(f"model: expected a non-empty dict of tensors, got {short_repr(model)}")
    for k, v in model.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise ValueError(f"model: entry {short_repr(k)} is {type(v).__name__}, expected a named tensor")

    args = ckpt["model_args"]
    if not isinstance(args, dict):
        raise ValueError(f"model_args: expected a dict with arch and num_classes, got {short_repr(args)}")
    if args.get("arch") not in list_models():
        raise ValueError(f"model_args.arch: unknown model {short_repr(args.get('arch'))}; "
                         f"valid names: {', '.join(list_models())}")
    n = args.get("num_classes")
    if not (_is_int(n) and 1 <= n <= MAX_CLASSES):
        raise ValueError(f"model_args.num_classes: expected an int in 1..{MAX_CLASSES}, got {short_repr(n)}")

    table = ClassTable.from_dict(ckpt["classes"])  # ValueError("classes.<field>: ...")
    if table.num_classes != n:
        raise ValueError(f"classes.names: {table.num_classes} classes, model_args.num_classes says {n}")

    size = ckpt["input_size"]
    if not (isinstance(size, (list, tuple)) and len(size) == 2
            and all(_is_int(v) and 1 <= v <= MAX_INPUT_SIDE for v in size)):
        raise ValueError(f"input_size: expected [H, W] ints in 1..{MAX_INPUT_SIDE}, got {short_repr(size)}")

    norm = ckpt["normalize"]
    if not isinstance(norm, dict):
        raise ValueError(f"normalize: expected a dict with mean and std, got {short_repr(norm)}")
    for key, (lo, hi) in (("mean", NORMALIZE_RANGE), ("std", STD_RANGE)):
        v = norm.get(key)
        if not (isinstance(v, (list, tuple)) and len(v) == 3
                and all(_is_real(x) and math.isfinite(x) and lo <= x <= hi for x in v)):
            raise ValueError(f"normalize.{key}: expected 3 numbers in {lo:g}..{hi:g}, got {short_repr(v)}")

    if ckpt.get("step") is not None and not (_is_int(ckpt["step"]) and ckpt["step"] >= 0):
        raise ValueError(f"step: expected an int >= 0, got {short_repr(ckpt['step'])}")
    if ckpt.get("elapsed") is not None and not (_is_real(ckpt["elapsed"]) and 0 <= ckpt["elapsed"] < math.inf):
        raise ValueError(f"elapsed: expected seconds >= 0, got {short_repr(ckpt['elapsed'])}")
    for key in ("best_miou", "val_miou"):  # NaN is legitimate: a validation set where no class was present
        v = ckpt.get(key)
        if v is not None and not (_is_real(v) and (math.isnan(v) or 0 <= v <= 1)):
            raise ValueError(f"{key}: expected null or a number in 0..1, got {short_repr(v)}")
    bias = ckpt.get("unadjusted_bias")
    if bias is not None and not (isinstance(bias, (list, tuple)) and len(bias) == n
                                 and all(_is_real(x) and math.isfinite(x) for x in bias)):
        raise ValueError(f"unadjusted_bias: expected null or {n} finite numbers, got {short_repr(bias)}")
    for key in ("optimizer", "scheduler", "scaler", "args"):
        if ckpt.get(key) is not None and not isinstance(ckpt[key], dict):
            raise ValueError(f"{key}: expected null or a dict, got {short_repr(ckpt[key])}")
