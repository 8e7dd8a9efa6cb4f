"""Type and range of every checkpoint field, checked when a checkpoint is loaded.

A checkpoint is a file a user may have been handed, so its values are as untrusted as its pickle: an
`input_size` of 40000x40000 would make the Predictor allocate tens of GB, `[0, 0]` divides by zero, a
class color of [300, -5, 0] overflows the palette, a 9 MB deflated archive can inflate a 3 GB tensor, and
NaN weights predict one class everywhere without a word. `check_fields`, `check_tensor_places`,
`tensor_allowance` and `check_finite` refuse all of these with "field: reason", which `load_checkpoint`
turns into one line naming the file.
"""
from __future__ import annotations

import functools
import math
from numbers import Real

import numpy as np
import torch

from seg.classes import MAX_CLASSES, ClassTable, short_repr
from seg.model import create_model, list_models

MAX_INPUT_SIDE = 4096  # pixels per side of the trained input size; Vistas-scale training is ~2048
NORMALIZE_RANGE = (-1e3, 1e3)  # mean, applied to pixels scaled to 0..1
STD_RANGE = (1e-6, 1e3)
# What the fields other than tensor data may take (data.pkl and the archive's small records): a
# deeplabv3_resnet101 last.pt's pickle is ~180 kB, and a pickle can grow ~60x as Python objects.
MAX_META_BYTES = 4_000_000
SLACK_BYTES = 1 << 20  # AdamW's per-weight step counters (4 bytes each) and zip alignment


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


@functools.lru_cache(maxsize=None)
def tensor_allowance(arch: str, num_classes: int) -> int:
    """Most bytes of tensor data a checkpoint of `arch` with `num_classes` classes holds: its fp32 weights three
    times over (the model and AdamW's two moments per weight; SGD keeps one) plus SLACK_BYTES.

    The model is built on the meta device, so this allocates no weights; `arch` must be a known name.
    """
    with torch.device("meta"):
        model = create_model(arch, num_classes)
    weights = sum(t.numel() * 4 for t in model.state_dict().values())
    return 3 * weights + SLACK_BYTES


def check_tensor_places(ckpt: dict) -> None:
    """Raise ValueError("<field>: holds a tensor ...") for a tensor anywhere but where the schema puts them: the
    model's weights and the optimizer's per-weight state (optimizer.state[id][name]). A tensor elsewhere is
    memory no reader of the checkpoint uses, so it is refused rather than loaded.
    """
    roots = [(list(ckpt), "the checkpoint's keys")]
    roots += [(v, k) for k, v in ckpt.items() if k not in ("model", "optimizer")]
    opt = ckpt.get("optimizer")
    if isinstance(opt, dict):
        roots += [(v, f"optimizer.{k}") for k, v in opt.items() if k != "state"]
        state = opt.get("state")
        per_weight = state.items() if isinstance(state, dict) else [("", state)]
        for pid, entry in per_weight:
            where = f"optimizer.state[{short_repr(pid)}]"
            roots.append((pid, "optimizer.state's keys"))
            if not isinstance(entry, dict):
                roots.append((entry, where))
                continue
            roots += [(list(entry), f"{where}'s keys")]
            roots += [(v, f"{where}[{short_repr(k)}]") for k, v in entry.items() if not isinstance(v, torch.Tensor)]
    for value, where in roots:
        found = _tensor_inside(value, where)
        if found:
            raise ValueError(f"{found}: holds a tensor; tensors belong only in model and optimizer.state")


_A_KEY = object()  # marks a trail step onto a dict key itself rather than its value


def _tensor_inside(value, where: str) -> str | None:
    """Where the first tensor inside `value` is (walking dict keys and values, lists, tuples and sets), else
    None. Iterative and cycle-safe: a pickle can nest deeper than Python's recursion limit, or refer to itself.
    Each item carries its trail as linked (parent trail, key) pairs, spelled out only for the tensor found."""
    stack, seen = [(value, None)], set()
    while stack:
        item, trail = stack.pop()
        if isinstance(item, torch.Tensor):
            return where + _spell(trail)
        if isinstance(item, (dict, list, tuple, set, frozenset)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, dict):
                stack += [(k, (trail, _A_KEY)) for k in item]
                stack += [(v, (trail, k)) for k, v in item.items()]
            else:
                stack += [(v, (trail, i)) for i, v in enumerate(item)]
    return None


def _spell(trail) -> str:
    parts = []
    while trail is not None:
        trail, key = trail
        parts.append(" (a key)" if key is _A_KEY else f"[{short_repr(key)}]")
    return "".join(reversed(parts))


def check_finite(model: dict) -> None:
    """Raise ValueError("model: <name> holds NaN or infinite values") for the first floating-point weight that
    is not finite: such a model predicts one class everywhere and nothing else says so."""
    for k, v in model.items():
        if v.is_floating_point() and not _all_finite(v):
            raise ValueError(f"model: {short_repr(k)} holds NaN or infinite values (a diverged or damaged model)")


def _all_finite(t: torch.Tensor) -> bool:
    # In numpy, one thread, in the weights' own dtype: torch's threaded reductions crawl on a busy 2-core
    # machine and its fp16 isfinite is slow, which made this check cost more than the load itself.
    t = t.detach().cpu()
    return bool(np.isfinite((t.float() if t.dtype == torch.bfloat16 else t).numpy()).all())
