"""The benchmark behind the README's speed figures: `python -m seg.bench [--json FILE] [--quick]`.

All figures come from one process on the given checkpoint (default: the bundled one), medians of several
runs after warm-up, on the CPU unless named cuda_*. The timings compared in a ratio are taken in
interleaved rounds (`timed_rounds`: one call of each per round), so a machine whose speed drifts while the
bench runs (this project's VM: 30-50% between minutes) shifts both sides of a ratio alike; the GEMM rate
behind flop_limit_ms is timed in the same rounds as the 512x384 frame.
- backend: the Predictor's default backend here (`--backend auto`), whose figures are the top-level keys;
  `backends` holds forward_ms / predict_ms / predict_full_ms / agreement (and *_kitti) of every CPU backend
  installed (torch, onnxruntime), measured in the same run;
- forward_ms: the deployed network alone, `Predictor.forward` (folded, its precision, its backend's input layout, up to
  the low-res logits); model_forward_ms: the same weights through the model's own torch forward;
- predict_ms: Predictor end to end, PIL image in -> full-size label map and overlay out;
- input_ms, labels_ms, picture_ms: predict's parts besides the network, on the same frame: image -> model
  input, low-res logits -> full-size labels (`upsample_argmax`), labels -> palette PNG and overlay;
- predict_full_ms: `Predictor.predict_full`, the app's path (labels and confidence map);
- naive_ms: the same weights through the pipeline a user would write from the torchvision docs;
- agreement: fraction of pixels where predict and naive give the same class (validation frames);
- flop_limit_ms: model FLOPs / this machine's measured fp32 GEMM rate (a lower bound for fp32);
- train_img_s, loader_img_s, synth_img_s: training throughput of `seg.train --preset demo`, of its data
  pipeline alone (same workers), and of the synthetic renderer. The preset's frame pool is cut to
  BENCH_POOL frames: the pool's size sets how long it takes to render up front, not the cost of a step.
The *_kitti keys repeat forward/predict/naive/agreement on 1242x375 KITTI-shaped frames. cpu, threads,
precision name the machine and the settings. With CUDA present (and `--device` auto or cuda), cuda_forward_ms,
cuda_predict_ms (+ _kitti), cuda_train_img_s (`seg.train --preset gpu`) and cuda_device, cuda_precision
are added beside the CPU figures.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode
from torchvision.transforms import v2

from seg.infer import onnxrt
from seg.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from seg.device import BACKENDS, cpu_name, describe, device_arg, resolve_device
from seg.imageio import image_files, load_image
from seg.paths import DEFAULT_CHECKPOINT, DEFAULT_DATA, REPO_ROOT, SAMPLE_FRAMES
from seg.infer.predictor import Predictor, model_size
from seg.viz import overlay_image, to_label_png



class NaivePipeline:
    """The straightforward version: v2 transforms, fp32 model in default memory format, no_grad, argmax,
    nearest resize back, palette via putpalette, overlay via Image.blend. Nothing slowed down on purpose."""

    def __init__(self, ckpt: dict):
        self.model = model_from_checkpoint(ckpt)
        self.flat_palette = [v for c in ckpt["classes"]["colors"] for v in c]
        norm = ckpt["normalize"]
        self.transform = v2.Compose([
            v2.Resize(int(ckpt["input_size"][0])),  # shorter side, like torchvision's segmentation presets
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(norm["mean"], norm["std"]),
        ])

    def labels(self, image: Image.Image) -> np.ndarray:
        with torch.no_grad():
            out = self.model(self.transform(image).unsqueeze(0))
        small = Image.fromarray(out.argmax(1)[0].to(torch.uint8).numpy())
        return np.asarray(small.resize(image.size, Image.NEAREST))

    def __call__(self, image: Image.Image) -> tuple[Image.Image, Image.Image]:
        lab = Image.fromarray(self.labels(image))
        lab.putpalette(self.flat_palette)
        return lab, Image.blend(image, lab.convert("RGB"), 0.5)


def timed_rounds(fns: dict[str, Callable[[], object]], runs: int, warmup: int = 2,
                 pause_s: float = 0.02) -> dict[str, float]:
    """Median wall time (ms) of each of `fns`, timed in `runs` rounds that call each once, in turn, after
    `warmup` untimed rounds. Interleaving keeps ratios between them honest on a machine whose speed drifts.
    A `pause_s` sleep before each call lets the previous call's worker threads (torch's OpenMP threads spin
    after each op) go idle, so one call's threads do not slow the next one's."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            time.sleep(pause_s)
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


