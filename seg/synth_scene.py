"""Random layout and appearance of one street-world frame (`seg.synth`): camera, road cross-section,
markings, lighting and weather, and the queue of objects to draw (see `seg.synth_objects`)."""
from __future__ import annotations

import math

import numpy as np

from seg import synth_objects as o
from seg.synth_objects import C, M, Cam, Line, Scene, Side


def sample_scene(rng: np.random.Generator, W: int, H: int) -> Scene:
    """Everything random about a frame of size (W, H); geometry scales with the frame."""
    # Focal length from the frame area: 512x384 gets ~60 deg horizontal FOV, 1242x375 ~ KITTI's 720 px.
    f = math.sqrt(W * H) * rng.uniform(0.85, 1.2)
    area = _pick_w(rng, ("urban", "suburban", "rural"), (0.5, 0.3, 0.2))
    lanes = int(_pick_w(rng, (2, 3, 4, 6), (0.4, 0.15, 0.35, 0.1)))
    lw = rng.uniform(2.8, 3.6)
    wr = lanes * lw / 2 + rng.uniform(0.0, 0.6)
    on_walk = area != "rural" and rng.random() < 0.15  # pedestrian viewpoint (many Vistas photos)
    sides = [_side(rng, area) for _ in range(2)]
    for s in sides:
        s.edge = wr + s.curb + s.verge + s.walk
    if on_walk:
        x0 = rng.choice([-1, 1]) * (wr + sides[1].curb + rng.uniform(0.5, 1.5))
        x0 = float(np.clip(x0, -sides[0].edge + 0.3, sides[1].edge - 0.3))
        h = rng.uniform(1.4, 1.8)
    else:
        x0 = -wr + lw * (lanes // 2 + rng.integers(0, lanes - lanes // 2) + 0.5) + rng.normal(0, 0.25)
        h = rng.uniform(1.3, 2.3)
    cam = Cam(f=f, cx=W / 2, yh=H * rng.uniform(0.36, 0.55), h=h, x0=x0, yaw=rng.normal(0, 0.03),
              curv=0.0 if rng.random() < 0.4 else rng.uniform(-0.0025, 0.0025))
    sc = Scene(cam=cam, H=H, min_px=max(1.0, 2.5 * H / 384), wr=wr, sides=sides, lines=_lines(rng, lanes, lw, wr),
               cross=(rng.uniform(5, 18), rng.uniform(3, 5), rng.uniform(0.9, 1.3)) if rng.random() < 0.45 else None)
    _appearance(rng, sc, area)
    _populate(rng, sc, area, lanes, lw)
    return sc


def _pick_w(rng, items, p):
    return items[int(rng.choice(len(items), p=p))]


def _side(rng, area: str) -> Side:
    if area == "urban":
        return Side(curb=rng.uniform(0.15, 0.3), verge=0.0, walk=rng.uniform(2.0, 5.0), beyond=C["sidewalk"])
    if area == "suburban":
        return Side(curb=rng.uniform(0.15, 0.3), verge=rng.uniform(0.0, 2.5) * (rng.random() < 0.6),
                    walk=rng.uniform(1.2, 2.5), beyond=C["terrain"])
    return Side(curb=rng.uniform(0.15, 0.25) * (rng.random() < 0.3), verge=0.0, walk=0.0, beyond=C["terrain"])


def _lines(rng, lanes: int, lw: float, wr: float) -> list:
    hw = rng.uniform(0.06, 0.1)
    period, dash = rng.uniform(8, 13), rng.uniform(2.5, 4.5)
    lines = []
    for k in range(1, lanes):
        uk = -lanes * lw / 2 + k * lw
        center = k == lanes // 2
        if center and rng.random() < 0.4:  # double solid centre line
            y = rng.random() < 0.5
            lines += [Line(uk - 0.15, hw, 0, 1, 0, y), Line(uk + 0.15, hw, 0, 1, 0, y)]
        else:
            solid = center and rng.random() < 0.3
            lines.append(Line(uk, hw, 0 if solid else dash, period, rng.uniform(0, period), False))
    if rng.random() < 0.7:  # edge lines
        lines += [Line(s * (wr - 0.3), hw, 0, 1, 0, False) for s in (-1, 1)]
    return lines


def _appearance(rng, sc: Scene, area: str) -> None:
    weather = _pick_w(rng, ("sun", "overcast", "dusk"), (0.5, 0.35, 0.15))
    lut1 = np.zeros((256, 3), np.float32)
    asphalt = rng.uniform(60, 120) * np.array([1.0, 1.0, rng.uniform(1.0, 1.08)])
    lut1[C["road"]] = asphalt
    walk = _pick_w(rng, [(175, 170, 160), (150, 150, 150), (190, 180, 165), (160, 110, 95), (130, 130, 125)],
                   (0.3, 0.25, 0.2, 0.1, 0.15))
    lut1[C["sidewalk"]] = o._vary(rng, walk, 10)
    lut1[C["curb"]] = o._vary(rng, (185, 185, 180), 12)
    lut1[C["terrain"]] = o._vary(rng, _pick_w(rng, [(80, 110, 45), (110, 120, 60), (140, 125, 85)],
                                             (0.5, 0.3, 0.2)), 10)
    lut1[C["marking"]] = lut1[C["zebra"]] = np.array([225, 225, 220]) * rng.uniform(0.8, 1.05)
    lut2 = lut1.copy()
    lut2[C["road"]] = asphalt * rng.uniform(0.75, 1.25)
    lut2[C["sidewalk"]] = lut1[C["sidewalk"]] * rng.uniform(0.8, 0.95)
    lut2[C["terrain"]] = o._vary(rng, (120, 110, 70), 15)
    lut2[C["marking"]] = lut2[C["zebra"]] = lut1[C["marking"]] * rng.uniform(0.75, 0.95)  # worn paint
    sc.ground_lut = (lut1, lut2)
    sc.grain_amp = rng.uniform(0.05, 0.18)
    sc.tile = rng.uniform(0.3, 0.8)
    sun = weather == "sun"
    amb = rng.uniform(0.55, 0.7) if sun else rng.uniform(0.8, 0.95)
    direct = rng.uniform(0.35, 0.6) if sun else 0.0
    warm = np.array([1.0, 0.97, 0.9]) if sun else np.array([1.0, 1.0, 1.0])
    sc.sun_rgb = ((amb + direct) * warm).astype(np.float32)
    sc.shade_rgb = (amb * np.array([0.92, 0.96, 1.08])).astype(np.float32)
    sc.sun_side = int(rng.choice([-1, 1]))
    # face_light: 0 = faces facing the camera, -1/+1 = facades on the left/right side of the road
    lit_side = amb + direct * rng.uniform(0.6, 1.0)
    sc.face_light = {0: amb + direct * rng.uniform(0.2, 0.8), -sc.sun_side: lit_side, sc.sun_side: amb}
    if weather == "sun":
        hz, zen = o._vary(rng, (200, 215, 230), 8), o._vary(rng, (70, 120, 195), 15)
        cloud, thr, alpha = (245, 245, 248), rng.uniform(0.0, 1.5), rng.uniform(0.5, 1.0)
    elif weather == "overcast":
        g = rng.uniform(170, 225)
        hz, zen = (g, g, g + 4), (g * 0.85, g * 0.87, g * 0.92)
        cloud, thr, alpha = (g * 0.8, g * 0.8, g * 0.83), rng.uniform(-0.5, 0.5), rng.uniform(0.2, 0.5)
    else:
        hz, zen = o._vary(rng, (235, 160, 110), 15), o._vary(rng, (60, 75, 120), 10)
        cloud, thr, alpha = (150, 110, 110), rng.uniform(0.3, 1.5), rng.uniform(0.3, 0.8)
    sc.sky_horizon, sc.sky_zenith = np.array(hz, np.float32), np.array(zen, np.float32)
    sc.cloud_rgb, sc.cloud_thr, sc.cloud_alpha = np.array(cloud, np.float32), thr, alpha
    sc.cloud_off = (int(rng.integers(512)), int(rng.integers(512)))
    haze = rng.random() < 0.3
    sc.fog_dist = rng.uniform(40, 150) if haze else rng.uniform(300, 900)
    sc.fog_rgb = (sc.sky_horizon * (0.95 if haze else 1.0)).astype(np.float32)
    if haze:
        sc.sky_zenith = sc.sky_zenith * 0.4 + sc.sky_horizon * 0.6
    # Camera: exposure, white balance, contrast as one per-channel tone curve; then noise and blur.
    gain = rng.uniform(0.8, 1.2) * (0.75 if weather == "dusk" else 1.0)
    wb = np.array([1.0, 1.0, 1.0]) + rng.normal(0, 0.025, 3) + (np.array([0.08, 0.0, -0.1]) if weather == "dusk" else 0)
    gamma = rng.uniform(0.85, 1.2)
    x = np.arange(256) / 255.0
    sc.tone_lut = np.concatenate([np.clip(255 * (np.clip(x * gain * wb[c], 0, 1) ** gamma), 0, 255)
                                  for c in range(3)]).astype(int).tolist()
    sc.noise = rng.uniform(1.0, 6.0)
    sc.vignette = rng.uniform(0.0, 0.4)
    sc.blur = rng.uniform(0.0, 1.2) if rng.random() < 0.5 else 0.0
    sc.yellow_rgb = np.array(o._vary(rng, (215, 170, 45), 10), np.float32)
    sc.weather = weather


def _populate(rng, sc: Scene, area: str, lanes: int, lw: float) -> None:
    """Queue every object of the frame with its depth key."""
    zfar = 220.0
    seg = 6.0 if sc.cam.curv or abs(sc.cam.yaw) > 0.02 else 30.0
    night = sc.weather == "dusk"
    reach = np.zeros(64, np.float32)
    shadow_z = np.geomspace(1, 400, 64).astype(np.float32)
    # Far backdrop: skyline or tree line near the horizon.
    zb = rng.uniform(120, 300)
    if area == "urban" or rng.random() < 0.3:
        bd = dict(z=zb, rng=rng, width=(8, 40), height=(6, 45), blocky=True, cls=C["building"],
                  color=o._pick(rng, o.FACADES), mat=M["plaster"], light=0.9)
    else:
        bd = dict(z=zb, rng=rng, width=(2, 6), height=(6, 18), blocky=False, cls=C["veg"],
                  color=o._vary(rng, (50, 75, 40), 10), mat=M["foliage"], light=0.9)
    o.add(sc, zb, o.skyline, bd)
    for s, side in zip((-1, 1), sc.sides):
        has_bld = rng.random() < {"urban": 0.95, "suburban": 0.75, "rural": 0.15}[area]
        walk_u = s * (sc.wr + side.curb + side.verge + 0.5)  # street furniture line
        if has_bld:
            z = rng.uniform(-10, 12)
            while z < zfar:
                length = rng.uniform(8, 35) if area == "urban" else rng.uniform(8, 16)
                setback = rng.uniform(0, 1.5) if area == "urban" else rng.uniform(3, 10)
                hb = rng.uniform(7, 30) if area == "urban" else rng.uniform(5, 9)
                col = o._vary(rng, o._pick(rng, o.FACADES), 12)
                glass_base = o._vary(rng, (70, 80, 95), 15)
                glass = [o._vary(rng, glass_base, 12) for _ in range(5)]
                if night:
                    glass[1] = (240, 200, 120)
                b = dict(side=s, u=s * (side.edge + setback), z0=max(z, 0.0), z1=z + length, h=hb, color=col,
                         rng=rng, depth=rng.uniform(8, 14), floor=rng.uniform(2.9, 3.6), bay=rng.uniform(2.4, 4.0),
                         win_w=rng.uniform(1.0, 1.6), win_h=rng.uniform(1.3, 1.9), glass=glass,
                         shop=int(area == "urban" and rng.random() < 0.5),
                         mat=M["brick"] if col[0] > col[2] + 50 else M["plaster"])
                o.add_along(sc, o.building, b, b["z0"], b["z1"], seg)
                if s == sc.sun_side and sc.sun_rgb[0] > sc.shade_rgb[0] * 1.2:
                    m = (shadow_z > b["z0"]) & (shadow_z < b["z1"])
                    reach[m] = np.maximum(reach[m], setback + hb * rng.uniform(0.2, 0.6))
                gap = rng.uniform(0, 3) * (rng.random() < 0.4) if area == "urban" else rng.uniform(4, 15)
                if gap > 3 or area != "urban":  # a tree or hedge in the gap, behind the building line
                    if rng.random() < 0.6:
                        o.add(sc, z + length + gap / 2, o.tree, _tree(rng, s * (side.edge + setback + 2),
                                                                      z + length + gap / 2))
                z += length + gap
            if area == "suburban" and rng.random() < 0.6:
                kind = o.hedge if rng.random() < 0.5 else o.fence
                obj = _hedge(rng, s * (side.edge + 0.3), 1.0, 1.8) if kind is o.hedge else _fence(rng, s * (side.edge + 0.2))
                za = rng.uniform(1, 15)
                o.add_along(sc, kind, obj, za, za + rng.uniform(15, 80), seg)
        else:  # open side: tree line at some distance
            u = s * (side.edge + rng.uniform(2, 25))
            za = rng.uniform(0, 30)
            o.add_along(sc, o.hedge, _hedge(rng, u, 7, 18, rag=0.25, step=2.0), za, zfar, seg)
        if rng.random() < (0.4 if area != "urban" else 0.25):
            za = rng.uniform(1, 20)
            o.add_along(sc, o.fence, _fence(rng, s * (side.edge + 0.15)), za, za + rng.uniform(10, 60), seg)
        if rng.random() < {"urban": 0.5, "suburban": 0.7, "rural": 0.6}[area]:  # street trees
            z, step = rng.uniform(2, 12), rng.uniform(7, 16)
            while z < 90:
                o.add(sc, z, o.tree, _tree(rng, walk_u + s * rng.uniform(0, 1.5), z))
                z += step * rng.uniform(0.7, 1.3)
        if rng.random() < 0.75:  # street lights
            z, step = rng.uniform(3, 20), rng.uniform(20, 35)
            arm = rng.random() < 0.7
            while z < 80:
                o.add(sc, z, o.street_light, dict(u=walk_u, z=z, side=s, h=rng.uniform(6, 9) if arm else rng.uniform(3.5, 4.5),
                                                  w=0.18, color=o._gray(rng, (120, 125, 130), 25), arm=rng.uniform(1.0, 2.5) if arm else 0,
                                                  head=o._gray(rng, (110, 110, 115), 20),
                                                  glow=(255, 235, 190) if night else o._vary(rng, (215, 215, 205), 15)))
                z += step
        for _ in range(int(rng.poisson(1.2))):  # plain poles (bollards, posts)
            z = rng.uniform(3, 60)
            o.add(sc, z, o.pole, walk_u + s * rng.uniform(-0.2, 0.4), z, rng.uniform(2.5, 5),
                  rng.uniform(0.12, 0.25), o._gray(rng, (110, 112, 115), 30))
        for _ in range(int(rng.poisson(0.9))):
            z = rng.uniform(4, 35)
            o.add(sc, z, o.sign, _sign(rng, walk_u, z))
        npers = rng.poisson({"urban": 2.5, "suburban": 1.0, "rural": 0.2}[area])
        for _ in range(int(npers)):
            z = rng.uniform(3, 40)
            o.add(sc, z, o.person, _person(rng, s * (sc.wr + side.curb + side.verge + rng.uniform(0.3, max(0.4, side.walk))), z))
        if rng.random() < 0.4 and area == "urban":  # parked cars
            z = rng.uniform(1, 10)
            while z < 60:
                o.add(sc, z, o.vehicle, _vehicle(rng, s * (sc.wr - 1.05), z, front=False, parked=True))
                z += rng.uniform(5.0, 9.0) + 6 * (rng.random() < 0.3)
    if sc.cross is not None:
        for _ in range(int(rng.poisson(1.2))):
            z = sc.cross[0] + rng.uniform(0.5, sc.cross[1] - 0.5)
            o.add(sc, z, o.person, _person(rng, rng.uniform(-sc.wr, sc.wr), z))
    if rng.random() < 0.5:  # traffic lights at a junction
        z = sc.cross[0] + sc.cross[1] + 1 if sc.cross is not None else rng.uniform(10, 45)
        for s, side in zip((-1, 1), sc.sides):
            arm = rng.random() < 0.4
            tl = dict(u=s * sc.wr * rng.uniform(0.2, 0.6) if arm else s * (sc.wr + side.curb + 0.5), z=z,
                      y=rng.uniform(5, 6) if arm else rng.uniform(2.3, 3.2), arm=arm,
                      pole_u=s * (sc.wr + side.curb + 0.5), pole_rgb=o._gray(rng, (100, 100, 100), 30),
                      housing=o._pick(rng, [(35, 35, 35), (50, 55, 50), (170, 140, 40)]), plate=rng.random() < 0.4,
                      on=int(rng.integers(3)), rng=rng)
            tl["lamp"] = [(255, 60, 40), (255, 190, 40), (60, 255, 160)][tl["on"]]
            o.add(sc, z, o.traffic_light, tl)
    # Traffic: same direction right of the centre line (rear visible), oncoming on the left.
    for k in range(lanes):
        uc = -lanes * lw / 2 + (k + 0.5) * lw
        front = uc < 0
        z = rng.uniform(6, 25) if abs(uc - sc.cam.x0) < lw / 2 else rng.uniform(2, 25)
        for _ in range(int(rng.poisson(1.3))):
            v = _vehicle(rng, uc + rng.normal(0, 0.2), z, front=front, parked=False, urban=area != "rural")
            o.add(sc, z, o.vehicle, v)
            z += v["len"] + rng.uniform(3, 25)
            if z > 80:
                break
    if reach.any():
        sc.shadow_z, sc.shadow_reach = shadow_z, reach


def _tree(rng, u, z):
    return dict(u=u, z=z, rng=rng, crown_y=rng.uniform(1.8, 4.0), r=rng.uniform(1.5, 3.5), tall=rng.uniform(0.9, 1.4),
                trunk=rng.uniform(0.2, 0.45), bark=o._vary(rng, (75, 65, 55), 12), lobes=int(rng.integers(2, 6)),
                green=o._vary(rng, o._pick(rng, [(60, 90, 40), (75, 100, 45), (45, 70, 35), (90, 110, 50)]), 10))


def _hedge(rng, u, hmin, hmax, rag=0.08, step=1.0):
    return dict(u=u, h=rng.uniform(hmin, hmax), rng=rng, rag=rag, step=step, light=rng.uniform(0.8, 1.1),
                green=o._vary(rng, o._pick(rng, [(55, 85, 40), (70, 95, 45), (40, 65, 35)]), 10))


def _fence(rng, u):
    kind = int(rng.integers(3))
    color = [o._vary(rng, (120, 90, 60), 20), o._vary(rng, (60, 70, 60), 15), o._vary(rng, (150, 150, 145), 20)][kind]
    return dict(u=u, h=rng.uniform(1.0, 2.0), color=color, light=rng.uniform(0.8, 1.1),
                mat=[M["planks"], M["bars"], M["bars"]][kind])


def _sign(rng, u, z):
    kind = int(rng.integers(5))
    shape, outer, inner, glyph = [("circle", (200, 30, 30), (235, 235, 235), (30, 30, 30)),
                                  ("circle", (30, 70, 170), (40, 90, 190), (235, 235, 235)),
                                  ("tri", (200, 30, 30), (235, 235, 235), None),
                                  ("diamond", (235, 235, 235), (240, 190, 30), None),
                                  ("rect", (235, 235, 235), (30, 90, 170), (235, 235, 235))][kind]
    if rng.random() < 0.1:
        shape, outer, inner, glyph = "oct", (235, 235, 235), (200, 30, 30), (235, 235, 235)
    return dict(u=u, z=z, y=rng.uniform(1.8, 2.6), r=rng.uniform(0.4, 0.6), shape=shape, outer=outer, inner=inner,
                glyph=glyph, light=rng.uniform(0.8, 1.1))


def _person(rng, u, z):
    return dict(u=u, z=z, rng=rng, h=rng.uniform(1.55, 1.95), stride=rng.uniform(0, 0.18),
                legs=o._vary(rng, o._pick(rng, o.CLOTHES), 10), top=o._vary(rng, o._pick(rng, o.CLOTHES), 15),
                skin=o._pick(rng, o.SKIN), hair=o._vary(rng, (40, 30, 25), 15), hair_dy=rng.uniform(-0.02, 0.03),
                coat=rng.uniform(0, 0.35) * (rng.random() < 0.3), light=rng.uniform(0.8, 1.1),
                bag=o._pick(rng, o.CLOTHES) if rng.random() < 0.3 else None)


def _vehicle(rng, u, z, front, parked, urban=True):
    r = rng.random()
    kind = "car" if parked or r < 0.78 else ("truck" if r < 0.87 or not urban else "bus")
    color = o._vary(rng, o._pick(rng, o.CAR_COLORS), 8)
    glass = o._vary(rng, (45, 52, 60), 10)
    if kind == "car":
        L, w, h = rng.uniform(3.8, 4.9), rng.uniform(1.7, 1.95), rng.uniform(1.4, 1.75)
    elif kind == "truck":
        L, w, h = rng.uniform(6, 10), rng.uniform(2.3, 2.5), rng.uniform(2.8, 3.8)
        color = o._vary(rng, o._pick(rng, [(230, 230, 230), (200, 200, 200), (180, 40, 30), (40, 70, 140)]), 10)
    else:
        L, w, h = rng.uniform(10, 13), 2.5, rng.uniform(3.0, 3.3)
        color = o._vary(rng, o._pick(rng, [(230, 230, 230), (220, 180, 40), (190, 40, 40), (40, 110, 60), (50, 90, 160)]), 8)
    return dict(kind=kind, u=u, z=z, len=L, w=w, h=h, color=color, glass=glass, front=front, rng=rng,
                bumper=o._vary(rng, (40, 40, 42), 8) if rng.random() < 0.5 else color,
                plate=(230, 230, 225) if rng.random() < 0.8 else (240, 200, 40),
                stripe=o._vary(rng, o._pick(rng, o.CAR_COLORS), 20))
