"""Procedural street world: perspective street scenes with exact Vistas v1.2 labels.

`render(seed, size, style)` draws one frame in three passes. The ground (road, bike and parking lanes,
markings, crossings, manholes, catch basins, kerbs and curb cuts, sidewalk, terrain, water) and the sky are
computed per pixel with numpy from the ground-plane depth of each row, so markings stay exact under
perspective and curvature. Objects (buildings with windows, balconies and shopfronts, trees, hedges, walls,
fences, guard rails, poles, utility poles, street lights, signs front and back, sign frames, billboards,
traffic lights, street furniture, vehicles, two-wheelers and their riders, people, hills) are then drawn
far-to-near with PIL polygons; each polygon is drawn with the same vertices into the image, the label map and
a material map, so the label is always the class of what was painted last (painter's order). Materials pick
a detail texture (brick, foliage, planks...) applied afterwards. Last, the camera (`seg.synth_camera`): the
ego car's hood or dashboard, roll and lens distortion (image and label resampled together), motion blur,
sensor noise, vignette, tone curve, defocus and JPEG. Appearance comes from a `seg.synth_style.Style`:
"in" for training, "out" for a held-out look that training never samples.
All randomness comes from one numpy Generator seeded by `seed`: the same seed gives the same frame.

CLI: python -m seg.synth --out DIR --train N --val M [--seed S] [--size WxH] [--workers K] [--style in|out]
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from seg import synth_camera as cam_fx
from seg import synth_objects as obj
from seg.synth_scene import sample_scene
from seg.synth_style import get_style
from seg.classes import VISTAS
from seg.cliutil import size_arg
from seg.synth_objects import C, M

SPLITS = ("training", "validation")
# Classes this world paints (tests check they all show up).
RENDERED_CLASSES = tuple(sorted(C.values()))
_TEX = 512  # side of every cached texture; power of two so world coordinates wrap with a bit mask


def frame_seed(split: str, seed: int, index: int) -> int:
    """Seed of frame `index` of `split` in the dataset built from `seed`.

    Training seeds are even and validation seeds odd, so the two splits never share a frame.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return ((seed * 1_000_003 + index) * 2 + SPLITS.index(split)) % 2**63


def _fft_noise(rng: np.random.Generator, beta: float) -> np.ndarray:
    """(_TEX, _TEX) float32 tileable noise with a 1/f^beta spectrum, zero mean, unit std."""
    fy = np.fft.fftfreq(_TEX)[:, None]
    fx = np.fft.rfftfreq(_TEX)[None, :]
    freq = np.sqrt(fx * fx + fy * fy)
    freq[0, 0] = 1.0
    spec = (rng.normal(size=freq.shape) + 1j * rng.normal(size=freq.shape)) / freq**beta
    spec[0, 0] = 0
    a = np.fft.irfft2(spec, s=(_TEX, _TEX))
    return ((a - a.mean()) / a.std()).astype(np.float32)


