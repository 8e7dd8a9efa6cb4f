"""A cache bounded by the bytes it holds, for the app's decoded frames and predictions.

Streamlit's caches bound the number of entries only: 32 results of 40-megapixel uploads are ~10 GB. This
one evicts the least recently used entries until the bytes held fit `max_bytes`, and never keeps a value
larger than that. Values are shared between sessions, not copied: their arrays are made read-only.
"""
from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

SMALL_OBJECT_BYTES = 64  # what a number, None or a short object is counted as


def nbytes(value) -> int:
    """Approximate bytes held by `value`: arrays, bytes and strings by size, containers and dataclasses summed."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    if isinstance(value, dict):
        return sum(nbytes(k) + nbytes(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value) + SMALL_OBJECT_BYTES
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    return SMALL_OBJECT_BYTES


def freeze(value):
    """Make every array in `value` (arrays, tuples, lists, dataclass fields) read-only; returns `value`."""
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif isinstance(value, (list, tuple)):
        for v in value:
            freeze(v)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            freeze(getattr(value, f.name))
    return value


class ByteLRU:
    """A thread-safe least-recently-used map holding at most `max_bytes` (as counted by `nbytes`)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable, default=None):
        """The value under `key` (now the most recently used), or `default`."""
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key][0]

    def put(self, key: Hashable, value):
        """Keep `value` under `key` (read-only), evicting the least recently used entries until the bytes held
        fit; a value larger than `max_bytes` is not kept. Returns `value`."""
        size = nbytes(freeze(value))
        with self._lock:
            self._drop(key)
            if size > self.max_bytes:
                return value
            while self._items and self._bytes + size > self.max_bytes:
                self._drop(next(iter(self._items)))
            self._items[key] = (value, size)
            self._bytes += size
        return value

    def get_or_compute(self, key: Hashable, compute: Callable[[], object]):
        """The value under `key`, computed by `compute()` and kept when missing. Two sessions asking for the
        same missing key at once both compute it (the second result replaces the first)."""
        missing = object()
        value = self.get(key, missing)
        return self.put(key, compute()) if value is missing else value

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def _drop(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= item[1]
