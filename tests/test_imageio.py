"""The bad-image matrix for seg.imageio.load_image: every odd file either decodes to upright RGB or raises
a one-line ImageError naming the file."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from seg.imageio import IMAGE_EXTENSIONS, ImageError, load_image


def _png_header_only(w: int, h: int) -> bytes:
    """A valid-looking 1-bit PNG claiming w x h pixels, a few hundred bytes long (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _save(im: Image.Image, path, **kw):
    im.save(path, **kw)
    return path


def _err(src, **kw) -> str:
    with pytest.raises(ImageError) as ei:
        load_image(src, **kw)
    msg = str(ei.value)
    assert "\n" not in msg
    return msg


def test_text_file_named_png(tmp_path):
    p = tmp_path / "x.png"
    p.write_text("hello, I am not a picture\n")
    assert _err(p).startswith("x.png: not an image file")


def test_empty_and_missing_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    assert _err(p) == "empty.jpg: empty file"
    assert _err(tmp_path / "nope.png") == "nope.png: file not found"
    assert _err(tmp_path) .endswith(": not a file")


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert _err(p).startswith("cut.jpg: truncated or corrupt image data")


def test_decompression_bomb_refused_before_decoding(tmp_path):
    p = tmp_path / "big.png"
    p.write_bytes(_png_header_only(30000, 30000))
    assert p.stat().st_size < 1000
    assert _err(p) == "big.png: 900,000,000 pixels is over the 40,000,000-pixel limit"
    # Under Pillow's own limit but over ours: our header check refuses it.
    p2 = tmp_path / "mid.png"
    p2.write_bytes(_png_header_only(8000, 6000))
    assert _err(p2) == "mid.png: 48,000,000 pixels is over the 40,000,000-pixel limit"
    assert _err(p2.read_bytes(), name="up.png", max_pixels=100) .startswith("up.png: 48,000,000 pixels")


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    a = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    p = _save(Image.fromarray(a), tmp_path / "g16.png")
    assert Image.open(p).mode.startswith("I")
    out = np.asarray(load_image(p))
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(out[..., 0], a / 257.0, atol=1)
    assert out.min() == 0 and out.max() == 255 and 120 < out.mean() < 135


def test_cmyk_jpeg(tmp_path):
    p = _save(Image.new("CMYK", (32, 16), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", quality=95)
    out = np.asarray(load_image(p))
    assert out.shape == (16, 32, 3)
    assert out[..., 0].mean() > 240 and out[..., 1:].mean() < 15  # red


def test_alpha_is_composited_on_black(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[0, :, 3] = 255
    rgba[1, 0, 3] = 0
    rgba[1, 1, 3] = 128
    rgba[1, 2, 3] = 255
    out = np.asarray(load_image(_save(Image.fromarray(rgba), tmp_path / "a.png")))
    assert (out[0] == (200, 100, 50)).all()
    assert (out[1, 0] == 0).all()
    np.testing.assert_allclose(out[1, 1], (100, 50, 25), atol=1)
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    out = np.asarray(load_image(_save(la, tmp_path / "la.png")))
    assert (out[1, 0] == 0).all() and (out[0, 0] == 200).all()


def test_palette_with_and_without_transparency(tmp_path):
    p = Image.new("P", (4, 2), 1)
    p.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    p.putpixel((0, 0), 0)
    out = np.asarray(load_image(_save(p, tmp_path / "p.png")))
    assert (out[1, 1] == (10, 200, 30)).all()
    out = np.asarray(load_image(_save(p, tmp_path / "pt.png", transparency=1)))
    assert (out[1, 1] == 0).all()  # index 1 is transparent -> black
    gif = tmp_path / "pt.gif"
    p.save(gif, transparency=1)
    assert (np.asarray(load_image(gif))[1, 1] == 0).all()


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)  # stored left half red
    a[:, 20:] = (0, 0, 255)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = _save(im, tmp_path / "rot.jpg", exif=exif, quality=95)
    out = np.asarray(load_image(p))
    assert out.shape == (40, 20, 3)
    assert out[:15, :, 0].mean() > 200 and out[25:, :, 2].mean() > 200  # left became top


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(p).n_frames == 2
    out = np.asarray(load_image(p))
    assert out.shape == (6, 8, 3) and out[..., 0].min() > 240 and out[..., 2].max() < 15


def test_panorama_one_pixel_and_other_sources(tmp_path):
    p = _save(Image.new("RGB", (8000, 12), (1, 2, 3)), tmp_path / "pano.png")
    assert load_image(p).size == (8000, 12)
    one = _save(Image.new("L", (1, 1), 77), tmp_path / "one.bmp")
    im = load_image(one)
    assert im.mode == "RGB" and im.size == (1, 1) and im.getpixel((0, 0)) == (77, 77, 77)
    data = one.read_bytes()
    assert load_image(data).size == (1, 1)
    f = io.BytesIO(data)
    f.name = "upload.bmp"
    assert load_image(f).size == (1, 1)
    assert _err(io.BytesIO(b"GIF89a garbage")).startswith("image: ")


def test_extensions_are_lowercase_with_dot():
    assert ".png" in IMAGE_EXTENSIONS and ".jpg" in IMAGE_EXTENSIONS
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)
