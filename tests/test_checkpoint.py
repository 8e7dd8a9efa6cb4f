"""seg.checkpoint: hostile field values are refused at load in one line naming the file and the field, a
dataset's config.json is held to the same rules, and a failed save (disk full) is one line that keeps the
old file."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import hostile
from seg import checkpoint as C
from seg.checkpoint import CheckpointError, load_checkpoint, make_checkpoint, save_checkpoint
from seg.classes import VISTAS, load_config

REPO = Path(__file__).resolve().parent.parent
ARCH = "lraspp_mobilenet_v3_large"


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict:
    """A real, loadable checkpoint dict (tiny model, Vistas classes)."""
    from seg.model import create_model

    torch.manual_seed(0)
    model = create_model(ARCH, VISTAS.num_classes).eval()
    return make_checkpoint(model, ARCH, VISTAS, (48, 64), step=3, best_miou=0.5)


def _with(ckpt: dict, field: str, value) -> dict:
    """A copy of `ckpt` with `field` ("a" or "a.b" or "a.b[i]") set to `value`."""
    out = {k: (dict(v) if isinstance(v, dict) and k != "model" else v) for k, v in ckpt.items()}
    head, _, rest = field.partition(".")
    if not rest:
        out[head] = value
    elif "[" in rest:
        key, i = rest[:-1].split("[")
        seq = list(out[head][key])
        seq[int(i)] = value
        out[head][key] = seq
    else:
        out[head][rest] = value
    return out


HOSTILE = [
    ("input_size", [40000, 40000], "input_size"),
    ("input_size", [0, 0], "input_size"),
    ("input_size", "512x384", "input_size"),
    ("input_size", [48.5, 64], "input_size"),
    ("classes", "hello", "classes"),
    ("classes.names", 66, "classes.names"),
    ("classes.names", [], "classes.names"),
    ("classes.names[4]", None, "classes.names[4]"),
    ("classes.readable", ["Road"], "classes.readable"),
    ("classes.colors[3]", [300, -5, 0], "classes.colors[3]"),
    ("classes.colors[3]", [1, 2], "classes.colors[3]"),
    ("classes.ignore_index", 66, "classes.ignore_index"),
    ("classes.readable[0]", "\udcff", "classes.readable[0]"),
    ("model_args", "x", "model_args"),
    ("model_args.arch", "resnet9000", "model_args.arch"),
    ("model_args.num_classes", 10**9, "model_args.num_classes"),
    ("model_args.num_classes", 65, "classes.names"),
    ("normalize", "x", "normalize"),
    ("normalize.mean", [0.5, 0.5], "normalize.mean"),
    ("normalize.std", [0.2, 0.0, 0.2], "normalize.std"),
    ("normalize.mean", [float("nan"), 0.4, 0.4], "normalize.mean"),
    ("model", {"w": "not a tensor"}, "model"),
    ("step", "ten", "step"),
    ("best_miou", "high", "best_miou"),
    ("val_miou", 7.0, "val_miou"),
    ("unadjusted_bias", [0.0] * 3, "unadjusted_bias"),
    ("optimizer", [1, 2], "optimizer"),
]


@pytest.mark.parametrize("field,value,named", HOSTILE, ids=[f"{f}={v!r}"[:40] for f, v, _ in HOSTILE])
def test_hostile_field_is_refused_in_one_line_naming_file_and_field(good, tmp_path, field, value, named):
    path = tmp_path / "model.pt"
    torch.save(_with(good, field, value), path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: bad field {named}") and "\n" not in msg, msg


def test_the_unchanged_checkpoint_loads(good, tmp_path):
    save_checkpoint(tmp_path / "ok.pt", good)
    ckpt = load_checkpoint(tmp_path / "ok.pt")
    assert ckpt["input_size"] == [48, 64] and C.classes_of(ckpt).colors == VISTAS.colors
    nan = dict(good, best_miou=float("nan"), val_miou=None)  # what a validation set with no class present gives
    save_checkpoint(tmp_path / "nan.pt", nan)
    assert load_checkpoint(tmp_path / "nan.pt")["step"] == 3


@pytest.mark.parametrize("field,value", [("input_size", [0, 0]), ("classes.colors[3]", [300, -5, 0]),
                                         ("normalize", "x")])
def test_predict_cli_reports_a_hostile_checkpoint_in_one_line(good, tmp_path, field, value):
    from PIL import Image

    ckpt = tmp_path / "model.pt"
    torch.save(_with(good, field, value), ckpt)
    Image.new("RGB", (64, 48), (90, 120, 200)).save(tmp_path / "frame.png")
    r = subprocess.run([sys.executable, "-m", "seg.predict", str(tmp_path / "frame.png"), "--out", str(tmp_path / "o"),
                        "--checkpoint", str(ckpt), "--threads", "1"], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(ckpt) in lines[0] and field.split("[")[0] in lines[0], r.stderr


@pytest.mark.parametrize("make,named", [
    (hostile.overflow_color_config, "labels[3].color"),
    (hostile.many_classes_config, "300 classes"),
    (hostile.nested_config, "RecursionError"),
    (hostile.ansi_config, "labels[0].readable: control character '\\x1b'"),
])
def test_hostile_config_json_is_one_line_naming_the_file(tmp_path, make, named):
    path = make(tmp_path)
    with pytest.raises(ValueError) as e:
        load_config(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and named in msg and "\n" not in msg and "\x1b" not in msg, msg


def test_config_json_names_must_be_encodable_text(tmp_path):
    cfg = VISTAS.to_config()
    cfg["labels"][0]["readable"] = "\udcff"  # a lone surrogate: legal JSON, unprintable anywhere
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"labels\[0\]\.readable"):
        load_config(tmp_path / "config.json")


def test_disk_full_during_save_is_one_line_and_keeps_the_old_file(good, tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, good)
    before = path.read_bytes()
    monkeypatch.setattr(C.os, "fdopen", hostile.full_disk_fdopen(room=4096))
    with pytest.raises(CheckpointError) as e:
        save_checkpoint(path, dict(good, step=4))
    msg = str(e.value)
    assert msg.startswith(f"{path}: could not be written") and "\n" not in msg, msg
    assert path.read_bytes() == before and load_checkpoint(path)["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind
