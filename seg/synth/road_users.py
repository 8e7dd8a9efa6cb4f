"""Road users of the street world (`seg.synth`): people, cars, trucks and buses, bicycles and motorcycles
with or without their riders. Painters in the style of `seg.synth.objects`."""
from __future__ import annotations

import math

import numpy as np

from seg.synth.objects import C, M, Canvas


def person(cv: Canvas, pr: dict) -> None:
    """A pedestrian facing the camera: legs and shoes, torso, arms, neck, head and hair, maybe a bag."""
    u, z, hgt, rng = pr["u"], pr["z"], pr["h"], pr["rng"]
    cv.blob(u, 0.0, z, 0.35, 0.12, (20, 20, 22), None, 0, rng, 10)  # contact shadow, image only
    sw = pr["stride"]
    hip, sh = 0.48 * hgt, 0.81 * hgt
    cls, L = C["person"], pr["light"]
    p = cv.p
    for side, d in ((-1, sw), (1, -sw)):  # legs
        cv.poly([p(u + side * 0.02, hip, z), p(u + side * 0.15, hip, z), p(u + side * 0.07 + d + 0.06, 0.02, z),
                 p(u + side * 0.07 + d - 0.07, 0.02, z)], pr["legs"], cls, M["fine"], z, L * 0.9)
        cv.zquad(u + side * 0.07 + d - 0.08, u + side * 0.07 + d + 0.08, 0, 0.07, z, (25, 25, 25), cls, M["fine"])
    coat = pr["coat"]
    cv.poly([p(u - 0.16, hip - coat, z), p(u + 0.16, hip - coat, z), p(u + 0.21, sh, z), p(u - 0.21, sh, z)],
            pr["top"], cls, M["fine"], z, L)
    for side, d in ((-1, -sw * 0.6), (1, sw * 0.6)):  # arms
        cv.poly([p(u + side * 0.17, sh, z), p(u + side * 0.25, sh - 0.02, z), p(u + side * 0.22 + d, hip - 0.05, z),
                 p(u + side * 0.15 + d, hip - 0.04, z)], pr["top"], cls, M["fine"], z, L * 0.85)
    cv.zquad(u - 0.05, u + 0.05, sh - 0.02, sh + 0.06, z, pr["skin"], cls, M["fine"], L)
    cv.blob(u, sh + 0.13, z, 0.095, 0.12, pr["skin"], cls, M["fine"], rng, 12, 0.0, L)
    cv.blob(u, sh + 0.17 + pr["hair_dy"], z, 0.1, 0.085, pr["hair"], cls, M["fine"], rng, 12)
    if pr["bag"]:
        cv.zquad(u + 0.18, u + 0.34, hip - 0.1, hip + 0.25, z, pr["bag"], cls, M["fine"], L * 0.8)


def vehicle(cv: Canvas, v: dict) -> None:
    """Car, truck or bus as a box: visible side, roof, then the near face (rear or front) with details."""
    u, z0, w, sc = v["u"], v["z"], v["w"], cv.sc
    z1 = z0 + v["len"]
    xw = u + sc.cam.yaw * z0 + sc.cam.curv * z0 * z0 - sc.cam.x0
    us = u - w / 2 if xw > 0 else u + w / 2  # the side facing the camera
    side_light, near_light = sc.face_light[int(np.sign(-xw)) or 1] * 0.85, sc.face_light[0]
    p = cv.p
    cv.poly([p(u - w / 2 - 0.15, 0, z0 - 0.15), p(u + w / 2 + 0.15, 0, z0 - 0.15), p(u + w / 2 + 0.15, 0, z1),
             p(u - w / 2 - 0.15, 0, z1)], (18, 18, 20), None, 0, z0)  # contact shadow
    if v["kind"] == "car":
        _car(cv, v, us, side_light, near_light)
    else:
        _truck_or_bus(cv, v, us, side_light, near_light)


