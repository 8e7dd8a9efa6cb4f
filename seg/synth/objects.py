"""What every part of the street world (`seg.synth`) shares, and its basic painters.

Class ids `C` (Vistas v1.2) and material ids `M`; the frame's description (`Cam`, `Side`, `Line`, `Scene`,
filled by `seg.synth.scene.sample_scene`); the `Canvas`, which draws every polygon into the image, label and
material maps at once with the same vertices; the colour draws `pick`, `gray` and `vary`; painters of
buildings, trees, hedges, fences, poles, street and traffic lights and the skyline; and `add`/`add_along`,
which queue a painter in `Scene.items` as (depth key, draw(canvas)) pairs drawn far-to-near.

World coordinates: u metres across the road (0 = road centre line, + = right), y metres up, z metres
ahead along the road. The road centre line bends as x = yaw*z + curv*z^2, so every object placed at (u, z)
follows the curve.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
import numpy as np
from PIL import ImageDraw

from seg.classes import VISTAS

C = {k: VISTAS.index(n) for k, n in {
    "sky": "nature--sky", "road": "construction--flat--road", "sidewalk": "construction--flat--sidewalk",
    "curb": "construction--barrier--curb", "terrain": "nature--terrain", "veg": "nature--vegetation",
    "building": "construction--structure--building", "marking": "marking--general",
    "zebra": "marking--crosswalk-zebra", "pole": "object--support--pole", "lamp": "object--street-light",
    "sign": "object--traffic-sign--front", "tlight": "object--traffic-light",
    "fence": "construction--barrier--fence", "car": "object--vehicle--car", "truck": "object--vehicle--truck",
    "bus": "object--vehicle--bus", "person": "human--person",
    "ego": "void--ego-vehicle", "cross_plain": "construction--flat--crosswalk-plain",
    "bike_lane": "construction--flat--bike-lane", "parking": "construction--flat--parking",
    "curb_cut": "construction--flat--curb-cut", "manhole": "object--manhole", "basin": "object--catch-basin",
    "billboard": "object--billboard", "wall": "construction--barrier--wall",
    "guard_rail": "construction--barrier--guard-rail", "barrier": "construction--barrier--other-barrier",
    "utility_pole": "object--support--utility-pole", "sign_back": "object--traffic-sign--back",
    "sign_frame": "object--support--traffic-sign-frame", "bicycle": "object--vehicle--bicycle",
    "motorcycle": "object--vehicle--motorcycle", "bicyclist": "human--rider--bicyclist",
    "motorcyclist": "human--rider--motorcyclist", "bench": "object--bench", "trash": "object--trash-can",
    "hydrant": "object--fire-hydrant", "junction_box": "object--junction-box", "mountain": "nature--mountain",
    "water": "nature--water",
}.items()}
M = {k: i for i, k in enumerate(("flat", "brick", "plaster", "foliage", "fine", "planks", "bars", "bark",
                                 "concrete", "tiles", "grate"))}
NEAR = 1.0  # near clipping plane, metres

CLOTHES = [(30, 30, 35), (40, 50, 90), (200, 200, 200), (140, 30, 30), (60, 70, 60), (170, 150, 120),
           (90, 90, 95), (230, 230, 225), (40, 80, 130), (120, 60, 100)]
SKIN = [(230, 190, 160), (200, 150, 115), (150, 100, 70), (95, 65, 45), (240, 205, 180)]


@dataclass(frozen=True)
class Cam:
    """Pinhole camera over the road, fixed for a frame."""

    f: float  # focal length, px
    cx: float
    yh: float  # horizon row, px
    h: float  # camera height, m
    x0: float  # camera lateral position, m
    yaw: float
    curv: float


@dataclass
class Side:
    """One side of the road's cross-section (left = sides[0], right = sides[1])."""

    curb: float  # widths in metres; 0 = absent
    verge: float
    walk: float
    beyond: int  # ground class past the sidewalk
    edge: float = 0.0  # |u| of the outer edge of the sidewalk
    bike: float = 0.0  # bike lane width at the road's edge (inside the road surface); 0 = none
    park: float = 0.0  # parking lane width outside the bike lane; 0 = none
    kerb: float = 0.0  # |u| of the road surface's outer edge (travel lanes + bike + parking)


@dataclass
class Line:
    """A lane line along the road at lateral position u, half-width hw, metres."""

    u: float
    hw: float
    dash: float  # 0 = solid
    period: float
    phase: float
    yellow: bool