def _norm(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    return (a - a.mean()) / a.std()


@functools.lru_cache(maxsize=1)
def _textures() -> dict:
    """Detail maps built once per process (fixed seed, so every process sees the same ones).

    "materials": (len(M), _TEX, _TEX) float32 multiplicative maps indexed by material id; the others are
    zero-mean unit-std (_TEX, _TEX) fields sampled in world coordinates on the ground.
    """
    from skimage import data  # the photos ship inside scikit-image: no download

    rng = np.random.default_rng(1234)
    grass, gravel = _norm(data.grass()), _norm(data.gravel())
    white = _norm(rng.normal(size=(_TEX, _TEX)))
    cols = np.arange(_TEX, dtype=np.float32)[None, :]
    planks = np.repeat(np.sign(np.sin(cols * 2 * np.pi / 9.0)), _TEX, 0) * 0.6 + 0.4 * _fft_noise(rng, 1.2)
    bars = np.repeat((np.sin(cols * 2 * np.pi / 6.0) > 0.3) * 2.0 - 1.0, _TEX, 0)
    foliage = np.tanh(0.8 * gravel + 0.9 * _fft_noise(rng, 1.0) + 0.3 * white)
    rows = np.arange(_TEX, dtype=np.float32)[:, None]
    # Bricks in horizontal courses (8 px, joints staggered by half a 16 px brick), each brick its own tone;
    # the photo in skimage.data.brick runs vertically in perspective, which read as diagonal streaks.
    course = (rows // 8).astype(np.int64)
    col_b = ((cols + 8 * (course % 2)) // 16).astype(np.int64)
    tone = rng.normal(0, 0.5, (_TEX // 8 + 1, _TEX // 16 + 2))[course, col_b]
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
        M["bark"]: (0.25, np.repeat(_fft_noise(rng, 1.0)[:1], _TEX, 0) + 0.3 * white),
        M["concrete"]: (0.1, 0.6 * _fft_noise(rng, 1.3) + 0.4 * gravel + ((rows % 96) < 2) * -2.0),
        M["tiles"]: (0.25, _norm(-tiles.astype(np.float32)) + 0.3 * white),
        M["grate"]: (0.45, _norm(-grate)),
    }
    mats = np.ones((len(M), _TEX, _TEX), np.float32)
    for m, (amp, field) in amp_maps.items():
        mats[m] = np.clip(1.0 + amp * field, 0.25, 1.9)
    return {
        "materials": mats,
        "asphalt": 0.7 * gravel + 0.5 * white,
        "moon": 0.8 * _norm(data.moon()) + 0.4 * white,  # held-out style's asphalt grain
        "crack": _fft_noise(rng, 1.4),
        "patch": _fft_noise(rng, 2.2),
        "grass": 0.7 * grass + 0.4 * _fft_noise(rng, 1.0),
        "cloud": _fft_noise(rng, 1.9),
        "sensor": rng.normal(size=(_TEX * _TEX, 3)).astype(np.float32),
    }


def _wrap(a: np.ndarray) -> np.ndarray:
    return np.bitwise_and(a.astype(np.int32), _TEX - 1)


def _sample(t: np.ndarray, row, col) -> np.ndarray:
    """Nearest-neighbour lookup of the (_TEX, _TEX) map t at wrapped float coordinates (broadcast)."""
    return np.take(t, _wrap(row) * _TEX + _wrap(col))


def _ground(sc: obj.Scene, W: int, r0: int, H: int, tex: dict):
    """Per-pixel ground for rows r0..H-1: (rgb (G, W, 3) float32, label (G, W) uint8)."""
    cam = sc.cam
    d = np.arange(r0, H, dtype=np.float32)[:, None] + 0.5 - cam.yh  # rows below the horizon, > 0
    z = np.minimum(cam.f * cam.h / np.maximum(d, 1e-3), 3000.0)  # (G, 1) metres ahead
    u = ((np.arange(W, dtype=np.float32)[None, :] + 0.5 - cam.cx) / cam.f) * z + cam.x0
    u -= cam.yaw * z + cam.curv * z * z  # (G, W) lateral position relative to the road centre line
    right = u > 0
    a = np.abs(u)
    px = sc.min_px * z / cam.f  # world width of the minimum pixel width at each row, (G, 1)

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
    surface = a < kerb  # travel lanes, bike lanes and parking: the road surface
    lab[surface] = C["parking"]
    lab[a < side([sc.wr + s.bike for s in sc.sides])] = C["bike_lane"]
    road = a < sc.wr
    lab[road] = C["road"]
    curb &= ~surface
    park = lab == C["parking"]
    for s, dz0, dz1 in sc.driveways:  # lowered kerb at driveways
        lab[curb & (np.sign(u) == s) & (z > dz0) & (z < dz1)] = C["curb_cut"]
    for um, zm, r in sc.manholes:
        lab[road & ((u - um) ** 2 + (z - zm) ** 2 < r * r)] = C["manhole"]
    grate = np.zeros(lab.shape, bool)
    for s, zb in sc.basins:
        m = surface & (np.sign(u) == s) & (a > kerb - 0.45) & (z > zb) & (z < zb + 0.9)
        lab[m] = C["basin"]
        grate |= m & ((z * 12.0) % 1.0 < 0.45)
    yellow = np.zeros(lab.shape, bool)
    for ln in sc.lines:  # lane markings: at least min_px wide, dashes measured along the road
        m = (np.abs(u - ln.u) < np.maximum(ln.hw, 0.5 * px)) & (z < 150)
        if ln.dash:
            m &= ((z + ln.phase) % ln.period) < ln.dash
        lab[m] = C["marking"]
        if ln.yellow:
            yellow |= m
    lab[park & ((z % 5.5) < np.maximum(0.12, px))] = C["marking"]  # parking bay lines
    if sc.cross is not None:
        z0, depth, period = sc.cross
        band = (z > z0) & (z < z0 + depth)
        lab[band & surface] = C["cross_plain"]
        if sc.cross_kind == "zebra":
            lab[band & (a < sc.wr - 0.3) & (((u + 50.0) % period) < 0.5 * period)] = C["zebra"]
        else:  # two transverse boundary lines
            edge = (np.abs(z - z0) < np.maximum(0.15, px)) | (np.abs(z - z0 - depth) < np.maximum(0.15, px))
            lab[edge & surface] = C["marking"]
        near_kerb = (z > z0 - 0.3) & (z < z0 + depth + 0.3)
        lab[near_kerb & (curb | ((lab == C["sidewalk"]) & (a < e_curb + 1.2)))] = C["curb_cut"]
        yellow &= ~band

    grain = _sample(tex[sc.grain], z * 140.0, u * 140.0) / (1.0 + z / 20.0)
    patch = _sample(tex["patch"], z * 2.0, u * 2.0)
    grass = _sample(tex["grass"], z * 40.0, u * 40.0) / (1.0 + z / 40.0)
    c1, c2 = sc.ground_lut
    mix = np.clip(0.5 + 0.45 * patch, 0.0, 1.0)[..., None]
    rgb = np.take(c1, lab, axis=0)
    rgb += np.take(c2 - c1, lab, axis=0) * mix
    if sc.cross_paint is not None and sc.cross is not None:
        rgb[lab == C["cross_plain"]] = sc.cross_paint
    is_grass = lab == C["terrain"]
    detail = np.where(is_grass, 0.3 * grass, sc.grain_amp * grain)
    walk = (lab == C["sidewalk"]) | (lab == C["curb_cut"])
    k = int(np.searchsorted(-z[:, 0], -25.0))  # tile joints only within 25 m, where they resolve
    zk, uk = z[k:], u[k:]
    detail[k:][walk[k:] & ((((zk + 0.03) % sc.tile) < 0.05) | (((uk + 0.03) % sc.tile) < 0.05))] -= 0.25
    detail[grate] -= 0.5
    asphalt = surface & (lab != C["basin"])
    for u0, u1, pz0, pz1, tone in sc.patches:  # repaired asphalt: a darker or lighter rectangle
        detail[asphalt & (u > u0) & (u < u1) & (z > pz0) & (z < pz1)] += tone - 1.0
    if sc.crack_amp:
        crack = _sample(tex["crack"], z * 6.0, u * 6.0)
        detail[asphalt & (np.abs(crack) < sc.crack_amp * 0.08) & (z < 30)] -= 0.3
    rgb *= (1.0 + detail)[..., None]
    rgb[yellow] = sc.yellow_rgb
    # Shadows of the buildings on the sunny side fall across the street as a band; trees cast blobs.
    if sc.shadow_reach is not None:
        zb = np.clip(np.searchsorted(sc.shadow_z, z[:, 0]), 0, len(sc.shadow_z) - 1)
        reach = sc.shadow_reach[zb][:, None]
        s = sc.sun_side
        edge = sc.sides[(s + 1) // 2].edge
        shade = (u * s) > (edge - reach)
    else:
        shade = np.zeros(lab.shape, bool)
    if sc.weather == "sun":
        for tu, tz, r in sc.tree_shadows:
            su, sz = tu - sc.sun_side * r * 0.9, tz + r * 0.4
            rough = 1.0 + 0.15 * patch
            shade |= ((u - su) / (1.2 * r)) ** 2 + ((z - sz) / (1.6 * r)) ** 2 < rough
    light = np.where(shade[..., None], sc.shade_rgb, sc.sun_rgb) if shade.any() else sc.sun_rgb
    rgb *= light
    if sc.wet:  # wet asphalt: darker, and it mirrors the sky more toward the horizon
        refl = (sc.wet * 0.6 * (1.0 - np.exp(-z / 25.0)))[..., None] * asphalt[..., None]
        rgb *= 1.0 - 0.35 * sc.wet * asphalt[..., None]
        rgb += (sc.sky_horizon - rgb) * refl
    if sc.water_side:
        wat = lab == C["water"]
        rgb[wat] = rgb[wat] * 0.4 + sc.sky_horizon * 0.6 * (0.85 + 0.1 * patch[wat, None])
    fog = (1.0 - np.exp(-z / sc.fog_dist))[..., None]
    rgb += (sc.fog_rgb - rgb) * fog
    return rgb, lab


def _sky(sc: obj.Scene, W: int, r0: int, tex: dict) -> np.ndarray:
    """Sky for rows 0..r0-1: (r0, W, 3) float32; a gradient from horizon to zenith with clouds."""
    cam = sc.cam
    elev = np.maximum(cam.yh - (np.arange(r0, dtype=np.float32)[:, None] + 0.5), 0.0) / cam.f  # (r0, 1)
    t = (1.0 - np.exp(-elev * 3.0))[..., None]
    rgb = sc.sky_horizon + (sc.sky_zenith - sc.sky_horizon) * t
    scale = 384.0 / max(sc.H, 1)
    ys = _wrap(np.arange(r0) * scale * 0.8 + sc.cloud_off[0])
    xs = _wrap(np.arange(W) * scale * 0.5 + sc.cloud_off[1])
    cloud = tex["cloud"][ys[:, None], xs[None, :]]
    cover = np.clip((cloud - sc.cloud_thr) * 0.8, 0.0, 1.0) * np.minimum(elev * 8.0, 1.0)
    cover = cover[..., None] * sc.cloud_alpha
    shade = 1.0 - 0.25 * np.clip(cloud[..., None] - sc.cloud_thr - 1.0, 0, 1)  # darker cloud cores
    return rgb + (sc.cloud_rgb * shade - rgb) * cover


def render(seed: int, size: tuple[int, int] = (512, 384), style: str = "in") -> tuple[Image.Image, np.ndarray]:
    """Draw frame `seed` of the street world.

    Args: seed >= 0; size (W, H) in pixels, any size >= 1x1 (geometry scales with the frame); style "in"
    (the training appearance) or "out" (held-out appearance, `seg.synth_style`).
    Returns: (PIL RGB image (W, H), np.uint8 array (H, W) of Vistas class ids). Pure: same seed, size and
    style give the same label array byte for byte.
    """
    W, H = (int(v) for v in size)
    if W < 1 or H < 1:
        raise ValueError(f"size must be at least 1x1, got {W}x{H}")
    rng = np.random.default_rng(seed)
    tex = _textures()
    sc = sample_scene(rng, W, H, get_style(style))
    r0 = min(H, max(0, int(math.floor(sc.cam.yh - 0.45)) + 1))  # first row whose centre is on the ground
    rgb = np.empty((H, W, 3), np.float32)
    lab = np.empty((H, W), np.uint8)
    lab[:r0] = C["sky"]
    if r0 > 0:
        rgb[:r0] = _sky(sc, W, r0, tex)
    if r0 < H:
        rgb[r0:], lab[r0:] = _ground(sc, W, r0, H, tex)
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    lab_img = Image.fromarray(lab, "L")
    mat_img = Image.new("L", (W, H), M["flat"])
    canvas = obj.Canvas(img, lab_img, mat_img, sc)
    for _, draw in sorted(sc.items, key=lambda it: -it[0]):
        draw(canvas)
    out = np.asarray(img, np.float32)
    lab = np.array(lab_img)
    mats = np.asarray(mat_img)
    s = 384.0 / H
    ys = _wrap(np.arange(H) * s + rng.integers(_TEX))
    xs = _wrap(np.arange(W) * s + rng.integers(_TEX))
    out *= np.take(tex["materials"], (mats.astype(np.int32) * _TEX + ys[:, None]) * _TEX + xs[None, :])[..., None]
    if sc.ego is not None:
        cam_fx.ego_vehicle(out, lab, sc.ego)
    out, lab = cam_fx.warp(out, lab, sc.roll, sc.distort)
    out = cam_fx.motion_blur(out, round(sc.motion[0] * H / 384.0), sc.motion[1])
    sensor = np.take(tex["sensor"], _wrap(np.arange(H) + rng.integers(_TEX))[:, None] * _TEX
                     + _wrap(np.arange(W) + rng.integers(_TEX))[None, :], axis=0)
    out += sensor * sc.noise
    out *= _vignette(W, H, round(sc.vignette, 2))
    img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB").point(sc.tone_lut)
    if sc.blur > 0.3:
        img = img.filter(ImageFilter.BoxBlur(sc.blur * H / 384.0))
    if sc.jpeg:
        img = cam_fx.jpeg(img, sc.jpeg)
    return img, lab


@functools.lru_cache(maxsize=8)
def _vignette(W: int, H: int, strength: float) -> np.ndarray:
    """(H, W, 1) float32 radial darkening; cached per size since frames of one run share it."""
    y = (np.arange(H, dtype=np.float32)[:, None] + 0.5) / H - 0.5
    x = (np.arange(W, dtype=np.float32)[None, :] + 0.5) / W - 0.5
    return (1.0 - strength * (x * x + y * y) * 2.0)[..., None]


def _label_png(lab: np.ndarray) -> Image.Image:
    png = Image.fromarray(lab, "P")
    png.putpalette(VISTAS.flat_palette())
    return png


def _write_frame(job: tuple) -> None:
    split_dir, stem, fseed, size, images_only, style = job
    img, lab = render(fseed, size, style)
    if images_only:
        img.save(split_dir / f"{stem}.png", optimize=True)
        return
    quality = int(np.random.default_rng(fseed).integers(72, 96))  # JPEG artefacts vary like phone uploads
    img.save(split_dir / "images" / f"{stem}.jpg", quality=quality)
    _label_png(lab).save(split_dir / "labels" / f"{stem}.png", optimize=True)


def write_dataset(out, n_train: int, n_val: int, seed: int = 0, size: tuple[int, int] = (512, 384),
                  workers: int = 1, style: str = "in") -> Path:
    """Write a Vistas-layout dataset: out/config.json, out/{training,validation}/{images/*.jpg,labels/*.png}.

    A split with zero frames gets no folder. Stems are zero-padded frame indices. style "out" renders the
    held-out appearance and writes validation frames only (training on it would defeat its purpose).
    Returns the out path.
    """
    out = Path(out)
    if n_train < 0 or n_val < 0 or workers < 1:
        raise ValueError("frame counts must be >= 0 and workers >= 1")
    get_style(style)
    if style != "in" and n_train:
        raise ValueError(f"style {style!r} is held out from training: write it with n_train=0")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(VISTAS.to_config(), indent=1))
    jobs = []
    for split, n in zip(SPLITS, (n_train, n_val)):
        if n == 0:
            continue
        for sub in ("images", "labels"):
            (out / split / sub).mkdir(parents=True, exist_ok=True)
        jobs += [(out / split, f"{i:06d}", frame_seed(split, seed, i), size, False, style) for i in range(n)]
    _run(jobs, workers)
    return out


def write_images(out, n: int, seed: int = 0, size: tuple[int, int] = (1242, 375), prefix: str = "frame_",
                 workers: int = 1) -> list[Path]:
    """Write `n` validation-seeded frames as PNG images only (no labels): out/{prefix}{i:03d}.png."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(out, f"{prefix}{i:03d}", frame_seed("validation", seed, i), size, True, "in") for i in range(n)]
    _run(jobs, workers)
    return [out / f"{j[1]}.png" for j in jobs]


def write_preview(path, n: int, seed: int = 0, size: tuple[int, int] = (512, 384), style: str = "in",
                  cols: int = 2) -> Path:
    """Write a JPEG grid of validation frames `0..n-1` of dataset `seed`, each as image | colour-coded label.

    Returns the path. The grid is (ceil(n / cols) rows) x (cols pairs) of frames at `size`.
    """
    from seg.viz import colorize  # viz is the one place for label colours

    path = Path(path)
    if n < 1:
        raise ValueError("a preview needs at least one frame")
    W, H = size
    rows = -(-n // cols)
    grid = Image.new("RGB", (2 * W * cols, H * rows), (255, 255, 255))
    for i in range(n):
        img, lab = render(frame_seed("validation", seed, i), size, style)
        x, y = (i % cols) * 2 * W, (i // cols) * H
        grid.paste(img, (x, y))
        grid.paste(Image.fromarray(colorize(lab, VISTAS)), (x + W, y))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path, quality=85)
    return path


def _run(jobs: list, workers: int) -> None:
    if workers == 1 or len(jobs) < 2:
        for j in jobs:
            _write_frame(j)
        return
    with Pool(min(workers, len(jobs))) as pool:
        for _ in pool.imap_unordered(_write_frame, jobs, chunksize=4):
            pass


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block: callers grep stderr
        self.exit(2, f"{self.prog}: error: {message}\n")


def get_args_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m seg.synth", description=__doc__.split("\n")[0])
    p.add_argument("--out", help="output folder (Vistas layout); required unless --preview")
    p.add_argument("--train", type=_count, required=True, help="number of training frames (0: no folder)")
    p.add_argument("--val", type=_count, required=True, help="number of validation frames")
    p.add_argument("--seed", type=_count, default=0, help="dataset seed (frame seeds derive from it)")
    p.add_argument("--size", type=size_arg, default=(512, 384), help="frame size WxH (default 512x384)")
    p.add_argument("--workers", type=_positive, default=1, help="worker processes (default 1)")
    p.add_argument("--images-only", action="store_true",
                   help="write the --val frames as OUT/PREFIXnnn.png images only, no labels (needs --train 0)")
    p.add_argument("--prefix", default="frame_", help="file name prefix for --images-only")
    p.add_argument("--preview", metavar="FILE",
                   help="write a JPEG grid of the --val frames (image | colour-coded label) to FILE instead of a "
                        "dataset; needs --train 0")
    p.add_argument("--style", choices=("in", "out"), default="in",
                   help="appearance: 'in' (what training sees, default) or 'out' (held-out palettes, textures and "
                        "colour casts for an out-of-style validation set; needs --train 0)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.out is None and args.preview is None:
        parser.error("the following arguments are required: --out")
    if args.preview and (args.train or args.images_only):
        parser.error("--preview draws validation frames only; use --train 0 and no --images-only")
    if args.images_only and args.train:
        parser.error("--images-only writes validation frames only; use --train 0")
    if args.style != "in" and args.train:
        parser.error(f"--style {args.style} is held out from training; use --train 0")
    if args.style != "in" and args.images_only:
        parser.error("--images-only writes the training style only; drop --style")
    try:
        if args.preview:
            write_preview(args.preview, args.val, args.seed, args.size, args.style)
        elif args.images_only:
            write_images(args.out, args.val, args.seed, args.size, args.prefix, args.workers)
        else:
            write_dataset(args.out, args.train, args.val, args.seed, args.size, args.workers, args.style)
    except OSError as e:
        print(f"seg.synth: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