def _car(cv: Canvas, v: dict, us: float, sl: float, rl: float) -> None:
    """A car's side at u = us (light sl) with cabin, windows and wheels, its roof, and its near face (light rl)."""
    u, z0, L, w, hgt, col, front = v["u"], v["z"], v["len"], v["w"], v["h"], v["color"], v["front"]
    cls, glass, p = C["car"], v["glass"], cv.p
    z1 = z0 + L
    belt, cab0, cab1 = 0.55 * hgt, (0.28 if front else 0.2) * L, (0.8 if front else 0.72) * L
    cv.uquad(us, 0.18, belt + 0.05, z0, z1, col, cls, M["fine"], sl)
    cv.poly([p(us, belt, z0 + cab0 - 0.6), p(us, belt, z0 + cab1 + 0.3), p(us, hgt, z0 + cab1 - 0.2),
             p(us, hgt, z0 + cab0)], col, cls, M["fine"], z0, sl)
    cv.poly([p(us, belt + 0.06, z0 + cab0 - 0.35), p(us, belt + 0.06, z0 + cab1 + 0.1),
             p(us, hgt - 0.07, z0 + cab1 - 0.25), p(us, hgt - 0.07, z0 + cab0 + 0.1)], glass, cls, M["fine"], z0)
    for zc in (z0 + 0.18 * L, z0 + 0.8 * L):  # wheels
        pts = [p(us, 0.32 + 0.32 * math.sin(t), zc + 0.32 * math.cos(t)) for t in np.linspace(0, 6.28, 10)]
        cv.poly(pts, (22, 22, 24), cls, M["fine"], z0)
    if cv.sc.cam.h > hgt:
        cv.poly([p(u - w / 2 + 0.15, hgt, z0 + cab0), p(u + w / 2 - 0.15, hgt, z0 + cab0),
                 p(u + w / 2 - 0.15, hgt, z0 + cab1 - 0.2), p(u - w / 2 + 0.15, hgt, z0 + cab1 - 0.2)],
                col, cls, M["fine"], z0, 1.15)
    for uu in (u - w / 2 + 0.05, u + w / 2 - 0.3):
        cv.zquad(uu, uu + 0.25, 0, 0.3, z0 + 0.3, (20, 20, 22), cls, M["fine"])
    cv.zquad(u - w / 2, u + w / 2, 0.2, belt + 0.05, z0, col, cls, M["fine"], rl)
    cv.zquad(u - w / 2, u + w / 2, 0.2, 0.42, z0, v["bumper"], cls, M["fine"], rl)
    cv.poly([p(u - w / 2 + 0.05, belt, z0 + 0.3), p(u + w / 2 - 0.05, belt, z0 + 0.3),
             p(u + w / 2 - 0.22, hgt, z0 + 0.6), p(u - w / 2 + 0.22, hgt, z0 + 0.6)], col, cls, M["fine"],
            z0, rl)
    cv.poly([p(u - w / 2 + 0.14, belt + 0.05, z0 + 0.32), p(u + w / 2 - 0.14, belt + 0.05, z0 + 0.32),
             p(u + w / 2 - 0.27, hgt - 0.08, z0 + 0.58), p(u - w / 2 + 0.27, hgt - 0.08, z0 + 0.58)],
            glass, cls, M["fine"], z0)
    lamp = (235, 230, 210) if front else (190, 25, 20)
    for uu in (u - w / 2 + 0.04, u + w / 2 - 0.34):
        cv.zquad(uu, uu + 0.3, belt - 0.18, belt - 0.02, z0 - 0.01, lamp, cls, M["flat"])
    cv.zquad(u - 0.26, u + 0.26, 0.3, 0.42, z0 - 0.01, v["plate"], cls, M["flat"])
    if front:
        cv.zquad(u - 0.45, u + 0.45, belt - 0.2, belt - 0.05, z0 - 0.01, (30, 30, 32), cls, M["fine"])


def _truck_or_bus(cv: Canvas, v: dict, us: float, sl: float, rl: float) -> None:
    """A tall box (a truck has its cab in front): side at u = us (light sl), near face (light rl)."""
    u, z0, w, hgt, col, kind, front = v["u"], v["z"], v["w"], v["h"], v["color"], v["kind"], v["front"]
    cls, glass, p = C[kind], v["glass"], cv.p
    z1 = z0 + v["len"]
    base = 0.35
    cv.uquad(us, base, hgt, z0, z1, col, cls, M["fine"], sl)
    if kind == "bus":
        cv.uquad(us, 1.25, hgt - 0.35, z0 + 0.3, z1 - 0.4, glass, cls, M["fine"])
        cv.uquad(us, base, 0.7, z0, z1, v["stripe"], cls, M["fine"], sl)
    else:
        cv.uquad(us, hgt * 0.3, hgt * 0.34, z0, z1, v["stripe"], cls, M["fine"], sl)
    for zc in (z0 + 1.4, z1 - 1.8):
        pts = [p(us, 0.5 + 0.5 * math.sin(t), zc + 0.5 * math.cos(t)) for t in np.linspace(0, 6.28, 10)]
        cv.poly(pts, (22, 22, 24), cls, M["fine"], z0)
    cv.zquad(u - w / 2, u + w / 2, base, hgt, z0, col, cls, M["fine"], rl)
    cv.zquad(u - w / 2, u + w / 2, base - 0.1, base + 0.3, z0, (35, 35, 38), cls, M["fine"], rl)
    if kind == "bus":
        top = hgt - 0.25 if front else hgt - 0.5
        cv.zquad(u - w / 2 + 0.12, u + w / 2 - 0.12, 1.0 if front else 1.6, top, z0 - 0.01, glass, cls, M["fine"])
        if front:
            cv.zquad(u - w / 2 + 0.3, u + w / 2 - 0.3, hgt - 0.22, hgt - 0.05, z0 - 0.01, (20, 20, 20), cls,
                     M["flat"])
    elif front:
        cv.zquad(u - w / 2 + 0.15, u + w / 2 - 0.15, 1.5, 2.4, z0 - 0.01, glass, cls, M["fine"])
    else:
        cv.zquad(u - 0.02, u + 0.02, base + 0.3, hgt - 0.1, z0 - 0.01, (60, 60, 60), cls, M["flat"])
    lamp = (235, 230, 210) if front else (190, 25, 20)
    for uu in (u - w / 2 + 0.08, u + w / 2 - 0.33):
        cv.zquad(uu, uu + 0.25, base + 0.35, base + 0.55, z0 - 0.01, lamp, cls, M["flat"])


