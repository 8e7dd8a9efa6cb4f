"""The objects of one street-world frame (`seg.synth`): buildings, vegetation, barriers, poles, signs,
street furniture, parked and moving traffic, two-wheelers and people, each queued with its depth key
for far-to-near painting (`seg.synth.objects.add`)."""
from __future__ import annotations

import numpy as np

from seg.synth import objects as o
from seg.synth import props as pr
from seg.synth import road_users as ru
from seg.synth.objects import C, M, Scene

BUILDING_RATE = {"urban": 0.95, "suburban": 0.75, "rural": 0.15}
PERSON_RATE = {"urban": 2.5, "suburban": 1.0, "rural": 0.2}


def populate(rng, sc: Scene, area: str, lanes: int, lw: float) -> None:
    """Queue every object of the frame with its depth key."""
    zfar = 220.0
    seg = 6.0 if sc.cam.curv or abs(sc.cam.yaw) > 0.02 else 30.0
    reach = np.zeros(64, np.float32)
    shadow_z = np.geomspace(1, 400, 64).astype(np.float32)
    _backdrop(rng, sc, area)
    sc.looks["facades"], sc.looks["foliage"], sc.looks["cars"] = [], [], []
    for s, side in zip((-1, 1), sc.sides):
        _roadside(rng, sc, area, s, side, zfar, seg, reach, shadow_z)
    if sc.cross is not None:
        _on_the_crossing(rng, sc)
    if rng.random() < 0.5:
        _traffic_lights(rng, sc)
    if rng.random() < 0.06:
        _gantry(rng, sc)
    _traffic(rng, sc, area, lanes, lw)
    if reach.any():
        sc.shadow_z, sc.shadow_reach = shadow_z, reach


def _backdrop(rng, sc: Scene, area: str) -> None:
    """Far backdrop: hills (where the air is clear), then a skyline or tree line near the horizon."""
    st = sc.style
    if area != "urban" and sc.fog_dist > 250 and rng.random() < 0.4:
        zm = rng.uniform(350, 600)
        o.add(sc, zm, pr.mountains, dict(z=zm, rng=rng, h0=rng.uniform(10, 40), h1=rng.uniform(30, 120),
                                         color=o.vary(rng, o.pick(rng, [(80, 100, 95), (95, 110, 80),
                                                                        (110, 110, 120)]), 10)))
    zb = rng.uniform(120, 300)
    if area == "urban" or rng.random() < 0.3:
        bd = dict(z=zb, rng=rng, width=(8, 40), height=(6, 45), blocky=True, cls=C["building"],
                  color=o.pick(rng, st.facades), mat=M["plaster"], light=0.9)
    else:
        bd = dict(z=zb, rng=rng, width=(2, 6), height=(6, 18), blocky=False, cls=C["veg"],
                  color=o.vary(rng, o.pick(rng, st.foliage), 10), mat=M["foliage"], light=0.75)
    o.add(sc, zb, o.skyline, bd)


def _roadside(rng, sc: Scene, area: str, s: int, side, zfar: float, seg: float, reach, shadow_z) -> None:
    """Everything on side s (-1 left, +1 right): buildings or a tree line, barriers, trees, poles, signs,
    furniture, people, parked cars and cyclists in the bike lane. Buildings on the sunny side widen `reach`."""
    walk_u = s * (side.kerb + side.curb + side.verge + 0.5)  # street furniture line
    if rng.random() < BUILDING_RATE[area]:
        _buildings(rng, sc, area, s, side, zfar, seg, reach, shadow_z)
    else:  # open side: tree line at some distance
        u = s * (side.edge + rng.uniform(2, 25))
        za = rng.uniform(0, 30)
        o.add_along(sc, o.hedge, _hedge(rng, sc, u, 7, 18, rag=0.25, step=2.0), za, zfar, seg)
    _barriers(rng, sc, area, s, side, seg)
    if rng.random() < {"urban": 0.5, "suburban": 0.7, "rural": 0.6}[area]:
        _street_trees(rng, sc, s, walk_u)
    _poles_and_signs(rng, sc, area, s, side, walk_u)
    _furniture(rng, sc, area, s, side, walk_u)
    _people_and_parked(rng, sc, area, s, side)


