"""The benchmark behind the README's speed figures: `python -m seg.bench [--json FILE] [--quick]`.

All figures come from one process on the given checkpoint (default: the bundled one), medians of several
runs after warm-up:
- forward_ms: the deployed network alone, `Predictor.forward` (folded, channels_last, its precision, logits
  upsampled to the model input size); model_forward_ms: the same weights through the model's own forward;
- predict_ms: Predictor end to end, PIL image in -> full-size label map and overlay out;
- naive_ms: the same weights through the pipeline a user would write from the torchvision docs;
- agreement: fraction of pixels where predict and naive give the same class (validation frames);
- flop_limit_ms: model FLOPs / this machine's measured fp32 GEMM rate (a lower bound for fp32);
- train_img_s, loader_img_s, synth_img_s: training throughput of `seg.train --preset demo`, of its data
  pipeline alone (same workers), and of the synthetic renderer. The preset's frame pool is cut to
  BENCH_POOL frames: the pool's size sets how long it takes to render up front, not the cost of a step.
The *_kitti keys repeat forward/predict/naive/agreement on 1242x375 KITTI-shaped frames.
"""
from __future__ import annotations

import argparse
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

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .imageio import image_files, load_image
from .paths import DEFAULT_CHECKPOINT, DEFAULT_DATA, REPO_ROOT, SAMPLE_FRAMES
from .predict import Predictor, model_size
from .viz import overlay_image, to_label_png

KITTI_SIZE = (1242, 375)  # (W, H)


def timed(fn: Callable[[], object], runs: int, warmup: int = 2) -> float:
    """Median wall time of `fn` in ms after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


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


def gemm_gflops(n: int = 1024, runs: int = 5) -> float:
    """Measured fp32 matrix-multiply rate of this machine (GFLOP/s) at the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    ms = timed(lambda: torch.mm(a, b), runs)
    return 2 * n**3 / (ms / 1e3) / 1e9


def model_flops(model: torch.nn.Module, hw: tuple[int, int]) -> int:
    x = torch.randn(1, 3, *hw)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return int(counter.get_total_flops())


def frames(folder: Path, size: tuple[int, int], n: int, seed0: int) -> list[Image.Image]:
    """Up to n RGB frames of `size` (W, H) from `folder`, topped up with synthetic renders."""
    out = []
    if folder.is_dir():
        for p in image_files(folder)[:n]:
            im = load_image(p)
            out.append(im if im.size == size else im.resize(size, Image.BILINEAR))
    if len(out) < n:
        from .synth import render

        out += [render(seed0 + i, size)[0] for i in range(n - len(out))]
    return out


def pipeline_figures(pred: Predictor, naive: NaivePipeline, imgs: list[Image.Image], runs: int) -> dict:
    """forward/predict/naive ms on imgs[0], agreement over all of imgs."""
    img = imgs[0]
    h, w = model_size(img.height, img.width, pred.input_size)
    x = torch.randn(1, 3, h, w).contiguous(memory_format=torch.channels_last)

    def model_forward():  # the model's own forward, incl. its upsample of all logit channels
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=pred.precision == "bf16"):
            pred.model(x)

    def predict():
        labels = pred.predict(img)
        return to_label_png(labels, pred.classes), overlay_image(img, labels, pred.classes)

    same = total = 0
    for im in imgs:
        a, b = pred.predict(im), naive.labels(im)
        same += int((a == b).sum())
        total += a.size
    return {
        "forward_ms": timed(lambda: pred.forward(x), runs),
        "model_forward_ms": timed(model_forward, runs),
        "predict_ms": timed(predict, runs),
        "naive_ms": timed(lambda: naive(img), runs),
        "agreement": same / total,
        "model_hw": [h, w],
    }


BENCH_POOL = 64


