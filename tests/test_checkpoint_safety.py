"""seg.checkpoint against hostile archives and killed saves: tensor bytes are capped by the architecture before
anything is inflated, tensors sit only where the schema puts them, weights are finite, class names hold no
control characters, and a killed save's temp files are removed by the next save (and nothing else is)."""
from __future__ import annotations

import fcntl
import io
import os
import time

import pytest
import torch

import hostile
from seg.checkpoint import (MAX_CHECKPOINT_BYTES, STALE_TEMP_SECONDS, CheckpointError, load_checkpoint,
                            make_checkpoint, save_checkpoint, slim)
from seg.checkpoint_schema import MAX_META_BYTES, tensor_allowance
from seg.classes import MAX_CLASSES, VISTAS
from seg.model import create_model, list_models

ARCH = "lraspp_mobilenet_v3_large"


@pytest.fixture(scope="module")
def good() -> dict:
    torch.manual_seed(0)
    return make_checkpoint(create_model(ARCH, VISTAS.num_classes).eval(), ARCH, VISTAS, (48, 64), step=3)


def _archive(ckpt: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def _refusal(path, **kw) -> str:
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, **kw)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg and "\x1b" not in msg, msg
    return msg


def test_a_deflated_tensor_bomb_in_args_is_refused(good, tmp_path):
    """The issue's file, scaled down: a deflated archive whose args hold 64 MB of zeros in ~65 kB (the rest of
    its 12 MB are the weights)."""
    blob = torch.zeros(64 << 20, dtype=torch.uint8)
    raw = _archive(dict(good, args={"blob": blob}))
    del blob
    path = tmp_path / "bomb.pt"
    path.write_bytes(hostile.deflated(raw))
    del raw
    assert path.stat().st_size < 16_000_000
    assert "bad field args['blob']: holds a tensor" in _refusal(path)


def test_tensor_bytes_past_the_architecture_are_refused_before_any_is_read(good, tmp_path):
    """optimizer.state may hold tensors, but no more than the weights' two moments. The zip directory declares
    3 GB for a record whose data is 8 bytes: a loader that read the record at all would fail otherwise."""
    sentinel = torch.frombuffer(bytearray(b"SEGBOMB!"), dtype=torch.uint8)
    ckpt = dict(good, optimizer={"state": {0: {"exp_avg": sentinel}}, "param_groups": []})
    path = tmp_path / "last.pt"
    path.write_bytes(hostile.claim_size(hostile.deflated(_archive(ckpt)), b"SEGBOMB!", 3_000_000_000))
    msg = _refusal(path)
    assert "refused: 3,0" in msg and f"more than a {ARCH} checkpoint holds" in msg, msg


@pytest.mark.parametrize("field", ["args", "scheduler", "optimizer.param_groups", "extra", "key"])
def test_a_tensor_where_the_schema_has_none_is_refused(good, tmp_path, field):
    t = torch.zeros(3)
    ckpt = dict(good)
    if field == "optimizer.param_groups":
        ckpt["optimizer"] = {"state": {}, "param_groups": [{"lr": t, "params": [0]}]}
    elif field == "key":
        ckpt["args"] = {t: 1}
    else:
        ckpt[field] = {"nested": [[1, t]]}
    path = tmp_path / "model.pt"
    torch.save(ckpt, path)
    msg = _refusal(path)
    assert "holds a tensor; tensors belong only in model and optimizer.state" in msg, msg
    assert f"bad field {field.split('.')[0] if field != 'key' else 'args'}" in msg, msg


def test_a_training_checkpoint_with_adamw_state_loads(tmp_path):
    """The allowance is not too tight: weights, AdamW's two moments and step counters, and a self-referring
    list in args (the tensor search must not loop)."""
    torch.manual_seed(0)
    model = create_model(ARCH, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 3, 48, 64)).mean().backward()
    opt.step()
    loop = []
    loop.append(loop)
    classes = type(VISTAS)(VISTAS.names[:2], VISTAS.readable[:2], VISTAS.colors[:2], None)
    path = tmp_path / "last.pt"
    save_checkpoint(path, make_checkpoint(model, ARCH, classes, (48, 64), optimizer=opt.state_dict(),
                                          args={"loop": loop}))
    ckpt = load_checkpoint(path)
    assert len(ckpt["optimizer"]["state"]) == len(list(model.parameters()))
    assert path.stat().st_size > 0.95 * tensor_allowance(ARCH, 2) - (1 << 20)  # a real, near-full last.pt