def _street_trees(rng, sc: Scene, s: int, walk_u: float) -> None:
    z, step = rng.uniform(2, 12), rng.uniform(7, 16)
    while z < 90:
        t = _tree(rng, sc, walk_u + s * rng.uniform(0, 1.5), z)
        if z > 8 or abs(t["u"] - sc.cam.x0) > t["r"] + 1.5:  # no crown filling the whole view
            o.add(sc, z, o.tree, t)
            sc.tree_shadows.append((t["u"], z, t["r"]))
        z += step * rng.uniform(0.7, 1.3)


def _people_and_parked(rng, sc: Scene, area: str, s: int, side) -> None:
    """People on the sidewalk, parked cars at the kerb, sometimes a cyclist in the bike lane."""
    for _ in range(int(rng.poisson(PERSON_RATE[area]))):
        z = rng.uniform(3, 40)
        o.add(sc, z, ru.person, _person(rng, s * (side.kerb + side.curb + side.verge
                                                 + rng.uniform(0.3, max(0.4, side.walk))), z))
    if side.park or (rng.random() < 0.4 and area == "urban"):  # parked cars
        u = s * (side.kerb - side.park / 2) if side.park else s * (sc.wr - 1.05)
        z = rng.uniform(1, 10)
        while z < 60:
            o.add(sc, z, ru.vehicle, _vehicle(rng, sc, u, z, front=False, parked=True))
            z += rng.uniform(5.0, 9.0) + 6 * (rng.random() < 0.3)
    if side.bike and rng.random() < 0.5:
        z = rng.uniform(4, 30)
        o.add(sc, z, ru.two_wheeler, _two_wheeler(rng, sc, s * (sc.wr + side.bike / 2), z, "bicycle", True))


def _on_the_crossing(rng, sc: Scene) -> None:
    """People on the pedestrian crossing, sometimes someone wheeling a bike across."""
    for _ in range(int(rng.poisson(1.2))):
        z = sc.cross[0] + rng.uniform(0.5, sc.cross[1] - 0.5)
        o.add(sc, z, ru.person, _person(rng, rng.uniform(-sc.wr, sc.wr), z))
    if rng.random() < 0.25:
        z = sc.cross[0] + sc.cross[1] / 2
        o.add(sc, z, ru.two_wheeler, _two_wheeler(rng, sc, rng.uniform(-sc.wr, sc.wr), z, "bicycle", True,
                                                  side_view=True))


def _gantry(rng, sc: Scene) -> None:
    """An overhead sign gantry across the road with one to three signs."""
    z = rng.uniform(25, 70)
    u0, u1 = -sc.sides[0].kerb - 0.5, sc.sides[1].kerb + 0.5
    signs = [(c, rng.uniform(2.5, 4.0)) for c in np.linspace(u0 + 2.5, u1 - 2.5, int(rng.integers(1, 4)))]
    o.add(sc, z, pr.gantry, dict(z=z, y=rng.uniform(6.5, 7.5), u0=u0, u1=u1, signs=signs,
                                  steel=o.gray(rng, (150, 150, 150), 20),
                                  panel=o.pick(rng, [(30, 90, 60), (30, 70, 160)])))


