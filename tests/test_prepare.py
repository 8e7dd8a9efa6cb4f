"""seg.prepare: sizes, exact label ids and palette, resume, layout, bad inputs, CLI errors."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from seg.data import prepare as prep
from seg.classes import VISTAS
from seg.paths import REPO_ROOT

CAR = (0, 0, 142)


def _v10_palette() -> list[int]:
    pal = VISTAS.palette().copy()
    pal[[54, 55, 60]] = CAR  # repeated colors: only the indices tell these classes apart
    return pal.reshape(-1).tolist()


def _block_ids(rng, w, h, block=16) -> np.ndarray:
    ids = rng.choice([0, 13, 27, 54, 55, 60, 65], (h // block, w // block)).astype(np.uint8)
    return np.kron(ids, np.ones((block, block), np.uint8))


def _write(root, split, stem, rgb_size=(128, 96), ids=None, labels_dir="labels"):
    (root / split / "images").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", rgb_size, (200, 60, 20)).save(root / split / "images" / f"{stem}.jpg")
    if ids is not None:
        (root / split / labels_dir).mkdir(parents=True, exist_ok=True)
        lab = Image.fromarray(ids, mode="P")
        lab.putpalette(_v10_palette())
        lab.save(root / split / labels_dir / f"{stem}.png")


@pytest.fixture
def raw(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "raw"
    root.mkdir()
    (root / "config.json").write_text(json.dumps(VISTAS.to_config()))
    for stem in ("a", "b"):
        _write(root, "training", stem, ids=_block_ids(rng, 128, 96))
    _write(root, "validation", "c", ids=_block_ids(rng, 128, 96))
    _write(root, "testing", "d")  # no labels, like real Vistas testing
    return root


def _run(src, dst, *extra):
    return prep.main(["--src", str(src), "--dst", str(dst), "--size", "64x48", "--workers", "1", *extra])


def _ids(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "P"
        return np.array(im)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sizes_layout_exact_ids_and_config(raw, tmp_path, workers, capsys):
    out = tmp_path / "out"
    assert _run(raw, out, "--workers", workers) == 0
    assert "4 frames written, 0 already done, 0 problems" in capsys.readouterr().out
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["config.json", "testing/images/d.jpg", "training/images/a.jpg", "training/images/b.jpg",
                     "training/labels/a.png", "training/labels/b.png", "validation/images/c.jpg",
                     "validation/labels/c.png"]
    assert (out / "config.json").read_bytes() == (raw / "config.json").read_bytes()
    for split, stem in (("training", "a"), ("training", "b"), ("validation", "c")):
        with Image.open(out / split / "images" / f"{stem}.jpg") as im:
            assert im.size == (64, 48) and im.format == "JPEG"
        with Image.open(out / split / "labels" / f"{stem}.png") as lab:
            assert lab.size == (64, 48) and lab.getpalette()[:768] == _v10_palette()
        src = _ids(raw / split / "labels" / f"{stem}.png")
        # 16-pixel blocks halved: exactly every other pixel, with 54/55/60 (same color) kept apart
        np.testing.assert_array_equal(_ids(out / split / "labels" / f"{stem}.png"), src[::2, ::2])


def test_odd_scale_keeps_values_and_keep_aspect_crops(tmp_path):
    raw, ids = tmp_path / "raw", np.zeros((64, 128), np.uint8)
    ids[:, :32], ids[:, 32:96], ids[:, 96:] = 54, 55, 60
    _write(raw, "training", "wide", rgb_size=(128, 64), ids=ids)
    assert _run(raw, tmp_path / "plain") == 0
    plain = _ids(tmp_path / "plain" / "training" / "labels" / "wide.png")
    assert plain.shape == (48, 64)
    assert [(plain[0] == v).sum() for v in (54, 55, 60)] == [16, 32, 16]  # stretched
    assert _run(raw, tmp_path / "crop", "--keep-aspect") == 0
    crop = _ids(tmp_path / "crop" / "training" / "labels" / "wide.png")
    # 128x64 -> 96x48, center 64 columns: 8 of 54, 48 of 55, 8 of 60
    assert crop.shape == (48, 64) and [(crop[0] == v).sum() for v in (54, 55, 60)] == [8, 48, 8]
    with Image.open(tmp_path / "crop" / "training" / "images" / "wide.jpg") as im:
        assert im.size == (64, 48)


def test_resume_skips_complete_outputs(raw, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(raw, out) == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.*")}
    capsys.readouterr()
    assert _run(raw, out) == 0
    assert "0 frames written, 4 already done" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.*")} == stamps
    # a killed run: one output missing, a stale temporary beside it
    (out / "training" / "images" / "b.jpg").unlink()
    (out / "training" / "images" / f".b.jpg.999{prep.PART}").write_bytes(b"half")
    assert _run(raw, out) == 0
    assert "1 frames written, 3 already done" in capsys.readouterr().out
    assert not list(out.rglob(f"*{prep.PART}"))
    assert (out / "training" / "labels" / "a.png").stat().st_mtime_ns == stamps[out / "training" / "labels" / "a.png"]


def test_different_size_is_not_skipped(raw, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(raw, out) == 0
    assert prep.main(["--src", str(raw), "--dst", str(out), "--size", "32x24", "--workers", "1"]) == 0
    assert "4 frames written" in capsys.readouterr().out.splitlines()[-1]
    with Image.open(out / "training" / "images" / "a.jpg") as im:
        assert im.size == (32, 24)


def test_failed_write_leaves_no_finished_looking_file(raw, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    real_replace = prep.os.replace

    def replace(a, b):
        if str(b).endswith("a.jpg"):
            raise OSError("disk full")
        real_replace(a, b)

    monkeypatch.setattr(prep.os, "replace", replace)
    assert _run(raw, out) == 1
    assert not (out / "training" / "images" / "a.jpg").exists() and not list(out.rglob(f"*{prep.PART}"))
    assert "a.jpg: OSError: disk full" in capsys.readouterr().err
    monkeypatch.setattr(prep.os, "replace", real_replace)
    assert _run(raw, out) == 0
    assert "1 frames written, 3 already done" in capsys.readouterr().out


def test_bad_files_reported_by_name_rest_processed(raw, tmp_path, capsys):
    (raw / "training" / "images" / "a.jpg").write_bytes(b"not a jpeg")
    Image.new("RGB", (128, 96), CAR).save(raw / "validation" / "labels" / "c.png")  # color label
    _write(raw, "training", "nolabel")
    out = tmp_path / "out"
    assert _run(raw, out) == 1
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("problem:")]
    assert len(err) == 3
    assert any("a.jpg" in l for l in err) and any("c.png" in l and "RGB" in l for l in err)
    assert any("nolabel.jpg" in l and "no label" in l for l in err)
    assert (out / "training" / "labels" / "b.png").exists() and (out / "testing" / "images" / "d.jpg").exists()
    assert not (out / "validation" / "labels" / "c.png").exists()


def test_v12_labels_subfolder(tmp_path, capsys):
    rng = np.random.default_rng(1)
    raw = tmp_path / "raw"
    ids = _block_ids(rng, 128, 96)
    _write(raw, "validation", "c", ids=ids, labels_dir="v1.2/labels")
    _write(raw, "validation", "c2", ids=np.zeros_like(ids), labels_dir="v2.0/labels")
    assert _run(raw, tmp_path / "auto") == 1  # c2 has no v1.2 label
    err = capsys.readouterr().err
    assert "v1.2/labels" in err and "c2.jpg" in err
    np.testing.assert_array_equal(_ids(tmp_path / "auto" / "validation" / "labels" / "c.png"), ids[::2, ::2])
    (raw / "validation" / "v2.0" / "labels" / "c2.png").rename(raw / "validation" / "v1.2" / "labels" / "c2.png")
    assert _run(raw, tmp_path / "explicit", "--labels-dir", "v1.2/labels") == 0
    assert (tmp_path / "explicit" / "validation" / "labels" / "c2.png").exists()


def test_cli_bad_size_is_one_line_error(raw, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "seg.prepare", "--src", str(raw), "--dst", str(tmp_path / "o"), "--size", "512by384"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "error: argument --size: size must look like WxH, e.g. 512x384, got '512by384'" in r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("dst", [".", "sub/out"])
def test_dst_inside_src_rejected(raw, dst, capsys):
    with pytest.raises(SystemExit) as e:
        prep.main(["--src", str(raw), "--dst", str(raw / dst)])
    assert e.value.code == 2 and "inside --src" in capsys.readouterr().err
    assert not (raw / "sub").exists()


def test_prepare_does_not_import_torch():
    """seg.prepare and its worker processes resize with Pillow; loading torch would only cost them seconds."""
    code = ("import sys, seg.prepare, seg.data.prepare; "
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')); "
            "assert not loaded, loaded")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
