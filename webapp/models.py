"""Choosing and comparing checkpoints in the app: every checkpoint found by name, and A/B comparison.

`find_checkpoints` lists the bundled checkpoints (checkpoints/NAME/model.pt) and those of every run under a
runs folder (model.pt and best.pt beside a metrics.jsonl), each with a label a user can pick by name.

Two checkpoints are compared in one class table: their own when it is the same; else, when one was trained
through a named class mapping (`seg.classmap`, e.g. the 2-class lanes model) that the other's table can be
folded through (the 66-class model), the mapped table, with the other's predictions folded into it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seg.train import runlog
from seg.classes import ClassTable
from seg.classmap import ClassMap, get_classmap
from seg.paths import REPO_ROOT, inside, printable

BUNDLED = REPO_ROOT / "checkpoints"
FILES = ("model.pt", "best.pt")  # what a run leaves for inference (last.pt is the full training state)


@dataclass(frozen=True)
class Found:
    """One checkpoint file found, with the name the sidebar lists it under."""

    label: str  # e.g. "lanes (bundled)", "runs/ft · best.pt"
    path: Path


def find_checkpoints(runs_root: Path | None, roots: tuple[Path, ...], bundled: Path = BUNDLED) -> list[Found]:
    """Bundled checkpoints first (by folder name), then each run's under `runs_root`, sorted; one entry per
    file (a run listed both ways keeps its bundled label). Links leading outside `roots` are left out."""
    found: dict[Path, Found] = {}
    allowed = tuple(Path(r).resolve() for r in roots)
    if bundled.is_dir():
        for d in sorted(p for p in bundled.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for name in FILES:
                f = d / name
                if f.is_file() and inside(f, allowed):
                    tag = "" if name == "model.pt" else f" · {name}"
                    found.setdefault(f.resolve(), Found(f"{printable(d.name)} (bundled){tag}", f))
    if runs_root is not None:
        for run in runlog.list_runs(runs_root, roots):
            for name in FILES:
                f = run / name
                if f.is_file() and inside(f, allowed):
                    rel = run.relative_to(runs_root).as_posix() if run != Path(runs_root) else run.name
                    found.setdefault(f.resolve(), Found(f"{printable(rel)} · {name}", f))
    return list(found.values())


@dataclass(frozen=True)
class Comparison:
    """How two models' labels meet: `table` both are shown and scored in; `map_a` / `map_b` fold a model's
    own ids into it (None: already in it); `truth` the mapping name ground truth goes through (or None)."""

    table: ClassTable
    map_a: ClassMap | None
    map_b: ClassMap | None
    truth: str | None

    def fold(self, labels: np.ndarray, which: str) -> np.ndarray:
        """Model `which`'s ("a" or "b") (H, W) label ids in `table`: uint8, or `labels` itself when unfolded."""
        m = self.map_a if which == "a" else self.map_b
        return labels if m is None else m(labels).astype(np.uint8)


def compare(a_classes: ClassTable, a_map: str | None, b_classes: ClassTable, b_map: str | None) -> Comparison | None:
    """The common class table of models A and B (their `classes` and `meta["classmap"]`), or None when there
    is none (say, a 66-class model and one trained on another dataset's table)."""
    if a_classes == b_classes:
        return Comparison(a_classes, None, None, a_map or b_map)
    for mapped, mname, other, first in ((a_classes, a_map, b_classes, "b"), (b_classes, b_map, a_classes, "a")):
        if mname:
            try:
                cm = get_classmap(mname, other)
            except ValueError:
                continue
            if cm.table == mapped:
                return Comparison(mapped, cm if first == "a" else None, cm if first == "b" else None, mname)
    return None


def disagreement(image: np.ndarray, a: np.ndarray, b: np.ndarray, color=(255, 0, 255)) -> tuple[np.ndarray, float]:
    """Pixels where label maps `a` and `b` differ in `color` over a dimmed gray copy of `image`.

    Returns ((H, W, 3) uint8, share of pixels that differ)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"label maps of different sizes: {a.shape} and {b.shape}")
    gray = np.asarray(image, dtype=np.float32)[..., :3].mean(-1) * 0.35
    out = np.repeat(gray[..., None], 3, axis=-1).astype(np.uint8)
    differ = a != b
    out[differ] = color
    return out, float(differ.mean()) if differ.size else 0.0


def iou_table(iou_a: dict[str, float | None], iou_b: dict[str, float | None]) -> list[dict]:
    """Rows {class, a, b, diff (b - a)} for the classes either model was scored on, sorted by `diff` (where B
    loses most first); a class one of them has no score for gets None there and sorts last."""
    rows = []
    for name in dict.fromkeys([*iou_a, *iou_b]):
        a, b = iou_a.get(name), iou_b.get(name)
        if a is None and b is None:
            continue
        rows.append({"class": name, "a": a, "b": b, "diff": None if a is None or b is None else b - a})
    return sorted(rows, key=lambda r: (r["diff"] is None, r["diff"] if r["diff"] is not None else 0.0))


def points(a: float | None, b: float | None) -> str | None:
    """B − A in percentage points between two shares (0..1) as the page shows them (a percent with one
    decimal), so the delta matches the two figures beside it: 0.8512, 0.8668 -> "+1.6 pp". None if one is
    missing."""
    if a is None or b is None:
        return None
    d = round(round(100 * b, 1) - round(100 * a, 1), 1) + 0.0  # + 0.0: no "-0.0"
    return f"{d:+.1f} pp"


def iou_table_view(rows: list[dict]):
    """The rows of `iou_table` as a styled pandas frame: columns Class, A, B, B − A. The values stay shares
    (0..1); A and B read as percents with one decimal, B − A in percentage points from those shown figures."""
    frame = pd.DataFrame([{"Class": r["class"], "A": r["a"], "B": r["b"], "B − A": r["diff"]} for r in rows],
                         columns=["Class", "A", "B", "B − A"])
    style = frame.style.format({"A": "{:.1%}", "B": "{:.1%}"}, na_rep="–")
    for i, r in enumerate(rows):
        shown = points(r["a"], r["b"]) or "–"
        style = style.format(lambda _, text=shown: text, subset=pd.IndexSlice[[i], ["B − A"]])
    return style