def _buildings(rng, sc, area, s, side, zfar, seg, reach, shadow_z):
    st, night = sc.style, sc.weather == "dusk"
    z = rng.uniform(-10, 12)
    while z < zfar:
        length = rng.uniform(8, 35) if area == "urban" else rng.uniform(8, 16)
        setback = rng.uniform(0, 1.5) if area == "urban" else rng.uniform(3, 10)
        hb = rng.uniform(7, 30) if area == "urban" else rng.uniform(5, 9)
        base = o.pick(rng, st.facades)
        sc.looks["facades"].append(base)
        col = o.vary(rng, base, 12)
        glass_base = o.vary(rng, (70, 80, 95), 15)
        glass = [o.vary(rng, glass_base, 12) for _ in range(4)] + [
            o.vary(rng, sc.sky_horizon.tolist(), 15), o.vary(rng, (25, 28, 32), 6), o.vary(rng, (200, 195, 185), 12)]
        if night:
            glass[1] = (240, 200, 120)
        wall_mat = M[o.pick(rng, st.wall_textures)]
        shop = int(area == "urban" and rng.random() < 0.5)
        b = dict(side=s, u=s * (side.edge + setback), z0=max(z, 0.0), z1=z + length, h=hb, color=col,
                 rng=rng, depth=rng.uniform(8, 14), floor=rng.uniform(2.9, 3.6), bay=rng.uniform(1.8, 4.0),
                 win_w=rng.uniform(0.9, 1.6), win_h=rng.uniform(1.2, 1.9), glass=glass, gseed=int(rng.integers(7)),
                 shop=shop, mat=M["brick"] if col[0] > col[2] + 50 and "brick" in st.wall_textures else wall_mat,
                 frame=o.vary(rng, o.pick(rng, [(235, 235, 230), (60, 55, 50), (150, 150, 150)]), 10),
                 trim=o.vary(rng, col, 25), mullion=rng.random() < 0.5, courses=rng.random() < 0.4,
                 balcony=area == "urban" and rng.random() < 0.3, rail=o.gray(rng, (70, 70, 72), 30),
                 gable=rng.uniform(1.5, 3.5) if area != "urban" and rng.random() < 0.6 else 0.0,
                 roof=o.pick(rng, [(120, 60, 50), (70, 70, 75), (95, 80, 70)]),
                 awning=o.vary(rng, o.pick(rng, [(150, 30, 30), (30, 80, 50), (40, 60, 120), (200, 190, 170)]), 15)
                 if shop and rng.random() < 0.5 else None,
                 fascia=(o.pick(rng, [(30, 30, 35), (200, 30, 30), (240, 240, 235), (30, 70, 150)]),
                         o.pick(rng, [(240, 240, 240), (240, 200, 40), (20, 20, 20)])) if shop and rng.random() < 0.7
                 else None)
        if area == "urban" and hb > 12 and rng.random() < 0.2:  # glass curtain wall: sky-tinted panes, thin mullions
            b.update(bay=rng.uniform(1.3, 1.8), floor=rng.uniform(3.0, 3.6), mullion=False, courses=False, balcony=False,
                     shop=0, frame=o.gray(rng, (60, 62, 66), 25), color=o.gray(rng, (70, 75, 80), 20), mat=M["fine"],
                     glass=[o.vary(rng, (sc.sky_horizon * rng.uniform(0.6, 0.95)).tolist(), 10) for _ in range(5)]
                     + [o.vary(rng, (45, 60, 70), 10)] * 2)
            b.update(win_w=b["bay"] - 0.12, win_h=b["floor"] - 0.25)
        o.add_along(sc, o.building, b, b["z0"], b["z1"], seg)
        if s == sc.sun_side and sc.sun_rgb[0] > sc.shade_rgb[0] * 1.2:
            m = (shadow_z > b["z0"]) & (shadow_z < b["z1"])
            reach[m] = np.maximum(reach[m], setback + hb * rng.uniform(0.2, 0.6))
        gap = rng.uniform(0, 3) * (rng.random() < 0.4) if area == "urban" else rng.uniform(4, 15)
        if (gap > 3 or area != "urban") and rng.random() < 0.6:  # a tree in the gap, behind the building line
            o.add(sc, z + length + gap / 2, o.tree, _tree(rng, sc, s * (side.edge + setback + 2), z + length + gap / 2))
        if area == "urban" and rng.random() < 0.12:  # a billboard high on the wall
            zc = z + length * rng.uniform(0.2, 0.6)
            o.add(sc, zc - 0.1, pr.billboard, _billboard(rng, s * (side.edge + setback) - s * 0.2, zc,
                                                         rng.uniform(4, max(4.5, hb - 4)), legs=0))
        z += length + gap
    if area == "suburban" and rng.random() < 0.6:
        kind = o.hedge if rng.random() < 0.5 else o.fence
        obj = _hedge(rng, sc, s * (side.edge + 0.3), 1.0, 1.8) if kind is o.hedge else _fence(rng, s * (side.edge + 0.2))
        za = rng.uniform(1, 15)
        o.add_along(sc, kind, obj, za, za + rng.uniform(15, 80), seg)


