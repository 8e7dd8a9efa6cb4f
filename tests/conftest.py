"""Shared fixtures: tiny datasets in the exact Vistas layout, made by the tests themselves."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seg.classes import VISTAS

ROAD, SKY, CAR = 13, 27, 55


def write_vistas(root: Path, n_train: int = 8, n_val: int = 4, size=(64, 48), seed: int = 0) -> Path:
    """Sky over road with one car at a random place; jpg images, P-mode label PNGs, config.json.

    Every pixel has a real class (no Unlabeled), so per-process pixel counts are equal in DDP tests.
    """
    w, h = size
    rng = np.random.default_rng(seed)
    for split, n in (("training", n_train), ("validation", n_val)):
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            ids = np.full((h, w), SKY, np.uint8)
            ids[h // 2:] = ROAD
            x, y = int(rng.integers(0, w - w // 4)), int(rng.integers(h // 4, h // 2))
            ids[y:y + h // 3, x:x + w // 4] = CAR
            rgb = VISTAS.palette()[ids] // 2 + rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(root / split / "images" / f"f{i:03d}.jpg", quality=95)
            label = Image.fromarray(ids, "P")
            label.putpalette(VISTAS.flat_palette())
            label.save(root / split / "labels" / f"f{i:03d}.png")
    (root / "config.json").write_text(json.dumps(VISTAS.to_config()))
    return root


@pytest.fixture
def tiny_vistas(tmp_path) -> Path:
    return write_vistas(tmp_path / "vistas")


@pytest.fixture(scope="session", autouse=True)
def _onnx_cache(tmp_path_factory):
    """Graphs the onnxruntime backend builds go to a tmp cache (inherited by CLI subprocesses), never ~/.cache."""
    saved = os.environ.get("SEG_CACHE_DIR")
    os.environ["SEG_CACHE_DIR"] = str(tmp_path_factory.mktemp("seg_cache"))
    yield
    if saved is None:
        os.environ.pop("SEG_CACHE_DIR", None)
    else:
        os.environ["SEG_CACHE_DIR"] = saved


def run_main(main, capsys, *args) -> subprocess.CompletedProcess:
    """A command's `main(ARGS)` in this process, as a CompletedProcess: no second torch import (seconds on
    this CPU) per call; argparse's exits (--help, usage errors) give their code."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)
