"""seg.train and seg.evaluate against hostile runs and data: one trainer per run folder (the lock), every
split checked before step 1, finished steps saved before any failure ends a run, and hostile dataset files
reported in one line instead of a traceback."""
from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hostile
from seg import checkpoint as C
from seg.train import main as train_main, setup
from seg.checkpoint import load_checkpoint
from seg.train.runlock import LOCK_FILE

REPO = Path(__file__).resolve().parent.parent
FAST = ["--arch", "lraspp_mobilenet_v3_large", "--size", "64x48", "--batch-size", "2", "--workers", "0",
        "--threads", "1"]
HOLD = ("import sys, time\nfrom seg.train.runlock import RunLock\nlock = RunLock(sys.argv[1]).acquire()\n"
        "print('held', flush=True)\ntime.sleep(600)\n")
TRY = ("import sys\nfrom seg.train.runlock import RunLock, RunLockError\n"
       "try:\n    RunLock(sys.argv[1]).acquire()\n    print('free')\nexcept RunLockError:\n    print('locked')\n")


def run_cli(*argv) -> int:
    return train_main.cli([str(a) for a in argv])


def train_steps(run: Path) -> list[int]:
    log = run / "metrics.jsonl"
    if not log.exists():
        return []
    return [r["step"] for r in map(json.loads, log.read_text().splitlines()) if "loss" in r]


def errors(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("error:")]


def rgb_label(path: Path) -> None:
    w, h = Image.open(path).size
    Image.new("RGB", (w, h), (128, 64, 128)).save(path)


# ---- one trainer per run folder ----------------------------------------------------------------------


def test_a_second_trainer_is_refused_and_a_killed_holder_does_not_block(tiny_vistas, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    args = ["--data", tiny_vistas, "--out", out, "--steps", 2, "--log-every", 1, "--eval-every", 100, *FAST]
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=REPO, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        assert run_cli(*args, "--resume") == 1
        (line,) = errors(capsys)
        assert str(out) in line and f"pid {holder.pid}" in line and socket.gethostname() in line, line
        assert train_steps(out) == [] and not (out / "last.pt").exists()  # nothing of the holder's touched
    finally:
        holder.kill()  # SIGKILL: no chance to clean up; the lock file stays behind with its note
        holder.wait()
    assert (out / LOCK_FILE).exists()

    seen = []
    real_main = train_main.main

    def main_checking_the_lock(a):  # while this trainer runs, another process cannot take the folder
        seen.append(subprocess.run([sys.executable, "-c", TRY, str(out)], cwd=REPO, capture_output=True,
                                   text=True).stdout.strip())
        return real_main(a)

    monkeypatch.setattr(train_main, "main", main_checking_the_lock)
    assert run_cli(*args, "--resume") == 0
    assert seen == ["locked"] and train_steps(out) == [1, 2]
    assert subprocess.run([sys.executable, "-c", TRY, str(out)], cwd=REPO, capture_output=True,
                          text=True).stdout.strip() == "free"  # released when the run ended


# ---- every split checked before step 1 -----------------------------------------------------------------


def test_rgb_validation_label_stops_before_step_one(tiny_vistas, tmp_path, capsys):
    rgb_label(tiny_vistas / "validation" / "labels" / "f001.png")
    out = tmp_path / "run"
    assert run_cli("--data", tiny_vistas, "--out", out, "--steps", 4, "--log-every", 1, "--eval-every", 2,
                   "--checkpoint-every", 2, *FAST) == 1
    (line,) = errors(capsys)
    assert "validation" in line and "f001.png" in line and "mode RGB" in line, line
    assert train_steps(out) == []  # no step trained and then thrown away


def test_truncated_training_jpeg_stops_before_step_one(tiny_vistas, tmp_path, capsys):
    images = sorted((tiny_vistas / "training" / "images").iterdir())
    bad = hostile.truncate(images[_batch_order(len(images))[4]])  # read by the third step, were it not checked
    with Image.open(bad) as im:
        assert im.size == (64, 48)  # the header alone still reads fine
    out = tmp_path / "run"
    assert run_cli("--data", tiny_vistas, "--out", out, "--steps", 4, "--log-every", 1, *FAST) == 1
    (line,) = errors(capsys)
    assert bad.name in line, line
    assert train_steps(out) == []


@pytest.mark.parametrize("attack", ["bomb_label", "nested_config", "many_classes_config", "unreadable_labels"])
def test_hostile_training_data_is_one_line(tiny_vistas, tmp_path, capsys, attack):
    if attack == "unreadable_labels":
        with hostile.unreadable(tiny_vistas / "training" / "labels"):
            rc = run_cli("--data", tiny_vistas, "--out", tmp_path / "run", "--steps", 2, *FAST)
        named = "labels"
    else:
        path = getattr(hostile, attack)(tiny_vistas, **({"split": "training"} if attack == "bomb_label" else {}))
        rc = run_cli("--data", tiny_vistas, "--out", tmp_path / "run", "--steps", 2, *FAST)
        named = path.name
    assert rc == 1
    (line,) = errors(capsys)
    assert named in line, line


# ---- finished steps survive a failure inside training --------------------------------------------------


def _batch_order(n: int, seed: int = 0) -> list[int]:
    """Frame indices in the order the trainer's DistributedSampler (one process, epoch 0) yields them."""
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=1, rank=0, shuffle=True, seed=seed, drop_last=True)
    sampler.set_epoch(0)
    return list(sampler)


