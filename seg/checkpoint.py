"""The one way to save and load checkpoints: plain containers, atomic writes, safe loads.

A checkpoint is a dict (see docs/ARCHITECTURE.md) saved with `torch.save` and loaded with
`weights_only=True`, so loading never executes pickled code. It carries everything needed to predict.
"""
from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from seg.checkpoint_schema import check_fields
from seg.cli import one_line
from seg.classes import ClassTable
from seg.model import MEAN, STD, create_model

REQUIRED_KEYS = ("model", "model_args", "classes", "input_size", "normalize")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line naming the file."""


def save_checkpoint(path: str | Path, ckpt: dict) -> None:
    """Write `ckpt` to `path` atomically: a temp file in the same folder, fsync, then rename.

    A crash at any moment leaves either the old file or the new one, never a truncated file. A failed
    write (disk full, no permission) raises CheckpointError in one line; the old file stays as it was.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = io.BytesIO()
        # Serialised in memory first: torch's stream writer turns a failed write into an opaque RuntimeError,
        # a plain write reports the OS's reason (e.g. "No space left on device").
        torch.save(ckpt, data)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a checkpoint is an ordinary shared file
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        reason = e.strerror or (str(e).strip().splitlines() or [""])[-1]
        raise CheckpointError(f"{path}: could not be written ({reason[:160]}); "
                              "the previous file, if any, is unchanged") from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", data: bytes | None = None) -> dict:
    """Load and validate a checkpoint without executing code.

    `data`: the file's bytes when the caller has read them already (to hash exactly the bytes it loads);
    `path` then only names the file in messages.
    Raises CheckpointError (one line, naming the file) for a missing, truncated, corrupted or unsafe
    file (a pickle that asks for anything but tensors and plain containers), missing keys, or a field of
    the wrong type or out of range (see `seg.checkpoint_schema`, e.g. "bad field input_size: ...").
    """
    path = Path(path)
    try:
        found = data is not None or path.is_file()
    except OSError as e:  # e.g. a name too long to look up
        raise CheckpointError(f"{path}: cannot open ({e.strerror or e})") from None
    if not found:
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not _looks_like_checkpoint(path, None if data is None else data[:4]):
        raise CheckpointError(f"{path}: not a checkpoint (neither a torch.save zip archive nor a pickle)")
    try:
        with warnings.catch_warnings():
            # torch warns in several lines about odd pickle protocols before refusing a junk file;
            # the refusal is reported below in one line.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            ckpt = torch.load(path if data is None else io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as e:
        if "weights_only" in str(e) or "Unsupported global" in str(e) or "GLOBAL" in str(e):
            reason = "refused: it contains pickled code or objects, not just tensors (possibly unsafe)"
        else:
            reason = f"unreadable or corrupted ({one_line(e, 120, kind=True)})"
        raise CheckpointError(f"{path}: {reason}") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a seg checkpoint (top level is {type(ckpt).__name__})")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not a seg checkpoint (missing keys: {', '.join(missing)})")
    try:
        check_fields(ckpt)
    except ValueError as e:
        raise CheckpointError(f"{path}: bad field {e}") from None
    ckpt["_path"] = str(path)
    return ckpt


def _looks_like_checkpoint(path: Path, head: bytes | None = None) -> bool:
    """Whether the file (or its first bytes, `head`) starts like torch.save output: a zip archive, or a
    legacy pickle (protocol 2+)."""
    if head is None:
        with open(path, "rb") as f:
            head = f.read(4)
    return head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def classes_of(ckpt: dict) -> ClassTable:
    return ClassTable.from_dict(ckpt["classes"])


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    """Rebuild the model described by a checkpoint, load its weights in fp32, and put it in eval mode.

    Raises CheckpointError for an unknown architecture, a class-count mismatch between the class
    table and the weights, or weights that do not fit the architecture.
    """
    where = ckpt.get("_path", "checkpoint")
    args = ckpt["model_args"]
    n_table = len(ckpt["classes"]["names"])
    if args.get("num_classes") != n_table:
        raise CheckpointError(
            f"{where}: class-count mismatch (model has {args.get('num_classes')}, class table has {n_table})"
        )
    try:
        model = create_model(args["arch"], args["num_classes"])
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"{where}: {e}") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{where}: weights do not fit {args['arch']} ({one_line(e, 160)})") from None
    return model.eval()


def slim(ckpt: dict) -> dict:
    """A deployable copy: fp16 floating-point weights, no optimizer/scheduler/scaler state.

    Halving the weights keeps the default model's file under 25 MB; `model_from_checkpoint` casts back
    to fp32, and the fp16 rounding changes predictions on well under 0.1% of pixels.
    """
    out = {k: v for k, v in ckpt.items() if k not in ("optimizer", "scheduler", "scaler", "_path")}
    out["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    out["optimizer"] = out["scheduler"] = out["scaler"] = None
    return out


def make_checkpoint(
    model: nn.Module,
    arch: str,
    classes: ClassTable,
    input_size: tuple[int, int],
    step: int = 0,
    **extra,
) -> dict:
    """Assemble a checkpoint dict in the one schema. `extra` fills optimizer, scheduler, scaler, args, best_miou."""
    ckpt = {
        "model": model.state_dict(),
        "model_args": {"arch": arch, "num_classes": classes.num_classes},
        "classes": classes.to_dict(),
        "input_size": [int(input_size[0]), int(input_size[1])],
        "normalize": {"mean": list(MEAN), "std": list(STD)},
        "step": int(step),
        "optimizer": None,
        "scheduler": None,
        "scaler": None,
        "args": {},
        "best_miou": None,
    }
    ckpt.update(extra)
    return ckpt
