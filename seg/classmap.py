"""Named class mappings: a dataset's class table folded into a smaller one, matched by class NAME.

`--classes lanes` trains the 2-class lane-marking model: every marking class of the dataset's table ->
1 (Lane Marking), everything else -> 0 (Rest), the table's ignore class (Unlabeled) stays ignored. The
rule reads names, not ids, so it holds for the built-in v1.2 table (Lane Marking - General, - Crosswalk),
the synthetic world, and a real Vistas v2.0 config.json with its dozen `marking--*` / `marking-only--*`
classes alike.

The mapped table's ignore index is `VOID` (255), past its two classes: a 2-class model has no output for
"no label", and 255 is what label tools write for it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from seg.classes import ClassTable

VOID = 255  # ignore id of a mapped table (outside its classes)

LANES = ClassTable(
    names=("rest", "marking"),
    readable=("Rest", "Lane Marking"),
    colors=((0, 0, 0), (255, 255, 255)),  # marking white, as Vistas draws Lane Marking - General
    ignore_index=VOID,
)
_MARKING_PREFIXES = ("marking--", "marking-only--")  # Vistas config names (v1.2 and v2.0)


def is_lane_marking(name: str, readable: str) -> bool:
    """Whether a class is a painted marking: by config name, or by readable name for tables without them."""
    return name.lower().startswith(_MARKING_PREFIXES) or readable.lower().startswith("lane marking")


@dataclass(frozen=True)
class ClassMap:
    """A mapping resolved against one source table.

    name: the mapping's name ("lanes"); table: the mapped ClassTable; lut: (256,) int64, source id ->
    mapped id (VOID for the source's ignore class, for 255, and for ids past the source table).
    """

    name: str
    table: ClassTable
    lut: np.ndarray

    def __call__(self, ids):
        """Map class ids: numpy array or torch tensor of any shape (values 0..255) -> same kind, int64."""
        if isinstance(ids, torch.Tensor):
            return torch.from_numpy(self.lut)[ids.long()]
        return self.lut[np.asarray(ids).astype(np.intp)]


def _lanes(source: ClassTable) -> ClassMap:
    lut = np.full(256, VOID, np.int64)
    lut[: len(source)] = 0
    marks = [i for i, (n, r) in enumerate(zip(source.names, source.readable)) if is_lane_marking(n, r)]
    marks = [i for i in marks if i != source.ignore_index]
    if not marks:
        raise ValueError("class table has no lane-marking class (names starting 'marking--' or "
                         "'marking-only--', or readable 'Lane Marking...'); --classes lanes needs one")
    lut[marks] = 1
    if source.ignore_index is not None:
        lut[source.ignore_index] = VOID
    return ClassMap("lanes", LANES, lut)


MAPPINGS: dict[str, Callable[[ClassTable], ClassMap]] = {"lanes": _lanes}


def list_mappings() -> list[str]:
    """Names of the known class mappings, sorted (the choices of `--classes`)."""
    return sorted(MAPPINGS)


def get_classmap(name: str, source: ClassTable) -> ClassMap:
    """Resolve mapping `name` against `source`. Raises ValueError for an unknown name (listing the known
    ones) or a table the mapping cannot use."""
    if name not in MAPPINGS:
        raise ValueError(f"unknown class mapping {name!r}; known: {', '.join(list_mappings())}")
    return MAPPINGS[name](source)


class MapTarget:
    """Transform wrapper: `(image, target) -> (image, classmap(target))` after `transforms` (may be None).

    Mapping after the transforms keeps their padding (filled with the source's ignore id) ignored too.
    A plain class, so DataLoader workers can pickle it.
    """

    def __init__(self, transforms, classmap: ClassMap):
        self.transforms, self.classmap = transforms, classmap

    def __call__(self, image, target):
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, self.classmap(target)


def remap_dataset(dataset, name: str, source: ClassTable | None = None) -> ClassTable:
    """Make `dataset` yield targets mapped by `name` (wraps its `transforms` in place); returns the mapped table.

    `source` defaults to `dataset.classes` (VistasDataset); synthetic datasets, which have none, pass it.
    """
    source = source if source is not None else dataset.classes
    try:
        cmap = get_classmap(name, source)
    except ValueError as e:
        raise ValueError(f"{getattr(dataset, 'root', 'synthetic world')}: {e}") from None
    dataset.transforms = MapTarget(dataset.transforms, cmap)
    return cmap.table


def truth_for_model(ids: np.ndarray, source: ClassTable, name: str | None) -> np.ndarray:
    """Ground truth in a checkpoint's classes: ids mapped by the checkpoint's mapping `name`
    (uint8 (H, W), VOID where ignored), or returned unchanged when it has none."""
    if not name:
        return ids
    return get_classmap(name, source)(ids).astype(np.uint8)
