"""Whether a last.pt can go on training in this run: its weights, optimizer and schedule state checked against
the run's own model, optimizer and schedule before any of them is loaded.

`load_checkpoint` has checked each field's type already; what it cannot know is this run: a slim model.pt
copied over last.pt (no optimizer state), weights of another shape, an optimizer state whose moments do not
match the weights or whose hyperparameters are text, a schedule state that would overwrite the scheduler's
methods (`LambdaLR.load_state_dict` updates its `__dict__` with whatever it is given). Loaded unchecked,
each fails with a traceback, some of them only at the first step. Here each is a ValueError("field: reason").
"""
from __future__ import annotations

import torch
from torch import nn

from seg.classes import short_repr
from seg.train.runlog import is_number

# Per-weight state of the optimizers `seg.train.setup.build` makes (AdamW with amsgrad adds max_exp_avg_sq).
STATE_KEYS = {torch.optim.AdamW: {"step", "exp_avg", "exp_avg_sq"}, torch.optim.SGD: {"momentum_buffer"}}


def check_weights(weights: dict, net: nn.Module) -> None:
    """Raise ValueError unless `weights` has exactly `net`'s tensor names, each of its shape."""
    own = net.state_dict()
    missing = [k for k in own if k not in weights]
    unknown = [k for k in weights if k not in own]
    wrong = [k for k in own if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    if missing or unknown or wrong:
        first = (f"{wrong[0]} is {tuple(weights[wrong[0]].shape)}, not {tuple(own[wrong[0]].shape)}" if wrong
                 else f"{(missing or unknown)[0]} {'missing' if missing else 'unknown'}")
        raise ValueError(f"model: its weights do not fit this run's model ({len(wrong)} of another shape, "
                         f"{len(missing)} missing, {len(unknown)} unknown; {first})")


def check_optimizer_state(saved: dict, optimizer: torch.optim.Optimizer) -> None:
    """Raise ValueError unless `saved` (an optimizer state_dict) fits `optimizer`: its groups as the run's
    (`check_like`), and a per-weight state of the optimizer's own keys whose tensors have their weight's shape."""
    template = optimizer.state_dict()
    groups, state = saved.get("param_groups"), saved.get("state")
    if not (isinstance(groups, list) and isinstance(state, dict)):
        raise ValueError("optimizer: expected a state and a list of param_groups (an optimizer's state_dict)")
    if len(groups) != len(template["param_groups"]):
        raise ValueError(f"optimizer.param_groups: {len(groups)} groups, this run's optimizer has "
                         f"{len(template['param_groups'])}")
    weights = {}
    for i, (group, own) in enumerate(zip(groups, template["param_groups"])):
        where = f"optimizer.param_groups[{i}]"
        if not isinstance(group, dict):
            raise ValueError(f"{where}: expected a dict, got {short_repr(group)}")
        check_like(group, own, where)
        ids = group["params"]
        if not (isinstance(ids, list) and len(ids) == len(own["params"]) and all(isinstance(x, int) for x in ids)):
            raise ValueError(f"{where}.params: expected {len(own['params'])} parameter ids, got {short_repr(ids)}")
        weights.update({pid: (p, group) for pid, p in zip(ids, optimizer.param_groups[i]["params"])})
    for pid, entry in state.items():
        if pid not in weights or not isinstance(entry, dict):
            raise ValueError(f"optimizer.state[{short_repr(pid)}]: not the state of one of the model's weights")
        weight, group = weights[pid]
        _check_weight_state(entry, weight, type(optimizer), group, f"optimizer.state[{pid}]")


def _check_weight_state(entry: dict, weight: torch.Tensor, kind: type, group: dict, where: str) -> None:
    expected = STATE_KEYS.get(kind, set(entry)) | ({"max_exp_avg_sq"} if group.get("amsgrad") else set())
    if set(entry) != expected:
        raise ValueError(f"{where}: holds {sorted(map(str, entry))}, expected {sorted(expected)}")
    for k, v in entry.items():
        if k == "step":  # a 0-d tensor in torch 2, a number before
            count = float(v) if isinstance(v, torch.Tensor) and v.numel() == 1 else v
            ok = is_number(count) and count >= 0
            shape = "a step count >= 0"
        elif v is None:
            ok = k == "momentum_buffer"  # SGD keeps None until the first step with momentum
            shape = f"a finite tensor of shape {tuple(weight.shape)}"
        else:
            ok = (isinstance(v, torch.Tensor) and v.is_floating_point() and v.shape == weight.shape
                  and bool(torch.isfinite(v).all()))
            shape = f"a finite tensor of shape {tuple(weight.shape)}"
        if not ok:
            got = f"shape {tuple(v.shape)} {v.dtype}" if isinstance(v, torch.Tensor) else short_repr(v)
            raise ValueError(f"{where}.{k}: expected {shape}, got {got}")


def check_scheduler_state(saved: dict, scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    """Raise ValueError unless `saved` (a scheduler state_dict) fits `scheduler` (`check_like`)."""
    check_like(saved, scheduler.state_dict(), "scheduler", owner=type(scheduler))


def check_like(saved: dict, own: dict, where: str, owner: type | None = None) -> None:
    """Raise ValueError unless the dict `saved` holds `own`'s keys, each value of the same kind: a flag (bool
    or None: set by how seg.train builds the optimizer, never by the user) equal to own's, a number finite, a
    list as long with each item alike.

    What a file from another torch version may differ in is allowed: a missing flag (torch fills it in on
    load; a missing number or list is refused), and a key `own` lacks whose value is a plain flag, number or
    text, unless it names an attribute of `owner`'s class (the scheduler sets each key as an attribute of
    itself: a "step" key would replace its step method)."""
    unknown = [k for k in saved if k not in own and not _harmless(k, saved[k], owner)]
    if unknown:
        raise ValueError(f"{where}: unexpected key {short_repr(unknown[0])} (expected {', '.join(sorted(own))})")
    missing = [k for k, v in own.items() if k not in saved and not (v is None or isinstance(v, bool))]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    for k, v in saved.items():
        if k in own and k != "params" and not _alike(v, own[k]):
            raise ValueError(f"{where}.{k}: expected {_kind(own[k])}, got {short_repr(v)}")


def _alike(value, own) -> bool:
    if own is None or isinstance(own, bool):
        return value is own
    if isinstance(own, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(own, float):
        return is_number(value)
    if isinstance(own, (list, tuple)):
        return (isinstance(value, (list, tuple)) and len(value) == len(own)
                and all(_alike(a, b) for a, b in zip(value, own)))
    return type(value) is type(own)


def _harmless(key, value, owner: type | None) -> bool:
    """A key of another torch version's state: a plain value that names nothing of `owner`."""
    plain = value is None or isinstance(value, (bool, str)) or is_number(value)
    return (isinstance(key, str) and not key.startswith("__") and plain
            and not (owner is not None and hasattr(owner, key)))


def _kind(own) -> str:
    if own is None or isinstance(own, bool):
        return repr(own)
    if isinstance(own, (list, tuple)):
        return f"{len(own)} of {', '.join(sorted({_kind(v) for v in own}))}" if own else "an empty list"
    return {int: "a whole number", float: "a finite number"}.get(type(own), type(own).__name__)