def train_figures(steps: int) -> dict:
    """img/s of `seg.train --preset demo` (subprocess, from its metrics.jsonl) and of its loader alone."""
    from . import train as T
    from .cliutil import parse_size

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "seg.train", "--preset", "demo", "--steps", str(steps), "--out", tmp,
               "--log-every", "5", "--eval-every", str(10 * steps), "--checkpoint-every", str(10 * steps)]
        if T.PRESETS["demo"].get("synth_pool"):
            cmd += ["--synth-pool", str(BENCH_POOL)]
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

    parser = T.get_args_parser()
    args = T.resolve_args(parser.parse_args(["--preset", "demo", "--out", "unused"]), parser)
    args.synth_pool = min(args.synth_pool, BENCH_POOL)
    args._resume_step = 0
    cw, ch = parse_size(args.crop or args.size)
    sw, sh = parse_size(args.size)
    ds = T.get_dataset(args, True, (ch, cw), (sh, sw))
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
    from .synth import render

    render(0)
    t0 = time.perf_counter()
    for i in range(n):
        render(1000 + i)
    return n / (time.perf_counter() - t0)


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{e.__class__.__name__}: {lines[-1][:200] if lines else ''}"


def run(checkpoint: Path, quick: bool, data: Path = DEFAULT_DATA, kitti: Path = SAMPLE_FRAMES) -> dict:
    runs, n_agree = (5, 4) if quick else (15, 16)
    ckpt = load_checkpoint(checkpoint)
    pred = Predictor(checkpoint)
    naive = NaivePipeline(ckpt)
    th, tw = pred.input_size
    res: dict = {"checkpoint": str(checkpoint), "arch": pred.meta["arch"], "precision": pred.precision,
                 "threads": torch.get_num_threads(), "torch": torch.__version__, "input_size": [th, tw]}
    val = frames(Path(data) / "validation" / "images", (tw, th), n_agree, 0)
    res.update(pipeline_figures(pred, naive, val, runs))
    kitti = frames(Path(kitti), KITTI_SIZE, max(2, n_agree // 4), 500)
    res.update({f"{k}_kitti": v for k, v in pipeline_figures(pred, naive, kitti, max(3, runs // 2)).items()})
    flops = model_flops(model_from_checkpoint(ckpt), (th, tw))
    res["gflops"] = flops / 1e9
    res["gemm_gflop_s"] = gemm_gflops()
    res["flop_limit_ms"] = flops / (res["gemm_gflop_s"] * 1e9) * 1e3
    # Training-side figures depend on seg.synth / seg.data / seg.train; a failure there is reported in the
    # output (key *_error, figure None) so the inference figures above are not lost.
    try:
        res["synth_img_s"] = synth_img_s(3 if quick else 8)
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        res["synth_img_s"], res["synth_error"] = None, _one_line(e)
    try:
        res.update(train_figures(10 if quick else 25))
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        res.setdefault("train_img_s", None)
        res["loader_img_s"], res["loader_error"] = None, _one_line(e)
    for suffix in ("", "_kitti"):
        res[f"naive_over_predict{suffix}"] = res[f"naive_ms{suffix}"] / res[f"predict_ms{suffix}"]
        res[f"predict_over_forward{suffix}"] = res[f"predict_ms{suffix}"] / res[f"forward_ms{suffix}"]
    if res.get("train_img_s") and res.get("loader_img_s"):
        res["loader_over_train"] = res["loader_img_s"] / res["train_img_s"]
    return res


def format_table(res: dict) -> str:
    def f(k):
        v = res.get(k)
        return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    lines = [f"{res['arch']} ({res['precision']}, {res['threads']} threads, torch {res['torch']})",
             f"{'':<22}{'frame ' + 'x'.join(map(str, res['input_size'][::-1])):>16}{'KITTI 1242x375':>18}"]
    for k in ("forward_ms", "model_forward_ms", "predict_ms", "naive_ms", "agreement", "naive_over_predict", "predict_over_forward"):
        lines.append(f"{k:<22}{f(k):>16}{f(k + '_kitti'):>18}")
    for k in ("gflops", "gemm_gflop_s", "flop_limit_ms", "train_img_s", "loader_img_s", "loader_over_train",
              "synth_img_s", "train_error", "loader_error", "synth_error"):
        if k in res:
            lines.append(f"{k:<22}{f(k):>16}")
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Measure predict/naive/forward speed, agreement and training throughput.")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--quick", action="store_true", help="fewer runs and frames (a smoke run, noisier)")
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="checkpoint to measure")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="Vistas-layout set whose validation frames are used")
    p.add_argument("--kitti", default=str(SAMPLE_FRAMES), help="folder of KITTI-shaped frames")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        res = run(Path(args.checkpoint), args.quick, Path(args.data), Path(args.kitti))
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
