"""The per-pixel passes of the street world (`seg.synth`): cached detail textures, the ground plane (road
surface, bike and parking lanes, markings, crossings, manholes, catch basins, kerbs, curb cuts, sidewalk,
terrain, water, with wear, shadows, wetness and fog) and the sky. Rows are mapped to ground-plane depth, so
everything on the ground stays exact under perspective and road curvature."""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from PIL import Image

from seg.paths import REPO_ROOT
from seg.synth import objects as obj
from seg.synth.objects import C, M

TEX = 512  # side of every cached texture; power of two so world coordinates wrap with a bit mask
TEXTURES = REPO_ROOT / "assets" / "textures"

def _fft_noise(rng: np.random.Generator, beta: float) -> np.ndarray:
    """(TEX, TEX) float32 tileable noise with a 1/f^beta spectrum, zero mean, unit std."""
    fy = np.fft.fftfreq(TEX)[:, None]
    fx = np.fft.rfftfreq(TEX)[None, :]
    freq = np.sqrt(fx * fx + fy * fy)
    freq[0, 0] = 1.0
    spec = (rng.normal(size=freq.shape) + 1j * rng.normal(size=freq.shape)) / freq**beta
    spec[0, 0] = 0
    a = np.fft.irfft2(spec, s=(TEX, TEX))
    return ((a - a.mean()) / a.std()).astype(np.float32)