def two_wheeler(cv: Canvas, tw: dict) -> None:
    """Bicycle or motorcycle seen from behind/in front (narrow) or from the side, with or without a rider."""
    u, z, rng = tw["u"], tw["z"], tw["rng"]
    moto = tw["kind"] == "motorcycle"
    cls = C["motorcycle"] if moto else C["bicycle"]
    r = 0.33 if moto else 0.34
    p = cv.p
    cv.blob(u, 0.0, z, 0.4 if tw["side_view"] else 0.25, 0.08, (22, 22, 24), None, 0, rng, 10)  # contact shadow
    if tw["side_view"]:  # wheels as rings, frame between them; the bike runs across the view
        for du in (-0.55, 0.55):
            pts = [p(u + du + r * math.cos(t), r + r * math.sin(t), z) for t in np.linspace(0, 2 * math.pi, 14)]
            cv.poly(pts, (25, 25, 27), cls, M["fine"], z)
            inner = [p(u + du + 0.7 * r * math.cos(t), r + 0.7 * r * math.sin(t), z - 0.01)
                     for t in np.linspace(0, 2 * math.pi, 12)]
            cv.poly(inner, tw["behind"], None, 0, z)  # see-through spokes: background tone, image only
        if moto:
            cv.poly([p(u - 0.5, 0.35, z), p(u + 0.45, 0.4, z), p(u + 0.35, 0.85, z), p(u - 0.3, 0.8, z)],
                    tw["color"], cls, M["fine"], z - 0.02)
        else:
            for a, b in (((-0.55, r), (0.0, r)), ((0.0, r), (0.25, 0.85)), ((-0.55, r), (-0.1, 0.85)),
                         ((-0.1, 0.85), (0.35, 0.85)), ((0.55, r), (0.35, 0.95))):
                w = 0.03
                cv.poly([p(u + a[0], a[1] - w, z - 0.02), p(u + b[0], b[1] - w, z - 0.02), p(u + b[0], b[1] + w, z - 0.02),
                         p(u + a[0], a[1] + w, z - 0.02)], tw["color"], cls, M["fine"], z)
        seat_u = u - 0.1
    else:
        w = 0.09 if moto else 0.035
        cv.zquad(u - w, u + w, 0, 2 * r, z, (25, 25, 27), cls, M["fine"])
        cv.zquad(u - 0.3, u + 0.3, 0.95 if not moto else 1.0, 1.0 if not moto else 1.08, z + 0.3, (40, 40, 42), cls,
                 M["fine"])  # handlebar
        if moto:
            cv.zquad(u - 0.22, u + 0.22, 0.35, 0.85, z - 0.05, tw["color"], cls, M["fine"])
            cv.zquad(u - 0.08, u + 0.08, 0.6, 0.7, z - 0.06, (190, 25, 20), cls, M["flat"])
        seat_u = u
    if tw["rider"] is not None:
        rd = tw["rider"]
        rcls = C["motorcyclist"] if moto else C["bicyclist"]
        y0 = 0.85 if moto else 0.9
        cv.poly([p(seat_u - 0.16, y0, z - 0.05), p(seat_u + 0.16, y0, z - 0.05), p(seat_u + 0.2, y0 + 0.62, z - 0.05),
                 p(seat_u - 0.2, y0 + 0.62, z - 0.05)], rd["top"], rcls, M["fine"], z, rd["light"])
        for side in (-1, 1):  # legs down to the pedals/footrests
            cv.poly([p(seat_u + side * 0.05, y0 + 0.05, z - 0.06), p(seat_u + side * 0.17, y0 + 0.05, z - 0.06),
                     p(seat_u + side * 0.16, 0.25, z - 0.06), p(seat_u + side * 0.06, 0.25, z - 0.06)], rd["legs"],
                    rcls, M["fine"], z, rd["light"] * 0.9)
        head = rd["helmet"] if rd["helmet"] else rd["skin"]
        cv.blob(seat_u, y0 + 0.78, z - 0.05, 0.12 if moto else 0.1, 0.13 if moto else 0.12, head, rcls, M["fine"], rng,
                12, 0.0, rd["light"])
