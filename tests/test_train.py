"""seg.train: a short run, resume, kill -9, signals, NaN policy, dataset problems, bad flags."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seg.checkpoint import load_checkpoint, model_from_checkpoint
from seg.classes import VISTAS
from seg.model import output_conv
from seg.train import setup, trainer
from seg.train.config import get_args_parser, parse_config, resolve_args
from seg.train.engine import criterion, poly_decay, poly_lambda
from seg.train.main import cli
from seg.train.runfiles import truncate_log

REPO = Path(__file__).resolve().parent.parent
FAST = ["--arch", "lraspp_mobilenet_v3_large", "--size", "64x48", "--batch-size", "2", "--workers", "0",
        "--threads", "1"]


def rows(run: Path):
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if "loss" in r], [r for r in lines if "val_miou" in r]


def run_cli(*argv) -> int:
    return cli([str(a) for a in argv])


def test_three_steps_write_log_and_checkpoints(tiny_vistas, tmp_path):
    out = tmp_path / "run"
    assert run_cli("--data", tiny_vistas, "--out", out, "--steps", 3, "--log-every", 1, "--eval-every", 3, *FAST) == 0
    train, evals = rows(out)
    assert [r["step"] for r in train] == [1, 2, 3]
    assert set(train[0]) >= {"step", "loss", "lr", "img_per_s", "time"}
    assert all(r["loss"] > 0 and r["img_per_s"] > 0 for r in train)
    assert train[0]["lr"] > train[1]["lr"] > train[2]["lr"] == 0.0  # poly decay to zero
    assert [e["step"] for e in evals] == [3] and 0.0 <= evals[0]["val_miou"] <= 1.0
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["step"] == 3 and ckpt["optimizer"] is not None and ckpt["input_size"] == [48, 64]
    assert ckpt["val_miou"] == pytest.approx(evals[0]["val_miou"])  # the evaluation of these very weights
    slim = load_checkpoint(out / "model.pt")
    assert slim["optimizer"] is None and next(iter(slim["model"].values())).dtype == torch.float16
    model = model_from_checkpoint(slim)  # the slim file alone rebuilds the model
    assert model(torch.zeros(1, 3, 48, 64)).shape == (1, 66, 48, 64)


def test_resume_continues_and_keeps_each_step_once(tiny_vistas, tmp_path):
    out = tmp_path / "run"
    args = ["--data", tiny_vistas, "--out", out, "--log-every", 1, "--eval-every", 100, "--checkpoint-every", 2, *FAST]
    assert run_cli(*args, "--steps", 6) == 0
    # Pretend the process died after step 5 had been logged but before its checkpoint: step-4 state, 5 lines.
    ck = load_checkpoint(out / "last.pt")
    assert ck["step"] == 6
    log = (out / "metrics.jsonl").read_text().splitlines()
    assert len([l for l in log if "loss" in l]) == 6
    assert run_cli(*args, "--steps", 10, "--resume") == 0
    train, _ = rows(out)
    assert [r["step"] for r in train] == list(range(1, 11))
    assert load_checkpoint(out / "last.pt")["step"] == 10
    assert train[6]["time"] >= train[5]["time"]  # wall time continues across the resume


def test_truncate_log_drops_lines_after_checkpoint_and_half_lines(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 8)) + '{"step": 8, "lo')
    truncate_log(log, 4)
    assert [json.loads(l)["step"] for l in log.read_text().splitlines()] == [1, 2, 3, 4]


@pytest.mark.slow
def test_kill9_then_resume_gives_every_step_once(tiny_vistas, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "seg.train", "--data", str(tiny_vistas), "--out", str(out), "--steps", "400",
           "--log-every", "1", "--eval-every", "1000", "--checkpoint-every", "3", *FAST]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        log = out / "metrics.jsonl"
        if log.exists() and len(log.read_text().splitlines()) >= 8 and (out / "last.pt").exists():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = len((out / "metrics.jsonl").read_text().splitlines())
    saved = load_checkpoint(out / "last.pt")["step"]
    assert saved % 3 == 0 and 0 < saved <= killed_at
    finish = cmd[:cmd.index("400")] + ["20"] + cmd[cmd.index("400") + 1:] + ["--resume"]
    finish[finish.index("--steps") + 1] = str(max(20, killed_at + 3))
    subprocess.run(finish, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    train, _ = rows(out)
    assert [r["step"] for r in train] == list(range(1, max(20, killed_at + 3) + 1))


@pytest.mark.slow
def test_sigterm_saves_checkpoint_and_exits_cleanly(tiny_vistas, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "seg.train", "--data", str(tiny_vistas), "--out", str(out), "--steps", "100000",
           "--log-every", "1", "--eval-every", "100000", "--checkpoint-every", "100000", *FAST]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not ((out / "metrics.jsonl").exists() and
                                          len((out / "metrics.jsonl").read_text().splitlines()) >= 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "--resume" in err
    logged = rows(out)[0][-1]["step"]
    assert load_checkpoint(out / "last.pt")["step"] >= logged >= 3  # nothing logged is lost


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_vistas, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real = criterion
    calls = {"n": 0}

    def flaky(logits, target, ignore_index, weight=None):
        calls["n"] += 1
        loss = real(logits, target, ignore_index, weight)
        return loss * float("nan") if calls["n"] == 5 else loss

    monkeypatch.setattr(trainer, "criterion", flaky)
    args = ["--data", tiny_vistas, "--out", out, "--steps", 8, "--log-every", 1, "--eval-every", 100,
            "--checkpoint-every", 2, *FAST]
    assert run_cli(*args) == 1
    err = capsys.readouterr().err
    assert "loss is nan at step 5" in err and "Traceback" not in err
    assert load_checkpoint(out / "last.pt")["step"] == 4
    calls["n"] = 0
    assert run_cli(*args, "--nan-policy", "skip") == 0
    train, _ = rows(out)
    assert [r["step"] for r in train] == list(range(1, 9)) and train[4].get("skipped") == 1


def test_dataset_problem_is_one_line_naming_the_file(tiny_vistas, tmp_path, capsys):
    (tiny_vistas / "training" / "labels" / "f002.png").unlink()
    assert run_cli("--data", tiny_vistas, "--out", tmp_path / "run", "--steps", 2, *FAST) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "f002" in err and err.startswith("error:")


def test_label_out_of_range_is_reported_by_file(tiny_vistas, tmp_path, capsys):
    from PIL import Image
    import numpy as np
    bad = Image.fromarray(np.full((48, 64), 200, np.uint8), "P")
    bad.putpalette(list(range(256)) * 3)  # without a full palette PNG saving would renumber the indices
    bad.save(tiny_vistas / "training" / "labels" / "f001.png")
    assert run_cli("--data", tiny_vistas, "--out", tmp_path / "run", "--steps", 2, *FAST) == 1
    err = capsys.readouterr().err
    assert "f001.png" in err and "Traceback" not in err


BAD_FLAGS = [
    (["--arch", "resnet9000"], "--arch resnet9000: unknown model; valid names: "),
    (["--size", "0x5"], "--size: size sides must be between 1 and"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--amp", "--device", "cpu"], "--amp needs CUDA"),
    (["--logit-adjust", "-1"], "--logit-adjust must be >= 0"),
    (["--synth-pool", "-2"], "--synth-pool must be >= 0"),
    (["--loss-at", "half"], "argument --loss-at: invalid choice: 'half'"),
    (["--bias-fit", "-1"], "--bias-fit must be >= 0"),
    (["--bias-fit", "4"], "--bias-fit needs --bias-fit-data DIR"),
    (["--bias-fit", "4", "--bias-fit-data", "/nonexistent"], "--bias-fit-data /nonexistent: no such folder"),
    (["--scale-range", "2,1"], "--scale-range must be LO,HI with 0 < LO <= HI, got '2,1'"),
    (["--init", "/nonexistent.pt"], "--init /nonexistent.pt: no such file"),
    (["--threads", "0"], "argument --threads: expected a whole number >= 1, got '0'"),
    (["--threads", "-3"], "argument --threads: expected a whole number >= 1, got '-3'"),
    (["--size", "16384x16384"], "--size 16384x16384: each side must be 16 to 4096 pixels"),
    (["--size", "1x1"], "--size 1x1: each side must be 16 to 4096 pixels"),
    (["--crop", "8x8"], "--crop 8x8: each side must be 16 to 4096 pixels"),
    (["--scale-range", "1e-9,1e-9"], "--scale-range: LO must be at least 0.05, got 1e-09"),
    (["--scale-range", "0.05,0.1", "--size", "16x16"], "--scale-range: LO 0.05 shrinks the 16-pixel short side of"),
    (["--scale-range", "0.5,1e9"], "--scale-range: HI 1e+09 makes the 64-pixel long side of --size"),
]


@pytest.mark.parametrize("bad,says", BAD_FLAGS, ids=[" ".join(b) for b, _ in BAD_FLAGS])
def test_bad_flags_are_rejected_as_one_line_usage_errors(tiny_vistas, tmp_path, capsys, bad, says):
    parser = get_args_parser()
    with pytest.raises(SystemExit) as e:
        resolve_args(parser.parse_args(["--data", str(tiny_vistas), "--out", str(tmp_path / "r"), *FAST, *bad]),
                     parser)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("usage:") and "error: " + says in err[-1], err
    assert not (tmp_path / "r").exists()  # rejected before anything was made


def test_good_flags_resolve_into_a_typed_config_with_one_field_per_flag(tiny_vistas, tmp_path):
    parser = get_args_parser()
    cfg = resolve_args(parser.parse_args(["--data", str(tiny_vistas), "--out", str(tmp_path), "--crop", "32x24",
                                          "--init", "none", "--device", "cpu", *FAST]), parser)
    dests = set(vars(parser.parse_args(["--out", "x"])))
    assert set(cfg.as_dict()) == dests  # what checkpoints keep as `args`: every flag, nothing else
    assert cfg.size_hw == (48, 64) and cfg.crop_hw == (24, 32) and cfg.scale_range == (0.5, 2.0)
    assert cfg.init is None and cfg.amp is False and cfg.steps == 20000  # 'none' and the defaults filled in
    assert cfg.val_root == str(tiny_vistas)


def test_one_poly_decay_serves_the_step_schedule_and_the_time_budget():
    f = poly_lambda(10, warmup=2)
    assert [f(0), f(1)] == [0.5, 1.0]  # linear warm-up
    assert f(5) == poly_decay(0.5) == 0.5 ** 0.9 and f(10) == poly_decay(1.0) == 0.0
    assert poly_decay(1.5) == 0.0 and poly_decay(0.0) == 1.0  # past the end stays at zero


@pytest.mark.slow
def test_the_command_prints_help_and_refuses_a_bad_flag_without_traceback(tiny_vistas, tmp_path):
    help_text = subprocess.run([sys.executable, "-m", "seg.train", "--help"], cwd=REPO, capture_output=True,
                               text=True, timeout=120)
    assert help_text.returncode == 0 and "--bias-fit-data DIR" in help_text.stdout
    r = subprocess.run([sys.executable, "-m", "seg.train", "--data", str(tiny_vistas), "--out", str(tmp_path / "r"),
                        "--steps", "0"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].endswith("error: --steps must be at least 1")


def test_resume_refuses_other_architecture(tiny_vistas, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli("--data", tiny_vistas, "--out", out, "--steps", 1, *FAST) == 0
    other = [a if a != "lraspp_mobilenet_v3_large" else "deeplabv3_mobilenet_v3_large" for a in FAST]
    assert run_cli("--data", tiny_vistas, "--out", out, "--steps", 2, "--resume", *other) == 1
    assert "lraspp_mobilenet_v3_large" in capsys.readouterr().err


def test_time_limit_ends_run_early_with_lr_annealed(tiny_vistas, tmp_path):
    out = tmp_path / "run"
    assert run_cli("--data", tiny_vistas, "--out", out, "--steps", 100000, "--time-limit", 0.002,
                   "--log-every", 1000, "--eval-every", 1000, "--checkpoint-every", 1000, *FAST) == 0
    train, evals = rows(out)
    last = load_checkpoint(out / "last.pt")["step"]
    assert 1 <= last < 100000 and train[-1]["step"] == last and evals[-1]["step"] == last
    assert train[-1]["lr"] == 0.0  # decayed by the clock, not by the (far) step count


def test_bad_label_met_inside_a_loader_worker_is_one_line(tiny_vistas, tmp_path, monkeypatch, capsys):
    from PIL import Image
    import numpy as np
    bad = Image.fromarray(np.full((48, 64), 200, np.uint8), "P")
    bad.putpalette(list(range(256)) * 3)
    for i in range(8):  # every frame bad, so the first batch meets one
        bad.save(tiny_vistas / "training" / "labels" / f"f{i:03d}.png")
    monkeypatch.setattr(setup, "check_split", lambda *a, **k: [])  # as if past the pre-checked first 200 frames
    args = [a if a != "0" else "1" for a in FAST]  # one DataLoader worker process
    assert run_cli("--data", tiny_vistas, "--out", tmp_path / "run", "--steps", 2, *args) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error:") and ".png" in err and "outside the 66-class table" in err


@pytest.mark.slow
def test_logit_adjust_changes_only_the_output_bias_against_rare_classes(tiny_vistas, tmp_path):
    from seg.model import output_conv

    base = ["--data", tiny_vistas, "--steps", 2, "--log-every", 1, "--eval-every", 2, "--class-weights", "sqrt-inv",
            *FAST]
    assert run_cli(*base, "--out", tmp_path / "plain") == 0
    assert run_cli(*base, "--out", tmp_path / "adj", "--logit-adjust", "1") == 0
    plain = load_checkpoint(tmp_path / "plain" / "last.pt")
    adj = load_checkpoint(tmp_path / "adj" / "last.pt")
    model = model_from_checkpoint(adj)
    bias_key = next(n for n, m in model.named_modules() if m is output_conv(model)) + ".bias"
    changed = [k for k in plain["model"] if not torch.equal(plain["model"][k], adj["model"][k])]
    assert changed == [bias_key]  # same training, same weights: only the folded bias differs
    delta = adj["model"][bias_key] - plain["model"][bias_key]
    # car (55) covers a small box, road (13) most of the frame: the rare class is pushed down, -log(w)
    assert delta[55] < delta[13] and abs(float(delta[13])) < abs(float(delta[55]))
    lines = [json.loads(l) for l in (tmp_path / "adj" / "metrics.jsonl").read_text().splitlines()]
    before = [r for r in lines if "logit_adjust" in r]
    assert len(before) == 1 and before[0]["logit_adjust"] == 1.0 and 0 <= before[0]["val_miou_before"] <= 1


def test_loss_at_head_resolution_scores_the_label_at_each_cell_centre():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 3, 4)  # a 1/4-resolution head on a 12x16 crop
    target = torch.randint(0, 5, (2, 12, 16))
    target[0, 2, 2] = 4  # the ignore index at one cell centre is ignored there too
    expected = torch.nn.functional.cross_entropy(logits, target[:, 2::4, 2::4], ignore_index=4)
    torch.testing.assert_close(criterion(logits, target, 4), expected)
    full = torch.randn(2, 5, 12, 16)
    torch.testing.assert_close(criterion(full, target, 4),
                               torch.nn.functional.cross_entropy(full, target, ignore_index=4))


@pytest.mark.slow
def test_pool_smaller_than_a_batch_is_an_error_not_an_endless_loop(tmp_path, capsys):
    assert run_cli("--data", "synth", "--synth-pool", 2, "--out", tmp_path / "r", "--steps", 1,
                   "--size", "64x48", "--batch-size", 4, "--workers", 0, "--threads", 1) == 1
    err = capsys.readouterr().err
    assert "--synth-pool: 2 frames" in err and "--batch-size 4" in err and "Traceback" not in err


def test_resuming_an_adjusted_run_goes_on_from_unadjusted_weights(tiny_vistas, tmp_path):
    base = ["--data", tiny_vistas, "--log-every", 1, "--eval-every", 100, "--class-weights", "sqrt-inv", *FAST]
    for name, extra in (("plain", []), ("adj", ["--logit-adjust", "1"])):
        assert run_cli(*base, "--out", tmp_path / name, "--steps", 2, *extra) == 0
        assert run_cli(*base, "--out", tmp_path / name, "--steps", 4, "--resume", *extra) == 0
    plain = load_checkpoint(tmp_path / "plain" / "last.pt")["model"]
    adj = load_checkpoint(tmp_path / "adj" / "last.pt")
    # the same training from the same weights: only the output bias differs, by the final adjustment alone
    changed = [k for k in plain if not torch.equal(plain[k], adj["model"][k])]
    assert len(changed) == 1 and changed[0].endswith("bias")
    torch.testing.assert_close(torch.tensor(adj["unadjusted_bias"]), plain[changed[0]])


def test_bias_fit_changes_only_the_output_bias_and_logs_the_held_out_gain(tiny_vistas, tmp_path):
    base = ["--data", tiny_vistas, "--steps", 2, "--log-every", 1, "--eval-every", 2, *FAST]
    assert run_cli(*base, "--out", tmp_path / "plain") == 0
    assert run_cli(*base, "--out", tmp_path / "fit", "--bias-fit", 3, "--bias-fit-data", tiny_vistas) == 0
    plain = load_checkpoint(tmp_path / "plain" / "last.pt")
    fit = load_checkpoint(tmp_path / "fit" / "last.pt")
    changed = [k for k in plain["model"] if not torch.equal(plain["model"][k], fit["model"][k])]
    assert len(changed) == 1 and changed[0].endswith("bias")  # same training, same weights
    torch.testing.assert_close(torch.tensor(fit["unadjusted_bias"]), plain["model"][changed[0]])
    lines = [json.loads(l) for l in (tmp_path / "fit" / "metrics.jsonl").read_text().splitlines()]
    row = next(r for r in lines if "bias_fit" in r)
    assert row["bias_fit"] == 3 and row["heldout_miou_after"] > row["heldout_miou_before"]
    # what the log says was gained is what the saved offsets give on those frames
    from seg.train.calibrate import heldout_scores, miou_with_bias
    from seg.data.transforms import get_transform
    from seg.data.vistas import VistasDataset
    frames = VistasDataset(tiny_vistas, "validation", transforms=get_transform(False, (48, 64)))
    model = model_from_checkpoint(plain).float()
    scores, labels = heldout_scores(model, [frames[i] for i in range(3)], "cpu", every=32, seed=0)
    delta = fit["model"][changed[0]].float() - plain["model"][changed[0]].float()
    assert miou_with_bias(scores, labels, delta, 65) == pytest.approx(row["heldout_miou_after"], abs=1e-6)
    assert miou_with_bias(scores, labels, torch.zeros(66), 65) == pytest.approx(row["heldout_miou_before"], abs=1e-6)


def test_broken_bias_fit_data_is_reported_before_training(tiny_vistas, tmp_path, capsys):
    import shutil
    held = tmp_path / "held"
    shutil.copytree(tiny_vistas, held)
    (held / "validation" / "labels" / "f001.png").unlink()
    out = tmp_path / "run"
    assert run_cli("--data", tiny_vistas, "--out", out, "--steps", 2, "--bias-fit", 3, "--bias-fit-data", held, *FAST) == 1
    err = capsys.readouterr().err
    assert "--bias-fit-data" in err and "f001" in err and "Traceback" not in err
    assert not (out / "last.pt").exists()  # refused up front, not after training


def test_init_starts_from_raw_weights_of_another_run(tiny_vistas, tmp_path, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    assert run_cli("--data", tiny_vistas, "--out", first, "--steps", 2, "--eval-every", 2, *FAST,
                   "--class-weights", "sqrt-inv", "--logit-adjust", "1", "--bn-recalibrate", "0") == 0
    src = load_checkpoint(first / "model.pt")
    # lr 0 keeps every parameter where --init put it (batch-norm buffers still move in training mode)
    assert run_cli("--data", tiny_vistas, "--out", second, "--steps", 1, "--eval-every", 1, *FAST, "--lr", 0,
                   "--init", first / "model.pt", "--logit-adjust", "0", "--bn-recalibrate", "0") == 0
    got = load_checkpoint(second / "last.pt")
    assert got["step"] == 1 and [r["step"] for r in rows(second)[0]] == [1]  # a fresh run, not a resume
    model = model_from_checkpoint(got)
    params = {n for n, _ in model.named_parameters()}
    bias = next(n for n, p in model.named_parameters() if p is output_conv(model).bias)
    for n in params - {bias}:
        assert torch.equal(got["model"][n], src["model"][n].float()), n
    # the source's logit adjustment is undone: training starts from its raw output bias
    assert torch.allclose(got["model"][bias], torch.tensor(src["unadjusted_bias"]))
    assert not torch.allclose(src["model"][bias].float(), torch.tensor(src["unadjusted_bias"]), atol=1e-2)

    assert run_cli("--data", tiny_vistas, "--out", tmp_path / "c", "--steps", 1, *FAST, "--arch",
                   "deeplabv3_mobilenet_v3_large", "--init", first / "model.pt") == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and str(first / "model.pt") in err and "lraspp_mobilenet_v3_large" in err


def test_log_ends_with_an_end_record_that_a_resume_drops(tiny_vistas, tmp_path):
    out = tmp_path / "run"
    args = ["--data", tiny_vistas, "--out", out, "--log-every", 1, "--eval-every", 100, "--checkpoint-every", 1, *FAST]
    assert run_cli(*args, "--steps", 2) == 0
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last == {"step": 2, "end": "done"}
    assert run_cli(*args, "--steps", 3, "--resume") == 0
    ends = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "end" in r]
    assert ends == [{"step": 3, "end": "done"}]  # the first run's end record went with the resume


class _OneConv(torch.nn.Module):
    def __init__(self, classes: int):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, classes, 1)

    def forward(self, x, full_size=True):
        return self.conv(x)


def test_a_step_the_grad_scaler_skips_holds_the_schedule_back(tmp_path):
    cfg = parse_config(["--data", "synth", "--out", str(tmp_path), "--device", "cpu", "--steps", "10"])
    torch.manual_seed(0)
    model = _OneConv(VISTAS.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_lambda(cfg.steps))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)  # scaled gradients overflow on the first step
    parts = setup.Parts(model, model, optimizer, scheduler, scaler, torch.device("cpu"))
    batch = (torch.randn(2, 3, 8, 8) * 1e3, torch.randint(0, 10, (2, 8, 8)))
    t = trainer.Trainer(cfg, parts, trainer.TrainData(iter([batch] * 3), None, VISTAS))
    before = model.conv.weight.detach().clone()
    t.train_step()
    assert t.step == 1 and scheduler.last_epoch == 0  # the optimizer skipped its step, and so did the schedule
    assert torch.equal(model.conv.weight, before) and scaler.get_scale() < 2.0**127
    parts.scaler = None
    t.train_step()
    assert t.step == 2 and scheduler.last_epoch == 1 and not torch.equal(model.conv.weight, before)
