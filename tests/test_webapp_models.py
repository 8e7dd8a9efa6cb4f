"""webapp.models: checkpoints found by name for the sidebar, and how two models are compared (A/B)."""
import os

import numpy as np
import pytest

from webapp.models import compare, disagreement, find_checkpoints, iou_table
from seg.classes import VISTAS, make_table
from seg.classmap import LANES, VOID

from conftest import ROAD, SKY

GENERAL = VISTAS.readable.index("Lane Marking - General")


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_find_checkpoints_lists_bundled_then_runs_by_name(tmp_path):
    bundled, runs, outside = tmp_path / "bundled", tmp_path / "runs", tmp_path / "outside"
    a = _touch(bundled / "demo" / "model.pt")
    b = _touch(bundled / "lanes" / "model.pt")
    b_best = _touch(bundled / "lanes" / "best.pt")
    _touch(bundled / "empty" / "notes.txt")  # no checkpoint: not listed
    _touch(bundled / "demo" / "last.pt")  # full training state, not for inference
    _touch(runs / "ft" / "metrics.jsonl")
    ft = _touch(runs / "ft" / "model.pt")
    _touch(runs / "sweep" / "lr-high" / "metrics.jsonl")
    deep = _touch(runs / "sweep" / "lr-high" / "best.pt")
    _touch(runs / "nolog" / "model.pt")  # not a run: no metrics.jsonl
    _touch(outside / "metrics.jsonl")
    _touch(outside / "model.pt")
    os.symlink(outside, runs / "escape")  # a link out of the allowed folders is not followed
    found = find_checkpoints(runs, (tmp_path / "bundled", runs), bundled=bundled)
    assert [(f.label, f.path) for f in found] == [
        ("demo (bundled)", a), ("lanes (bundled)", b), ("lanes (bundled) · best.pt", b_best),
        ("ft · model.pt", ft), ("sweep/lr-high · best.pt", deep)]


def test_find_checkpoints_names_a_bundled_run_once(tmp_path):
    bundled = tmp_path / "checkpoints"
    _touch(bundled / "demo" / "metrics.jsonl")
    m = _touch(bundled / "demo" / "model.pt")
    found = find_checkpoints(bundled, (tmp_path,), bundled=bundled)  # the default runs folder is checkpoints/
    assert [(f.label, f.path) for f in found] == [("demo (bundled)", m)]
    assert find_checkpoints(None, (tmp_path,), bundled=tmp_path / "none") == []


def test_compare_same_table_folded_table_and_none():
    same = compare(VISTAS, None, VISTAS, None)
    assert same.table == VISTAS and same.map_a is None and same.map_b is None and same.truth is None
    ids = np.array([[ROAD, GENERAL, SKY, VISTAS.ignore_index]], np.uint8)
    for a, b, which in ((LANES, VISTAS, "b"), (VISTAS, LANES, "a")):
        args = (a, "lanes" if a is LANES else None, b, "lanes" if b is LANES else None)
        c = compare(*args)
        assert c.table == LANES and c.truth == "lanes"
        assert c.fold(ids, which).tolist() == [[0, 1, 0, VOID]]  # the 66-class side folds by name
        other = "a" if which == "b" else "b"
        assert c.fold(ids, other) is ids  # the lanes side is already in the table
    assert compare(LANES, "lanes", LANES, "lanes").truth == "lanes"  # two lanes runs
    foreign = make_table(["a", "b", "c"], ["A", "B", "C"], [[0, 0, 0]] * 3, None)
    assert compare(VISTAS, None, foreign, None) is None
    assert compare(LANES, "lanes", foreign, None) is None  # no marking class to fold


def test_disagreement_marks_exactly_the_differing_pixels():
    image = np.full((2, 3, 3), 200, np.uint8)
    a = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    b = a.copy()
    b[0, 1] = 9
    b[1, 2] = 0
    rgb, share = disagreement(image, a, b)
    assert share == pytest.approx(2 / 6)
    differ = (rgb == (255, 0, 255)).all(-1)
    assert differ.tolist() == [[False, True, False], [False, False, True]]
    assert (rgb[~differ] == 70).all()  # the dimmed photo elsewhere
    with pytest.raises(ValueError, match="different sizes"):
        disagreement(image, a, b[:, :2])


def test_iou_table_sorted_by_what_b_loses():
    rows = iou_table({"Road": 0.9, "Sky": 0.8, "Car": 0.5, "Bus": None}, {"Road": 0.95, "Sky": 0.6, "Car": None,
                                                                         "Truck": 0.3})
    assert [(r["class"], r["diff"]) for r in rows] == [
        ("Sky", pytest.approx(-0.2)), ("Road", pytest.approx(0.05)), ("Car", None), ("Truck", None)]
