"""seg.viz: palette colors are RGB and identical across images, legend and PNG; blends are exact."""
import numpy as np
import pytest
from PIL import Image

from seg.classes import VISTAS
from seg.viz import colorize, confidence_view, hex_color, legend, overlay, overlay_image, split_legend, to_label_png

ROAD, SKY, CAR = VISTAS.index("Road"), VISTAS.index("Sky"), VISTAS.index("Car")


def _labels():
    lab = np.full((48, 64), SKY, np.uint8)
    lab[24:] = ROAD  # half road
    lab[30:40, 10:26] = CAR  # 160 px car
    return lab


def test_colorize_uses_rgb_palette():
    rgb = colorize(_labels(), VISTAS)
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (70, 130, 180)  # Sky is steel blue in RGB, not BGR
    assert tuple(rgb[47, 63]) == (128, 64, 128)
    assert tuple(rgb[35, 15]) == (0, 0, 142)  # Car: blue channel last


def test_legend_colors_match_image_pixels_and_shares():
    lab = _labels()
    rows = legend(lab, VISTAS)
    assert [r["name"] for r in rows] == ["Sky", "Road", "Car"]
    assert [r["id"] for r in rows] == [SKY, ROAD, CAR]
    assert rows[2]["share"] == pytest.approx(160 / (48 * 64))
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    rgb = colorize(lab, VISTAS)
    png = to_label_png(lab, VISTAS).convert("RGB")
    for r in rows:
        y, x = np.argwhere(lab == r["id"])[0]
        assert r["color"] == hex_color(rgb[y, x]) == hex_color(png.getpixel((int(x), int(y))))
    assert [r["name"] for r in legend(lab, VISTAS, min_share=0.1)] == ["Sky", "Road"]


def test_label_png_keeps_ids_and_palette(tmp_path):
    lab = _labels()
    im = to_label_png(lab, VISTAS)
    assert im.mode == "P" and im.size == (64, 48)
    p = tmp_path / "l.png"
    im.save(p)
    back = Image.open(p)
    assert back.mode == "P"
    np.testing.assert_array_equal(np.array(back), lab)
    assert back.getpalette()[: 3 * len(VISTAS)] == VISTAS.flat_palette()[: 3 * len(VISTAS)]


def test_overlay_blend_alpha_and_only():
    lab = _labels()
    img = np.full((48, 64, 3), 100, np.uint8)
    out = overlay(img, lab, VISTAS, alpha=0.5)
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(out[0, 0], (np.array([70, 130, 180]) + 100) / 2, atol=1)
    np.testing.assert_array_equal(overlay(img, lab, VISTAS, alpha=0.0), img)
    np.testing.assert_array_equal(overlay(img, lab, VISTAS, alpha=1.0), colorize(lab, VISTAS))
    part = overlay(Image.fromarray(img), lab, VISTAS, alpha=1.0, only=[CAR])
    np.testing.assert_array_equal(part[lab != CAR], img[lab != CAR])  # others unblended
    assert (part[lab == CAR] == (0, 0, 142)).all()
    assert overlay_image(img, lab, VISTAS).size == (64, 48)
    with pytest.raises(ValueError):
        overlay(img[:, :10], lab, VISTAS)
    with pytest.raises(ValueError):
        overlay(img, lab, VISTAS, alpha=1.5)


def test_confidence_view_marks_unsure_pixels():
    conf = np.linspace(0, 1, 48 * 64, dtype=np.float32).reshape(48, 64)
    v = confidence_view(conf)
    assert v.shape == (48, 64, 3) and v[0, 0, 0] == 0 and v[-1, -1, 0] == 255
    v = confidence_view(conf, threshold=0.5)
    assert tuple(v[0, 0]) == (255, 0, 255) and tuple(v[-1, -1]) == (255, 255, 255)


def test_split_legend_keeps_the_classes_that_matter():
    shares = [0.4, 0.3, 0.2, 0.05, 0.01, 0.004, 0.003, 0.001]
    rows = [{"id": i, "name": f"c{i}", "color": "#000000", "share": s} for i, s in enumerate(shares)]
    shown, rest = split_legend(rows)
    assert [r["id"] for r in shown] == [0, 1, 2, 3, 4] and [r["id"] for r in rest] == [5, 6, 7]
    shown, rest = split_legend(rows, top=2)
    assert len(shown) == 2 and len(rest) == 6
    tiny = [{"id": 0, "name": "c0", "color": "#000000", "share": 0.001}]
    assert split_legend(tiny) == (tiny, [])  # the largest class always shows
    assert split_legend([]) == ([], [])
