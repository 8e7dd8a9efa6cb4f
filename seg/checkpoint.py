"""The one way to save and load checkpoints: plain containers, atomic writes, safe loads.

A checkpoint is a dict (see docs/ARCHITECTURE.md) saved with `torch.save` and loaded with
`weights_only=True`, so loading never executes pickled code. It carries everything needed to predict.
"""
from __future__ import annotations

import fcntl
import io
import os
import re
import stat
import tempfile
import time
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import torch
from torch import nn

from seg.checkpoint_schema import (MAX_META_BYTES, check_fields, check_finite, check_tensor_places,
                                   tensor_allowance)
from seg.cli import one_line
from seg.classes import ClassTable
from seg.model import MEAN, STD, create_model

REQUIRED_KEYS = ("model", "model_args", "classes", "input_size", "normalize")
# No checkpoint of a registered architecture is larger: deeplabv3_resnet101's last.pt (weights and AdamW's two
# moments) is ~705 MB. A bigger file is refused before its zip directory is even read.
MAX_CHECKPOINT_BYTES = 1_000_000_000
# A save killed mid-write leaves its temp file; the next save of the same file removes it once it is older
# than this (a live save also holds a lock on its temp, so a slow disk cannot make it look stale).
STALE_TEMP_SECONDS = 60


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line naming the file."""


def save_checkpoint(path: str | Path, ckpt: dict) -> None:
    """Write `ckpt` to `path` atomically: a temp file in the same folder, fsync, then rename.

    A crash at any moment leaves either the old file or the new one, never a truncated file. A failed
    write (disk full, no permission) raises CheckpointError in one line; the old file stays as it was.
    Temp files an earlier save of `path` left when it was killed are removed first (`_remove_stale_temps`).
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(path)
        data = io.BytesIO()
        # Serialised in memory first: torch's stream writer turns a failed write into an opaque RuntimeError,
        # a plain write reports the OS's reason (e.g. "No space left on device").
        torch.save(ckpt, data)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until the file is closed: marks it as a live save's
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


def _remove_stale_temps(path: Path) -> None:
    """Remove the temp files of earlier saves of `path` that were killed mid-write: only names this module
    makes (path.name + "." + mkstemp's 8 characters + ".tmp"), only regular files (never a link) of this
    user, older than STALE_TEMP_SECONDS and not locked by a live save. Best effort: what cannot be checked stays."""
    own = re.compile(re.escape(path.name) + r"\.[a-z0-9_]{8}\.tmp")
    try:
        names = [entry.name for entry in os.scandir(path.parent) if own.fullmatch(entry.name)]
    except OSError:
        return
    for name in names:
        tmp = path.parent / name
        try:
            fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:  # a link (O_NOFOLLOW), or removed meanwhile
            continue
        try:
            info = os.fstat(fd)
            if (stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid()
                    and time.time() - info.st_mtime > STALE_TEMP_SECONDS):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError while a live save holds it
                if os.lstat(tmp).st_ino == info.st_ino:  # still the file checked, not one renamed over it
                    os.unlink(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", data: bytes | None = None) -> dict:
    """Load and validate a checkpoint without executing code, and without allocating more than it may hold.

    Args:
        path: the checkpoint file; it names the file in every error and in the result's "_path".
        map_location: where the tensors go (torch.load's map_location).
        data: the file's bytes when the caller has read them already (e.g. to hash exactly the bytes it
            loads); the file is then not opened. Otherwise the file is opened once and every read goes
            through that one handle, so a file replaced meanwhile (an atomic save) is read whole, never mixed.

    Before any tensor is read, the archive's directory is checked: tensor data at most `tensor_allowance` of
    the architecture it names (its weights plus two optimizer moments), the rest at most MAX_META_BYTES, and
    tensors only in model and optimizer.state. After loading, every model weight must be finite.
    Raises CheckpointError (one line, naming the file) for a missing, truncated, corrupted, oversized or
    unsafe file (a pickle that asks for anything but tensors and plain containers, or a legacy non-zip
    file whose sizes cannot be checked first), missing keys, or a field of the wrong type or out of range
    (see `seg.checkpoint_schema`, e.g. "bad field input_size: ...").
    """
    path = Path(path)
    with _opened(path, data) as f:
        storage_bytes = _archive_sizes(path, f)
        # map_location="meta": the pickle is read and every field checked, no tensor data is read or allocated.
        _check_layout(path, _load_tensors_only(path, f, "meta"), storage_bytes)
        ckpt = _load_tensors_only(path, f, map_location)
    try:
        check_finite(ckpt["model"])
    except ValueError as e:
        raise CheckpointError(f"{path}: bad field {e}") from None
    ckpt["_path"] = str(path)
    return ckpt


@contextmanager
def _opened(path: Path, data: bytes | None) -> Iterator[BinaryIO]:
    """The checkpoint as one readable, seekable stream; refuses a file that is missing, not a regular file,
    over MAX_CHECKPOINT_BYTES, or not a torch.save zip archive."""
    if data is not None:
        f, size = io.BytesIO(data), len(data)
    else:
        try:
            if not path.is_file():
                raise CheckpointError(f"{path}: no such checkpoint file")
            # O_NONBLOCK: a FIFO swapped in after the check must not block the open; fstat refuses it below.
            f = open(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NONBLOCK))
        except OSError as e:  # e.g. a name too long to look up, no permission
            raise CheckpointError(f"{path}: cannot open ({e.strerror or e})") from None
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            f.close()
            raise CheckpointError(f"{path}: no such checkpoint file (not a regular file)")
        size = info.st_size
    with f:
        if size > MAX_CHECKPOINT_BYTES:
            raise CheckpointError(f"{path}: {size / 1e6:,.0f} MB, more than any checkpoint of a known "
                                  f"architecture holds ({MAX_CHECKPOINT_BYTES / 1e6:,.0f} MB)")
        head = f.read(4)
        f.seek(0)
        if not head.startswith(b"PK\x03\x04"):
            if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
                raise CheckpointError(f"{path}: refused: a legacy (non-zip) pickle, whose tensor sizes cannot be "
                                      "checked before loading (possibly unsafe); save it again with torch.save")
            raise CheckpointError(f"{path}: not a checkpoint (neither a torch.save zip archive nor a pickle)")
        yield f


