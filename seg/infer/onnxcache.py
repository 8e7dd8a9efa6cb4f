"""The graph cache of the onnxruntime backend: where graphs live, and which cached files may be read.

Graphs live in `$SEG_CACHE_DIR` (default `~/.cache/seg`) under `onnx/`, one entry per checkpoint content:
`<key>.onnx` (the graph) and `<key>.json` (its record: the graph file's own SHA-256, the checkpoint's
SHA-256 and the graph version). The key hashes the checkpoint file's content with the graph version, torch
version and opset, so an edited, replaced or retrained checkpoint never meets an old graph.

Trust: the key is predictable (the checkpoint's hash is public), so a file at it proves nothing. An entry
is read only when the folder, the graph and its record belong to this user (or root) and nobody else may
write them, and only when the graph's bytes hash to what the record says; `seg.infer.onnxrt` then still
checks the graph against torch before serving it. A cache folder that others may write (a shared
SEG_CACHE_DIR) is not used at all: graphs go to a private folder (0700, in the temp dir) instead.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path

import torch

from seg.infer.export import GRAPH_VERSION, OPSET

log = logging.getLogger("seg")
# Opening a planted link or FIFO must neither follow it nor block.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def cache_dir() -> Path:
    """Folder of cached graphs: $SEG_CACHE_DIR, else ~/.cache/seg."""
    return Path(os.environ.get("SEG_CACHE_DIR") or Path.home() / ".cache" / "seg")


def private_dir() -> Path:
    """This user's own graph folder in the temp dir, used when the cache folder is not safe."""
    return Path(tempfile.gettempdir()) / f"seg-cache-{os.getuid()}" / "onnx"


def cache_key(sha256: str, opset: int = OPSET) -> str:
    """File name (32 hex digits) of the cached graph of a checkpoint with content hash `sha256`."""
    text = f"{sha256}|graph {GRAPH_VERSION}|torch {torch.__version__}|opset {opset}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def owned_safely(st: os.stat_result) -> bool:
    """Whether a file or folder belongs to this user (or root) and nobody else may write it."""
    return st.st_uid in (os.getuid(), 0) and not st.st_mode & 0o022


def _safe_folder(folder: Path) -> bool:
    """Create `folder` (0700) if missing; whether it is a folder `owned_safely`."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = folder.stat()
    return stat.S_ISDIR(st.st_mode) and owned_safely(st)


def graph_folder() -> Path:
    """The folder to read and write graphs in: cache_dir()/onnx, or `private_dir()` with one warning when
    others may write the former. Raises OSError when neither can be made or trusted."""
    shared = cache_dir() / "onnx"
    if _safe_folder(shared):
        return shared
    private = private_dir()
    if not _safe_folder(private.parent) or not _safe_folder(private):
        raise OSError(f"{shared}: others may write it, and the private folder {private} is not safe either")
    log.warning("warning: %s: others may write this cache folder, or it is not yours; its graphs are not "
                "used (building in %s instead)", shared, private)
    return private


def read_trusted(path: Path) -> bytes | None:
    """The bytes of `path` when it is a regular file (not a link) `owned_safely`; None otherwise or when
    it cannot be read. Checked on the open file itself, so it cannot be swapped between check and read."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or not owned_safely(st):
            return None
        try:
            return f.read()
        except OSError:
            return None


def _record(sha256: str, graph: bytes) -> dict:
    return {"graph_sha256": hashlib.sha256(graph).hexdigest(), "checkpoint_sha256": sha256,
            "graph_version": GRAPH_VERSION}


def read_entry(folder: Path, key: str, sha256: str) -> bytes | None:
    """The graph bytes of entry `key` in `folder` (a `graph_folder`), or None when it is missing, not
    trusted (`read_trusted`), or its record does not match these bytes and the checkpoint hash `sha256`."""
    record, graph = read_trusted(folder / f"{key}.json"), read_trusted(folder / f"{key}.onnx")
    if record is None or graph is None:
        return None
    try:
        kept = json.loads(record)
    except ValueError:
        return None
    return graph if kept == _record(sha256, graph) else None


def write_record(folder: Path, key: str, sha256: str, graph: bytes) -> None:
    """Record (atomically) that `graph`, the bytes of `folder/<key>.onnx`, is the graph of checkpoint `sha256`."""
    path = folder / f"{key}.json"
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_record(sha256, graph), f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_entry(folder: Path, key: str) -> None:
    """Delete entry `key` (graph and record) from `folder`, whatever is left of it."""
    for suffix in (".onnx", ".json"):
        (folder / f"{key}{suffix}").unlink(missing_ok=True)
