"""One training process per run folder: an OS file lock held for the run's whole life.

`seg.train` takes `RUNDIR/train.lock` with `fcntl.lockf` before it reads or writes anything in RUNDIR.
A second start on the same folder fails at once and names the holder (pid, host, start time) from the
lock file. The kernel drops the lock when its process ends, however it ends (kill -9 included), so the
file a killed run leaves behind is only a note: it never blocks the next `--resume`.

A POSIX record lock rather than `flock`: it belongs to the process alone, so forked DataLoader workers do
not inherit it and keep a killed trainer's folder locked while they wind down. The flip side: it never
conflicts within one process, and closing any descriptor of the file drops it, so nothing else in the
trainer opens the lock file.

The lock file is never deleted: deleting it would let a waiting process hold a lock on the removed file
while a third one locks a fresh file under the same name. A lock file that is a symbolic link, a FIFO, a
folder or a second name of another file is refused (one line naming it), never followed or written.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from seg.train.runfiles import RunFileError, open_run_file

LOCK_FILE = "train.lock"


class RunLockError(RuntimeError):
    """The run folder is held by another training process (or cannot be locked); one line naming it."""


class RunLock:
    """`with RunLock(run_dir):` holds RUNDIR/train.lock exclusively, or raises RunLockError.

    The folder is created when missing. The lock file records {"pid", "host", "started"} of the holder.
    """

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._f = None

    def acquire(self) -> "RunLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # No truncation before we hold it: the holder's note stays readable. Never through a link or into
            # a second name: the note is written over whatever file that is.
            fd = open_run_file(self.path, os.O_RDWR | os.O_CREAT)
        except RunFileError as e:
            raise RunLockError(str(e)) from None
        except OSError as e:
            raise RunLockError(f"{self.path}: cannot create the run folder's lock file ({e.strerror or e})") from None
        f = open(fd, "r+", encoding="utf-8", errors="replace")
        try:
            fcntl.lockf(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            f.seek(0)
            note = f.read()
            f.close()
            if e.errno not in (errno.EACCES, errno.EAGAIN):  # e.g. ENOLCK: a file system without locks
                raise RunLockError(f"{self.path}: cannot lock the run folder ({e.strerror or e})") from None
            raise RunLockError(f"{self.path.parent}: in use by another training process "
                               f"({describe(note)}); wait for it to end or stop it, then --resume") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                            "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}) + "\n")
        f.flush()
        self._f = f
        return self

    def release(self) -> None:
        if self._f is not None:
            self._f.close()  # closing the descriptor releases the lock
            self._f = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def describe(note: str) -> str:
    """'pid 123 on host h since 2026-01-01 10:00:00 +0000' from a lock file's text (best effort)."""
    try:
        d = json.loads(note)
        return f"pid {int(d['pid'])} on host {d['host']} since {d['started']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown: the lock file has no readable note"
