"""The Mapillary Vistas v1.2 class table: the one place for class names, colors and the ignore index.

Label PNGs in Vistas are paletted: the pixel value *is* the class id. Colors are only for display and
must never be used to read labels (v1.0 palettes repeat colors across classes).
"""
from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg.cli import one_line

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
MAX_CLASSES = 256  # label maps and predictions are uint8 ids
MAX_NAME_CHARS = 200
MAX_CONFIG_BYTES = 4_000_000  # a 256-class config.json is ~30 kB


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
        """The checkpoint form back into a table; ValueError naming the field ("classes.colors[3]: ...")."""
        if not isinstance(d, dict):
            raise ValueError(f"classes: expected a dict of names, readable, colors, got {short_repr(d)}")
        for key in ("names", "readable", "colors"):
            if key not in d:
                raise ValueError(f"classes.{key}: missing")
        return make_table(d["names"], d["readable"], d["colors"], d.get("ignore_index"), "classes.")

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
    Raises ValueError naming the file (and the field) when it is not a valid Vistas config: unreadable,
    over MAX_CONFIG_BYTES, not JSON, nested too deep, or a label with a bad name or color.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError(f"over {MAX_CONFIG_BYTES:,} bytes")
        labels = json.loads(path.read_bytes())["labels"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:  # RecursionError: [[[[...]]]]
        raise ValueError(f"{path}: not a Vistas config.json ({one_line(e, 160, kind=True)})") from None
    try:
        if not isinstance(labels, list):
            raise ValueError(f"labels: expected a list, got {short_repr(labels)}")
        for i, label in enumerate(labels):
            if not isinstance(label, dict) or "name" not in label or "color" not in label:
                raise ValueError(f"labels[{i}]: expected an object with a name and a color")
        names = [label["name"] for label in labels]
        readable = [label.get("readable", label["name"]) for label in labels]
        colors = [label["color"] for label in labels]
        skipped = [i for i, label in enumerate(labels) if not label.get("evaluate", True)]
        return make_table(names, readable, colors, skipped[-1] if skipped else None, "labels.",
                          item=lambda key, i: f"labels[{i}].{_CONFIG_KEYS[key]}")
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


_CONFIG_KEYS = {"names": "name", "readable": "readable", "colors": "color"}


def make_table(names, readable, colors, ignore_index, prefix: str = "", item=None) -> ClassTable:
    """Check raw class fields (from a checkpoint or a config.json) and build the table.

    names / readable: 1..MAX_CLASSES non-empty strings of at most MAX_NAME_CHARS (valid Unicode, no control
    characters: names reach terminals and pages);
    colors: as many [r, g, b] ints in 0..255; ignore_index: None, an id of the table, or 255 (a mapped
    table's "no label", past its classes: seg.classmap).
    Raises ValueError starting with the field, e.g. "classes.colors[3]: expected [r, g, b] ints in 0..255".
    `item(key, i)` names one entry's field (default f"{prefix}{key}[{i}]").
    """
    item = item or (lambda key, i: f"{prefix}{key}[{i}]")
    for key, seq in (("names", names), ("readable", readable), ("colors", colors)):
        if not isinstance(seq, (list, tuple)):
            raise ValueError(f"{prefix}{key}: expected a list, got {short_repr(seq)}")
    n = len(names)
    if not 1 <= n <= MAX_CLASSES:
        raise ValueError(f"{prefix}names: {n} classes, expected 1 to {MAX_CLASSES} (label maps hold 8-bit ids)")
    for key, seq in (("readable", readable), ("colors", colors)):
        if len(seq) != n:
            raise ValueError(f"{prefix}{key}: {len(seq)} entries for {n} class names")
    for key, seq in (("names", names), ("readable", readable)):
        for i, v in enumerate(seq):
            if not isinstance(v, str) or not v.strip() or len(v) > MAX_NAME_CHARS or not _is_unicode(v):
                raise ValueError(f"{item(key, i)}: expected a non-empty text of at most {MAX_NAME_CHARS} "
                                 f"characters, got {short_repr(v)}")
            bad = next((ch for ch in v if _is_control(ch)), None)
            if bad is not None:
                raise ValueError(f"{item(key, i)}: control character {bad!r} in {short_repr(v)} (names are "
                                 "printed to terminals and pages, where it would act instead of show)")
    for i, c in enumerate(colors):
        if not (isinstance(c, (list, tuple)) and len(c) == 3 and all(_is_int(v) and 0 <= v <= 255 for v in c)):
            raise ValueError(f"{item('colors', i)}: expected [r, g, b] ints in 0..255, got {short_repr(c)}")
    if ignore_index is not None and not (_is_int(ignore_index) and (0 <= ignore_index < n or ignore_index == 255)):
        raise ValueError(f"{prefix}ignore_index: expected null, a class id in 0..{n - 1} or 255 (no label, past the "
                         f"table), got {short_repr(ignore_index)}")
    return ClassTable(tuple(names), tuple(readable), tuple(tuple(int(v) for v in c) for c in colors),
                      None if ignore_index is None else int(ignore_index))


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


# Bidirectional embeddings, overrides and isolates: they reorder the text around them on screen.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _is_control(ch: str) -> bool:
    """C0/C1 controls (ESC starts the sequences that clear a terminal or set its title), line and paragraph
    separators, and bidirectional overrides."""
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS


def _is_unicode(text: str) -> bool:
    """False for text holding lone surrogates (JSON "\\udcff"), which no page or terminal can encode."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def short_repr(value, limit: int = 60) -> str:
    """A short repr of a hostile value for an error line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table_for(root: str | Path | None) -> ClassTable:
    """The class table of a dataset folder: its config.json when present, else the built-in v1.2 table."""
    if root is not None and (Path(root) / "config.json").is_file():
        return load_config(Path(root) / "config.json")
    return VISTAS
