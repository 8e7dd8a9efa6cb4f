"""seg.datastats: per-class pixel shares of a split, checked against labels whose counts the test knows."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from seg.data import stats as datastats
from seg.classes import IGNORE_INDEX, VISTAS

import hostile
from conftest import CAR, ROAD, SKY, write_vistas


def _write_label(path, ids):
    im = Image.fromarray(ids.astype(np.uint8), "P")
    im.putpalette(VISTAS.flat_palette())
    im.save(path)


def test_shares_and_frame_counts_match_the_labels(tmp_path):
    root = write_vistas(tmp_path / "d", n_train=0, n_val=2, size=(8, 4))
    labels = sorted((root / "validation" / "labels").iterdir())
    a = np.full((4, 8), ROAD)
    a[0, :4] = IGNORE_INDEX  # 4 ignored pixels
    a[1, :] = SKY  # 8 sky
    b = np.full((4, 8), ROAD)
    b[3, 7] = CAR  # one car pixel, in one frame only
    _write_label(labels[0], a)
    _write_label(labels[1], b)
    stats = datastats.class_stats(root)
    assert stats["frames"] == 2 and stats["ignored"] == 4 and stats["pixels"] == 60
    rows = {r["name"]: r for r in stats["classes"]}
    assert set(rows) == {"Road", "Sky", "Car"}  # Unlabeled never listed
    assert rows["Road"]["pixels"] == 20 + 31 and rows["Road"]["frames"] == 2
    assert rows["Sky"]["pixels"] == 8 and rows["Car"]["frames"] == 1
    assert abs(rows["Car"]["share"] - 1 / 60) < 1e-12
    assert [r["name"] for r in stats["classes"]] == ["Road", "Sky", "Car"]  # largest first


def test_limit_reads_only_the_first_frames(tmp_path):
    root = write_vistas(tmp_path / "d", n_train=0, n_val=3, size=(8, 4))
    assert datastats.class_stats(root, limit=1)["frames"] == 1


def test_cli_json_and_one_line_error(tmp_path, capsys):
    root = write_vistas(tmp_path / "d", n_train=0, n_val=2, size=(16, 8))
    assert datastats.main([str(root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(sum(r["share"] for r in out["classes"]) - 1) < 1e-9
    assert datastats.main([str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "missing" in err and "\n" not in err


def test_rgb_label_is_named(tmp_path, capsys):
    root = write_vistas(tmp_path / "d", n_train=0, n_val=1, size=(8, 4))
    label = next((root / "validation" / "labels").iterdir())
    Image.new("RGB", (8, 4)).save(label)
    assert datastats.main([str(root)]) == 1
    assert label.name in capsys.readouterr().err


def test_class_names_with_terminal_escapes_are_refused_not_printed(tmp_path, capsys):
    root = write_vistas(tmp_path / "d", n_train=0, n_val=1, size=(8, 4))
    config = hostile.ansi_config(root)
    assert datastats.main([str(root)]) == 1
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err, (out, err)
    assert err.startswith(f"error: {config}: ") and "labels[0].readable: control character" in err, err
    assert len(err.strip().splitlines()) == 1
