"""One device rule for every entry point: `--device {auto,cpu,cuda,cuda:N}`, auto = CUDA when available.

Also the inference precision each device gets by default: on CUDA, fp16/bf16 autocast (bf16 where the card
supports it: same exponent range as fp32, so no overflow in the logits); on the CPU, bf16 only with native
bf16 math (avx512_bf16 / AMX), else fp32 (emulated bf16 is slower than fp32).
"""
from __future__ import annotations

import argparse
import platform
import re
from pathlib import Path

import torch

from seg.cli import int_arg

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BACKENDS = ("auto", "torch", "onnxruntime")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) -> cuda when available, else cpu; 'cpu', 'cuda', 'cuda:N' as given, checked.

    Raises ValueError (one line) for an unknown spelling, CUDA asked for where there is none, or a
    GPU index past the last card.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = (spec or "auto").strip().lower()
    if not _DEVICE.match(spec):
        raise ValueError(f"device must be one of {DEVICE_CHOICES}, got {spec!r}")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec}: CUDA is not available here (use --device cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {spec}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def device_arg(text: str) -> str:
    """argparse `type=` for --device: checks the spelling (a one-line usage error), keeps the text."""
    if not _DEVICE.match(text.strip().lower()):
        raise argparse.ArgumentTypeError(f"must be one of {DEVICE_CHOICES}, got {text!r}")
    return text.strip().lower()


def cpu_bf16_supported() -> bool:
    """Whether this CPU has native bf16 math (avx512_bf16 / AMX); elsewhere bf16 is emulated and slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> the default for `device` (module doc); explicit choices are checked against the device."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if device.type == "cuda":
        if precision == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return precision
    if precision == "fp16":
        raise ValueError("precision fp16 is for CUDA; on the CPU use fp32 or bf16")
    if precision == "auto":
        return "bf16" if cpu_bf16_supported() else "fp32"
    return precision


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision, None for fp32 (autocast off)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def describe(device: torch.device) -> str:
    """'cpu' or 'cuda:0 (NVIDIA H200)': the device as shown in logs and the app."""
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def add_runtime_args(p: argparse.ArgumentParser) -> None:
    """--device, --backend, --precision, --threads: the Predictor's options, spelled the same on every CLI."""
    p.add_argument("--device", type=device_arg, default="auto",
                   help="auto (CUDA when available), cpu, cuda or cuda:N (default auto)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto (onnxruntime on the CPU when installed, else torch), torch or onnxruntime")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (CUDA: bf16/fp16; CPU: bf16 with native bf16 math, else fp32), fp32, bf16, fp16 (CUDA)")
    p.add_argument("--threads", type=int_arg(1), default=None, help="CPU threads (default: all cores)")


def cpu_name(cpuinfo: str | None = None) -> str:
    """The CPU's model name from the first "model name" line of `cpuinfo` (text in /proc/cpuinfo's format;
    default: that file, on Linux), else whatever the platform reports."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"
