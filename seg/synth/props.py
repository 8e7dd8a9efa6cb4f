"""Street furniture, barriers, signs, billboards and backdrops of the street world (`seg.synth`).

Painters in the style of `seg.synth.objects`: each takes the Canvas and a dict of sampled parameters and
draws polygons into image, label and material maps at once; world coordinates u (across), y (up), z (ahead).
"""
from __future__ import annotations

import math

import numpy as np

from seg.synth.objects import C, M, Canvas, pole


def wall(cv: Canvas, w: dict, za: float, zb: float) -> None:
    """Wall along the road, with a coping on top."""
    u, h = w["u"], w["h"]
    cv.uquad(u, 0, h, za, zb, w["color"], C["wall"], w["mat"], w["light"])
    cv.uquad(u, h - 0.12, h, za, zb, w["color"], C["wall"], M["fine"], w["light"] * 1.15)


def guard_rail(cv: Canvas, g: dict, za: float, zb: float) -> None:
    """Steel beam on posts along the road edge."""
    u, y = g["u"], g["y"]
    z = math.ceil(za / g["step"]) * g["step"]
    while z < zb:
        cv.zquad(u - 0.06, u + 0.06, 0, y, z, g["post"], C["guard_rail"], M["fine"], 0.8)
        z += g["step"]
    cv.uquad(u, y - 0.32, y, za, zb, g["color"], C["guard_rail"], M["fine"], g["light"])
    cv.uquad(u, y - 0.2, y - 0.13, za, zb, g["color"], C["guard_rail"], M["fine"], g["light"] * 0.7)


def barrier(cv: Canvas, b: dict, za: float, zb: float) -> None:
    """Temporary road-works barrier: red and white panels on feet."""
    u = b["u"]
    cv.uquad(u, 0.15, 1.0, za, zb, (230, 230, 225), C["barrier"], M["fine"], b["light"])
    n = max(1, int((zb - za) / 0.8))
    for i in range(0, n, 2):
        z0 = za + (zb - za) * i / n
        cv.uquad(u, 0.15, 1.0, z0, z0 + (zb - za) / n, (200, 35, 30), C["barrier"], M["fine"], b["light"])


def utility_pole(cv: Canvas, up: dict) -> None:
    """Wooden (or concrete) utility pole with a cross-arm; wires are image-only lines."""
    u, z, h = up["u"], up["z"], up["h"]
    w = max(0.28, cv.sc.min_px * z / cv.sc.cam.f)
    cv.zquad(u - w / 2, u + w / 2, 0, h, z, up["color"], C["utility_pole"], M["bark"], 0.95)
    cv.zquad(u - 1.1, u + 1.1, h - 0.7, h - 0.55, z, up["color"], C["utility_pole"], M["fine"], 0.85)
    for du in (-0.9, 0.0, 0.9):  # insulators
        cv.zquad(u + du - 0.05, u + du + 0.05, h - 0.55, h - 0.35, z, (200, 200, 195), C["utility_pole"], M["flat"])
    if up["next_z"] is not None:
        x0, y0 = cv.p(u, h - 0.4, z)
        x1, y1 = cv.p(up["next_u"], h - 0.4, up["next_z"])
        cv.img.line([(x0, y0), ((x0 + x1) / 2, (y0 + y1) / 2 + 2), (x1, y1)], fill=(35, 35, 38), width=1)


def sign_assembly(cv: Canvas, sg: dict) -> None:
    """A sign on its post: the front (Traffic Sign (Front)) or, facing away, its back (Traffic Sign (Back));
    rectangular panels may hang in a frame (Traffic Sign Frame)."""
    u, z, y, r = sg["u"], sg["z"], sg["y"], sg["r"]
    if sg["frame"]:
        for du in (-r * 1.4, r * 1.4):
            cv.zquad(u + du - 0.05, u + du + 0.05, 0, y + 2 * r + 0.2, z + 0.05, sg["post"], C["sign_frame"], M["fine"])
        cv.zquad(u - r * 1.5, u + r * 1.5, y - 0.08, y, z + 0.05, sg["post"], C["sign_frame"], M["fine"])
        cv.zquad(u - r * 1.5, u + r * 1.5, y + 2 * r + 0.05, y + 2 * r + 0.13, z + 0.05, sg["post"], C["sign_frame"],
                 M["fine"])
    else:
        pole(cv, u, z, y + r, 0.08, sg["post"])
    cx, cy = cv.p(u, y + r, z)
    k = cv.sc.cam.f * r / z
    shape = sg["shape"]
    n = {"circle": 16, "tri": 3, "diamond": 4, "oct": 8, "rect": 4}[shape]
    rot = {"circle": 0, "tri": -math.pi / 2, "diamond": 0, "oct": math.pi / 8, "rect": math.pi / 4}[shape]
    stretch = 1.3 if shape == "rect" else 1.0

    def ring(scale):
        return [(cx + k * scale * math.cos(rot + 2 * math.pi * i / n) * stretch,
                 cy + k * scale * math.sin(rot + 2 * math.pi * i / n)) for i in range(n)]

    if sg["back"]:
        cv.poly(ring(1.0), sg["back_rgb"], C["sign_back"], M["fine"], z, sg["light"])
        cv.poly([(cx - 0.06 * k, cy - 0.6 * k), (cx + 0.06 * k, cy - 0.6 * k), (cx + 0.06 * k, cy + 0.6 * k),
                 (cx - 0.06 * k, cy + 0.6 * k)], (90, 90, 92), C["sign_back"], M["fine"], z)  # bracket
        return
    for scale, col in ((1.0, sg["outer"]), (0.72, sg["inner"])):
        cv.poly(ring(scale), col, C["sign"], M["fine"], z, sg["light"])
    if sg["glyph"]:
        cv.poly([(cx - 0.3 * k, cy - 0.1 * k), (cx + 0.3 * k, cy - 0.1 * k), (cx + 0.3 * k, cy + 0.12 * k),
                 (cx - 0.3 * k, cy + 0.12 * k)], sg["glyph"], C["sign"], M["flat"], z, sg["light"])


