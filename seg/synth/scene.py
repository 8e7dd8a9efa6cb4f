"""Random layout and appearance of one street-world frame (`seg.synth`): camera, road cross-section
(lanes, bike and parking lanes, kerbs, verges, sidewalks), markings and crossings, ground details
(manholes, catch basins, patches, cracks, driveways), lighting, weather and the camera's own quirks.
Objects are queued by `seg.synth.populate`."""
from __future__ import annotations

import math

import numpy as np

from seg.synth import objects as o
from seg.synth.objects import C, Cam, Line, Scene, Side
from seg.synth.populate import populate
from seg.synth.style import IN, Style


def sample_scene(rng: np.random.Generator, W: int, H: int, style: Style = IN) -> Scene:
    """Everything random about a frame of size (W, H) in appearance `style`; geometry scales with the frame."""
    # Focal length from the frame area: 512x384 gets ~45-80 deg horizontal FOV, 1242x375 ~ KITTI's 720 px.
    f = math.sqrt(W * H) * rng.uniform(0.7, 1.4)
    area = _pick_w(rng, ("urban", "suburban", "rural"), (0.5, 0.3, 0.2))
    lanes = int(_pick_w(rng, (2, 3, 4, 6), (0.4, 0.15, 0.35, 0.1)))
    lw = rng.uniform(2.8, 3.6)
    wr = lanes * lw / 2 + rng.uniform(0.0, 0.6)
    on_walk = area != "rural" and rng.random() < 0.15  # pedestrian viewpoint (many Vistas photos)
    sides = [_side(rng, area) for _ in range(2)]
    for s in sides:
        s.kerb = wr + s.bike + s.park
        s.edge = s.kerb + s.curb + s.verge + s.walk
    if on_walk:
        x0 = rng.choice([-1, 1]) * (sides[1].kerb + sides[1].curb + rng.uniform(0.5, 1.5))
        x0 = float(np.clip(x0, -sides[0].edge + 0.3, sides[1].edge - 0.3))
        h = rng.uniform(1.4, 1.8)
    else:
        x0 = -wr + lw * (lanes // 2 + rng.integers(0, lanes - lanes // 2) + 0.5) + rng.normal(0, 0.25)
        # cars, vans, and now and then a truck's or a mapping rig's high mount
        h = rng.uniform(1.2, 1.9) if rng.random() < 0.7 else rng.uniform(1.9, 3.0)
    cam = Cam(f=f, cx=W / 2, yh=H * rng.uniform(0.33, 0.58), h=h, x0=x0, yaw=rng.normal(0, 0.03),
              curv=0.0 if rng.random() < 0.4 else rng.uniform(-0.0025, 0.0025))
    sc = Scene(cam=cam, H=H, min_px=max(1.0, 2.5 * H / 384), wr=wr, sides=sides, lines=_lines(rng, lanes, lw, wr, sides),
               cross=(rng.uniform(5, 18), rng.uniform(3, 5), rng.uniform(0.9, 1.3)) if rng.random() < 0.45 else None)
    sc.style = style
    _ground_details(rng, sc, area)
    _appearance(rng, sc, area, style)
    _camera(rng, sc, on_walk)
    populate(rng, sc, area, lanes, lw)
    return sc


def _pick_w(rng, items, p):
    return items[int(rng.choice(len(items), p=p))]


def _side(rng, area: str) -> Side:
    if area == "urban":
        s = Side(curb=rng.uniform(0.15, 0.3), verge=0.0, walk=rng.uniform(2.0, 5.0), beyond=C["sidewalk"])
        s.park = rng.uniform(2.0, 2.5) * (rng.random() < 0.35)
        s.bike = rng.uniform(1.2, 1.8) * (rng.random() < 0.25)
        return s
    if area == "suburban":
        s = Side(curb=rng.uniform(0.15, 0.3), verge=rng.uniform(0.0, 2.5) * (rng.random() < 0.6),
                 walk=rng.uniform(1.2, 2.5), beyond=C["terrain"])
        s.bike = rng.uniform(1.2, 1.6) * (rng.random() < 0.2)
        s.park = rng.uniform(2.0, 2.4) * (rng.random() < 0.15)
        return s
    return Side(curb=rng.uniform(0.15, 0.25) * (rng.random() < 0.3), verge=0.0, walk=0.0, beyond=C["terrain"])


def _lines(rng, lanes: int, lw: float, wr: float, sides) -> list:
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
    for s, side in zip((-1, 1), sides):
        if side.bike:  # bike lanes are separated by a solid (sometimes wide) line
            lines.append(Line(s * (wr + 0.05), hw * rng.uniform(1.0, 2.0), 0, 1, 0, False))
        elif rng.random() < 0.7:  # edge line
            lines.append(Line(s * (wr - 0.3), hw, 0, 1, 0, False))
    return lines


def _ground_details(rng, sc: Scene, area: str) -> None:
    """Crossing kind, manholes, catch basins, driveways, repaired patches and cracks."""
    sc.cross_kind = "plain" if rng.random() < 0.3 else "zebra"
    sc.manholes = [(rng.uniform(-sc.wr + 0.5, sc.wr - 0.5), rng.uniform(3, 40), rng.uniform(0.3, 0.4))
                   for _ in range(int(rng.poisson(1.0 if area != "rural" else 0.2)))]
    for s, side in zip((-1, 1), sc.sides):
        if area != "rural":
            z = rng.uniform(2, 15)
            while z < 60 and rng.random() < 0.7:
                sc.basins.append((s, z))
                z += rng.uniform(15, 35)
        if side.curb and area == "suburban":
            for _ in range(int(rng.poisson(0.8))):
                z0 = rng.uniform(3, 40)
                sc.driveways.append((s, z0, z0 + rng.uniform(3, 6)))
    for _ in range(int(rng.poisson(1.5))):
        u0, z0 = rng.uniform(-sc.wr, sc.wr), rng.uniform(2, 50)
        sc.patches.append((u0, u0 + rng.uniform(0.8, 3.5), z0, z0 + rng.uniform(1, 8), rng.uniform(0.75, 1.2)))
    sc.crack_amp = rng.uniform(0.0, 0.35) if rng.random() < 0.5 else 0.0


def _appearance(rng, sc: Scene, area: str, st: Style) -> None:
    """Weather, the ground's colours and detail, light, sky, haze and wetness, and the camera's tone curve."""
    weather = _pick_w(rng, ("sun", "overcast", "bright", "dusk"), (0.42, 0.28, 0.18, 0.12))
    _ground_colours(rng, sc, st)
    sc.grain_amp = rng.uniform(0.05, 0.18)
    sc.grain = st.ground_grain
    sc.tile = rng.uniform(0.3, 0.8)
    _light(rng, sc, weather)
    _sky(rng, sc, weather, st)
    _haze_and_water(rng, sc, area, weather)
    _tone_curve(rng, sc, weather, st)
    sc.yellow_rgb = np.array(o.vary(rng, (215, 170, 45), 10), np.float32)
    sc.weather = weather


def _ground_colours(rng, sc: Scene, st: Style) -> None:
    """sc.ground_lut: two (256, 3) tones per ground class, mixed per pixel by a patch field; a paved crossing."""
    looks = sc.looks
    lut1 = np.zeros((256, 3), np.float32)
    (tr, tg, tb), (lo, hi) = st.asphalt
    asphalt = rng.uniform(lo, hi) * np.array([tr, tg, tb * rng.uniform(1.0, 1.04)])
    looks["asphalt"] = asphalt / asphalt.max()
    lut1[C["road"]] = lut1[C["cross_plain"]] = lut1[C["manhole"]] = asphalt
    lut1[C["parking"]] = asphalt * rng.uniform(0.85, 1.15)
    looks["sidewalk"] = walk = o.pick(rng, st.sidewalks)
    lut1[C["sidewalk"]] = o.vary(rng, walk, 10)
    lut1[C["curb"]] = o.vary(rng, (185, 185, 180), 12)
    lut1[C["curb_cut"]] = lut1[C["sidewalk"]] * 0.9 + lut1[C["curb"]] * 0.1
    looks["terrain"] = terr = o.pick(rng, st.terrain)
    lut1[C["terrain"]] = o.vary(rng, terr, 10)
    lut1[C["marking"]] = lut1[C["zebra"]] = np.array([225, 225, 220]) * rng.uniform(0.8, 1.05)
    lut1[C["bike_lane"]] = (o.pick(rng, [(165, 70, 60), (80, 135, 90), (110, 100, 150)]) if rng.random() < 0.6
                            else asphalt * rng.uniform(0.9, 1.1))
    lut1[C["basin"]] = (55, 55, 58)
    lut1[C["water"]] = (90, 105, 115)
    lut2 = lut1.copy()
    lut2[C["road"]] = lut2[C["cross_plain"]] = asphalt * rng.uniform(0.75, 1.25)
    lut2[C["sidewalk"]] = lut1[C["sidewalk"]] * rng.uniform(0.8, 0.95)
    lut2[C["terrain"]] = o.vary(rng, (120, 110, 70), 15)
    lut2[C["marking"]] = lut2[C["zebra"]] = lut1[C["marking"]] * rng.uniform(0.75, 0.95)  # worn paint
    lut2[C["manhole"]] = asphalt * 0.55
    sc.ground_lut = (lut1, lut2)
    if sc.cross is not None and sc.cross_kind == "plain" and rng.random() < 0.5:  # paved crossing
        sc.cross_paint = np.array(o.pick(rng, [(150, 85, 70), (175, 170, 160), (120, 120, 125)]), np.float32)


def _light(rng, sc: Scene, weather: str) -> None:
    """Sunlit and shaded ground tints, the sun's side and how bright each facing of a surface is."""
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


def _sky(rng, sc: Scene, weather: str, st: Style) -> None:
    """Horizon and zenith colours, clouds (colour, threshold, opacity, offset), all tinted by the style."""
    if weather == "sun":
        hz, zen = o.vary(rng, (200, 215, 230), 8), o.vary(rng, (70, 120, 195), 15)
        cloud, thr, alpha = (245, 245, 248), rng.uniform(-0.5, 1.5), rng.uniform(0.5, 1.0)
    elif weather in ("overcast", "bright"):  # "bright": the washed-out white sky of most dashcam frames
        g = rng.uniform(170, 225) if weather == "overcast" else rng.uniform(228, 252)
        hz, zen = (g, g, g + 4), (g * 0.88, g * 0.9, g * 0.95)
        cloud, thr, alpha = (g * 0.8, g * 0.8, g * 0.83), rng.uniform(-0.5, 0.5), rng.uniform(0.2, 0.6)
    else:
        hz, zen = o.vary(rng, (235, 160, 110), 15), o.vary(rng, (60, 75, 120), 10)
        cloud, thr, alpha = (150, 110, 110), rng.uniform(0.3, 1.5), rng.uniform(0.3, 0.8)
    tint = np.array(st.sky_tint, np.float32)
    sc.sky_horizon, sc.sky_zenith = np.array(hz, np.float32) * tint, np.array(zen, np.float32) * tint
    sc.cloud_rgb, sc.cloud_thr, sc.cloud_alpha = np.array(cloud, np.float32) * tint, thr, alpha
    sc.cloud_off = (int(rng.integers(512)), int(rng.integers(512)))


def _haze_and_water(rng, sc: Scene, area: str, weather: str) -> None:
    """Fog distance and colour (haze also pales the sky), a wet road, a lake beside a rural road."""
    haze = rng.random() < 0.3
    sc.fog_dist = rng.uniform(40, 150) if haze else rng.uniform(300, 900)
    sc.fog_rgb = (sc.sky_horizon * (0.95 if haze else 1.0)).astype(np.float32)
    if haze:
        sc.sky_zenith = sc.sky_zenith * 0.4 + sc.sky_horizon * 0.6
    sc.wet = rng.uniform(0.4, 1.0) if weather != "sun" and rng.random() < 0.25 else 0.0
    sc.water_side = int(rng.choice([-1, 1])) if area == "rural" and rng.random() < 0.15 else 0


def _tone_curve(rng, sc: Scene, weather: str, st: Style) -> None:
    """sc.tone_lut: exposure, white balance (plus the style's cast) and contrast as one per-channel curve."""
    gain = rng.uniform(0.8, 1.25) * (0.75 if weather == "dusk" else 1.0)
    c_lo, c_hi = st.cast
    cast_dir = np.array(o.pick(rng, [(0.0, 1.0, -0.3), (1.0, -0.6, 1.0), (-0.5, 0.2, 1.0), (1.0, 0.4, -0.8)]))
    sc.looks["cast"] = rng.uniform(c_lo, c_hi)
    wb = (np.ones(3) + rng.normal(0, 0.012, 3) + sc.looks["cast"] * cast_dir / np.abs(cast_dir).max()
          + (np.array([0.08, 0.0, -0.1]) if weather == "dusk" else 0))
    gamma = rng.uniform(0.8, 1.25)
    x = np.arange(256) / 255.0
    sc.tone_lut = np.concatenate([np.clip(255 * (np.clip(x * gain * wb[c], 0, 1) ** gamma), 0, 255)
                                  for c in range(3)]).astype(int).tolist()


def _camera(rng, sc: Scene, on_walk: bool) -> None:
    """What the camera adds after the scene: noise, vignette, blur, roll, lens distortion, the ego car, JPEG."""
    sc.noise = rng.uniform(1.0, 7.0)
    sc.vignette = rng.uniform(0.0, 0.45)
    sc.blur = rng.uniform(0.3, 1.4) if rng.random() < 0.35 else 0.0  # defocus
    sc.motion = (int(rng.integers(2, 9)), float(rng.uniform(-0.3, 0.3))) if rng.random() < 0.2 else (0, 0.0)
    sc.roll = float(np.clip(rng.normal(0, 1.5), -4, 4))
    sc.distort = float(rng.uniform(-0.04, 0.22)) if rng.random() < 0.6 else 0.0
    sc.jpeg = int(rng.integers(35, 90)) if rng.random() < 0.3 else 0
    if not on_walk and rng.random() < 0.35:  # dashcams often see the hood or the dashboard
        dash = rng.random() < 0.25
        sc.ego = dict(dash=dash, top=rng.uniform(0.06, 0.2) if not dash else rng.uniform(0.04, 0.12),
                      bulge=rng.uniform(0.02, 0.09), color=np.array(o.pick(rng, sc.style.cars), np.float32)
                      if not dash else np.array(o.vary(rng, (30, 30, 32), 8), np.float32),
                      shine=rng.uniform(0.15, 0.45), tilt=rng.normal(0, 0.01))
