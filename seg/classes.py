"""The Mapillary Vistas v1.2 class table: the one place for class names, colors and the ignore index.

Label PNGs in Vistas are paletted: the pixel value *is* the class id. Colors are only for display and
must never be used to read labels (v1.0 palettes repeat colors across classes).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# (config name, readable name, RGB) in Vistas v1.2 id order.
_VISTAS_V12 = [
    ("animal--bird", "Bird", (165, 42, 42)),
    ("animal--ground-animal", "Ground Animal", (0, 192, 0)),
    ("construction--barrier--curb", "Curb", (196, 196, 196)),
    ("construction--barrier--fence", "Fence", (190, 153, 153)),
    ("construction--barrier--guard-rail", "Guard Rail", (180, 165, 180)),
    ("construction--barrier--other-barrier", "Barrier", (90, 120, 150)),
    ("construction--barrier--wall", "Wall", (102, 102, 156)),
    ("construction--flat--bike-lane", "Bike Lane", (128, 64, 255)),
    ("construction--flat--crosswalk-plain", "Crosswalk - Plain", (140, 140, 200)),
    ("construction--flat--curb-cut", "Curb Cut", (170, 170, 170)),
    ("construction--flat--parking", "Parking", (250, 170, 160)),
    ("construction--flat--pedestrian-area", "Pedestrian Area", (96, 96, 96)),
    ("construction--flat--rail-track", "Rail Track", (230, 150, 140)),
    ("construction--flat--road", "Road", (128, 64, 128)),
    ("construction--flat--service-lane", "Service Lane", (110, 110, 110)),
    ("construction--flat--sidewalk", "Sidewalk", (244, 35, 232)),
    ("construction--structure--bridge", "Bridge", (150, 100, 100)),
    ("construction--structure--building", "Building", (70, 70, 70)),
    ("construction--structure--tunnel", "Tunnel", (150, 120, 90)),
    ("human--person", "Person", (220, 20, 60)),
    ("human--rider--bicyclist", "Bicyclist", (255, 0, 0)),
    ("human--rider--motorcyclist", "Motorcyclist", (255, 0, 100)),
    ("human--rider--other-rider", "Other Rider", (255, 0, 200)),
    ("marking--crosswalk-zebra", "Lane Marking - Crosswalk", (200, 128, 128)),
    ("marking--general", "Lane Marking - General", (255, 255, 255)),
    ("nature--mountain", "Mountain", (64, 170, 64)),
    ("nature--sand", "Sand", (230, 160, 50)),
    ("nature--sky", "Sky", (70, 130, 180)),
    ("nature--snow", "Snow", (190, 255, 255)),
    ("nature--terrain", "Terrain", (152, 251, 152)),
    ("nature--vegetation", "Vegetation", (107, 142, 35)),
    ("nature--water", "Water", (0, 170, 30)),
    ("object--banner", "Banner", (255, 255, 128)),
    ("object--bench", "Bench", (250, 0, 30)),
    ("object--bike-rack", "Bike Rack", (100, 140, 180)),
    ("object--billboard", "Billboard", (220, 220, 220)),
    ("object--catch-basin", "Catch Basin", (220, 128, 128)),
    ("object--cctv-camera", "CCTV Camera", (222, 40, 40)),
    ("object--fire-hydrant", "Fire Hydrant", (100, 170, 30)),
    ("object--junction-box", "Junction Box", (40, 40, 40)),
    ("object--mailbox", "Mailbox", (33, 33, 33)),
    ("object--manhole", "Manhole", (100, 128, 160)),
    ("object--phone-booth", "Phone Booth", (142, 0, 0)),
    ("object--pothole", "Pothole", (70, 100, 150)),
    ("object--street-light", "Street Light", (210, 170, 100)),
    ("object--support--pole", "Pole", (153, 153, 153)),
    ("object--support--traffic-sign-frame", "Traffic Sign Frame", (128, 128, 128)),
    ("object--support--utility-pole", "Utility Pole", (0, 0, 80)),
    ("object--traffic-light", "Traffic Light", (250, 170, 30)),
    ("object--traffic-sign--back", "Traffic Sign (Back)", (192, 192, 192)),
    ("object--traffic-sign--front", "Traffic Sign (Front)", (220, 220, 0)),
    ("object--trash-can", "Trash Can", (140, 140, 20)),
    ("object--vehicle--bicycle", "Bicycle", (119, 11, 32)),
    ("object--vehicle--boat", "Boat", (150, 0, 255)),
    ("object--vehicle--bus", "Bus", (0, 60, 100)),
    ("object--vehicle--car", "Car", (0, 0, 142)),
    ("object--vehicle--caravan", "Caravan", (0, 0, 90)),
    ("object--vehicle--motorcycle", "Motorcycle", (0, 0, 230)),
    ("object--vehicle--on-rails", "On Rails", (0, 80, 100)),
    ("object--vehicle--other-vehicle", "Other Vehicle", (128, 64, 64)),
    ("object--vehicle--trailer", "Trailer", (0, 0, 110)),
    ("object--vehicle--truck", "Truck", (0, 0, 70)),
    ("object--vehicle--wheeled-slow", "Wheeled Slow", (0, 0, 192)),
    ("void--car-mount", "Car Mount", (32, 32, 32)),
    ("void--ego-vehicle", "Ego Vehicle", (120, 10, 10)),
    ("void--unlabeled", "Unlabeled", (0, 0, 0)),
]

NUM_CLASSES = len(_VISTAS_V12)  # 66
IGNORE_INDEX = NUM_CLASSES - 1  # 65 = Unlabeled: ignored in loss and metrics


@dataclass(frozen=True)
class ClassTable:
    """Class names and display colors, indexed by Vistas id.

    `ignore_index` is the id excluded from loss and metrics (None when every class is evaluated); it may
    lie past the table (255 in a `seg.classmap` table, whose model has no output for "no label").
    """

    names: tuple[str, ...]  # config names, e.g. "construction--flat--road"
    readable: tuple[str, ...]  # display names, e.g. "Road"
    colors: tuple[tuple[int, int, int], ...]  # RGB
    ignore_index: int | None

    def __len__(self) -> int:
        return len(self.names)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def palette(self) -> np.ndarray:
        """(256, 3) uint8 RGB lookup table; ids past the table map to black."""
        lut = np.zeros((256, 3), np.uint8)
        lut[: len(self.colors)] = np.asarray(self.colors, np.uint8)
        return lut

    def flat_palette(self) -> list[int]:
        """768 ints for `PIL.Image.putpalette`."""
        return self.palette().reshape(-1).tolist()

    def index(self, name: str) -> int:
        """Id of a class by config or readable name."""
        for i, (n, r) in enumerate(zip(self.names, self.readable)):
            if name in (n, r):
                return i
        raise KeyError(f"unknown class {name!r}")

    def to_dict(self) -> dict:
        """JSON-safe form stored in checkpoints."""
        return {
            "names": list(self.names),
            "readable": list(self.readable),
            "colors": [list(c) for c in self.colors],
            "ignore_index": self.ignore_index,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ClassTable":
        return cls(
            names=tuple(d["names"]),
            readable=tuple(d["readable"]),
            colors=tuple(tuple(int(v) for v in c) for c in d["colors"]),
            ignore_index=d.get("ignore_index"),
        )

    def to_config(self) -> dict:
        """The dataset `config.json` form (Vistas layout)."""
        return {
            "labels": [
                {
                    "name": n,
                    "readable": r,
                    "color": list(c),
                    "instances": False,
                    "evaluate": i != self.ignore_index,
                }
                for i, (n, r, c) in enumerate(zip(self.names, self.readable, self.colors))
            ]
        }


VISTAS = ClassTable(
    names=tuple(n for n, _, _ in _VISTAS_V12),
    readable=tuple(r for _, r, _ in _VISTAS_V12),
    colors=tuple(c for _, _, c in _VISTAS_V12),
    ignore_index=IGNORE_INDEX,
)


def load_config(path: str | Path) -> ClassTable:
    """Read a Vistas `config.json` into a ClassTable.

    The ignore index is the last class whose `evaluate` is false (Unlabeled in Vistas), else None.
    Raises ValueError naming the file when it is not a valid Vistas config.
    """
    path = Path(path)
    try:
        labels = json.loads(path.read_text())["labels"]
        names = tuple(str(l["name"]) for l in labels)
        readable = tuple(str(l.get("readable", l["name"])) for l in labels)
        colors = tuple(tuple(int(v) for v in l["color"]) for l in labels)
        evaluate = [bool(l.get("evaluate", True)) for l in labels]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a Vistas config.json ({e.__class__.__name__}: {e})") from None
    if not labels or len(labels) > 256 or any(len(c) != 3 for c in colors):
        raise ValueError(f"{path}: expected 1-256 labels with RGB colors")
    skipped = [i for i, ev in enumerate(evaluate) if not ev]
    return ClassTable(names, readable, colors, skipped[-1] if skipped else None)


def table_for(root: str | Path | None) -> ClassTable:
    """The class table of a dataset folder: its config.json when present, else the built-in v1.2 table."""
    if root is not None and (Path(root) / "config.json").is_file():
        return load_config(Path(root) / "config.json")
    return VISTAS
