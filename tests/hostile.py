"""Hostile inputs the safety tests plant in tiny datasets: each is the smallest file that once gave a traceback.

Every function takes a Vistas-layout root made by `conftest.write_vistas` and damages one thing in it;
it returns the path (or name fragment) that the one-line error is expected to name.
"""
from __future__ import annotations

import errno
import io
import json
import os
import shutil
import struct
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

from seg.classes import VISTAS


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (8-bit gray) with a few bytes of data: a decompression bomb's
    signature without the bomb, so the file is 100 bytes but any decoder that trusts it allocates GBs."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def bomb_label(root: Path, split: str = "validation") -> Path:
    """Replace the first label of `split` with a 20000x20000 header-only PNG."""
    path = sorted((root / split / "labels").iterdir())[0]
    path.write_bytes(png_header_only(20000, 20000))
    return path


def nested_config(root: Path, depth: int = 200_000) -> Path:
    """config.json nested `depth` lists deep (Python's json recursion limit is ~1000)."""
    path = root / "config.json"
    path.write_text('{"labels": ' + "[" * depth + "]" * depth + "}")
    return path


def many_classes_config(root: Path, n: int = 300) -> Path:
    """A config.json with n classes: more than 8-bit label ids can address."""
    labels = [{"name": f"class-{i}", "readable": f"Class {i}", "color": [i % 256, 0, 0]} for i in range(n)]
    path = root / "config.json"
    path.write_text(json.dumps({"labels": labels}))
    return path


def overflow_color_config(root: Path) -> Path:
    """The Vistas table with class 3's color set to [300, -5, 0]."""
    cfg = VISTAS.to_config()
    cfg["labels"][3]["color"] = [300, -5, 0]
    path = root / "config.json"
    path.write_text(json.dumps(cfg))
    return path


# Printed raw, this clears the screen and sets the terminal's title.
ANSI_NAME = "\x1b[2J\x1b]0;pwned\x07Bird"


def ansi_config(root: Path) -> Path:
    """The Vistas table with class 0's readable name carrying terminal escapes (ANSI_NAME)."""
    cfg = VISTAS.to_config()
    cfg["labels"][0]["readable"] = ANSI_NAME
    path = root / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def truncate(path: Path, keep: float = 0.4) -> Path:
    """Cut a file short (its header survives, the pixel data does not)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def undecodable_name(root: Path, split: str = "validation") -> bytes:
    """Rename the first frame of `split` (image and label) to the bytes b"\\xff\\xfe" + stem; returns the new stem."""
    img = sorted((root / split / "images").iterdir())[0]
    lbl = root / split / "labels" / (img.stem + ".png")
    stem = b"\xff\xfe" + os.fsencode(img.stem)
    os.rename(os.fsencode(img), os.fsencode(img.parent) + b"/" + stem + b".jpg")
    os.rename(os.fsencode(lbl), os.fsencode(lbl.parent) + b"/" + stem + b".png")
    return stem


@contextmanager
def unreadable(folder: Path):
    """Mode 000 on `folder` while inside. Root reads such a folder anyway, so there the listing is refused
    the way the kernel refuses it to anyone else: Path.iterdir / os.scandir on it raise PermissionError."""
    target = os.fspath(folder)
    real_iterdir, real_scandir = Path.iterdir, os.scandir

    def iterdir(self):
        if os.fspath(self) == target:
            raise PermissionError(13, "Permission denied", target)
        return real_iterdir(self)

    def scandir(path="."):
        if os.fspath(path) == target:
            raise PermissionError(13, "Permission denied", target)
        return real_scandir(path)

    folder.chmod(0)
    as_root = os.access(folder, os.R_OK)
    if as_root:
        Path.iterdir, os.scandir = iterdir, scandir
    try:
        yield folder
    finally:
        if as_root:
            Path.iterdir, os.scandir = real_iterdir, real_scandir
        folder.chmod(0o755)


class FullDisk:
    """A file object on a disk that fills up after `room` bytes: write raises ENOSPC, like the kernel."""

    def __init__(self, f, room: int = 4096):
        self.f, self.room = f, room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def full_disk_fdopen(room: int = 4096):
    """A stand-in for os.fdopen whose files fill up after `room` bytes (patch it over a module's os.fdopen)."""
    real_fdopen = os.fdopen
    return lambda fd, mode="r": FullDisk(real_fdopen(fd, mode), room)


def deflated(archive: bytes) -> bytes:
    """A torch.save archive with every record deflated: torch reads it all the same, and zeros shrink ~1000x,
    so a few kB on disk can inflate to a GB (the issue's 9 MB file held a 3 GB tensor)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            with src.open(info) as r, dst.open(info.filename, "w", force_zip64=info.file_size > 2**30) as w:
                shutil.copyfileobj(r, w, 1 << 20)
    return out.getvalue()


def claim_size(archive: bytes, content: bytes, size: int) -> bytes:
    """The archive with the record holding exactly `content` declared `size` bytes long in the zip directory
    (central and local headers), its data untouched: a header bomb. Any reader that trusts the directory
    allocates `size` bytes; one that reads the record fails, since the data ends long before."""
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        (target,) = [i for i in z.infolist() if z.read(i) == content]
        at = z.start_dir
    data = bytearray(archive)
    struct.pack_into("<I", data, target.header_offset + 22, size)  # the local header's uncompressed size
    while data[at: at + 4] == b"PK\x01\x02":  # central directory entries, one after another
        name_len, extra_len, comment_len = struct.unpack_from("<3H", data, at + 28)
        if data[at + 46: at + 46 + name_len] == target.filename.encode():
            struct.pack_into("<I", data, at + 24, size)
            return bytes(data)
        at += 46 + name_len + extra_len + comment_len
    raise AssertionError(f"{target.filename}: no central directory entry")