def _norm(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    return (a - a.mean()) / a.std()


def _photo(name: str) -> np.ndarray:
    """(TEX, TEX) uint8 grayscale photo texture from assets/textures (CC0 / public domain, see its README)."""
    return np.asarray(Image.open(TEXTURES / f"{name}.png").convert("L"))


@functools.lru_cache(maxsize=1)
def textures() -> dict:
    """Detail maps built once per process (fixed seed, so every process sees the same ones).

    "materials": (len(M), TEX, TEX) float32 multiplicative maps indexed by material id; the others are
    zero-mean unit-std (TEX, TEX) fields sampled in world coordinates on the ground.
    """
    rng = np.random.default_rng(1234)
    grass, gravel = _norm(_photo("grass")), _norm(_photo("gravel"))
    white = _norm(rng.normal(size=(TEX, TEX)))
    cols = np.arange(TEX, dtype=np.float32)[None, :]
    planks = np.repeat(np.sign(np.sin(cols * 2 * np.pi / 9.0)), TEX, 0) * 0.6 + 0.4 * _fft_noise(rng, 1.2)
    bars = np.repeat((np.sin(cols * 2 * np.pi / 6.0) > 0.3) * 2.0 - 1.0, TEX, 0)
    foliage = np.tanh(0.8 * gravel + 0.9 * _fft_noise(rng, 1.0) + 0.3 * white)
    rows = np.arange(TEX, dtype=np.float32)[:, None]
    # Bricks in horizontal courses (8 px, joints staggered by half a 16 px brick), each brick its own tone;
    # a brick photo in perspective (vertical courses) read as diagonal streaks on the flat facades.
    course = (rows // 8).astype(np.int64)
    col_b = ((cols + 8 * (course % 2)) // 16).astype(np.int64)
    tone = rng.normal(0, 0.5, (TEX // 8 + 1, TEX // 16 + 2))[course, col_b]
    mortar = ((rows % 8) < 1.5) | (((cols + 8 * (course % 2)) % 16) < 1.5)
    brick = _norm(np.where(mortar, -2.0, tone) + 0.3 * gravel)
    tiles = ((rows % 32) < 2) | ((cols % 32) < 2)  # held-out style: square tiles, dark joints
    grate = ((np.sin(cols * 2 * np.pi / 4.0) > 0.2) | ((rows % 24) < 2)).astype(np.float32)
    amp_maps = {  # material -> (amplitude, detail field)
        M["flat"]: (0.0, white),
        M["brick"]: (0.14, brick),
        M["plaster"]: (0.07, 0.7 * _fft_noise(rng, 1.6) + 0.5 * white),
        M["foliage"]: (0.5, foliage),
        M["fine"]: (0.05, white),
        M["planks"]: (0.18, planks),
        M["bars"]: (0.45, bars),
        M["bark"]: (0.25, np.repeat(_fft_noise(rng, 1.0)[:1], TEX, 0) + 0.3 * white),
        M["concrete"]: (0.1, 0.6 * _fft_noise(rng, 1.3) + 0.4 * gravel + ((rows % 96) < 2) * -2.0),
        M["tiles"]: (0.25, _norm(-tiles.astype(np.float32)) + 0.3 * white),
        M["grate"]: (0.45, _norm(-grate)),
    }
    mats = np.ones((len(M), TEX, TEX), np.float32)
    for m, (amp, field) in amp_maps.items():
        mats[m] = np.clip(1.0 + amp * field, 0.25, 1.9)
    return {
        "materials": mats,
        "asphalt": 0.7 * gravel + 0.5 * white,
        "moon": 0.8 * _norm(_photo("moon")) + 0.4 * white,  # held-out style's asphalt grain
        "crack": _fft_noise(rng, 1.4),
        "patch": _fft_noise(rng, 2.2),
        "grass": 0.7 * grass + 0.4 * _fft_noise(rng, 1.0),
        "cloud": _fft_noise(rng, 1.9),
        "sensor": rng.normal(size=(TEX * TEX, 3)).astype(np.float32),
    }


def wrap(a: np.ndarray) -> np.ndarray:
    """Integer texture coordinates of `a`, wrapped into 0..TEX-1."""
    return np.bitwise_and(a.astype(np.int32), TEX - 1)


def sample(t: np.ndarray, row, col) -> np.ndarray:
    """Nearest-neighbour lookup of the (TEX, TEX) map t at wrapped float coordinates (broadcast)."""
    return np.take(t, wrap(row) * TEX + wrap(col))


def ground(sc: obj.Scene, W: int, r0: int, H: int, tex: dict):
    """Per-pixel ground for rows r0..H-1: (rgb (G, W, 3) float32, label (G, W) uint8)."""
    z, u = _ground_plane(sc.cam, W, r0, H)
    px = sc.min_px * z / sc.cam.f  # world width of the minimum pixel width at each row, (G, 1)
    lab, zones = _cross_section(sc, u, px)
    grate = _road_furniture(sc, lab, zones, z, u)
    yellow = _markings(sc, lab, zones.park, z, u, px)
    if sc.cross is not None:
        _crossing(sc, lab, zones, yellow, z, u, px)
    patch = sample(tex["patch"], z * 2.0, u * 2.0)
    asphalt = zones.surface & (lab != C["basin"])
    rgb = _ground_colour(sc, lab, z, u, patch, grate, asphalt, tex)
    rgb[yellow] = sc.yellow_rgb
    shade = _shade(sc, lab.shape, z, u, patch)
    rgb *= np.where(shade[..., None], sc.shade_rgb, sc.sun_rgb) if shade.any() else sc.sun_rgb
    _wet_water_fog(sc, rgb, lab, z, patch, asphalt)
    return rgb, lab


def _ground_plane(cam: obj.Cam, W: int, r0: int, H: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground-plane position of each pixel of rows r0..H-1: (z (G, 1) metres ahead, u (G, W) metres across)."""
    d = np.arange(r0, H, dtype=np.float32)[:, None] + 0.5 - cam.yh  # rows below the horizon, > 0
    z = np.minimum(cam.f * cam.h / np.maximum(d, 1e-3), 3000.0)  # (G, 1) metres ahead
    u = ((np.arange(W, dtype=np.float32)[None, :] + 0.5 - cam.cx) / cam.f) * z + cam.x0
    u -= cam.yaw * z + cam.curv * z * z  # (G, W) lateral position relative to the road centre line
    return z, u


class _Zones(NamedTuple):
    """Where the cross-section puts each pixel; (G, W) arrays, the masks bool."""

    a: np.ndarray  # |u|, metres from the centre line
    kerb: np.ndarray  # |u| of the road surface's outer edge on the pixel's side
    e_curb: np.ndarray  # |u| of the curb's outer edge on the pixel's side
    curb: np.ndarray  # curb, outside the road surface
    surface: np.ndarray  # travel lanes, bike lanes and parking: the road surface
    road: np.ndarray  # travel lanes
    park: np.ndarray  # parking lanes


def _cross_section(sc: obj.Scene, u: np.ndarray, px: np.ndarray) -> tuple[np.ndarray, _Zones]:
    """Label (G, W) uint8 of the bands across the road, from the outside in, and where each band lies."""
    right = u > 0
    a = np.abs(u)

    def side(vals):  # per-side scalar or (G,1) -> (G, W)
        return np.where(right, vals[1], vals[0])

    lab = side([np.uint8(s.beyond) for s in sc.sides]).astype(np.uint8)
    kerb = side([s.kerb for s in sc.sides])
    cum = [s.kerb + np.where(s.curb > 0, np.maximum(s.curb, px), 0.0) for s in sc.sides]
    e_curb = side(cum)
    e_verge = side([c + s.verge for c, s in zip(cum, sc.sides)])
    e_walk = side([c + s.verge + s.walk for c, s in zip(cum, sc.sides)])
    if sc.water_side:
        ws = sc.sides[(sc.water_side + 1) // 2]
        lab[(np.sign(u) == sc.water_side) & (a > ws.edge + 8.0)] = C["water"]
    lab[a < e_walk] = C["sidewalk"]
    lab[a < e_verge] = C["terrain"]
    curb = a < e_curb
    lab[curb] = C["curb"]
    surface = a < kerb
    lab[surface] = C["parking"]
    lab[a < side([sc.wr + s.bike for s in sc.sides])] = C["bike_lane"]
    road = a < sc.wr
    lab[road] = C["road"]
    curb &= ~surface
    return lab, _Zones(a, kerb, e_curb, curb, surface, road, lab == C["parking"])


def _road_furniture(sc: obj.Scene, lab: np.ndarray, zones: _Zones, z, u) -> np.ndarray:
    """Label driveways (curb cuts), manholes and catch basins in place; returns the basins' grate bars (G, W)."""
    for s, dz0, dz1 in sc.driveways:  # lowered kerb at driveways
        lab[zones.curb & (np.sign(u) == s) & (z > dz0) & (z < dz1)] = C["curb_cut"]
    for um, zm, r in sc.manholes:
        lab[zones.road & ((u - um) ** 2 + (z - zm) ** 2 < r * r)] = C["manhole"]
    grate = np.zeros(lab.shape, bool)
    for s, zb in sc.basins:
        m = zones.surface & (np.sign(u) == s) & (zones.a > zones.kerb - 0.45) & (z > zb) & (z < zb + 0.9)
        lab[m] = C["basin"]
        grate |= m & ((z * 12.0) % 1.0 < 0.45)
    return grate


def _markings(sc: obj.Scene, lab: np.ndarray, park: np.ndarray, z, u, px) -> np.ndarray:
    """Label lane lines and parking bay lines in place; returns where the paint is yellow (G, W)."""
    yellow = np.zeros(lab.shape, bool)
    for ln in sc.lines:  # lane markings: at least min_px wide, dashes measured along the road
        m = (np.abs(u - ln.u) < np.maximum(ln.hw, 0.5 * px)) & (z < 150)
        if ln.dash:
            m &= ((z + ln.phase) % ln.period) < ln.dash
        lab[m] = C["marking"]
        if ln.yellow:
            yellow |= m
    lab[park & ((z % 5.5) < np.maximum(0.12, px))] = C["marking"]  # parking bay lines
    return yellow


def _crossing(sc: obj.Scene, lab: np.ndarray, zones: _Zones, yellow: np.ndarray, z, u, px) -> None:
    """Label the pedestrian crossing and its curb cuts in place; no yellow paint inside it."""
    z0, depth, period = sc.cross
    band = (z > z0) & (z < z0 + depth)
    lab[band & zones.surface] = C["cross_plain"]
    if sc.cross_kind == "zebra":
        lab[band & (zones.a < sc.wr - 0.3) & (((u + 50.0) % period) < 0.5 * period)] = C["zebra"]
    else:  # two transverse boundary lines
        edge = (np.abs(z - z0) < np.maximum(0.15, px)) | (np.abs(z - z0 - depth) < np.maximum(0.15, px))
        lab[edge & zones.surface] = C["marking"]
    near_kerb = (z > z0 - 0.3) & (z < z0 + depth + 0.3)
    lab[near_kerb & (zones.curb | ((lab == C["sidewalk"]) & (zones.a < zones.e_curb + 1.2)))] = C["curb_cut"]
    yellow &= ~band


def _ground_colour(sc: obj.Scene, lab: np.ndarray, z, u, patch, grate, asphalt, tex: dict) -> np.ndarray:
    """(G, W, 3) float32: each class's two tones mixed by the patch field, times its fine detail."""
    c1, c2 = sc.ground_lut
    mix = np.clip(0.5 + 0.45 * patch, 0.0, 1.0)[..., None]
    rgb = np.take(c1, lab, axis=0)
    rgb += np.take(c2 - c1, lab, axis=0) * mix
    if sc.cross_paint is not None and sc.cross is not None:
        rgb[lab == C["cross_plain"]] = sc.cross_paint
    rgb *= (1.0 + _detail(sc, lab, z, u, grate, asphalt, tex))[..., None]
    return rgb


def _detail(sc: obj.Scene, lab: np.ndarray, z, u, grate, asphalt, tex: dict) -> np.ndarray:
    """(G, W) relative brightness: grain or grass, sidewalk tile joints, grates, repaired patches, cracks."""
    grain = sample(tex[sc.grain], z * 140.0, u * 140.0) / (1.0 + z / 20.0)
    grass = sample(tex["grass"], z * 40.0, u * 40.0) / (1.0 + z / 40.0)
    is_grass = lab == C["terrain"]
    detail = np.where(is_grass, 0.3 * grass, sc.grain_amp * grain)
    walk = (lab == C["sidewalk"]) | (lab == C["curb_cut"])
    k = int(np.searchsorted(-z[:, 0], -25.0))  # tile joints only within 25 m, where they resolve
    zk, uk = z[k:], u[k:]
    detail[k:][walk[k:] & ((((zk + 0.03) % sc.tile) < 0.05) | (((uk + 0.03) % sc.tile) < 0.05))] -= 0.25
    detail[grate] -= 0.5
    for u0, u1, pz0, pz1, tone in sc.patches:  # repaired asphalt: a darker or lighter rectangle
        detail[asphalt & (u > u0) & (u < u1) & (z > pz0) & (z < pz1)] += tone - 1.0
    if sc.crack_amp:
        crack = sample(tex["crack"], z * 6.0, u * 6.0)
        detail[asphalt & (np.abs(crack) < sc.crack_amp * 0.08) & (z < 30)] -= 0.3
    return detail


def _shade(sc: obj.Scene, shape: tuple, z, u, patch) -> np.ndarray:
    """(G, W) bool: ground in shadow. The sunny side's buildings cast a band across the street; in sun, trees
    cast blobs."""
    if sc.shadow_reach is not None:
        zb = np.clip(np.searchsorted(sc.shadow_z, z[:, 0]), 0, len(sc.shadow_z) - 1)
        reach = sc.shadow_reach[zb][:, None]
        s = sc.sun_side
        edge = sc.sides[(s + 1) // 2].edge
        shade = (u * s) > (edge - reach)
    else:
        shade = np.zeros(shape, bool)
    if sc.weather == "sun":
        for tu, tz, r in sc.tree_shadows:
            su, sz = tu - sc.sun_side * r * 0.9, tz + r * 0.4
            rough = 1.0 + 0.15 * patch
            shade |= ((u - su) / (1.2 * r)) ** 2 + ((z - sz) / (1.6 * r)) ** 2 < rough
    return shade


def _wet_water_fog(sc: obj.Scene, rgb: np.ndarray, lab: np.ndarray, z, patch, asphalt) -> None:
    """Wet asphalt, water mirroring the sky, then fog, applied to rgb (G, W, 3) in place."""
    if sc.wet:  # wet asphalt: darker, and it mirrors the sky more toward the horizon
        refl = (sc.wet * 0.6 * (1.0 - np.exp(-z / 25.0)))[..., None] * asphalt[..., None]
        rgb *= 1.0 - 0.35 * sc.wet * asphalt[..., None]
        rgb += (sc.sky_horizon - rgb) * refl
    if sc.water_side:
        wat = lab == C["water"]
        rgb[wat] = rgb[wat] * 0.4 + sc.sky_horizon * 0.6 * (0.85 + 0.1 * patch[wat, None])
    fog = (1.0 - np.exp(-z / sc.fog_dist))[..., None]
    rgb += (sc.fog_rgb - rgb) * fog


def sky(sc: obj.Scene, W: int, r0: int, tex: dict) -> np.ndarray:
    """Sky for rows 0..r0-1: (r0, W, 3) float32; a gradient from horizon to zenith with clouds."""
    cam = sc.cam
    elev = np.maximum(cam.yh - (np.arange(r0, dtype=np.float32)[:, None] + 0.5), 0.0) / cam.f  # (r0, 1)
    t = (1.0 - np.exp(-elev * 3.0))[..., None]
    rgb = sc.sky_horizon + (sc.sky_zenith - sc.sky_horizon) * t
    scale = 384.0 / max(sc.H, 1)
    ys = wrap(np.arange(r0) * scale * 0.8 + sc.cloud_off[0])
    xs = wrap(np.arange(W) * scale * 0.5 + sc.cloud_off[1])
    cloud = tex["cloud"][ys[:, None], xs[None, :]]
    cover = np.clip((cloud - sc.cloud_thr) * 0.8, 0.0, 1.0) * np.minimum(elev * 8.0, 1.0)
    cover = cover[..., None] * sc.cloud_alpha
    shade = 1.0 - 0.25 * np.clip(cloud[..., None] - sc.cloud_thr - 1.0, 0, 1)  # darker cloud cores
    return rgb + (sc.cloud_rgb * shade - rgb) * cover