@dataclass
class Scene:
    """Everything random about one frame, and the queue of its objects (`items`)."""

    cam: Cam
    H: int
    min_px: float
    wr: float
    sides: list
    lines: list
    cross: tuple | None
    items: list = field(default_factory=list)
    # appearance, filled by seg.synth.scene
    ground_lut: tuple = ()
    grain_amp: float = 0.2
    tile: float = 0.5
    yellow_rgb: tuple = (210, 170, 50)
    sun_side: int = 1
    sun_rgb: np.ndarray = None
    shade_rgb: np.ndarray = None
    shadow_z: np.ndarray = None
    shadow_reach: np.ndarray = None
    fog_dist: float = 1e4
    fog_rgb: np.ndarray = None
    sky_horizon: np.ndarray = None
    sky_zenith: np.ndarray = None
    cloud_rgb: np.ndarray = None
    cloud_thr: float = 0.5
    cloud_alpha: float = 1.0
    cloud_off: tuple = (0, 0)
    noise: float = 3.0
    vignette: float = 0.2
    blur: float = 0.0
    tone_lut: list = ()
    face_light: dict = field(default_factory=dict)
    weather: str = "sun"
    style: object = None  # seg.synth.style.Style the appearance was drawn from
    looks: dict = field(default_factory=dict)  # base appearance choices, for tests of the held-out style
    cross_kind: str = "zebra"  # "zebra" (stripes on a plain crossing) or "plain" (two boundary lines)
    cross_paint: np.ndarray = None  # RGB of a plain crossing's surface, or None for the road's own
    manholes: list = field(default_factory=list)  # (u, z, r) metres
    basins: list = field(default_factory=list)  # (side, z) catch basins at the kerb
    driveways: list = field(default_factory=list)  # (side, z0, z1) lowered kerb (curb cut)
    patches: list = field(default_factory=list)  # (u0, u1, z0, z1, tone) repaired asphalt
    crack_amp: float = 0.0
    tree_shadows: list = field(default_factory=list)  # (u, z, r) ellipses of shade on the ground
    wet: float = 0.0  # 0 dry .. 1 wet road: darker, mirrors the sky
    water_side: int = 0  # -1/+1: a lake beyond the verge on that side
    grain: str = "asphalt"
    # camera, applied after painting (seg.synth.camera)
    roll: float = 0.0  # degrees
    distort: float = 0.0  # radial k1 (> 0 barrel)
    motion: tuple = (0, 0.0)  # (length px at 384 rows, angle rad)
    ego: dict = None  # the camera car's own hood or dashboard, or None
    jpeg: int = 0


class Canvas:
    """Draws each polygon into image, label and material maps with the same vertices."""

    def __init__(self, img, lab, mat, sc: Scene):
        self.img, self.lab, self.mat = ImageDraw.Draw(img), ImageDraw.Draw(lab), ImageDraw.Draw(mat)
        self.sc = sc
        c = sc.cam
        self._c = (c.f, c.cx, c.yh, c.h, c.x0, c.yaw, c.curv)

    def p(self, u: float, y: float, z: float) -> tuple[float, float]:
        """World point -> pixel (x, y)."""
        f, cx, yh, h, x0, yaw, curv = self._c
        z = max(z, NEAR)
        return cx + f * (u + yaw * z + curv * z * z - x0) / z, yh + f * (h - y) / z

    def poly(self, pts, rgb, cls, mat, z: float, light: float = 1.0) -> None:
        """Fill polygon `pts` [(x, y)...]; cls None paints the image only (shadows on the ground)."""
        a = 1.0 - math.exp(-z / self.sc.fog_dist)
        fr, fg, fb = self.sc.fog_rgb
        col = (int(min(255, rgb[0] * light) * (1 - a) + fr * a), int(min(255, rgb[1] * light) * (1 - a) + fg * a),
               int(min(255, rgb[2] * light) * (1 - a) + fb * a))
        self.img.polygon(pts, fill=col)
        if cls is not None:
            self.lab.polygon(pts, fill=cls)
            self.mat.polygon(pts, fill=mat)

    def zquad(self, u0, u1, y0, y1, z, rgb, cls, mat, light=1.0):
        """Rectangle facing the camera at depth z."""
        p = self.p
        self.poly([p(u0, y0, z), p(u1, y0, z), p(u1, y1, z), p(u0, y1, z)], rgb, cls, mat, z, light)

    def uquad(self, u, y0, y1, z0, z1, rgb, cls, mat, light=1.0, y0b=None, y1b=None):
        """Quad in the plane of constant u (a facade along the road); y0b/y1b: heights at z1 if different."""
        p = self.p
        y0b = y0 if y0b is None else y0b
        y1b = y1 if y1b is None else y1b
        self.poly([p(u, y0, z0), p(u, y0b, z1), p(u, y1b, z1), p(u, y1, z0)], rgb, cls, mat, z0, light)

    def blob(self, u, y, z, rx, ry, rgb, cls, mat, rng, n=14, jag=0.0, light=1.0):
        """Irregular ellipse facing the camera; jag > 0 roughens the outline (foliage)."""
        cx, cy = self.p(u, y, z)
        f = self.sc.cam.f / max(z, NEAR)
        th = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 1)
        r = 1.0 + jag * rng.uniform(-1, 1, n) if jag else np.ones(n)
        xs = cx + f * rx * r * np.cos(th)
        ys = cy + f * ry * r * np.sin(th)
        self.poly(list(zip(xs.tolist(), ys.tolist())), rgb, cls, mat, z, light)