def test_every_architecture_fits_under_the_file_cap():
    for arch in list_models():
        assert tensor_allowance(arch, MAX_CLASSES) + MAX_META_BYTES < MAX_CHECKPOINT_BYTES, arch


def test_a_legacy_pickle_is_refused_before_loading(good, tmp_path):
    path = tmp_path / "old.pt"
    torch.save(good, path, _use_new_zipfile_serialization=False)
    assert "legacy (non-zip) pickle" in _refusal(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("slimmed", [False, True], ids=["fp32", "fp16"])
def test_non_finite_weights_are_refused_at_load(good, tmp_path, value, slimmed):
    weights = {k: v.clone() for k, v in good["model"].items()}
    name = next(k for k, v in weights.items() if v.is_floating_point() and v.numel() > 1)
    weights[name][1] = value
    path = tmp_path / "model.pt"
    save_checkpoint(path, slim(dict(good, model=weights)) if slimmed else dict(good, model=weights))
    msg = _refusal(path)
    assert msg.startswith(f"{path}: bad field model: {name!r} holds NaN or infinite values"), msg


def test_all_nan_weights_are_refused(good, tmp_path):
    """The issue's file: every weight NaN predicted Bird everywhere, exit 0, no warning."""
    weights = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in good["model"].items()}
    path = tmp_path / "model.pt"
    save_checkpoint(path, dict(good, model=weights))
    assert "holds NaN or infinite values" in _refusal(path)


@pytest.mark.parametrize("field,value", [
    ("readable", hostile.ANSI_NAME), ("names", "road\u2028sky"), ("readable", "Road\u202eevil"),
    ("names", "tab\there"), ("readable", "C1 \x9b2J")])
def test_control_characters_in_class_names_are_refused(good, tmp_path, field, value):
    classes = dict(good["classes"])
    classes[field] = list(classes[field])
    classes[field][4] = value
    path = tmp_path / "model.pt"
    torch.save(dict(good, classes=classes), path)
    msg = _refusal(path)
    assert f"bad field classes.{field}[4]: control character" in msg, msg


def test_load_from_bytes_the_caller_already_read(good, tmp_path):
    """The caller hashes the bytes it read and loads those very bytes, whatever the file holds by then."""
    path = tmp_path / "model.pt"
    save_checkpoint(path, good)
    data = path.read_bytes()
    save_checkpoint(path, dict(good, step=9))
    assert load_checkpoint(path, data=data)["step"] == 3 and load_checkpoint(path)["step"] == 9
    gone = tmp_path / "gone.pt"
    assert load_checkpoint(gone, data=data)["_path"] == str(gone)
    assert "not a checkpoint" in _refusal(gone, data=b"hello")


def _planted(path, text: str = "user data", age: float = 10 * STALE_TEMP_SECONDS):
    """A file at `path` last written `age` seconds ago."""
    path.write_text(text)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_a_killed_saves_temp_is_removed_by_the_next_save_and_nothing_else(good, tmp_path):
    path = tmp_path / "last.pt"
    stale = _planted(tmp_path / "last.pt.k1ll3d_x.tmp", "half a checkpoint")  # mkstemp's name for last.pt
    keep = {name: _planted(tmp_path / name) for name in (
        "last.pt.notes.tmp", "last.pt.ABCDEFGH.tmp", "model.pt.abcdefgh.tmp", "last.pt.abcdefgh.tmp.bak",
        "xlast.pt.abcdefgh.tmp")}
    keep["fresh"] = _planted(tmp_path / "last.pt.fr3sh000.tmp", age=0)  # young: a save possibly still writing
    keep["locked"] = _planted(tmp_path / "last.pt.l0cked00.tmp")  # old, but a live save holds its lock
    target = _planted(tmp_path / "elsewhere.txt", "precious")
    keep["link"] = tmp_path / "last.pt.l1nk0000.tmp"
    keep["link"].symlink_to(target)
    then = time.time() - 10 * STALE_TEMP_SECONDS
    os.utime(keep["link"], (then, then), follow_symlinks=False)
    with open(keep["locked"], "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        save_checkpoint(path, good)
    assert not stale.exists()
    assert all(p.is_symlink() or p.exists() for p in keep.values()), sorted(os.listdir(tmp_path))
    assert target.read_text() == "precious" and load_checkpoint(path)["step"] == 3