def _barriers(rng, sc, area, s, side, seg):
    if rng.random() < (0.4 if area != "urban" else 0.25):
        za = rng.uniform(1, 20)
        o.add_along(sc, o.fence, _fence(rng, s * (side.edge + 0.15)), za, za + rng.uniform(10, 60), seg)
    if rng.random() < {"urban": 0.12, "suburban": 0.3, "rural": 0.25}[area]:
        za = rng.uniform(1, 25)
        w = dict(u=s * (side.edge + rng.uniform(0.1, 0.6)), h=rng.uniform(0.5, 2.6), light=rng.uniform(0.8, 1.1),
                 color=o.vary(rng, o.pick(rng, [(170, 165, 155), (140, 135, 125), (120, 80, 65), (200, 195, 185)]), 12),
                 mat=M[o.pick(rng, sc.style.wall_textures)])
        o.add_along(sc, pr.wall, w, za, za + rng.uniform(10, 80), seg)
    if rng.random() < {"urban": 0.03, "suburban": 0.15, "rural": 0.5}[area]:
        za = rng.uniform(1, 15)
        g = dict(u=s * (side.kerb + side.curb + rng.uniform(0.3, 0.9)), y=rng.uniform(0.6, 0.8),
                 step=rng.uniform(2, 4), color=o.gray(rng, (170, 172, 175), 20), post=o.gray(rng, (120, 120, 120), 20),
                 light=rng.uniform(0.85, 1.15))
        o.add_along(sc, pr.guard_rail, g, za, za + rng.uniform(20, 120), seg)
    if rng.random() < 0.05:
        za = rng.uniform(5, 30)
        o.add_along(sc, pr.barrier, dict(u=s * (sc.wr - 0.4), light=rng.uniform(0.8, 1.1)), za, za + rng.uniform(3, 12), 1.6)


def _poles_and_signs(rng, sc, area, s, side, walk_u):
    night = sc.weather == "dusk"
    if rng.random() < 0.75:  # street lights
        z, step = rng.uniform(3, 20), rng.uniform(20, 35)
        arm = rng.random() < 0.7
        while z < 80:
            o.add(sc, z, o.street_light, dict(u=walk_u, z=z, side=s, h=rng.uniform(6, 9) if arm else rng.uniform(3.5, 4.5),
                                              w=0.18, color=o.gray(rng, (120, 125, 130), 25),
                                              arm=rng.uniform(1.0, 2.5) if arm else 0,
                                              head=o.gray(rng, (110, 110, 115), 20),
                                              glow=(255, 235, 190) if night else o.vary(rng, (215, 215, 205), 15)))
            z += step
    if rng.random() < {"urban": 0.1, "suburban": 0.4, "rural": 0.5}[area]:  # utility poles carrying wires
        z, step = rng.uniform(3, 25), rng.uniform(30, 45)
        u = s * (side.edge + rng.uniform(-0.3, 1.5)) if side.walk else s * (side.kerb + side.curb + rng.uniform(1, 3))
        col = o.vary(rng, o.pick(rng, [(95, 75, 55), (80, 65, 50), (150, 150, 145)]), 10)
        h = rng.uniform(8, 11)
        while z < 150:
            nz = z + step
            o.add(sc, z, pr.utility_pole, dict(u=u, z=z, h=h, color=col, next_z=nz if nz < 150 else None, next_u=u))
            z = nz
    for _ in range(int(rng.poisson(1.2))):  # plain poles (bollards, posts)
        z = rng.uniform(3, 60)
        o.add(sc, z, o.pole, walk_u + s * rng.uniform(-0.2, 0.4), z, rng.uniform(2.5, 5),
              rng.uniform(0.12, 0.25), o.gray(rng, (110, 112, 115), 30))
    for _ in range(int(rng.poisson(1.1))):
        z = rng.uniform(4, 35)
        o.add(sc, z, pr.sign_assembly, _sign(rng, walk_u, z, facing_away=s < 0 and rng.random() < 0.55))
    if rng.random() < 0.1 and area != "urban":  # roadside billboard on legs
        z = rng.uniform(15, 60)
        o.add(sc, z, pr.billboard, _billboard(rng, s * (side.edge + rng.uniform(2, 8)), z, rng.uniform(2.5, 5),
                                              legs=int(rng.integers(1, 3))))


