"""seg.train against a hostile run folder: links, FIFOs and folders where its own files belong, a last.pt that
cannot be resumed, and damaged metrics.jsonl lines. Each is one `error:` line naming the file (or a note for
log lines that are left out), no traceback, nothing blocks, and nothing outside the run folder is touched."""
from __future__ import annotations

import json
import os
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from conftest import write_vistas
from seg.checkpoint import save_checkpoint
from seg.train import main as train_main
from seg.train.engine import poly_lambda
from seg.train.resume import check_optimizer_state, check_scheduler_state
from seg.train.runlock import LOCK_FILE, RunLock, RunLockError
from seg.train.runfiles import MetricsLog, start_log, truncate_log
from seg.train.runlog import METRICS_FILE

FAST = ["--arch", "lraspp_mobilenet_v3_large", "--size", "64x48", "--batch-size", "2", "--workers", "0",
        "--threads", "1"]


def run_cli(*argv) -> int:
    return train_main.cli([str(a) for a in argv])


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@contextmanager
def within(seconds: float):
    """Fail (instead of hanging the suite) when the body blocks longer than `seconds`."""
    def expired(signum, frame):
        raise TimeoutError(f"blocked for over {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != LOCK_FILE}


# ---- the lock file -----------------------------------------------------------------------------------


def test_a_lock_file_linked_to_another_file_is_refused_and_the_file_untouched(tiny_vistas, tmp_path, capsys):
    victim = tmp_path / "precious.txt"
    victim.write_text("a user's notes\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_FILE).symlink_to(victim)
    with pytest.raises(RunLockError, match="symbolic link"):
        RunLock(out).acquire()
    assert run_cli("--data", tiny_vistas, "--out", out, "--steps", 1, *FAST) == 1
    line = one_error(capsys)
    assert str(out / LOCK_FILE) in line and "symbolic link" in line, line
    assert victim.read_text() == "a user's notes\n" and (out / LOCK_FILE).is_symlink()
    assert not (out / METRICS_FILE).exists()  # refused before anything was written


def test_a_hard_linked_lock_file_is_refused(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("a user's notes\n")
    out = tmp_path / "run"
    out.mkdir()
    os.link(victim, out / LOCK_FILE)
    with pytest.raises(RunLockError, match="2 names"):
        RunLock(out).acquire()
    assert victim.read_text() == "a user's notes\n"


def test_a_fifo_or_folder_as_the_lock_file_is_refused_without_blocking(tmp_path):
    for kind in ("fifo", "folder"):
        out = tmp_path / kind
        out.mkdir()
        os.mkfifo(out / LOCK_FILE) if kind == "fifo" else (out / LOCK_FILE).mkdir()
        with within(20), pytest.raises(RunLockError, match="not a regular file"):
            RunLock(out).acquire()


# ---- metrics.jsonl that is not a plain file ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "link", "folder"])
def test_a_log_that_is_not_a_regular_file_is_refused_and_nothing_blocks(tmp_path, kind):
    victim = tmp_path / "precious.jsonl"
    victim.write_text('{"step": 1, "loss": 1.0}\n' * 3)
    for resume_step in (5, None):
        run = tmp_path / f"run-{resume_step}"
        run.mkdir()
        log = run / METRICS_FILE
        {"fifo": lambda: os.mkfifo(log), "link": lambda: log.symlink_to(victim), "folder": log.mkdir}[kind]()
        with within(20), pytest.raises(ValueError) as e:
            start_log(run, resume_step)
        assert str(log) in str(e.value) and "\n" not in str(e.value), e.value
        assert victim.read_text() == '{"step": 1, "loss": 1.0}\n' * 3
        assert log.is_symlink() if kind == "link" else log.exists()


def test_the_log_writer_never_writes_through_a_link(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep\n")
    (tmp_path / METRICS_FILE).symlink_to(victim)
    with pytest.raises(ValueError, match="symbolic link"):
        MetricsLog(tmp_path / METRICS_FILE)
    assert victim.read_text() == "keep\n"


def test_a_planted_temporary_log_link_does_not_redirect_the_rewrite(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep\n")
    run = tmp_path / "run"
    run.mkdir()
    log = run / METRICS_FILE
    log.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (1, 2, 3)))
    (run / "metrics.jsonl.tmp").symlink_to(victim)
    truncate_log(log, 2)
    assert victim.read_text() == "keep\n"
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2]


# ---- damaged log lines on --resume ---------------------------------------------------------------------


DAMAGED = [b"[1,2,3]", b'{"step": "abc", "loss": 1.0}', b'{"step": 2, "loss": 1.0, "note": "caf\xe9"}',
           b'{"step": true, "loss": 1.0}', b'{"step": NaN, "loss": 1.0}', b'"just text"', b"\xff\xfe",
           b'{"step": 1' + b"0" * 400 + b', "loss": 1.0}']


def test_truncate_log_keeps_damaged_lines_out_and_every_good_line_intact(tmp_path):
    good = [json.dumps({"step": s, "loss": 1.0}).encode() for s in range(1, 5)]
    log = tmp_path / METRICS_FILE
    log.write_bytes(b"\n".join([good[0], *DAMAGED, good[1], good[2], b'{"step": 3, "end": "done"}', good[3]]) + b"\n")
    with within(20):
        dropped = truncate_log(log, 3)
    assert log.read_bytes() == b"\n".join(good[:3]) + b"\n"  # byte for byte
    assert dropped == list(range(2, 2 + len(DAMAGED)))  # the damaged lines, by 1-based number


def test_resume_over_a_damaged_log_goes_on_and_says_which_lines_it_left_out(tiny_vistas, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--data", tiny_vistas, "--out", out, "--log-every", 1, "--eval-every", 100, *FAST]
    assert run_cli(*args, "--steps", 2) == 0
    log = out / METRICS_FILE
    log.write_bytes(log.read_bytes() + b"[1,2,3]\n" + b'{"step": "abc"}\n' + b"\xff not utf-8\n")
    capsys.readouterr()
    assert run_cli(*args, "--steps", 3, "--resume") == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" not in err, err
    (note,) = [line for line in err.splitlines() if str(log) in line]
    assert "3 damaged line" in note, note
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3]


# ---- a last.pt that cannot be resumed ------------------------------------------------------------------


def _reshaped(ck: dict) -> dict:
    model = dict(ck["model"])
    name = next(k for k, v in model.items() if v.dim() == 4)
    model[name] = torch.zeros(3, 3, 1, 1)
    return {**ck, "model": model}


def _bad_moment(ck: dict) -> dict:
    opt = {**ck["optimizer"], "state": {k: dict(v) for k, v in ck["optimizer"]["state"].items()}}
    first = next(iter(opt["state"]))
    opt["state"][first]["exp_avg"] = torch.zeros(7)
    return {**ck, "optimizer": opt}


def _bad_group(ck: dict) -> dict:
    groups = [dict(g) for g in ck["optimizer"]["param_groups"]]
    groups[0]["lr"] = "abc"
    return {**ck, "optimizer": {**ck["optimizer"], "param_groups": groups}}


RESUME_ATTACKS = {
    "slim model.pt": (lambda ck: {**ck, "optimizer": None, "scheduler": None, "scaler": None}, "no optimizer state"),
    "reshaped weight": (_reshaped, "weights do not fit"),
    "optimizer without groups": (lambda ck: {**ck, "optimizer": {"state": {}}}, "optimizer"),
    "optimizer moment of the wrong shape": (_bad_moment, "optimizer.state"),
    "optimizer lr that is text": (_bad_group, "optimizer.param_groups[0]"),
    "scheduler overriding a method": (lambda ck: {**ck, "scheduler": {**ck["scheduler"], "step": 5}}, "scheduler"),
    "scheduler epoch that is text": (lambda ck: {**ck, "scheduler": {**ck["scheduler"], "last_epoch": "x"}},
                                     "scheduler.last_epoch"),
    "empty scheduler": (lambda ck: {**ck, "scheduler": {}}, "scheduler"),
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    data = write_vistas(root / "vistas")
    out = root / "run"
    assert run_cli("--data", data, "--out", out, "--steps", 2, "--log-every", 1, "--eval-every", 100, *FAST) == 0
    return out


@pytest.mark.parametrize("attack", list(RESUME_ATTACKS))
def test_a_last_pt_that_cannot_be_resumed_is_one_line_and_the_run_folder_is_kept(finished_run, tmp_path, capsys,
                                                                                  attack):
    damage, says = RESUME_ATTACKS[attack]
    out = tmp_path / "run"
    out.mkdir()
    for p in finished_run.iterdir():
        if p.is_file():
            (out / p.name).write_bytes(p.read_bytes())
    save_checkpoint(out / "last.pt", damage(torch.load(out / "last.pt", weights_only=True)))
    before = snapshot(out)
    data = finished_run.parent / "vistas"
    capsys.readouterr()
    assert run_cli("--data", data, "--out", out, "--steps", 4, "--log-every", 1, *FAST, "--resume") == 1
    line = one_error(capsys)
    assert str(out / "last.pt") in line and says in line, line
    assert snapshot(out) == before  # the log, last.pt and model.pt as they were


def test_a_state_from_another_torch_version_still_fits():
    weight = torch.nn.Parameter(torch.zeros(3, 2))
    optimizer = torch.optim.AdamW([weight], lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_lambda(10))
    weight.grad = torch.ones(3, 2)
    optimizer.step()
    scheduler.step()
    saved = scheduler.state_dict()
    saved.pop("_is_initial", None)  # a flag older torch did not keep
    check_scheduler_state({**saved, "verbose": False}, scheduler)  # one it kept and no longer does
    state = optimizer.state_dict()
    state["param_groups"][0].pop("decoupled_weight_decay", None)
    check_optimizer_state(state, optimizer)


def test_resume_with_a_fifo_as_the_log_is_one_line_and_frees_the_folder(finished_run, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("last.pt", "model.pt"):
        (out / name).write_bytes((finished_run / name).read_bytes())
    os.mkfifo(out / METRICS_FILE)
    capsys.readouterr()
    with within(120):
        rc = run_cli("--data", finished_run.parent / "vistas", "--out", out, "--steps", 4, *FAST, "--resume")
    assert rc == 1
    line = one_error(capsys)
    assert str(out / METRICS_FILE) in line and "a FIFO" in line, line
    RunLock(out).acquire().release()  # the lock went with the refused run
