"""The one device rule (--device auto|cpu|cuda|cuda:N) and each device's default precision, on every CLI;
the GPU training preset's resolution. CUDA's presence is simulated where the rule only reads it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seg import device as D
from seg.train.config import get_args_parser, resolve_args

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def one_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_auto_follows_cuda(no_cuda):
    assert D.resolve_device("auto") == D.resolve_device(None) == torch.device("cpu")
    assert D.resolve_device("CPU") == torch.device("cpu")


def test_auto_picks_cuda_when_present(one_gpu):
    assert D.resolve_device("auto").type == "cuda"
    assert D.resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match="only 1 CUDA device"):
        D.resolve_device("cuda:1")


def test_cuda_without_cuda_and_bad_spellings_are_one_line_errors(no_cuda):
    for spec in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match="CUDA is not available") as e:
            D.resolve_device(spec)
        assert "\n" not in str(e.value)
    for spec in ("gpu", "cuda:x", "mps", ""):
        if spec:
            with pytest.raises(ValueError, match="device must be one of"):
                D.resolve_device(spec)


def test_default_precision_per_device(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    monkeypatch.setattr(D, "cpu_bf16_supported", lambda: False)
    assert D.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(D, "cpu_bf16_supported", lambda: True)
    assert D.resolve_precision("auto", cpu) == "bf16"
    with pytest.raises(ValueError, match="fp16 is for CUDA"):
        D.resolve_precision("fp16", cpu)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert D.resolve_precision("auto", gpu) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert D.resolve_precision("auto", gpu) == "fp16" and D.resolve_precision("fp32", gpu) == "fp32"
    assert D.autocast_dtype("fp16") is torch.float16 and D.autocast_dtype("fp32") is None


def _cli(module, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")  # no GPU, whatever the machine
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)


@pytest.mark.parametrize("module,args", [("seg.predict", ["x.png", "--out", "o"]), ("seg.evaluate", []),
                                         pytest.param("seg.bench", ["--quick"], marks=pytest.mark.slow)])
def test_every_cli_takes_device_and_refuses_absent_cuda(module, args):
    r = _cli(module, *args, "--device", "cuda")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["error: device cuda: CUDA is not available here (use --device cpu or auto)"]
    r = _cli(module, *args, "--device", "gpu")
    assert r.returncode == 2 and "must be one of auto, cpu, cuda, cuda:N" in r.stderr


def _resolve(*argv):
    parser = get_args_parser()
    return resolve_args(parser.parse_args(["--out", "unused", *argv]), parser)


def test_gpu_preset_scales_batch_and_workers(one_gpu, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    args = _resolve("--preset", "gpu")
    demo = _resolve("--preset", "demo")
    assert args.batch_size == 8 * demo.batch_size and args.lr > demo.lr
    assert args.crop is None and args.size == "512x384"  # full frames, not the demo's 256x256 crops
    assert args.workers == 14 and args.amp and args.arch == demo.arch
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two processes on one machine share the cores
    assert _resolve("--preset", "gpu").workers == 7
    assert _resolve("--preset", "gpu", "--workers", "3").workers == 3  # explicit flags win


def test_gpu_preset_needs_cuda(no_cuda, capsys):
    with pytest.raises(SystemExit):
        _resolve("--preset", "gpu", "--data", "synth")
    assert "--preset gpu needs a CUDA device" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _resolve("--data", "synth", "--device", "cuda")
    assert "CUDA is not available" in capsys.readouterr().err
    assert _resolve("--data", "synth", "--workers", "auto").workers >= 1


@pytest.mark.parametrize("threads", ["0", "-3", "x"])
def test_threads_below_one_are_usage_errors(threads, capsys):
    import argparse

    p = argparse.ArgumentParser()
    D.add_runtime_args(p)
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--threads", threads])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err and "expected a whole number >= 1" in err
    assert p.parse_args(["--threads", "2"]).threads == 2