def _furniture(rng, sc, area, s, side, walk_u):
    if not side.walk:
        return
    edge = s * (side.kerb + side.curb + side.verge)
    rate = {"urban": 1.0, "suburban": 0.4, "rural": 0.0}[area]
    for _ in range(int(rng.poisson(0.5 * rate))):
        z = rng.uniform(3, 35)
        o.add(sc, z, pr.bench, dict(u=edge + s * rng.uniform(0.8, max(0.9, side.walk - 0.6)), z=z,
                                    color=o.vary(rng, o.pick(rng, [(120, 85, 55), (60, 90, 60), (90, 90, 95)]), 12)))
    for _ in range(int(rng.poisson(0.8 * rate))):
        z = rng.uniform(3, 35)
        o.add(sc, z, pr.trash_can, dict(u=walk_u + s * rng.uniform(-0.1, 0.3), z=z,
                                        color=o.vary(rng, o.pick(rng, [(50, 70, 55), (60, 60, 65), (170, 130, 40),
                                                                         (40, 60, 110)]), 12),
                                        lid=o.gray(rng, (70, 70, 70), 20)))
    if rng.random() < 0.3 * rate:
        z = rng.uniform(3, 30)
        o.add(sc, z, pr.hydrant, dict(u=walk_u, z=z, rng=rng,
                                      color=o.pick(rng, [(190, 40, 35), (220, 190, 40), (200, 200, 195)])))
    if rng.random() < 0.35 * rate:
        z = rng.uniform(3, 40)
        o.add(sc, z, pr.junction_box, dict(u=s * (side.edge - 0.4), z=z, w=rng.uniform(0.5, 1.1), h=rng.uniform(0.9, 1.5),
                                           color=o.gray(rng, (150, 155, 150), 25)))
    for _ in range(int(rng.poisson(0.6 * rate))):  # parked bicycles
        z = rng.uniform(3, 30)
        o.add(sc, z, ru.two_wheeler, _two_wheeler(rng, sc, walk_u + s * rng.uniform(0.2, 0.8), z, "bicycle", False,
                                                  side_view=rng.random() < 0.5))


def _traffic_lights(rng, sc):
    z = sc.cross[0] + sc.cross[1] + 1 if sc.cross is not None else rng.uniform(10, 45)
    for s, side in zip((-1, 1), sc.sides):
        arm = rng.random() < 0.4
        tl = dict(u=s * sc.wr * rng.uniform(0.2, 0.6) if arm else s * (side.kerb + side.curb + 0.5), z=z,
                  y=rng.uniform(5, 6) if arm else rng.uniform(2.3, 3.2), arm=arm,
                  pole_u=s * (side.kerb + side.curb + 0.5), pole_rgb=o.gray(rng, (100, 100, 100), 30),
                  housing=o.pick(rng, [(35, 35, 35), (50, 55, 50), (170, 140, 40)]), plate=rng.random() < 0.4,
                  on=int(rng.integers(3)), rng=rng)
        tl["lamp"] = [(255, 60, 40), (255, 190, 40), (60, 255, 160)][tl["on"]]
        o.add(sc, z, o.traffic_light, tl)


