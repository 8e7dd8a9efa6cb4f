"""The files seg.train writes in its run folder (RUNDIR): each opened so that nothing planted there can redirect
or block a write (`open_run_file`: no symbolic link, FIFO, folder or second hard link), and the metrics log
itself (`RUNDIR/metrics.jsonl`, read back by seg.train.runlog): appended line by line (`MetricsLog`), started
or cut back to a checkpoint's step for --resume (`start_log`, `truncate_log`)."""
from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

from seg.paths import printable
from seg.train.runlog import METRICS_FILE


class RunFileError(ValueError):
    """A file seg.train writes in its run folder is something else there (a link, FIFO, folder, or a file with
    a second name); the message names it."""


def open_run_file(path: Path, flags: int, single_name: bool = True) -> int:
    """`os.open(path, flags)` for a file seg.train keeps in its run folder: never through a symbolic link
    (O_NOFOLLOW: a planted link must not redirect a write outside the folder), never waiting (O_NONBLOCK: a
    FIFO opens at once or fails, and is refused), a regular file only and, with `single_name`, one with no
    other hard link (writing in place would change the file under its other name too). Returns the
    descriptor; raises RunFileError naming the file, or the open's own OSError (e.g. FileNotFoundError)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError:
        kind = _odd_kind(path)
        if kind is None:
            raise
        raise RunFileError(_refusal(path, kind)) from None
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = _refusal(path, _KINDS.get(stat.S_IFMT(info.st_mode), "a special file"))
    elif single_name and info.st_nlink > 1:
        problem = (f"{printable(path)}: has {info.st_nlink} names (hard links), so writing it would change the "
                   "same file under its other names; move it away, then rerun")
    if problem:
        os.close(fd)
        raise RunFileError(problem)
    return fd


_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO",
          stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


def _odd_kind(path: Path) -> str | None:
    """What `path` is when it exists and is not a regular file ("a symbolic link", "a FIFO"...), else None."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else _KINDS.get(stat.S_IFMT(mode), "a special file")


def _refusal(path: Path, kind: str) -> str:
    return (f"{printable(path)}: is {kind}, not a regular file; seg.train neither follows nor replaces it: "
            "move it away, then rerun")


class MetricsLog:
    """Appends one JSON object per line, flushed and fsynced, so a kill loses at most the line in flight.
    The file is opened as `open_run_file` says: a link, FIFO or second name planted there is refused."""

    def __init__(self, path: str | Path):
        fd = open_run_file(Path(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self.f = open(fd, "a", encoding="utf-8")

    def write(self, row: dict) -> None:
        """Append `row` as one line."""
        self.f.write(json.dumps(row) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


def truncate_log(path: Path, step: int) -> list[int]:
    """Keep the log's lines up to `step` (the steps after the checkpoint we resume from are trained again);
    drop end records (a resumed run is not over) and a half-written last line.

    A line that is no log record (not UTF-8, not a JSON object, a "step" that is not a number) is damage no
    reader can use: it is left out too, and its 1-based number returned, so the caller can say which. Kept
    lines stay byte for byte. The new log is written under a temporary name and renamed over the old one, so
    a kill leaves one of the two whole. A missing log is no error; one that is not a regular file is a
    RunFileError (a FIFO would block the read forever).
    """
    try:
        fd = open_run_file(path, os.O_RDONLY, single_name=False)  # replaced by rename: other names keep theirs
    except FileNotFoundError:
        return []
    with open(fd, "rb") as f:
        chunks = f.read().split(b"\n")
    keep, damaged = [], []
    for i, chunk in enumerate(chunks):
        if not chunk.strip():
            continue
        row = _record(chunk)
        if row is None:
            if i < len(chunks) - 1:  # a last line without its newline is the writer's cut, not damage
                damaged.append(i + 1)
        elif row.get("step", 0) <= step and "end" not in row:
            keep.append(chunk)
    _rewrite(path, b"".join(chunk + b"\n" for chunk in keep))
    return damaged


def _record(line: bytes) -> dict | None:
    """The log record on one line (a JSON object whose "step", if any, is a finite number), else None."""
    try:
        row = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if not isinstance(row, dict):
        return None
    step = row.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        return None
    try:
        return row if math.isfinite(step) else None
    except OverflowError:  # an integer too large for a float
        return None


def _rewrite(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: written to PATH.tmp, fsynced, renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    if os.path.lexists(tmp):  # left by a killed rewrite, or planted: unlinked, a link's target is untouched
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with open(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def start_log(run_dir: Path, resume_step: int | None) -> list[int]:
    """Prepare `run_dir`'s log for a run: a fresh run (`resume_step` None) starts an empty log, a resumed one
    keeps the lines up to its checkpoint's step (`truncate_log`). Creates the folder. Returns the 1-based
    numbers of damaged lines left out; raises RunFileError when the log is not a regular file."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / METRICS_FILE
    if resume_step is not None:
        return truncate_log(path, resume_step)
    kind = _odd_kind(path)
    if kind is not None:
        raise RunFileError(_refusal(path, kind))
    if path.exists():
        path.unlink()
    return []