def pick(rng, seq):
    """One item of `seq`, drawn uniformly."""
    # One uniform draw whatever len(seq) is (rng.integers may draw more for some bounds), so the two styles,
    # whose palettes differ in length, consume the stream alike and lay out the same scene for a seed.
    return seq[min(int(rng.random() * len(seq)), len(seq) - 1)]


def gray(rng, rgb, amount=25):
    """rgb brightened or darkened as a whole: neutral greys stay neutral."""
    d = rng.normal(0, amount)
    return tuple(int(min(255.0, max(0.0, c + d))) for c in rgb)


def vary(rng, rgb, amount=18):
    """rgb with each channel moved by its own normal draw (std `amount`), clipped to 0..255 ints."""
    d = rng.normal(0, amount, 3).tolist()
    return tuple(int(min(255.0, max(0.0, c + e))) for c, e in zip(rgb, d))


# ---------------------------------------------------------------- objects
def building(cv: Canvas, b: dict, za: float, zb: float) -> None:
    """One segment [za, zb] of a facade along the road: wall, cornice, string courses, framed windows,
    balconies, a shopfront with awning and fascia sign (Billboard), a gable roof; the near end face if za == z0."""
    s, u, hb, col = b["side"], b["u"], b["h"], b["color"]
    lit, front_lit = cv.sc.face_light[s], cv.sc.face_light[0]
    bld = C["building"]
    if za <= b["z0"] + 1e-6 and za > NEAR:  # end face toward the camera
        cv.zquad(u, u + s * b["depth"], 0, hb, za, col, bld, b["mat"], front_lit)
        if b["gable"]:
            p = cv.p
            cv.poly([p(u, hb, za), p(u + s * b["depth"], hb, za), p(u + s * b["depth"] / 2, hb + b["gable"], za)],
                    col, bld, b["mat"], za, front_lit * 0.95)
    cv.uquad(u, 0, hb, za, zb, col, bld, b["mat"], lit)
    if b["gable"]:  # roof slope seen from the street
        cv.uquad(u + s * 0.3, hb, hb + b["gable"], za, zb, b["roof"], bld, M["planks"], lit * 0.8)
    else:
        cv.uquad(u, hb - 0.5, hb, za, zb, b["trim"], bld, M["plaster"], lit * 0.75)  # cornice
    fh, bay, ww, wh = b["floor"], b["bay"], b["win_w"], b["win_h"]
    floors = int((hb - 0.8) // fh)
    for j in range(1, floors) if b["courses"] else ():
        cv.uquad(u, j * fh + 0.2, j * fh + 0.38, za, zb, b["trim"], bld, M["plaster"], lit * 0.9)
    k0 = math.ceil((za - b["z0"] - bay / 2) / bay)
    for k in range(max(k0, 0), 1000):
        zc = b["z0"] + bay / 2 + k * bay
        if zc + ww / 2 > min(zb, b["z1"] - 0.3):
            break
        if zc - ww / 2 < za:
            continue
        x0, _ = cv.p(u, 0, zc - ww / 2)
        x1, _ = cv.p(u, 0, zc + ww / 2)
        if abs(x1 - x0) < 1.5:
            continue
        fine = abs(x1 - x0) > 6  # frames, sills and balconies only where they resolve
        for j in range(b["shop"], floors):
            y0 = j * fh + 0.9
            g = b["glass"][(k * 7 + j * 3 + b["gseed"]) % len(b["glass"])]
            if fine:
                cv.uquad(u, y0 - 0.1, y0 + wh + 0.1, zc - ww / 2 - 0.1, zc + ww / 2 + 0.1, b["frame"], bld,
                         M["fine"], lit)
            cv.uquad(u, y0, y0 + wh, zc - ww / 2, zc + ww / 2, g, bld, M["fine"], 1.0)
            if fine and b["mullion"]:
                cv.uquad(u, y0, y0 + wh, zc - 0.04, zc + 0.04, b["frame"], bld, M["fine"], lit)
            if fine and b["balcony"] and j >= 1 and (k + j) % 2 == 0:
                ub = u - s * 0.9
                cv.uquad(ub, y0 - 0.25, y0 + 0.75, zc - ww, zc + ww, b["rail"], bld, M["bars"], lit * 0.9)
                cv.zquad(min(u, ub), max(u, ub), y0 - 0.25, y0 + 0.75, zc - ww, b["rail"], bld, M["bars"], lit)
        if b["shop"]:
            cv.uquad(u, 0.3, 2.8, zc - bay * 0.42, zc + bay * 0.42, b["glass"][0], bld, M["fine"], 0.8)
    if b["shop"]:
        if b["awning"]:  # sloped canvas over the shop windows
            cv.uquad(u - s * 1.2, 2.5, 2.7, za, zb, b["awning"], bld, M["planks"], lit * 0.9, 3.1, 3.3)
            cv.poly([cv.p(u, 3.3, za), cv.p(u, 3.3, zb), cv.p(u - s * 1.2, 2.7, zb), cv.p(u - s * 1.2, 2.7, za)],
                    b["awning"], bld, M["planks"], za, lit * 1.05)
        if b["fascia"] is not None:  # the shop's sign board: Vistas labels these Billboard
            sign_col, text_col = b["fascia"]
            cv.uquad(u - s * 0.05, 3.0, 3.7, za + 0.2, zb - 0.2, sign_col, C["billboard"], M["flat"], lit)
            cv.uquad(u - s * 0.06, 3.2, 3.45, za + 0.8, max(za + 0.8, zb - 1.5), text_col, C["billboard"],
                     M["bars"], lit)


def tree(cv: Canvas, t: dict) -> None:
    """Trunk and a crown of overlapping ragged blobs."""
    u, z, rng = t["u"], t["z"], t["rng"]
    hc, r = t["crown_y"], t["r"]
    cv.zquad(u - t["trunk"] / 2, u + t["trunk"] / 2, 0, hc, z, t["bark"], C["veg"], M["bark"], 0.9)
    g = t["green"]
    cv.blob(u, hc + r * 0.6, z, r, r * t["tall"], g, C["veg"], M["foliage"], rng, 22, 0.25, 0.8)
    for _ in range(t["lobes"]):
        du, dy = rng.uniform(-0.6, 0.6) * r, rng.uniform(-0.2, 0.9) * r
        cv.blob(u + du, hc + r * 0.6 + dy, z, r * 0.55, r * 0.5, g, C["veg"], M["foliage"], rng, 14, 0.3,
                rng.uniform(0.8, 1.25))


def hedge(cv: Canvas, hg: dict, za: float, zb: float) -> None:
    """Vegetation strip along the road (hedge, or a tree line when tall) with a ragged top."""
    u, hh, rng = hg["u"], hg["h"], hg["rng"]
    n = int(min(48, max(3, (zb - za) / hg["step"])))
    zs = np.linspace(za, zb, n)
    tops = hh * (1.0 + hg["rag"] * rng.uniform(-1, 1, n))
    pts = [cv.p(u, 0, z) for z in zs[::-1]] + [cv.p(u, t, z) for z, t in zip(zs, tops)]
    cv.poly(pts, hg["green"], C["veg"], M["foliage"], za, hg["light"])


def fence(cv: Canvas, fc: dict, za: float, zb: float) -> None:
    """Segment [za, zb] of a fence along the road, with a darker top rail."""
    u, hf = fc["u"], fc["h"]
    cv.uquad(u, 0, hf, za, zb, fc["color"], C["fence"], fc["mat"], fc["light"])
    cv.uquad(u, hf * 0.82, hf * 0.9, za, zb, fc["color"], C["fence"], M["fine"], fc["light"] * 0.7)


def pole(cv: Canvas, u, z, top, w, rgb, light=1.0):
    """Pole of at least min_px width: lit half and shaded half."""
    w = max(w, cv.sc.min_px * z / cv.sc.cam.f)
    cv.zquad(u - w / 2, u, 0, top, z, rgb, C["pole"], M["fine"], light * 1.1)
    cv.zquad(u, u + w / 2, 0, top, z, rgb, C["pole"], M["fine"], light * 0.75)


def street_light(cv: Canvas, sl: dict) -> None:
    """A pole with a lamp on an arm over the road, or a lantern on top."""
    u, z, s = sl["u"], sl["z"], sl["side"]
    pole(cv, u, z, sl["h"], sl["w"], sl["color"])
    if sl["arm"]:
        tip = u - s * sl["arm"]
        w = max(0.12, cv.sc.min_px * z / cv.sc.cam.f)
        p = cv.p
        cv.poly([p(u, sl["h"] - w, z), p(tip, sl["h"] + 0.2 - w, z), p(tip, sl["h"] + 0.2, z), p(u, sl["h"], z)],
                sl["color"], C["pole"], M["fine"], z)
        cv.zquad(tip - 0.65, tip + 0.45, sl["h"] - 0.2, sl["h"] + 0.28, z, sl["head"], C["lamp"], M["fine"])
        cv.zquad(tip - 0.5, tip + 0.3, sl["h"] - 0.2, sl["h"] - 0.06, z, sl["glow"], C["lamp"], M["flat"])
    else:  # post-top lantern
        cv.zquad(u - 0.35, u + 0.35, sl["h"], sl["h"] + 0.85, z, sl["head"], C["lamp"], M["fine"])
        cv.zquad(u - 0.2, u + 0.2, sl["h"] + 0.12, sl["h"] + 0.6, z, sl["glow"], C["lamp"], M["flat"])


def traffic_light(cv: Canvas, tl: dict) -> None:
    """A signal head on its own pole or hung from an arm over the road, one lamp lit."""
    u, z, y = tl["u"], tl["z"], tl["y"]
    if tl["arm"]:
        pole(cv, tl["pole_u"], z, y + 1.3, 0.22, tl["pole_rgb"])
        w = max(0.15, cv.sc.min_px * z / cv.sc.cam.f)
        cv.zquad(min(u, tl["pole_u"]), max(u, tl["pole_u"]), y + 1.1 - w, y + 1.1, z, tl["pole_rgb"], C["pole"],
                 M["fine"])
    else:
        pole(cv, u, z, y, 0.14, tl["pole_rgb"])
    hw = 0.22
    if tl["plate"]:
        cv.zquad(u - hw - 0.12, u + hw + 0.12, y - 0.08, y + 1.08, z, (25, 25, 25), C["tlight"], M["fine"])
    cv.zquad(u - hw, u + hw, y, y + 1.0, z, tl["housing"], C["tlight"], M["fine"])
    for i, yy in enumerate((0.83, 0.5, 0.17)):
        col = tl["lamp"] if i == tl["on"] else (35, 35, 32)
        cv.blob(u, y + yy, z - 0.05, 0.12, 0.12, col, C["tlight"], M["flat"], tl["rng"], 10)


def skyline(cv: Canvas, bd: dict) -> None:
    """Far band of buildings or trees across the whole frame at depth z (screen-space outline)."""
    z, rng = bd["z"], bd["rng"]
    W = cv.sc.cam.cx * 2
    f = cv.sc.cam.f
    _, yb = cv.p(0, 0, z)
    pts, x = [(W + 20, yb + 2), (-20, yb + 2)], -20.0
    while x < W + 20:
        step = f * rng.uniform(*bd["width"]) / z
        top = yb - f * rng.uniform(*bd["height"]) / z
        pts += [(x, top), (x + step, top)] if bd["blocky"] else [(x + step / 2, top)]
        x += step
    cv.poly(pts, bd["color"], bd["cls"], bd["mat"], z, bd["light"])


def add(sc: Scene, key: float, fn, *args) -> None:
    """Queue `fn(canvas, *args)` in sc.items under depth `key` (metres; larger keys are drawn first)."""
    sc.items.append((key, lambda cv: fn(cv, *args)))


def add_along(sc: Scene, fn, obj: dict, z0: float, z1: float, seg: float) -> None:
    """Queue a long object in segments so nearer objects interleave correctly (keyed by the far end)."""
    z0 = max(z0, NEAR)
    n = max(1, math.ceil((z1 - z0) / seg))
    edges = np.linspace(z0, z1, n + 1).tolist()
    for za, zb in zip(edges[:-1], edges[1:]):
        add(sc, zb, fn, obj, za, zb)