def _archive_sizes(path: Path, f: BinaryIO) -> int:
    """Bytes of tensor data the archive's directory declares: what torch.load would allocate, known before
    anything is inflated. Refuses other records (data.pkl and the small ones) over MAX_META_BYTES in all."""
    try:
        with zipfile.ZipFile(f) as archive:
            records = [(info.filename, info.file_size) for info in archive.infolist()]
    except Exception as e:  # a hostile directory fails in many ways (BadZipFile, EOFError, ...): all one line
        raise CheckpointError(f"{path}: unreadable or corrupted ({one_line(e, 120, kind=True)})") from None
    f.seek(0)
    # torch.save names tensor storages "<archive>/data/<key>"; everything else is the pickle and small facts.
    storage = sum(size for name, size in records if name.split("/")[1:2] == ["data"])
    other = sum(size for _, size in records) - storage
    if other > MAX_META_BYTES:
        raise CheckpointError(f"{path}: refused: {other / 1e6:,.1f} MB of pickle and records besides tensors "
                              f"(at most {MAX_META_BYTES / 1e6:,.0f} MB)")
    return storage


def _load_tensors_only(path: Path, f: BinaryIO, map_location) -> object:
    """torch.load(weights_only=True) from the start of `f`; any failure is one CheckpointError line."""
    f.seek(0)
    try:
        with warnings.catch_warnings():
            # torch warns in several lines about odd pickle protocols before refusing a junk file;
            # the refusal is reported below in one line.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(f, map_location=map_location, weights_only=True)
    except Exception as e:
        if "weights_only" in str(e) or "Unsupported global" in str(e) or "GLOBAL" in str(e):
            reason = "refused: it contains pickled code or objects, not just tensors (possibly unsafe)"
        else:
            reason = f"unreadable or corrupted ({one_line(e, 120, kind=True)})"
        raise CheckpointError(f"{path}: {reason}") from None


def _check_layout(path: Path, ckpt, storage_bytes: int) -> None:
    """Refuse a loaded pickle (tensors on the meta device) that is not a seg checkpoint, has a bad field, a
    tensor where the schema has none, or more tensor data than its architecture can hold."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a seg checkpoint (top level is {type(ckpt).__name__})")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not a seg checkpoint (missing keys: {', '.join(missing)})")
    try:
        check_fields(ckpt)
        check_tensor_places(ckpt)
    except ValueError as e:
        raise CheckpointError(f"{path}: bad field {e}") from None
    arch, n = ckpt["model_args"]["arch"], ckpt["model_args"]["num_classes"]
    allowed = tensor_allowance(arch, n)
    if storage_bytes > allowed:
        raise CheckpointError(f"{path}: refused: {storage_bytes / 1e6:,.1f} MB of tensors, more than a {arch} "
                              f"checkpoint holds ({allowed / 1e6:,.1f} MB: its weights and two optimizer moments)")


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