def test_truncated_jpeg_past_the_checked_files_stops_after_saving_the_finished_steps(tiny_vistas, tmp_path, capsys,
                                                                                      monkeypatch):
    monkeypatch.setattr(setup, "CHECK_FILES", 1)  # the start-up check sees only the first pair, as with a big set
    images = sorted((tiny_vistas / "training" / "images").iterdir())
    victim = images[_batch_order(len(images))[4]]  # first frame of the third batch (batch size 2)
    good = victim.read_bytes()
    hostile.truncate(victim)
    out = tmp_path / "run"
    args = ["--data", tiny_vistas, "--out", out, "--log-every", 1, "--eval-every", 100, "--checkpoint-every", 100, *FAST]
    assert run_cli(*args, "--steps", 6) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "checkpoint saved at step 2" in err, err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert victim.name in line, line
    assert load_checkpoint(out / "last.pt")["step"] == 2 and train_steps(out) == [1, 2]

    victim.write_bytes(good)
    assert run_cli(*args, "--steps", 6, "--resume") == 0
    assert train_steps(out) == [1, 2, 3, 4, 5, 6]


def test_bad_validation_frame_past_the_checked_files_saves_the_step_before_stopping(tiny_vistas, tmp_path, capsys,
                                                                                     monkeypatch):
    monkeypatch.setattr(setup, "CHECK_FILES", 1)
    rgb_label(tiny_vistas / "validation" / "labels" / "f002.png")
    out = tmp_path / "run"
    # evaluation and checkpoint on the same step: the evaluation comes first, so before the fix no step was saved
    assert run_cli("--data", tiny_vistas, "--out", out, "--steps", 4, "--eval-every", 2,
                   "--checkpoint-every", 2, *FAST) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "checkpoint saved at step 2" in err and "f002.png" in err, err
    assert load_checkpoint(out / "last.pt")["step"] == 2


def test_disk_full_during_a_checkpoint_is_one_line_and_keeps_the_last_good_one(tiny_vistas, tmp_path, capsys,
                                                                               monkeypatch):
    out = tmp_path / "run"
    args = ["--data", tiny_vistas, "--out", out, "--eval-every", 100, "--checkpoint-every", 2, *FAST]
    assert run_cli(*args, "--steps", 2) == 0
    capsys.readouterr()
    monkeypatch.setattr(C.os, "fdopen", hostile.full_disk_fdopen(room=4096))  # writes past 4 kB fail with ENOSPC
    assert run_cli(*args, "--steps", 4, "--resume") == 1
    (line,) = errors(capsys)
    assert "last.pt: could not be written" in line and os.strerror(errno.ENOSPC) in line, line
    monkeypatch.undo()
    assert load_checkpoint(out / "last.pt")["step"] == 2 and not list(out.glob("*.tmp"))


# ---- seg.evaluate --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_ckpt(tmp_path_factory) -> Path:
    from seg.checkpoint import make_checkpoint, save_checkpoint
    from seg.classes import VISTAS
    from seg.model import create_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    model = create_model("lraspp_mobilenet_v3_large", VISTAS.num_classes).eval()
    save_checkpoint(path, make_checkpoint(model, "lraspp_mobilenet_v3_large", VISTAS, (48, 64)))
    return path


@pytest.mark.parametrize("attack", ["bomb_label", "nested_config", "many_classes_config", "unreadable_labels",
                                    "bomb_image"])
def test_hostile_validation_data_is_one_line_in_evaluate(tiny_vistas, model_ckpt, capsys, attack):
    from seg.evaluate import cli as evaluate

    argv = ["--data", str(tiny_vistas), "--checkpoint", str(model_ckpt), "--precision", "fp32"]
    if attack == "unreadable_labels":
        with hostile.unreadable(tiny_vistas / "validation" / "labels"):
            rc = evaluate.main(argv)
        named = "labels"
    elif attack == "bomb_image":
        path = tiny_vistas / "validation" / "images" / "f000.jpg"
        path.unlink()
        path = path.with_suffix(".png")
        path.write_bytes(hostile.png_header_only(20000, 20000))
        named = path.name
        rc = evaluate.main(argv)
    else:
        named = getattr(hostile, attack)(tiny_vistas).name
        rc = evaluate.main(argv)
    assert rc == 1
    (line,) = errors(capsys)
    assert named in line, line


def test_evaluate_still_scores_a_clean_set(tiny_vistas, model_ckpt, capsys):
    from seg.evaluate import cli as evaluate

    assert evaluate.main(["--data", str(tiny_vistas), "--checkpoint", str(model_ckpt), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_frames"] == 4 and 0.0 <= result["pixel_acc"] <= 1.0
    assert np.isfinite(result["pixel_acc"])
