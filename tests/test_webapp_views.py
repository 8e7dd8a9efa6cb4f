"""webapp.views helpers and seg.checkpoint's file-kind check: error map, outlines, zip, transparent
uploads, one pixel limit, and a file that is not a checkpoint named as such."""
import io
import pickle
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

from seg import imageio
from seg.checkpoint import CheckpointError, load_checkpoint
from seg.classes import VISTAS
from seg.infer.predictor import Prediction
from seg.paths import REPO_ROOT
from webapp import views

ROAD, SKY, CAR = VISTAS.index("Road"), VISTAS.index("Sky"), VISTAS.index("Car")


def test_error_view_colors_wrong_pixels_by_their_true_class():
    truth = np.array([[ROAD, ROAD, SKY, VISTAS.ignore_index]], np.uint8)
    pred = np.array([[ROAD, SKY, SKY, CAR]], np.uint8)
    rgb, wrong = views.error_view(pred, truth, VISTAS)
    pal = VISTAS.palette()
    assert tuple(rgb[0, 0]) == views.CORRECT_RGB and tuple(rgb[0, 2]) == views.CORRECT_RGB
    assert tuple(rgb[0, 1]) == tuple(pal[ROAD])  # wrong: drawn in the truth's color
    assert tuple(rgb[0, 3]) == views.UNLABELED_RGB  # not scored
    assert wrong == pytest.approx(1 / 3)


def test_outline_marks_class_changes_only():
    labels = np.array([[1, 1, 2], [1, 1, 2], [1, 1, 2]], np.uint8)
    out = views.outline(np.zeros((3, 3, 3), np.uint8), labels)
    assert out[:, 2].tolist() == [[255] * 3] * 3 and out[:, :2].sum() == 0


def test_zip_bytes_round_trips():
    data = views.zip_bytes({"a_labels.png": b"1", "a_overlay.png": b"22"})
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.namelist() == ["a_labels.png", "a_overlay.png"] and z.read("a_overlay.png") == b"22"


def test_is_wide():
    assert views.is_wide((375, 1242, 3)) and not views.is_wide((384, 512, 3))


class Fixed:
    """A stand-in Predictor: Car everywhere."""

    classes = VISTAS

    def predict_full(self, image):
        h, w = image.height, image.width
        return Prediction(np.full((h, w), CAR, np.uint8), np.ones((h, w), np.float32), 1.0)


def test_transparent_pixels_are_left_out_of_the_shares_and_said_so():
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[:, :4, 3] = 255  # 40% opaque, 60% fully transparent
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    res = views.run_inference(Fixed(), "cut-out.png", buf.getvalue())
    assert "60.0%" in res.note and "composited on black" in res.note
    assert [(r["name"], r["share"]) for r in res.legend] == [("Car", 1.0)]  # over the opaque 40 pixels
    opaque = io.BytesIO()
    Image.new("RGB", (10, 10)).save(opaque, format="PNG")
    plain = views.run_inference(Fixed(), "plain.png", opaque.getvalue())
    assert plain.note == "" and plain.legend[0]["share"] == 1.0


def test_one_pixel_limit_for_app_library_and_readme():
    assert views.MAX_UPLOAD_PIXELS == imageio.DEFAULT_MAX_PIXELS
    readme = (REPO_ROOT / "README.md").read_text()
    stated = {int(m) for m in re.findall(r"over (\d+) million pixels", readme)}
    assert stated == {views.MAX_UPLOAD_PIXELS // 1_000_000}


def test_a_file_that_is_not_a_checkpoint_says_so(tmp_path):
    with pytest.raises(CheckpointError, match=r"README\.md: not a checkpoint") as e:
        load_checkpoint(REPO_ROOT / "README.md")
    assert "unsafe" not in str(e.value) and "\n" not in str(e.value)
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"model": print}, protocol=2))  # a real pickle naming a global
    with pytest.raises(CheckpointError, match="possibly unsafe"):
        load_checkpoint(evil)


def test_transparent_pixels_are_unlabelled_in_map_overlay_and_downloads():
    rgba = np.full((10, 10, 4), 200, np.uint8)
    rgba[:, 4:, 3] = 0  # the right 60% fully transparent
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    res = views.run_inference(Fixed(), "cut-out.png", buf.getvalue())
    ignore = VISTAS.ignore_index
    assert (res.labels[:, 4:] == ignore).all() and (res.labels[:, :4] == CAR).all()
    assert "shown unlabelled" in res.note
    pal = VISTAS.palette()
    assert (views.mask_view(res.labels, VISTAS)[:, 4:] == pal[ignore]).all()
    png = np.asarray(Image.open(io.BytesIO(views.label_png_bytes(res.labels, VISTAS))))
    assert (png[:, 4:] == ignore).all() and (png[:, :4] == CAR).all()  # the download: the ignore id
    over = views.overlay_view(res.image, res.labels, VISTAS, 1.0)
    assert (over[:, 4:] == pal[ignore]).all() and (over[:, :4] == pal[CAR]).all()


def test_outlines_use_a_colour_no_class_uses():
    rgb = views.outline_color(VISTAS)
    assert rgb not in {tuple(int(v) for v in c) for c in VISTAS.palette()} and rgb != (255, 255, 255)
    assert rgb in views.OUTLINE_COLORS