def _traffic(rng, sc, area, lanes, lw):
    """Same direction right of the centre line (rear visible), oncoming on the left; motorbikes among them."""
    for k in range(lanes):
        uc = -lanes * lw / 2 + (k + 0.5) * lw
        front = uc < 0
        z = rng.uniform(6, 25) if abs(uc - sc.cam.x0) < lw / 2 else rng.uniform(2, 25)
        for _ in range(int(rng.poisson(1.3))):
            if rng.random() < 0.08:
                o.add(sc, z, ru.two_wheeler, _two_wheeler(rng, sc, uc + rng.normal(0, 0.4), z, "motorcycle", True))
                z += rng.uniform(5, 20)
                continue
            v = _vehicle(rng, sc, uc + rng.normal(0, 0.2), z, front=front, parked=False, urban=area != "rural")
            o.add(sc, z, ru.vehicle, v)
            z += v["len"] + rng.uniform(3, 25)
            if z > 80:
                break
    if rng.random() < 0.15:  # a cyclist at the kerb
        s = int(rng.choice([-1, 1]))
        z = rng.uniform(5, 30)
        o.add(sc, z, ru.two_wheeler, _two_wheeler(rng, sc, s * (sc.wr - 0.6), z, "bicycle", True))


def _tree(rng, sc, u, z):
    base = o.pick(rng, sc.style.foliage)
    sc.looks["foliage"].append(base)
    big = rng.random() < 0.2  # mature trees whose crowns overhang the street
    return dict(u=u, z=z, rng=rng, crown_y=rng.uniform(1.8, 4.0) + 2.0 * big,
                r=rng.uniform(3.5, 6.0) if big else rng.uniform(1.5, 3.5), tall=rng.uniform(0.9, 1.4),
                trunk=rng.uniform(0.2, 0.45), bark=o.vary(rng, (75, 65, 55), 12), lobes=int(rng.integers(2, 6)),
                green=o.vary(rng, base, 10))


def _hedge(rng, sc, u, hmin, hmax, rag=0.08, step=1.0):
    base = o.pick(rng, sc.style.foliage)
    sc.looks["foliage"].append(base)
    return dict(u=u, h=rng.uniform(hmin, hmax), rng=rng, rag=rag, step=step, light=rng.uniform(0.7, 1.0),
                green=o.vary(rng, tuple(int(c * 0.9) for c in base), 10))


def _fence(rng, u):
    kind = int(rng.integers(3))
    color = [o.vary(rng, (120, 90, 60), 20), o.vary(rng, (60, 70, 60), 15), o.vary(rng, (150, 150, 145), 20)][kind]
    return dict(u=u, h=rng.uniform(1.0, 2.0), color=color, light=rng.uniform(0.8, 1.1),
                mat=[M["planks"], M["bars"], M["bars"]][kind])


def _sign(rng, u, z, facing_away=False):
    kind = int(rng.integers(5))
    shape, outer, inner, glyph = [("circle", (200, 30, 30), (235, 235, 235), (30, 30, 30)),
                                  ("circle", (30, 70, 170), (40, 90, 190), (235, 235, 235)),
                                  ("tri", (200, 30, 30), (235, 235, 235), None),
                                  ("diamond", (235, 235, 235), (240, 190, 30), None),
                                  ("rect", (235, 235, 235), (30, 90, 170), (235, 235, 235))][kind]
    if rng.random() < 0.1:
        shape, outer, inner, glyph = "oct", (235, 235, 235), (200, 30, 30), (235, 235, 235)
    return dict(u=u, z=z, y=rng.uniform(1.8, 2.6), r=rng.uniform(0.4, 0.6), shape=shape, outer=outer, inner=inner,
                glyph=glyph, light=rng.uniform(0.8, 1.1), back=facing_away, back_rgb=o.gray(rng, (150, 152, 155), 25),
                frame=shape == "rect" and rng.random() < 0.6, post=o.gray(rng, (150, 150, 150), 20))


