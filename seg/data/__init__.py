"""Datasets: the Vistas layout (`vistas`), the synthetic world as datasets (`synthetic`), the v2 transforms
(`transforms`), sample frames for checks (`samples`), downsizing (`prepare`) and class statistics (`stats`).

`from seg.data import VistasDataset` (and the other names in `__all__`) imports the defining module on first
use. Loading them all here would import torch with the package, and `seg.data.prepare` (`python -m
seg.prepare` and its worker processes) is numpy and Pillow only: torch takes seconds to import.
"""
from __future__ import annotations

import importlib

_HOMES = {
    "SynthPool": "seg.data.synthetic",
    "SynthStream": "seg.data.synthetic",
    "get_transform": "seg.data.transforms",
    "DataError": "seg.data.vistas",
    "VistasDataset": "seg.data.vistas",
    "check_split": "seg.data.vistas",
    "list_images": "seg.data.vistas",
    "read_label": "seg.data.vistas",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    """The re-exported `name` from its module (PEP 562); AttributeError for anything else."""
    if name not in _HOMES:
        raise AttributeError(f"module 'seg.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