def gantry(cv: Canvas, g: dict) -> None:
    """Overhead sign frame across the road with large direction signs."""
    z, y, u0, u1 = g["z"], g["y"], g["u0"], g["u1"]
    for u in (u0, u1):
        cv.zquad(u - 0.15, u + 0.15, 0, y + 0.3, z + 0.1, g["steel"], C["sign_frame"], M["fine"])
    cv.zquad(u0, u1, y + 0.05, y + 0.3, z + 0.1, g["steel"], C["sign_frame"], M["bars"])
    cv.zquad(u0, u1, y - 2.1, y - 1.95, z + 0.1, g["steel"], C["sign_frame"], M["fine"])
    for uc, width in g["signs"]:
        cv.zquad(uc - width / 2, uc + width / 2, y - 2.2, y, z, g["panel"], C["sign"], M["flat"])
        cv.zquad(uc - width / 2 + 0.2, uc + width / 2 - 0.2, y - 1.2, y - 0.8, z - 0.01, (235, 235, 235), C["sign"],
                 M["bars"])


def billboard(cv: Canvas, bb: dict) -> None:
    """Advertising board on one or two legs, facing the road at depth z."""
    u, z, y, w, h = bb["u"], bb["z"], bb["y"], bb["w"], bb["h"]
    for du in ((-w / 3, w / 3) if bb["legs"] == 2 else (0.0,)):
        pole(cv, u + du, z + 0.1, y, 0.25, bb["leg_rgb"])
    cv.zquad(u - w / 2 - 0.1, u + w / 2 + 0.1, y - 0.1, y + h + 0.1, z, bb["edge"], C["billboard"], M["fine"])
    cv.zquad(u - w / 2, u + w / 2, y, y + h, z - 0.01, bb["bg"], C["billboard"], M["flat"])
    for (a, b, c, d), col in bb["blocks"]:  # picture and text blocks of the poster, in the board's unit square
        cv.zquad(u - w / 2 + a * w, u - w / 2 + b * w, y + c * h, y + d * h, z - 0.02, col, C["billboard"], M["fine"])


def bench(cv: Canvas, b: dict) -> None:
    """Legs, seat and backrest of a bench facing the road."""
    u, z, col = b["u"], b["z"], b["color"]
    for du in (-0.75, 0.7):
        cv.zquad(u + du, u + du + 0.06, 0, 0.45, z, (50, 50, 52), C["bench"], M["fine"])
    cv.zquad(u - 0.8, u + 0.8, 0.42, 0.5, z - 0.2, col, C["bench"], M["planks"], 1.1)
    cv.zquad(u - 0.8, u + 0.8, 0.55, 0.9, z + 0.2, col, C["bench"], M["planks"])


def trash_can(cv: Canvas, t: dict) -> None:
    """A bin with its lid."""
    u, z = t["u"], t["z"]
    cv.zquad(u - 0.28, u + 0.28, 0, 0.95, z, t["color"], C["trash"], M["fine"], 0.95)
    cv.zquad(u - 0.31, u + 0.31, 0.9, 1.02, z - 0.01, t["lid"], C["trash"], M["fine"], 1.1)


def hydrant(cv: Canvas, hd: dict) -> None:
    """Body, outlets and cap of a fire hydrant."""
    u, z, col = hd["u"], hd["z"], hd["color"]
    cv.zquad(u - 0.12, u + 0.12, 0, 0.6, z, col, C["hydrant"], M["fine"])
    cv.zquad(u - 0.2, u + 0.2, 0.35, 0.45, z - 0.01, col, C["hydrant"], M["fine"], 0.85)
    cv.blob(u, 0.63, z, 0.12, 0.07, col, C["hydrant"], M["fine"], hd["rng"], 10)


def junction_box(cv: Canvas, jb: dict) -> None:
    """A utility cabinet with a lighter top edge."""
    u, z = jb["u"], jb["z"]
    cv.zquad(u - jb["w"] / 2, u + jb["w"] / 2, 0, jb["h"], z, jb["color"], C["junction_box"], M["fine"], 0.95)
    cv.zquad(u - jb["w"] / 2, u + jb["w"] / 2, jb["h"] - 0.06, jb["h"], z - 0.01, jb["color"], C["junction_box"],
             M["fine"], 1.15)


def mountains(cv: Canvas, m: dict) -> None:
    """Range of hills behind everything, from the horizon up; a hazy colour."""
    z, rng = m["z"], m["rng"]
    W = cv.sc.cam.cx * 2
    f = cv.sc.cam.f
    _, yb = cv.p(0, 0, z)
    xs = np.linspace(-20, W + 20, 24)
    ridge = np.cumsum(rng.normal(0, 1, 24))
    ridge = (ridge - ridge.min()) / max(np.ptp(ridge), 1e-6)
    tops = yb - f * (m["h0"] + m["h1"] * ridge) / z
    pts = [(W + 20, yb + 2), (-20, yb + 2)] + list(zip(xs.tolist(), tops.tolist()))
    cv.poly(pts, m["color"], C["mountain"], M["foliage"], z, 1.0)
