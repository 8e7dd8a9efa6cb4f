"""What the camera adds to a painted street-world frame (`seg.synth`): the camera car's own hood or
dashboard (Ego Vehicle), roll and radial lens distortion (one resampling of image and label together),
motion blur and JPEG compression. Labels are resampled nearest-neighbour, so ids stay exact."""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from seg.synth.objects import C


def ego_vehicle(rgb: np.ndarray, lab: np.ndarray, ego: dict) -> None:
    """Paint the hood (a bulging panel that mirrors the scene above it) or a dashboard edge in place.

    rgb: (H, W, 3) float32; lab: (H, W) uint8.
    """
    H, W = lab.shape
    x = (np.arange(W, dtype=np.float32) + 0.5) / W - 0.5
    top = H * (1.0 - ego["top"]) + H * ego["bulge"] * (4 * x * x) + H * ego["tilt"] * x * 2  # (W,) first row
    rows = np.arange(H, dtype=np.float32)[:, None]
    mask = rows >= top[None, :]
    if not mask.any():
        return
    lab[mask] = C["ego"]
    if ego["dash"]:
        shade = 1.0 - 0.35 * np.clip((rows - top[None, :]) / max(1.0, H * ego["top"]), 0, 1)
        paint = ego["color"][None, None, :] * shade[..., None]
    else:  # glossy paint: own colour plus a blurred, darkened mirror of the scene just above the hood
        depth = np.clip(rows - top[None, :], 0, None)  # rows into the hood
        src = np.clip((top[None, :] - 1 - depth * 1.6).astype(np.int64), 0, H - 1)
        mirror = rgb[src, np.arange(W)[None, :]]
        mirror = 0.5 * mirror + 0.25 * np.roll(mirror, 3, axis=1) + 0.25 * np.roll(mirror, -3, axis=1)
        fall = np.clip(depth / max(1.0, H * ego["top"]), 0, 1)[..., None]
        paint = ego["color"][None, None, :] * (0.75 + 0.25 * fall) + ego["shine"] * (1 - 0.6 * fall) * mirror
    rgb[mask] = paint[mask]


def warp(img: np.ndarray, lab: np.ndarray, roll_deg: float, k1: float) -> tuple[np.ndarray, np.ndarray]:
    """Roll the camera by `roll_deg` and apply radial distortion k1 (> 0 barrel), zoomed so no border shows.

    img: (H, W, 3) float32 -> bilinear; lab: (H, W) uint8 -> nearest. Returns new arrays of the same shapes.
    """
    H, W = lab.shape
    if abs(roll_deg) < 1e-3 and abs(k1) < 1e-4:
        return img, lab
    R = 0.5 * math.hypot(W, H)
    th = math.radians(roll_deg)
    c, s = math.cos(th), math.sin(th)

    def src(xo, yo):  # output pixel offsets from the centre -> source offsets
        r2 = (xo * xo + yo * yo) / (R * R)
        g = 1.0 + k1 * r2
        xs, ys = xo * g, yo * g
        return c * xs - s * ys, s * xs + c * ys

    # Zoom so that every border point of the output maps inside the source frame.
    t = np.linspace(-1, 1, 65, dtype=np.float32)
    bx = np.concatenate([t * W / 2, t * W / 2, np.full_like(t, -W / 2), np.full_like(t, W / 2)])
    by = np.concatenate([np.full_like(t, -H / 2), np.full_like(t, H / 2), t * H / 2, t * H / 2])
    sx, sy = src(bx, by)
    zoom = max(np.abs(sx).max() / (W / 2 - 1), np.abs(sy).max() / (H / 2 - 1), 1e-6)
    yo = np.arange(H, dtype=np.float32)[:, None] + 0.5 - H / 2
    xo = np.arange(W, dtype=np.float32)[None, :] + 0.5 - W / 2
    xs, ys = src(xo, yo)
    xs = np.clip(xs / zoom + (W / 2 - 0.5), 0, W - 1.001).astype(np.float32)
    ys = np.clip(ys / zoom + (H / 2 - 0.5), 0, H - 1.001).astype(np.float32)
    new_lab = np.take(lab, np.rint(ys).astype(np.int32) * W + np.rint(xs).astype(np.int32))
    x0, y0 = xs.astype(np.int32), ys.astype(np.int32)  # floor: coordinates are >= 0
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    i00 = y0 * W + x0
    flat = img.reshape(-1, 3)
    top = np.take(flat, i00, axis=0)
    top += (np.take(flat, i00 + 1, axis=0) - top) * fx
    bot = np.take(flat, i00 + W, axis=0)
    bot += (np.take(flat, i00 + W + 1, axis=0) - bot) * fx
    top += (bot - top) * fy
    return top, new_lab


def motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    """Average of `length` copies shifted along direction `angle` (radians from horizontal)."""
    if length < 2:
        return img
    out = np.zeros_like(img)
    for i in range(length):
        d = i - (length - 1) / 2
        out += np.roll(img, (int(round(d * math.sin(angle))), int(round(d * math.cos(angle)))), axis=(0, 1))
    return out / length


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    """Round-trip through JPEG at `quality` (blocking and ringing of cheap cameras and uploads)."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return Image.open(buf).convert("RGB")