def _billboard(rng, u, z, y, legs):
    w, h = rng.uniform(3, 7), rng.uniform(1.5, 3.5)
    blocks = []
    for _ in range(int(rng.integers(2, 6))):
        a, c = rng.uniform(0.05, 0.7), rng.uniform(0.05, 0.7)
        blocks.append(((a, a + rng.uniform(0.1, 0.9 - a), c, c + rng.uniform(0.08, 0.9 - c)),
                       tuple(int(v) for v in rng.integers(0, 256, 3))))
    return dict(u=u, z=z, y=y, w=w, h=h, legs=legs, leg_rgb=o.gray(rng, (110, 110, 112), 20),
                edge=o.gray(rng, (60, 60, 62), 20), bg=tuple(int(v) for v in rng.integers(0, 256, 3)), blocks=blocks)


def _person(rng, u, z):
    return dict(u=u, z=z, rng=rng, h=rng.uniform(1.55, 1.95), stride=rng.uniform(0, 0.18),
                legs=o.vary(rng, o.pick(rng, o.CLOTHES), 10), top=o.vary(rng, o.pick(rng, o.CLOTHES), 15),
                skin=o.pick(rng, o.SKIN), hair=o.vary(rng, (40, 30, 25), 15), hair_dy=rng.uniform(-0.02, 0.03),
                coat=rng.uniform(0, 0.35) * (rng.random() < 0.3), light=rng.uniform(0.8, 1.1),
                bag=o.pick(rng, o.CLOTHES) if rng.random() < 0.3 else None)


def _two_wheeler(rng, sc, u, z, kind, ridden, side_view=False):
    rider = None
    if ridden:
        rider = dict(top=o.vary(rng, o.pick(rng, o.CLOTHES), 15), legs=o.vary(rng, o.pick(rng, o.CLOTHES), 10),
                     skin=o.pick(rng, o.SKIN), light=rng.uniform(0.8, 1.1),
                     helmet=o.pick(rng, [(30, 30, 32), (230, 230, 230), (200, 30, 30)])
                     if kind == "motorcycle" or rng.random() < 0.4 else None)
    return dict(u=u, z=z, rng=rng, kind=kind, side_view=side_view, rider=rider,
                color=o.vary(rng, o.pick(rng, sc.style.cars), 15), behind=o.gray(rng, (110, 110, 110), 30))


def _vehicle(rng, sc, u, z, front, parked, urban=True):
    st = sc.style
    r = rng.random()
    kind = "car" if parked or r < 0.75 else ("truck" if r < 0.87 or not urban else "bus")
    base = o.pick(rng, st.cars)
    sc.looks["cars"].append(base)
    color = o.vary(rng, base, 8)
    glass = o.vary(rng, (45, 52, 60), 10)
    if kind == "car":
        shape = rng.random()
        if shape < 0.65:  # saloon / hatchback
            L, w, h = rng.uniform(3.8, 4.9), rng.uniform(1.7, 1.95), rng.uniform(1.4, 1.6)
        elif shape < 0.85:  # SUV
            L, w, h = rng.uniform(4.3, 5.0), rng.uniform(1.8, 2.0), rng.uniform(1.65, 1.85)
        else:  # van
            L, w, h = rng.uniform(4.8, 5.8), rng.uniform(1.9, 2.05), rng.uniform(1.9, 2.4)
    elif kind == "truck":
        L, w, h = rng.uniform(6, 10), rng.uniform(2.3, 2.5), rng.uniform(2.8, 3.8)
        color = o.vary(rng, o.pick(rng, st.trucks), 10)
    else:
        L, w, h = rng.uniform(10, 13), 2.5, rng.uniform(3.0, 3.3)
        color = o.vary(rng, o.pick(rng, [(230, 230, 230), (220, 180, 40), (190, 40, 40), (40, 110, 60), (50, 90, 160)]), 8)
    return dict(kind=kind, u=u, z=z, len=L, w=w, h=h, color=color, glass=glass, front=front, rng=rng,
                bumper=o.vary(rng, (40, 40, 42), 8) if rng.random() < 0.5 else color,
                plate=(230, 230, 225) if rng.random() < 0.8 else (240, 200, 40),
                stripe=o.vary(rng, o.pick(rng, st.cars), 20))