GEMM_N = 1024


def gemm_call(n: int = GEMM_N) -> Callable[[], object]:
    """One fp32 n x n matrix multiply (2 n^3 FLOPs) at the current thread count, as a call to time."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return lambda: torch.mm(a, b)


def model_flops(model: torch.nn.Module, hw: tuple[int, int]) -> int:
    x = torch.randn(1, 3, *hw)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return int(counter.get_total_flops())


def pipeline_figures(pred: Predictor, naive: NaivePipeline, imgs: list[Image.Image], runs: int,
                     reference: bool = True, gemm: bool = False) -> dict:
    """forward/predict/predict_full ms on imgs[0], agreement with the naive pipeline over all of imgs; with
    `reference`, also model_forward_ms and naive_ms (they do not depend on the Predictor's backend); with
    `gemm`, gemm_gflop_s. All timed in the same interleaved rounds (`timed_rounds`)."""
    img = imgs[0]
    h, w = model_size(img.height, img.width, pred.input_size)
    x = pred.batch_input([torch.randn(1, 3, h, w, device=pred.device)])  # in the backend's own layout, as predict feeds it
    sync = torch.cuda.synchronize if pred.device.type == "cuda" else (lambda: None)

    def forward():
        pred.forward(x)
        sync()

    x_cl = x.contiguous(memory_format=torch.channels_last)  # the torch model's layout

    def model_forward():  # the model's own forward, incl. its upsample of all logit channels
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(pred.precision)
        with torch.inference_mode(), torch.autocast(pred.device.type, dtype or torch.bfloat16, enabled=dtype is not None):
            pred.model(x_cl)
        sync()

    def predict():
        labels = pred.predict(img)
        return to_label_png(labels, pred.classes), overlay_image(img, labels, pred.classes)

    same = total = 0
    for im in imgs:
        a, b = pred.predict(im), naive.labels(im)
        same += int((a == b).sum())
        total += a.size
    # predict's parts besides the network, on the real frame: input conversion, label upsample, picture out
    real_x = pred.model_input(img)
    with torch.inference_mode():
        real_low = pred.forward(real_x)
    labels = pred.predict(img)
    fns = {"forward_ms": forward, "predict_ms": predict, "predict_full_ms": lambda: pred.predict_full(img),
           "input_ms": lambda: pred.model_input(img),
           "labels_ms": lambda: pred.labels_at(real_low, real_x.shape[-2:]),
           "picture_ms": lambda: (to_label_png(labels, pred.classes), overlay_image(img, labels, pred.classes))}
    if reference:
        fns.update(model_forward_ms=model_forward, naive_ms=lambda: naive(img))
    if gemm:
        fns["gemm_ms"] = gemm_call()
    out = timed_rounds(fns, runs)
    if gemm:
        out["gemm_gflop_s"] = 2 * GEMM_N**3 / (out.pop("gemm_ms") / 1e3) / 1e9
    out.update(agreement=same / total, model_hw=[h, w])
    return out


BENCH_POOL = 64


def train_figures(steps: int, preset: str = "demo", device: str = "cpu", loader: bool = True,
                  pool: int = BENCH_POOL) -> dict:
    """img/s of `seg.train --preset PRESET` (subprocess, from its metrics.jsonl) and, with `loader`, of its
    data pipeline alone. The end-of-run calibration stages are switched off: they do not change img/s."""
    from seg.train import config as T
    from seg.train.setup import get_dataset

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "seg.train", "--preset", preset, "--steps", str(steps), "--out", tmp,
               "--device", device, "--log-every", "5", "--eval-every", str(10 * steps),
               "--checkpoint-every", str(10 * steps), "--bn-recalibrate", "0", "--logit-adjust", "0", "--bias-fit", "0"]
        if T.PRESETS[preset].get("synth_pool"):
            cmd += ["--synth-pool", str(pool)]
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300)
        rows = []
        if (Path(tmp) / "metrics.jsonl").is_file():
            rows = [json.loads(l) for l in (Path(tmp) / "metrics.jsonl").read_text().splitlines() if l.strip()]
        speeds = [row["img_per_s"] for row in rows if "img_per_s" in row][1:]  # first window has warm-up
        if r.returncode != 0 or not speeds:
            tail = (r.stderr.strip().splitlines() or ["no metrics"])[-1]
            out["train_error"] = f"seg.train exited {r.returncode}: {tail[:200]}"
        out["train_img_s"] = statistics.median(speeds) if speeds else None
        out["train_cmd"] = " ".join(["python"] + cmd[1:]).replace(tmp, "TMP")
    if not loader:
        return out

    args = T.parse_config(["--preset", "demo", "--out", "unused"])
    args = dataclasses.replace(args, synth_pool=min(args.synth_pool, BENCH_POOL))
    ds = get_dataset(args, True)
    endless = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=1 << 30) if hasattr(ds, "__len__") else None
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, sampler=endless, num_workers=args.workers)
    it = iter(loader)
    next(it)  # worker start-up
    n_batches = max(3, steps // 4)
    t0 = time.perf_counter()
    for _ in range(n_batches):
        next(it)
    out["loader_img_s"] = n_batches * args.batch_size / (time.perf_counter() - t0)
    out["loader_workers"] = args.workers
    del it
    return out


def synth_img_s(n: int) -> float:
    from seg.synth import render

    render(0)
    t0 = time.perf_counter()
    for i in range(n):
        render(1000 + i)
    return n / (time.perf_counter() - t0)


def _last_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{e.__class__.__name__}: {lines[-1][:200] if lines else ''}"


def cpu_backends(checkpoint: Path, backend: str) -> tuple[Predictor, dict[str, Predictor]]:
    """(the default CPU Predictor for `backend`, {backend name: Predictor} of every CPU backend installed)."""
    default = Predictor(checkpoint, device="cpu", backend=backend)
    preds = {default.backend: default}
    for name in ("torch", "onnxruntime"):
        if name not in preds and (name == "torch" or onnxrt.available()):
            other = Predictor(checkpoint, device="cpu", backend=name)
            if other.backend == name:  # not a fallback to a backend measured already
                preds[name] = other
    return default, preds


def run(checkpoint: Path, quick: bool, data: Path = DEFAULT_DATA, kitti: Path = SAMPLE_FRAMES,
        backend: str = "auto", device: str = "auto") -> dict:
    runs, n_agree = (5, 4) if quick else (15, 16)
    ckpt = load_checkpoint(checkpoint)
    cuda = resolve_device(device).type == "cuda"
    pred, preds = cpu_backends(checkpoint, backend)
    naive = NaivePipeline(ckpt)
    th, tw = pred.input_size
    res: dict = {"checkpoint": str(checkpoint), "arch": pred.meta["arch"], "backend": pred.backend,
                 "precision": pred.precision, "cpu": cpu_name(), "threads": torch.get_num_threads(),
                 "torch": torch.__version__, "input_size": [th, tw]}
    if onnxrt.available():
        import onnxruntime

        res["onnxruntime"] = onnxruntime.__version__
    val = frames(Path(data) / "validation" / "images", (tw, th), n_agree, 0)
    kit = frames(Path(kitti), KITTI_SIZE, max(2, n_agree // 4), 500)
    res["backends"] = {}
    for name, p in preds.items():
        ref = p is pred  # backend-independent references once, with the default
        fig = pipeline_figures(p, naive, val, runs, reference=ref, gemm=ref)
        fig.update({f"{k}_kitti": v for k, v in pipeline_figures(p, naive, kit, max(3, runs // 2), reference=ref).items()})
        fig["precision"] = p.precision
        if ref:
            res.update(fig)
        res["backends"][name] = {k: v for k, v in fig.items() if not k.startswith(("model_", "naive_", "gemm_"))}
    flops = model_flops(model_from_checkpoint(ckpt), (th, tw))
    res["gflops"] = flops / 1e9
    res["flop_limit_ms"] = flops / (res["gemm_gflop_s"] * 1e9) * 1e3
    if cuda:
        res.update(cuda_figures(checkpoint, naive, val, kit, runs, quick))
    # Training-side figures depend on seg.synth / seg.data / seg.train; a failure there is reported in the
    # output (key *_error, figure None) so the inference figures above are not lost.
    try:
        res["synth_img_s"] = synth_img_s(3 if quick else 8)
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        res["synth_img_s"], res["synth_error"] = None, _last_line(e)
    try:
        res.update(train_figures(10 if quick else 25))
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        res.setdefault("train_img_s", None)
        res["loader_img_s"], res["loader_error"] = None, _last_line(e)
    for suffix in ("", "_kitti"):
        res[f"naive_over_predict{suffix}"] = res[f"naive_ms{suffix}"] / res[f"predict_ms{suffix}"]
        res[f"predict_over_forward{suffix}"] = res[f"predict_ms{suffix}"] / res[f"forward_ms{suffix}"]
        res[f"predict_full_over_predict{suffix}"] = res[f"predict_full_ms{suffix}"] / res[f"predict_ms{suffix}"]
    res["predict_over_flop_limit"] = res["predict_ms"] / res["flop_limit_ms"]
    if res.get("train_img_s") and res.get("loader_img_s"):
        res["loader_over_train"] = res["loader_img_s"] / res["train_img_s"]
    return res


def cuda_figures(checkpoint: Path, naive: NaivePipeline, val: list, kit: list, runs: int, quick: bool) -> dict:
    """cuda_forward_ms, cuda_predict_ms (+ _kitti), cuda_agreement, cuda_train_img_s (`--preset gpu`)."""
    pred = Predictor(checkpoint, device="cuda", backend="torch")
    out: dict = {"cuda_device": describe(pred.device), "cuda_precision": pred.precision}
    for suffix, imgs in (("", val), ("_kitti", kit)):
        fig = pipeline_figures(pred, naive, imgs, runs, reference=False)
        out.update({f"cuda_{k}{suffix}": fig[k] for k in ("forward_ms", "predict_ms", "agreement")})
    try:
        # A pool of several batches, so that each epoch keeps all loader workers busy.
        t = train_figures(20 if quick else 60, preset="gpu", device="cuda", loader=False, pool=1024)
        out.update({"cuda_train_img_s": t["train_img_s"], "cuda_train_cmd": t["train_cmd"]})
        if "train_error" in t:
            out["cuda_train_error"] = t["train_error"]
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        out["cuda_train_img_s"], out["cuda_train_error"] = None, _last_line(e)
    return out


def format_table(res: dict) -> str:
    def f(v):
        return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    versions = f"torch {res['torch']}" + (f", onnxruntime {res['onnxruntime']}" if res.get("onnxruntime") else "")
    lines = [f"{res['arch']} on {res.get('cpu', '?')}, {res['threads']} threads ({versions})",
             f"default backend: {res['backend']} ({res['precision']})",
             f"{'':<34}{'frame ' + 'x'.join(map(str, res['input_size'][::-1])):>16}{'KITTI 1242x375':>18}"]
    for k in ("forward_ms", "model_forward_ms", "predict_ms", "input_ms", "labels_ms", "picture_ms",
              "predict_full_ms", "naive_ms", "agreement", "naive_over_predict", "predict_over_forward",
              "predict_full_over_predict"):
        lines.append(f"{k:<34}{f(res.get(k)):>16}{f(res.get(k + '_kitti')):>18}")
    for name, fig in res.get("backends", {}).items():
        for k in ("forward_ms", "predict_ms", "predict_full_ms", "agreement"):
            label = f"{name} ({fig['precision']}) {k}"
            lines.append(f"{label:<34}{f(fig.get(k)):>16}{f(fig.get(k + '_kitti')):>18}")
    for k in ("cuda_forward_ms", "cuda_predict_ms", "cuda_agreement"):
        if k in res:
            lines.append(f"{k:<34}{f(res[k]):>16}{f(res.get(k + '_kitti')):>18}")
    for k in ("gflops", "gemm_gflop_s", "flop_limit_ms", "predict_over_flop_limit", "train_img_s", "loader_img_s",
              "loader_over_train", "synth_img_s", "cuda_device", "cuda_precision", "cuda_train_img_s",
              "train_error", "loader_error", "synth_error", "cuda_train_error"):
        if k in res:
            lines.append(f"{k:<34}{f(res[k]):>16}")
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Measure predict/naive/forward speed, agreement and training throughput.")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--quick", action="store_true", help="fewer runs and frames (a smoke run, noisier)")
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="checkpoint to measure")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="Vistas-layout set whose validation frames are used")
    p.add_argument("--kitti", default=str(SAMPLE_FRAMES), help="folder of KITTI-shaped frames")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="the default CPU backend, whose figures are the top-level keys (every installed one is measured)")
    p.add_argument("--device", type=device_arg, default="auto",
                   help="auto: add the cuda_* figures when CUDA is available; cpu: CPU figures only; cuda: require them")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        res = run(Path(args.checkpoint), args.quick, Path(args.data), Path(args.kitti), args.backend, args.device)
    except (CheckpointError, ValueError) as e:  # ValueError: --device cuda without CUDA
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0
